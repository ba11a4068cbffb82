// How a save reads the arrays of an asynchronous save's snapshot when their bytes are still the caller's pages.
//
// An asynchronous save may snapshot an owned array without copying it (checkpoint/cow_snapshot.h): the caller's
// pages are write-protected and a page is copied only when the caller writes it. The writer must then read such an
// array only inside a SnapshotRead: while it exists, the array's pages are the snapshot's (the caller's writes
// wait), or it hands out a copy assembled from the pages the caller had already changed. Outside a snapshot (a
// synchronous save, a staged array) a SnapshotRead is a lookup in an empty registry and changes nothing.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>

#include "cairn/array.h"

namespace cairn {

// One array whose bytes a copy-on-write snapshot still shares with the caller.
class SnapshotRegion {
 public:
  virtual ~SnapshotRegion() = default;
  // Called before the bytes are read: returns an array holding the snapshot's bytes when they are no longer all
  // in place (the caller changed some pages), or nullopt when the bytes in place are the snapshot's until
  // EndRead. A region is read once.
  virtual std::optional<Array> BeginRead() = 0;
  virtual void EndRead() = 0;
};

// Makes `region` the one to consult for arrays whose bytes start at `data` (until UnregisterSnapshotRegion).
void RegisterSnapshotRegion(const std::byte* data, SnapshotRegion* region);
void UnregisterSnapshotRegion(const std::byte* data);

// Scope in which `array()` may be read: `array` itself, or the snapshot's copy of it.
class SnapshotRead {
 public:
  explicit SnapshotRead(const Array& array);
  ~SnapshotRead();
  SnapshotRead(const SnapshotRead&) = delete;
  SnapshotRead& operator=(const SnapshotRead&) = delete;

  const Array& array() const { return copy_ ? *copy_ : array_; }

 private:
  const Array& array_;
  SnapshotRegion* region_ = nullptr;
  std::optional<Array> copy_;
};

}  // namespace cairn
