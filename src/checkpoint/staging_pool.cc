#include "checkpoint/staging_pool.h"

namespace cairn::checkpoint {

struct StagingPool::Shared {
  explicit Shared(size_t max) : max_cached_bytes(max) {}
  std::mutex mu;
  std::multimap<size_t, std::byte*> free_buffers;  // by size
  size_t cached_bytes = 0;
  size_t max_cached_bytes;
  bool closed = false;

  void Release(std::byte* buffer, size_t bytes) {
    {
      std::lock_guard lock(mu);
      if (!closed && cached_bytes + bytes <= max_cached_bytes) {
        free_buffers.emplace(bytes, buffer);
        cached_bytes += bytes;
        return;
      }
    }
    delete[] buffer;
  }
  void FreeAll() {
    for (auto& [bytes, buffer] : free_buffers) delete[] buffer;
    free_buffers.clear();
    cached_bytes = 0;
  }
};

StagingPool::StagingPool(size_t max_cached_bytes) : shared_(std::make_shared<Shared>(max_cached_bytes)) {}

StagingPool::~StagingPool() {
  std::lock_guard lock(shared_->mu);
  shared_->closed = true;
  shared_->FreeAll();
}

std::shared_ptr<std::byte[]> StagingPool::Acquire(size_t bytes) {
  std::byte* buffer = nullptr;
  {
    std::lock_guard lock(shared_->mu);
    auto it = shared_->free_buffers.find(bytes);
    if (it != shared_->free_buffers.end()) {
      buffer = it->second;
      shared_->free_buffers.erase(it);
      shared_->cached_bytes -= bytes;
    } else {
      // A size no cached buffer has (the state changed shape): free cached buffers worth as much as the new one
      // first, largest first, so that cached plus staged bytes never exceed the larger of this save's state and
      // the previous one's (the bound docs/reliability.md states for staging).
      size_t freed = 0;
      while (freed < bytes && !shared_->free_buffers.empty()) {
        auto largest = std::prev(shared_->free_buffers.end());
        freed += largest->first;
        shared_->cached_bytes -= largest->first;
        delete[] largest->second;
        shared_->free_buffers.erase(largest);
      }
    }
  }
  if (!buffer) buffer = new std::byte[bytes == 0 ? 1 : bytes];
  std::weak_ptr<Shared> pool = shared_;
  return std::shared_ptr<std::byte[]>(buffer, [pool, bytes](std::byte* p) {
    if (auto shared = pool.lock()) {
      shared->Release(p, bytes);
    } else {
      delete[] p;
    }
  });
}

void StagingPool::Clear() {
  std::lock_guard lock(shared_->mu);
  shared_->FreeAll();
}

size_t StagingPool::cached_bytes() const {
  std::lock_guard lock(shared_->mu);
  return shared_->cached_bytes;
}

}  // namespace cairn::checkpoint
