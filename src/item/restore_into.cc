#include "item/restore_into.h"

#include <cstring>

#include "cairn/error.h"
#include "core/box_copy.h"
#include "zarr/zarr_array.h"

namespace cairn::item {
namespace {

void CheckArray(const std::string& what, const Array& array, const Shape& shape, const RestoreArgs& args) {
  if (!array.writable()) {
    throw InvalidArgumentError(what + ": fill_target needs a writable target array (one cairn owns, or "
                               "Array::FromBorrowedWritable over your memory; a numpy array with writeable=True "
                               "and C order); this one is read-only");
  }
  if (array.shape() != shape) {
    throw InvalidArgumentError(what + ": fill_target needs a target of the stored shape " + ShapeToString(shape) +
                               " but the target array has shape " + ShapeToString(array.shape()));
  }
  if (args.dtype && *args.dtype != array.dtype()) {
    throw InvalidArgumentError(what + ": fill_target fills the target in its own dtype " +
                               std::string(DTypeName(array.dtype())) + ", but the restore args ask for " +
                               std::string(DTypeName(*args.dtype)));
  }
}

}  // namespace

bool WantsFill(const RestoreArgs* args, const Tree& target) {
  return args && args->fill_target && (target.is_array() || target.is_sharded_array());
}

void CheckFillTarget(const std::string& param, const Tree& target, const Shape& stored_shape, const RestoreArgs& args) {
  const std::string what = "parameter " + param;
  if (target.is_array()) {
    CheckArray(what, target.array(), stored_shape, args);
    return;
  }
  const ShardedArray& sharded = target.sharded_array();
  if (sharded.global_shape() != stored_shape) {
    throw InvalidArgumentError(what + ": fill_target needs a target of the stored shape " +
                               ShapeToString(stored_shape) + " but the target's global shape is " +
                               ShapeToString(sharded.global_shape()));
  }
  for (const Shard& shard : sharded.shards()) CheckArray(what + ", box " + shard.box.ToString(), shard.data,
                                                         shard.box.shape, args);
}

Tree FillTarget(kvstore::KvStore& store, const std::string& param, const zarr::ZarrMetadata& metadata,
                const Tree& target) {
  if (target.is_array()) {
    Array out = target.array();  // shares the target's bytes
    zarr::ReadZarrRegionInto(store, param, metadata, Shape(out.shape().size(), 0), out.shape(), out);
    return Tree(std::move(out));
  }
  const ShardedArray& sharded = target.sharded_array();
  std::vector<Shard> shards = sharded.shards();
  for (Shard& shard : shards) zarr::ReadZarrRegionInto(store, param, metadata, shard.box.origin, shard.box.shape,
                                                       shard.data);
  return Tree(ShardedArray(sharded.dtype(), sharded.global_shape(), std::move(shards), sharded.sharding()));
}

Tree FillTargetFromHeld(const Array& held, const Tree& target) {
  auto fill = [&](const Box& box, Array& out) {
    const Array cast = held.dtype() == out.dtype() ? held : held.Cast(out.dtype());
    CopyBox(cast.bytes().data(), cast.shape(), box.origin, out.mutable_bytes().data(), out.shape(),
            Shape(out.shape().size(), 0), out.shape(), ItemSize(out.dtype()));
  };
  if (target.is_array()) {
    Array out = target.array();
    fill(Box::All(out.shape()), out);
    return Tree(std::move(out));
  }
  const ShardedArray& sharded = target.sharded_array();
  std::vector<Shard> shards = sharded.shards();
  for (Shard& shard : shards) fill(shard.box, shard.data);
  return Tree(ShardedArray(sharded.dtype(), sharded.global_shape(), std::move(shards), sharded.sharding()));
}

}  // namespace cairn::item
