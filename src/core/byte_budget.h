// A bound on bytes in flight (Orbax's save_concurrent_gb / restore_concurrent_gb): work that needs more than
// what is left waits until enough is released. A single request larger than the whole budget still runs, alone,
// so nothing can wait forever.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace cairn {

class ByteBudget {
 public:
  explicit ByteBudget(uint64_t bytes) : capacity_(bytes) {}

  void Acquire(uint64_t bytes) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return in_flight_ == 0 || in_flight_ + bytes <= capacity_; });
    in_flight_ += bytes;
  }
  void Release(uint64_t bytes) {
    {
      std::lock_guard lock(mu_);
      in_flight_ -= bytes;
    }
    cv_.notify_all();
  }

  // Holds `bytes` of the budget for its lifetime.
  class Hold {
   public:
    Hold(ByteBudget& budget, uint64_t bytes) : budget_(budget), bytes_(bytes) { budget_.Acquire(bytes_); }
    ~Hold() { budget_.Release(bytes_); }
    Hold(const Hold&) = delete;
    Hold& operator=(const Hold&) = delete;

   private:
    ByteBudget& budget_;
    uint64_t bytes_;
  };

 private:
  const uint64_t capacity_;
  uint64_t in_flight_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
};

}  // namespace cairn
