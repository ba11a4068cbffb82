// Removes old steps for a CheckpointManager: on the caller's thread, or on a background thread
// (enable_background_delete); deleted outright, or moved into `<root>/<todelete_subdir>/`.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cairn/file_system.h"
#include "cairn/options.h"
#include "manager/step_name.h"

namespace cairn::manager {

struct StepDeleterOptions {
  std::shared_ptr<FileSystem> fs;
  std::filesystem::path root;
  StepNameFormat name_format;
  AtomicityOptions atomicity;
  std::optional<std::string> todelete_subdir;
  bool background = false;
  bool primary = true;  // only the primary host touches the files
  std::optional<uint32_t> mode;
};

class StepDeleter {
 public:
  explicit StepDeleter(StepDeleterOptions options);
  ~StepDeleter();  // finishes the queue; a failure not yet reported is printed, not thrown
  StepDeleter(const StepDeleter&) = delete;
  StepDeleter& operator=(const StepDeleter&) = delete;

  // Deletes (or queues, in the background) each step. In the foreground the first failure throws, after the other
  // steps have been tried.
  void Delete(const std::vector<int64_t>& steps);
  // Steps queued or being deleted in the background.
  std::set<int64_t> Pending() const;
  // Blocks until nothing is queued or being deleted.
  void WaitIdle();
  // Rethrows, once, the first background failure since the last call.
  void CheckForErrors();
  // Finishes the queue, stops the thread and rethrows a background failure not yet reported. Idempotent.
  void Close();

 private:
  void DeleteOne(int64_t step);
  void Run();

  StepDeleterOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<int64_t> queue_;
  std::optional<int64_t> active_;
  bool stopping_ = false;
  std::exception_ptr error_;
  std::thread thread_;
};

}  // namespace cairn::manager
