#include "core/snapshot_read.h"

#include <map>
#include <mutex>

namespace cairn {
namespace {

struct Registry {
  std::mutex mu;
  std::map<const std::byte*, SnapshotRegion*> regions;
};

Registry& TheRegistry() {
  static Registry* registry = new Registry;  // never destroyed: saves may still run while statics are torn down
  return *registry;
}

}  // namespace

void RegisterSnapshotRegion(const std::byte* data, SnapshotRegion* region) {
  Registry& r = TheRegistry();
  std::lock_guard lock(r.mu);
  r.regions[data] = region;
}

void UnregisterSnapshotRegion(const std::byte* data) {
  Registry& r = TheRegistry();
  std::lock_guard lock(r.mu);
  r.regions.erase(data);
}

SnapshotRead::SnapshotRead(const Array& array) : array_(array) {
  // A snapshot's arrays are shared views of the caller's bytes; the caller's own (owned) arrays are never looked up.
  if (array.num_bytes() == 0 || array.ownership() != Ownership::kShared) return;
  {
    Registry& r = TheRegistry();
    std::lock_guard lock(r.mu);
    if (r.regions.empty()) return;
    auto it = r.regions.find(array.bytes().data());
    if (it == r.regions.end()) return;
    region_ = it->second;
  }
  // The region outlives this read: the snapshot that registered it is held by the save that reads it, and
  // unregisters it only once that save's writes are over.
  copy_ = region_->BeginRead();
  if (copy_) region_ = nullptr;  // a copy needs no EndRead: the region is finished with
}

SnapshotRead::~SnapshotRead() {
  if (region_) region_->EndRead();
}

}  // namespace cairn
