#include "manager/step_deleter.h"

#include <chrono>
#include <cstdio>

#include "cairn/error.h"
#include "io/temporary_path.h"

namespace cairn::manager {

StepDeleter::StepDeleter(StepDeleterOptions options) : options_(std::move(options)) {
  if (options_.background) thread_ = std::thread([this] { Run(); });
}

StepDeleter::~StepDeleter() {
  try {
    Close();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cairn: deleting an old checkpoint step failed: %s\n", e.what());
  }
}

void StepDeleter::DeleteOne(int64_t step) {
  if (!options_.primary) return;
  FileSystem& fs = *options_.fs;
  const std::string name = options_.name_format.Build(step);
  const auto path = options_.root / name;
  if (!fs.Exists(path)) return;  // already gone (Orbax logs and moves on)
  if (options_.todelete_subdir) {
    const auto trash = options_.root / *options_.todelete_subdir;
    fs.CreateDirs(trash, options_.mode);
    // A step deleted before under the same name: the newer one replaces it (rename cannot replace a non-empty
    // directory).
    fs.RemoveAll(trash / name);
    fs.Rename(path, trash / name);
    fs.SyncDir(options_.root);
    return;
  }
  // Make the step stop counting as a checkpoint before removing its files, so that a crash half-way leaves
  // something that no reader lists and the next cleanup removes, never a step that fails to restore.
  if (options_.atomicity.mode == AtomicityMode::kCommitFile) {
    if (fs.Exists(path / io::kCommitSuccessFile)) fs.RemoveFile(path / io::kCommitSuccessFile);
    fs.RemoveAll(path);
    return;
  }
  const auto now = std::chrono::system_clock::now().time_since_epoch().count();
  const auto doomed = options_.root / (name + std::string(io::kTmpSuffix) + "-" + std::to_string(now));
  fs.Rename(path, doomed);
  fs.RemoveAll(doomed);
}

void StepDeleter::Delete(const std::vector<int64_t>& steps) {
  if (steps.empty()) return;
  if (options_.background) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) throw InvalidArgumentError("the checkpoint manager is closed");
      queue_.insert(queue_.end(), steps.begin(), steps.end());
    }
    cv_.notify_all();
    return;
  }
  std::exception_ptr first;
  for (int64_t step : steps) {
    try {
      DeleteOne(step);
    } catch (...) {
      if (!first) first = std::current_exception();
    }
  }
  if (first) std::rethrow_exception(first);
}

void StepDeleter::Run() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and everything is done
    active_ = queue_.front();
    queue_.pop_front();
    const int64_t step = *active_;
    lock.unlock();
    std::exception_ptr error;
    try {
      DeleteOne(step);
    } catch (...) {
      error = std::current_exception();
    }
    lock.lock();
    if (error && !error_) error_ = error;
    active_.reset();
    cv_.notify_all();
  }
}

std::set<int64_t> StepDeleter::Pending() const {
  std::lock_guard lock(mu_);
  std::set<int64_t> out(queue_.begin(), queue_.end());
  if (active_) out.insert(*active_);
  return out;
}

void StepDeleter::WaitIdle() {
  if (!options_.background) return;
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return queue_.empty() && !active_; });  // Run drains the queue before it exits
}

void StepDeleter::CheckForErrors() {
  std::exception_ptr error;
  {
    std::lock_guard lock(mu_);
    std::swap(error, error_);
  }
  if (error) std::rethrow_exception(error);
}

void StepDeleter::Close() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  CheckForErrors();
}

}  // namespace cairn::manager
