// Arrays split across processes: index boxes, shards, JAX's NamedSharding over a mesh of processes, and the
// sharded arrays a process saves and restores.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cairn/array.h"

namespace cairn {

// The box [origin, origin + shape) of a global array.
struct Box {
  Shape origin;
  Shape shape;
  friend bool operator==(const Box&, const Box&) = default;
  std::string ToString() const;  // "[0:4, 2:6]"
  // The whole of an array of `global_shape`.
  static Box All(const Shape& global_shape);
};

// JAX's NamedSharding, with processes as the devices of the mesh: process p sits at the mesh coordinate
// given by unravelling p over `mesh_shape` (C order). `partition_spec[d]` lists the mesh axes array dimension d
// is split over (none: not split). Mesh axes no dimension is split over replicate the array.
struct NamedSharding {
  Shape mesh_shape;
  std::vector<std::string> axis_names;
  std::vector<std::vector<std::string>> partition_spec;

  int num_processes() const;
  // The box process `process` holds of an array of `global_shape`; InvalidArgumentError when a split dimension
  // is not divisible by its mesh axes, or the spec names an unknown axis.
  Box BoxFor(const Shape& global_shape, int process) const;
  // 0 for the process that writes its box; 1, 2, ... for the other copies of the same box.
  int ReplicaIdFor(int process) const;
  // Orbax's `_sharding` value for it (json.dumps of sharding_type, shape, axis_names, partition_spec,
  // device_mesh with process indices as device ids).
  std::string ToOrbaxJson() const;
  static NamedSharding FromOrbaxJson(const nlohmann::json& json);
  friend bool operator==(const NamedSharding&, const NamedSharding&) = default;
};

// One process's piece of a global array: its box, which copy of that box it is, and the bytes.
struct Shard {
  Box box;
  int replica_id = 0;
  Array data;
  friend bool operator==(const Shard&, const Shard&) = default;
};

// A global array of which this process holds some shards. Saving writes each box once (its replica 0), each
// process into its own files; restoring fills the boxes a process asks for.
class ShardedArray {
 public:
  // Checks that every shard lies inside the global shape, has the box's shape and the array's dtype.
  ShardedArray(DType dtype, Shape global_shape, std::vector<Shard> shards,
               std::optional<NamedSharding> sharding = std::nullopt);
  // This process's shard of `global` (the whole array, present on every process) under `sharding`.
  static ShardedArray FromGlobal(const Array& global, const NamedSharding& sharding, int process);

  DType dtype() const { return dtype_; }
  const Shape& global_shape() const { return global_shape_; }
  const std::vector<Shard>& shards() const { return shards_; }
  const std::optional<NamedSharding>& sharding() const { return sharding_; }

  friend bool operator==(const ShardedArray&, const ShardedArray&) = default;

 private:
  DType dtype_;
  Shape global_shape_;
  std::vector<Shard> shards_;
  std::optional<NamedSharding> sharding_;
};

// A restore target: the boxes of a global array this process wants, in `dtype`. Any boxes, whatever layout the
// checkpoint was saved with; only the chunks that overlap them are read.
struct ShardedArraySpec {
  DType dtype = DType::kFloat32;
  Shape global_shape;
  std::vector<Box> boxes;
  // The boxes `sharding` gives process `process`.
  static ShardedArraySpec ForProcess(DType dtype, Shape global_shape, const NamedSharding& sharding, int process);
  friend bool operator==(const ShardedArraySpec&, const ShardedArraySpec&) = default;
};

}  // namespace cairn
