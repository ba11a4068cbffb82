#include "kvstore/ocdbt/node_cache.h"

namespace cairn::kvstore::ocdbt {

size_t NodeCache::EstimateBytes(const BtreeNode& node) {
  size_t bytes = sizeof(BtreeNode);
  for (const auto& e : node.leaf_entries) {
    bytes += sizeof(LeafEntry) + e.key.capacity();
    if (auto* value = std::get_if<std::string>(&e.value)) {
      bytes += value->capacity();
    } else {
      const auto& ref = std::get<IndirectRef>(e.value);
      bytes += ref.file.base_path.capacity() + ref.file.relative_path.capacity();
    }
  }
  for (const auto& e : node.interior_entries) {
    bytes += sizeof(InteriorEntry) + e.key.capacity() + e.child.file.base_path.capacity() +
             e.child.file.relative_path.capacity();
  }
  return bytes;
}

std::shared_ptr<const BtreeNode> NodeCache::Get(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = slots_.find(key);
  if (it == slots_.end()) return nullptr;
  recency_.splice(recency_.begin(), recency_, it->second.position);
  return it->second.node;
}

void NodeCache::Put(const std::string& key, std::shared_ptr<const BtreeNode> node) {
  const size_t bytes = EstimateBytes(*node);
  if (bytes > capacity_) return;
  std::lock_guard lock(mu_);
  if (slots_.count(key)) return;  // another reader got here first; either copy is the same node
  recency_.push_front(key);
  slots_.emplace(key, Slot{std::move(node), bytes, recency_.begin()});
  used_ += bytes;
  while (used_ > capacity_) {
    auto victim = slots_.find(recency_.back());
    used_ -= victim->second.bytes;
    slots_.erase(victim);
    recency_.pop_back();
  }
}

}  // namespace cairn::kvstore::ocdbt
