// Copy-on-write snapshots of owned arrays for asynchronous saves (userfaultfd write-protection).
//
// The protocol (why it is correct is in cow_snapshot.cc, at the top) in one paragraph: save() write-protects the
// pages of each qualifying owned array and returns. A page the caller writes before the background writer has read
// its array is first copied into a shadow page by this snapshot's fault thread, then un-protected. The writer reads
// an array only inside core's SnapshotRead: with no shadow pages it reads the caller's pages in place while the
// caller's writes to them wait; with some, it reads a copy assembled from the caller's pages and the shadows.
// After the read, or when the snapshot is released (the save finished, failed, timed out or was abandoned), every
// page is un-protected and the fault thread is gone.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>

#include "cairn/array.h"

namespace cairn::checkpoint {

class CowSnapshot {
 public:
  // Null where copy-on-write is not available: no userfaultfd that can write-protect anonymous memory and also
  // serve the kernel's own writes (see cow_snapshot.cc), a ThreadSanitizer build, or CAIRN_ASYNC_SNAPSHOT=staging
  // in the environment. The caller then stages copies, as before.
  static std::unique_ptr<CowSnapshot> Create();
  ~CowSnapshot();  // Release()
  CowSnapshot(const CowSnapshot&) = delete;
  CowSnapshot& operator=(const CowSnapshot&) = delete;

  // The snapshot's view of `array` (the same bytes, now write-protected), or nullopt when `array` does not qualify
  // (not owned, small, not on whole pages of its own, not private anonymous memory, already protected here): stage
  // it instead.
  std::optional<Array> Protect(const Array& array);

  // Un-protects every page, forgets the regions and stops the fault thread. Idempotent. Must not run while a
  // writer is inside a SnapshotRead of this snapshot.
  void Release();

  size_t protected_bytes() const;
  size_t shadow_pages() const;  // pages the caller wrote before the writer had read them (copied)

 private:
  CowSnapshot() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cairn::checkpoint
