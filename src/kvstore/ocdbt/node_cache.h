// A least-recently-used cache of decoded B+tree nodes, bounded by an estimate of their memory. A restore reads many
// values below the same few nodes; without it every point lookup would re-read and re-decode each node on its path
// (with Orbax's 100 MB node limit, a leaf can be large). Thread-safe.
#pragma once

#include <cstddef>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "kvstore/ocdbt/btree_node.h"

namespace cairn::kvstore::ocdbt {

class NodeCache {
 public:
  explicit NodeCache(size_t capacity_bytes) : capacity_(capacity_bytes) {}

  std::shared_ptr<const BtreeNode> Get(const std::string& key);
  // A node larger than the whole capacity is not kept.
  void Put(const std::string& key, std::shared_ptr<const BtreeNode> node);

  // Approximate heap use of a decoded node.
  static size_t EstimateBytes(const BtreeNode& node);

 private:
  struct Slot {
    std::shared_ptr<const BtreeNode> node;
    size_t bytes;
    std::list<std::string>::iterator position;
  };

  const size_t capacity_;
  std::mutex mu_;
  std::list<std::string> recency_;  // most recently used first
  std::unordered_map<std::string, Slot> slots_;
  size_t used_ = 0;
};

}  // namespace cairn::kvstore::ocdbt
