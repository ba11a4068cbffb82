// AsyncCheckpointer: plan and snapshot on the caller's thread, write and commit on a background thread.
#include "cairn/async_checkpointer.h"

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>

#include "cairn/error.h"
#include "checkpoint/save_pipeline.h"
#include "distributed/agreement.h"
#include "checkpoint/snapshot.h"
#include "checkpoint/staging_pool.h"

namespace cairn {

namespace checkpoint {

// What the caller's thread and the background save share about one save.
struct SaveControl {
  std::mutex mu;
  std::condition_variable cv;
  std::chrono::steady_clock::time_point deadline;
  bool done = false;
  bool committing = false;  // past the point of no return
  bool abandoned = false;   // timed out: the background save must not commit
  std::exception_ptr error;
};

}  // namespace checkpoint

struct AsyncCheckpointer::Impl {
  explicit Impl(AsyncOptions options) : async_options(std::move(options)) {}
  AsyncOptions async_options;
  checkpoint::StagingPool staging;
  std::mutex calls_mu;  // held by save(), restore() and metadata() for their whole duration
  std::mutex wait_mu;   // one waiter at a time joins the save in flight; the others then find nothing pending
  mutable std::mutex mu;
  std::shared_ptr<checkpoint::SaveControl> control;  // the save in flight, or the finished one not yet waited for
  std::thread worker;
};

namespace {

std::string BarrierKey(const MultiprocessingOptions& options, const char* name) {
  return options.barrier_sync_key_prefix.value_or("") + name;
}

}  // namespace

AsyncCheckpointer::AsyncCheckpointer(std::unique_ptr<CheckpointHandler> handler, AsyncOptions async_options,
                                     CheckpointerOptions options)
    : Checkpointer(std::move(handler), std::move(options)),
      impl_(std::make_unique<Impl>(std::move(async_options))) {
  if (impl_->async_options.timeout_secs <= 0) throw InvalidArgumentError("AsyncOptions.timeout_secs must be positive");
}

AsyncCheckpointer::~AsyncCheckpointer() {
  try {
    wait_until_finished();
  } catch (const std::exception& e) {
    // A destructor cannot throw; the failure must still not pass silently.
    std::fprintf(stderr, "cairn: a background save failed and nobody waited for it: %s\n", e.what());
  }
}

const AsyncOptions& AsyncCheckpointer::async_options() const { return impl_->async_options; }

void AsyncCheckpointer::save(const std::filesystem::path& directory, const CheckpointArgs& args,
                             const SaveOptions& save_options) {
  std::lock_guard calls_lock(impl_->calls_mu);
  RequireActive();
  wait_until_finished();  // one save at a time; a failure of the previous one surfaces here
  const auto fs = options().file_system;
  checkpoint::SavePlan plan;
  distributed::Agree(options().multiprocessing_options, "AsyncCheckpointer:save_start",
                     [&] { plan = checkpoint::PlanSave(*fs, options(), directory, save_options); });
  const int64_t timeout_ms = impl_->async_options.timeout_secs * 1000;
  if (impl_->async_options.barrier_sync_fn) {
    impl_->async_options.barrier_sync_fn(BarrierKey(options().multiprocessing_options, "save_start"), timeout_ms);
  }
  const bool create_in_background = impl_->async_options.create_directories_asynchronously;
  if (!create_in_background) checkpoint::StartSave(*fs, plan);

  // The blocking part: after this the caller may change or free its arrays. Owned arrays are write-protected
  // instead of copied where the kernel and the handler allow it (checkpoint/cow_snapshot.cc); `cow` is released
  // (every page un-protected) when the background save ends, however it ends.
  std::shared_ptr<const CheckpointArgs> snapshot;
  std::shared_ptr<checkpoint::CowSnapshot> cow;
  if (impl_->async_options.copy_on_write && shared_handler()->reads_arrays_through_snapshot()) {
    cow = checkpoint::CowSnapshot::Create();
  }
  try {
    snapshot = checkpoint::SnapshotArgs(args, impl_->staging, cow.get());
  } catch (...) {
    if (!create_in_background) fs->RemoveAll(plan.work);
    throw;
  }

  auto control = std::make_shared<checkpoint::SaveControl>();
  control->deadline = std::chrono::steady_clock::now() + std::chrono::seconds(impl_->async_options.timeout_secs);
  auto handler = shared_handler();
  const AsyncOptions async = impl_->async_options;
  const MultiprocessingOptions multiprocessing = options().multiprocessing_options;
  auto timed_out = [plan, async] {
    return TimeoutError("the save to " + plan.directory.string() + " did not finish within " +
                        std::to_string(async.timeout_secs) + " s (AsyncOptions.timeout_secs); nothing was committed");
  };
  std::thread worker([control, handler, fs, plan, snapshot, cow, async, multiprocessing, create_in_background,
                      timed_out, timeout_ms] {
    try {
      auto check_continue = [&] {
        std::lock_guard lock(control->mu);
        if (control->abandoned || std::chrono::steady_clock::now() > control->deadline) {
          control->abandoned = true;
          throw timed_out();
        }
      };
      checkpoint::CommitHooks hooks;
      hooks.check_continue = check_continue;
      hooks.begin_commit = [&] {
        check_continue();
        if (async.barrier_sync_fn) async.barrier_sync_fn(BarrierKey(multiprocessing, "async_write_complete"), timeout_ms);
        std::lock_guard lock(control->mu);
        if (control->abandoned) throw timed_out();
        control->committing = true;
      };
      hooks.post_finalization = async.post_finalization_callback;
      if (create_in_background) checkpoint::StartSave(*fs, plan);
      checkpoint::FinishSave(*fs, *handler, plan, *snapshot, hooks);
      if (async.barrier_sync_fn) async.barrier_sync_fn(BarrierKey(multiprocessing, "async_commit_complete"), timeout_ms);
    } catch (...) {
      std::lock_guard lock(control->mu);
      control->error = std::current_exception();
    }
    if (cow) cow->Release();  // before anyone learns the save is over: the caller's memory is its own again
    std::lock_guard lock(control->mu);
    control->done = true;
    control->cv.notify_all();
  });

  std::lock_guard lock(impl_->mu);
  impl_->control = std::move(control);
  impl_->worker = std::move(worker);
}

void AsyncCheckpointer::wait_until_finished() {
  std::lock_guard wait_lock(impl_->wait_mu);
  std::shared_ptr<checkpoint::SaveControl> control;
  std::thread worker;
  {
    std::lock_guard lock(impl_->mu);
    if (!impl_->control) return;
    control = std::move(impl_->control);
    worker = std::move(impl_->worker);
  }
  std::exception_ptr error;
  {
    std::unique_lock lock(control->mu);
    if (!control->cv.wait_until(lock, control->deadline, [&] { return control->done; })) {
      if (!control->committing) {
        // Stuck past its deadline: abandon it. It will not commit; if its thread ever comes back it removes
        // its unfinished directory. Detaching is safe: it owns everything it uses.
        control->abandoned = true;
        lock.unlock();
        worker.detach();
        throw TimeoutError("a background save did not finish within " +
                           std::to_string(impl_->async_options.timeout_secs) +
                           " s (AsyncOptions.timeout_secs); nothing was committed");
      }
      control->cv.wait(lock, [&] { return control->done; });  // the commit itself is short
    }
    error = control->error;
  }
  worker.join();
  if (error) std::rethrow_exception(error);
}

void AsyncCheckpointer::check_for_errors() {
  {
    std::lock_guard lock(impl_->mu);
    if (!impl_->control) return;
    std::lock_guard control_lock(impl_->control->mu);
    if (!impl_->control->done) return;
  }
  wait_until_finished();  // finished: joins at once and rethrows its failure, if any
}

bool AsyncCheckpointer::is_saving_in_progress() const {
  std::lock_guard lock(impl_->mu);
  if (!impl_->control) return false;
  std::lock_guard control_lock(impl_->control->mu);
  return !impl_->control->done;
}

Tree AsyncCheckpointer::restore(const std::filesystem::path& directory) {
  std::lock_guard calls_lock(impl_->calls_mu);
  wait_until_finished();
  return Checkpointer::restore(directory);
}

Tree AsyncCheckpointer::restore(const std::filesystem::path& directory, const CheckpointArgs& args) {
  std::lock_guard calls_lock(impl_->calls_mu);
  wait_until_finished();
  return Checkpointer::restore(directory, args);
}

StepMetadata AsyncCheckpointer::metadata(const std::filesystem::path& directory) {
  std::lock_guard calls_lock(impl_->calls_mu);
  wait_until_finished();
  return Checkpointer::metadata(directory);
}

void AsyncCheckpointer::close() {
  std::lock_guard calls_lock(impl_->calls_mu);
  wait_until_finished();
  Checkpointer::close();
}

StandardCheckpointer::StandardCheckpointer(AsyncOptions async_options, CheckpointerOptions options,
                                           PyTreeCheckpointHandlerOptions handler_options)
    : AsyncCheckpointer(std::make_unique<StandardCheckpointHandler>(handler_options), std::move(async_options),
                        std::move(options)) {}

void StandardCheckpointer::save(const std::filesystem::path& directory, const Tree& state,
                                const StandardSaveOptions& options) {
  AsyncCheckpointer::save(directory, args::StandardSave{state, options.save_args},
                          cairn::SaveOptions{options.force, options.custom_metadata});
}

Tree StandardCheckpointer::restore(const std::filesystem::path& directory, const Tree& target,
                                   const StandardRestoreOptions& options) {
  return AsyncCheckpointer::restore(directory, args::StandardRestore{target, options.strict});
}

}  // namespace cairn
