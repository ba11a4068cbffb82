// Staging buffers for asynchronous saves, reused from one save to the next.
//
// The bytes of arrays the caller owns or lends are copied into staging buffers before save() returns. Fresh
// memory costs a page fault per 4 KiB on first touch, which would make that copy several times slower than a
// plain memcpy; a training loop saves the same shapes again and again, so buffers released by one save are kept
// and handed to the next.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <mutex>

namespace cairn::checkpoint {

class StagingPool {
 public:
  // Keeps at most `max_cached_bytes` of released buffers.
  explicit StagingPool(size_t max_cached_bytes = size_t{64} << 30);
  ~StagingPool();

  // A buffer of exactly `bytes` bytes. When its last reference is dropped it goes back to the pool (even if the
  // pool is gone by then, in which case it is freed). When none of that size is cached, cached buffers worth at
  // least `bytes` are freed first, so a state that changes shape does not pile up stale buffers.
  std::shared_ptr<std::byte[]> Acquire(size_t bytes);
  // Frees every cached buffer.
  void Clear();
  size_t cached_bytes() const;

 private:
  struct Shared;
  std::shared_ptr<Shared> shared_;
};

}  // namespace cairn::checkpoint
