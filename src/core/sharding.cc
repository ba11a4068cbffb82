#include "cairn/sharding.h"

#include <algorithm>

#include "cairn/error.h"
#include "core/box_copy.h"

namespace cairn {
namespace {

// Process `process`'s coordinate along each mesh axis (C order over mesh_shape).
std::vector<int64_t> MeshCoordinate(const Shape& mesh_shape, int process) {
  std::vector<int64_t> coordinate(mesh_shape.size());
  int64_t rest = process;
  for (size_t a = mesh_shape.size(); a-- > 0;) {
    coordinate[a] = rest % mesh_shape[a];
    rest /= mesh_shape[a];
  }
  return coordinate;
}

size_t AxisIndex(const NamedSharding& sharding, const std::string& name) {
  auto it = std::find(sharding.axis_names.begin(), sharding.axis_names.end(), name);
  if (it == sharding.axis_names.end()) {
    throw InvalidArgumentError("partition spec names mesh axis '" + name + "', which the mesh does not have");
  }
  return static_cast<size_t>(it - sharding.axis_names.begin());
}

void CheckSharding(const NamedSharding& sharding) {
  if (sharding.mesh_shape.size() != sharding.axis_names.size()) {
    throw InvalidArgumentError("NamedSharding: mesh shape " + ShapeToString(sharding.mesh_shape) + " and " +
                               std::to_string(sharding.axis_names.size()) + " axis names do not match");
  }
  for (int64_t size : sharding.mesh_shape) {
    if (size <= 0) throw InvalidArgumentError("NamedSharding: mesh shape " + ShapeToString(sharding.mesh_shape));
  }
}

}  // namespace

std::string Box::ToString() const {
  std::string out = "[";
  for (size_t d = 0; d < shape.size(); ++d) {
    if (d) out += ", ";
    out += std::to_string(origin[d]) + ":" + std::to_string(origin[d] + shape[d]);
  }
  return out + "]";
}

Box Box::All(const Shape& global_shape) { return Box{Shape(global_shape.size(), 0), global_shape}; }

int NamedSharding::num_processes() const {
  CheckSharding(*this);
  return static_cast<int>(NumElements(mesh_shape));
}

Box NamedSharding::BoxFor(const Shape& global_shape, int process) const {
  CheckSharding(*this);
  if (process < 0 || process >= num_processes()) {
    throw InvalidArgumentError("process " + std::to_string(process) + " is not in a mesh of " +
                               std::to_string(num_processes()));
  }
  if (partition_spec.size() > global_shape.size()) {
    throw InvalidArgumentError("partition spec has " + std::to_string(partition_spec.size()) +
                               " entries for a rank-" + std::to_string(global_shape.size()) + " array");
  }
  const auto coordinate = MeshCoordinate(mesh_shape, process);
  Box box = Box::All(global_shape);
  for (size_t d = 0; d < partition_spec.size(); ++d) {
    int64_t parts = 1, index = 0;
    for (const auto& axis : partition_spec[d]) {
      size_t a = AxisIndex(*this, axis);
      index = index * mesh_shape[a] + coordinate[a];
      parts *= mesh_shape[a];
    }
    if (global_shape[d] % parts != 0) {
      throw InvalidArgumentError("dimension " + std::to_string(d) + " of shape " + ShapeToString(global_shape) +
                                 " does not divide into " + std::to_string(parts) + " parts");
    }
    box.shape[d] = global_shape[d] / parts;
    box.origin[d] = index * box.shape[d];
  }
  return box;
}

int NamedSharding::ReplicaIdFor(int process) const {
  CheckSharding(*this);
  std::vector<bool> used(mesh_shape.size(), false);
  for (const auto& axes : partition_spec) {
    for (const auto& axis : axes) used[AxisIndex(*this, axis)] = true;
  }
  const auto coordinate = MeshCoordinate(mesh_shape, process);
  int64_t replica = 0;
  for (size_t a = 0; a < mesh_shape.size(); ++a) {
    if (!used[a]) replica = replica * mesh_shape[a] + coordinate[a];
  }
  return static_cast<int>(replica);
}

std::string NamedSharding::ToOrbaxJson() const {
  CheckSharding(*this);
  nlohmann::ordered_json doc;
  doc["sharding_type"] = "NamedSharding";
  doc["shape"] = mesh_shape;
  doc["axis_names"] = axis_names;
  nlohmann::ordered_json spec = nlohmann::ordered_json::array();
  for (const auto& axes : partition_spec) {
    if (axes.empty()) spec.push_back(nullptr);
    else if (axes.size() == 1) spec.push_back(axes[0]);
    else spec.push_back(axes);
  }
  doc["partition_spec"] = spec;
  // The device mesh: nested lists over mesh_shape of {"id": process}.
  std::function<nlohmann::ordered_json(size_t, int64_t)> level = [&](size_t axis, int64_t base) {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (int64_t i = 0; i < mesh_shape[axis]; ++i) {
      int64_t id = base * mesh_shape[axis] + i;
      out.push_back(axis + 1 == mesh_shape.size() ? nlohmann::ordered_json{{"id", id}} : level(axis + 1, id));
    }
    return out;
  };
  doc["device_mesh"] = {{"mesh", mesh_shape.empty() ? nlohmann::ordered_json::array() : level(0, 0)}};
  // json.dumps' separators, as Orbax writes it.
  std::string text = doc.dump();
  std::string out;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    out += c;
    if (c == '"' && (i == 0 || text[i - 1] != '\\')) in_string = !in_string;
    if (!in_string && (c == ',' || c == ':')) out += ' ';
  }
  return out;
}

// A function-try-block: nlohmann::json's accessors throw its own exceptions (type_error) when a field has an
// unexpected type, which is an invalid sharding like any other.
NamedSharding NamedSharding::FromOrbaxJson(const nlohmann::json& json) try {
  if (!json.is_object() || json.value("sharding_type", "") != "NamedSharding" || !json.contains("shape") ||
      !json.contains("axis_names") || !json.contains("partition_spec")) {
    throw InvalidArgumentError("not a NamedSharding: " + json.dump());
  }
  NamedSharding sharding;
  for (const auto& dim : json["shape"]) {
    // get<int64_t>() of a float such as 1e300 would be undefined behaviour.
    if (!dim.is_number_integer()) throw InvalidArgumentError("NamedSharding: mesh shape " + json["shape"].dump());
    sharding.mesh_shape.push_back(dim.get<int64_t>());
  }
  for (const auto& name : json["axis_names"]) sharding.axis_names.push_back(name.get<std::string>());
  for (const auto& entry : json["partition_spec"]) {
    std::vector<std::string> axes;
    if (entry.is_string()) axes.push_back(entry.get<std::string>());
    else if (entry.is_array()) for (const auto& axis : entry) axes.push_back(axis.get<std::string>());
    sharding.partition_spec.push_back(std::move(axes));
  }
  CheckSharding(sharding);
  return sharding;
} catch (const nlohmann::json::exception& e) {
  throw InvalidArgumentError(std::string("not a NamedSharding: ") + e.what());
}

ShardedArray::ShardedArray(DType dtype, Shape global_shape, std::vector<Shard> shards,
                           std::optional<NamedSharding> sharding)
    : dtype_(dtype), global_shape_(std::move(global_shape)), shards_(std::move(shards)), sharding_(std::move(sharding)) {
  NumBytes(dtype_, global_shape_);
  for (const auto& shard : shards_) {
    const Box& box = shard.box;
    bool inside = box.origin.size() == global_shape_.size() && box.shape.size() == global_shape_.size();
    for (size_t d = 0; inside && d < global_shape_.size(); ++d) {
      inside = box.origin[d] >= 0 && box.shape[d] >= 0 && box.origin[d] + box.shape[d] <= global_shape_[d];
    }
    if (!inside) {
      throw InvalidArgumentError("shard box " + box.ToString() + " is not inside global shape " +
                                 ShapeToString(global_shape_));
    }
    if (shard.data.shape() != box.shape || shard.data.dtype() != dtype_) {
      throw InvalidArgumentError("shard at " + box.ToString() + " holds " + std::string(DTypeName(shard.data.dtype())) +
                                 ShapeToString(shard.data.shape()) + ", expected " + std::string(DTypeName(dtype_)) +
                                 ShapeToString(box.shape));
    }
    if (shard.replica_id < 0) throw InvalidArgumentError("negative replica id");
  }
}

ShardedArray ShardedArray::FromGlobal(const Array& global, const NamedSharding& sharding, int process) {
  Box box = sharding.BoxFor(global.shape(), process);
  Array data = Array::Allocate(global.dtype(), box.shape);
  CopyBox(global.bytes().data(), global.shape(), box.origin, data.mutable_bytes().data(), box.shape,
                Shape(box.shape.size(), 0), box.shape, ItemSize(global.dtype()));
  return ShardedArray(global.dtype(), global.shape(), {Shard{box, sharding.ReplicaIdFor(process), std::move(data)}},
                      sharding);
}

ShardedArraySpec ShardedArraySpec::ForProcess(DType dtype, Shape global_shape, const NamedSharding& sharding,
                                              int process) {
  Box box = sharding.BoxFor(global_shape, process);
  return ShardedArraySpec{dtype, std::move(global_shape), {std::move(box)}};
}

}  // namespace cairn
