#include "core/thread_pool.h"

#include <pthread.h>

#include <atomic>
#include <exception>
#include <iterator>
#include <memory>

namespace cairn {

ThreadPool::ThreadPool(size_t threads) {
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  for (size_t i = 0; i < threads; ++i) workers_.emplace_back([this] { Run(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& worker : workers_) worker.join();
}

void ThreadPool::Schedule(std::function<void()> task) {
  {
    std::lock_guard lock(mu_);
    tasks_.push_back(std::move(task));
  }
  cv_.notify_one();
}

void ThreadPool::Run() {
  while (true) {
    std::function<void()> task;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !tasks_.empty(); });
      if (tasks_.empty()) return;
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    task();
  }
}

namespace {

// The process-wide pool, made on first use. A child of fork() has none of its parent's threads, so it gets a pool
// of its own: there the parent's copy is forgotten, never destroyed (its destructor would wait at exit, forever, for
// threads the child does not have).
std::atomic<ThreadPool*> shared_pool{nullptr};

// The pools fork children forgot, one per generation, kept reachable so that LeakSanitizer does not report them.
ThreadPool* forgotten_pools[64];
size_t forgotten_count = 0;

void ForgetTheParentsPool() {  // in a fork child, which runs alone until it starts threads
  ThreadPool* parents = shared_pool.exchange(nullptr);
  if (parents && forgotten_count < std::size(forgotten_pools)) forgotten_pools[forgotten_count++] = parents;
}

struct SharedPoolOwner {
  SharedPoolOwner() { pthread_atfork(nullptr, nullptr, ForgetTheParentsPool); }
  ~SharedPoolOwner() { delete shared_pool.exchange(nullptr); }  // at exit: the workers are joined
};

}  // namespace

ThreadPool& ThreadPool::Shared() {
  static SharedPoolOwner owner;
  ThreadPool* pool = shared_pool.load(std::memory_order_acquire);
  if (pool) return *pool;
  auto fresh = std::make_unique<ThreadPool>();
  if (shared_pool.compare_exchange_strong(pool, fresh.get(), std::memory_order_acq_rel)) return *fresh.release();
  return *pool;  // another thread made one first
}

void ParallelFor(size_t count, const std::function<void(size_t)>& fn, ThreadPool& pool) {
  if (count == 0) return;
  if (count == 1) {
    fn(0);
    return;
  }
  // Workers and the caller pull indices from one counter, so a slow index never idles the others. The caller
  // works too and, once the indices run out, waits only for helpers that actually started: a helper still
  // queued (say, behind the outer loop of a nested ParallelFor) finds the loop closed and does nothing. So
  // nested loops cannot deadlock the pool.
  struct State {
    std::atomic<size_t> next{0};
    std::atomic<bool> failed{false};
    std::mutex mu;
    std::condition_variable cv;
    bool closed = false;
    size_t active = 0;
    std::exception_ptr error;
  };
  auto state = std::make_shared<State>();
  const std::function<void(size_t)>* body = &fn;
  auto work = [state, count](const std::function<void(size_t)>& f) {
    while (!state->failed.load()) {
      size_t i = state->next.fetch_add(1);
      if (i >= count) break;
      try {
        f(i);
      } catch (...) {
        std::lock_guard lock(state->mu);
        if (!state->error) state->error = std::current_exception();
        state->failed = true;
      }
    }
  };
  const size_t helpers = std::min(pool.size(), count - 1);
  for (size_t h = 0; h < helpers; ++h) {
    pool.Schedule([state, work, body] {
      {
        std::lock_guard lock(state->mu);
        if (state->closed) return;  // the loop is over; `body` may no longer exist
        ++state->active;
      }
      work(*body);
      std::lock_guard lock(state->mu);
      if (--state->active == 0) state->cv.notify_all();
    });
  }
  work(fn);
  std::unique_lock lock(state->mu);
  state->closed = true;
  state->cv.wait(lock, [&] { return state->active == 0; });
  // Taken out of the state (under the lock): a helper still queued may hold the state last, and the exception must
  // not be released on its thread while this one uses it (exception_ptr's count is invisible to ThreadSanitizer).
  std::exception_ptr error = std::move(state->error);
  state->error = nullptr;
  lock.unlock();
  if (error) std::rethrow_exception(error);
}

}  // namespace cairn
