#include "checkpoint/snapshot.h"

#include <cstring>

#include "core/thread_pool.h"

namespace cairn::checkpoint {
namespace {

// Copy pieces: big enough to amortise scheduling, small enough to spread one large array over every thread.
constexpr size_t kPieceBytes = size_t{16} << 20;

struct CopyJob {
  const std::byte* src;
  std::byte* dst;
  size_t bytes;
};

}  // namespace

Tree SnapshotTree(const Tree& tree, StagingPool& pool, CowSnapshot* cow) {
  std::vector<CopyJob> jobs;
  // `array` itself when it is shared (immutable); its write-protected view when copy-on-write takes it; else a
  // staging buffer its bytes will be copied into below.
  auto staged = [&](const Array& array) -> Array {
    if (array.ownership() == Ownership::kShared) return array;
    if (cow) {
      if (auto view = cow->Protect(array)) return *std::move(view);
    }
    auto buffer = pool.Acquire(array.num_bytes());
    for (size_t offset = 0; offset < array.num_bytes(); offset += kPieceBytes) {
      jobs.push_back({array.bytes().data() + offset, buffer.get() + offset,
                      std::min(kPieceBytes, array.num_bytes() - offset)});
    }
    return Array::FromShared(std::shared_ptr<const void>(buffer, buffer.get()), array.dtype(), array.shape());
  };
  Tree snapshot = tree.Map([&](const KeyPath&, const Tree& leaf) -> Tree {
    if (leaf.is_array()) return staged(leaf.array());
    if (leaf.is_sharded_array()) {
      // A process's shards are the caller's buffers too (borrowed, or owned and writable): staged the same way.
      const ShardedArray& sharded = leaf.sharded_array();
      std::vector<Shard> shards;
      shards.reserve(sharded.shards().size());
      for (const Shard& shard : sharded.shards()) shards.push_back({shard.box, shard.replica_id, staged(shard.data)});
      return Tree(ShardedArray(sharded.dtype(), sharded.global_shape(), std::move(shards), sharded.sharding()));
    }
    return leaf;
  });
  ParallelFor(jobs.size(), [&](size_t i) { std::memcpy(jobs[i].dst, jobs[i].src, jobs[i].bytes); });
  return snapshot;
}

std::unique_ptr<CheckpointArgs> SnapshotArgs(const CheckpointArgs& args, StagingPool& pool, CowSnapshot* cow) {
  if (const auto* a = dynamic_cast<const args::StandardSave*>(&args)) {
    return std::make_unique<args::StandardSave>(SnapshotTree(a->item, pool, cow), a->save_args, a->custom_metadata);
  }
  if (const auto* a = dynamic_cast<const args::PyTreeSave*>(&args)) {
    return std::make_unique<args::PyTreeSave>(SnapshotTree(a->item, pool, cow), a->save_args,
                                              a->ocdbt_target_data_file_size, a->custom_metadata);
  }
  if (const auto* a = dynamic_cast<const args::ArraySave*>(&args)) {
    return std::make_unique<args::ArraySave>(SnapshotTree(Tree(a->item), pool, cow).array(), a->save_args);
  }
  if (const auto* a = dynamic_cast<const args::Composite*>(&args)) {
    auto out = std::make_unique<args::Composite>();
    for (const auto& [item, item_args] : a->items()) {
      out->set(item, std::shared_ptr<const CheckpointArgs>(SnapshotArgs(*item_args, pool, cow)));
    }
    return out;
  }
  return args.Clone();  // JSON and other argument types hold no caller-owned buffers
}

}  // namespace cairn::checkpoint
