// A fixed set of worker threads, and ParallelFor on top of it: the one place cairn runs work in parallel
// (snapshot copies, chunk encoding, chunk reads).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace cairn {

class ThreadPool {
 public:
  // `threads` = 0: one per hardware thread.
  explicit ThreadPool(size_t threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  size_t size() const { return workers_.size(); }
  void Schedule(std::function<void()> task);

  // The process-wide pool that cairn's own parallel loops share.
  static ThreadPool& Shared();

 private:
  void Run();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

// Runs fn(0) .. fn(count - 1), spread over `pool`'s threads and the calling thread, and returns when all have
// finished. The first exception thrown by any call is rethrown (the remaining indices are skipped).
void ParallelFor(size_t count, const std::function<void(size_t)>& fn, ThreadPool& pool = ThreadPool::Shared());

}  // namespace cairn
