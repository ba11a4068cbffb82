// The C++ side of the Orbax compatibility suite (tests/interop/orbax/*.py), so that what Orbax writes is read, and
// what Orbax reads is written, by cairn's C++ API itself and not only through the Python module.
//
//   cairn_orbax_interop dump <dir> <out> [--item NAME] [--composite]
//       Restores <dir> (a PyTree item directory; --item: the item NAME of a step; --composite: the Composite
//       handler without arguments) and writes every leaf to <out>: arrays as raw bytes, and <out>/index.json with
//       {"leaves": {param: {kind, dtype, shape, file | value}}, "metadata": {param: {dtype, shape}}}.
//   mpirun -n N cairn_orbax_interop mpi-restore <dir> <out>
//       Each of N MPI processes restores its rows of every array of <dir> (rows split over the N processes where
//       they divide, else the whole array), and writes them to <out>/rank<r>.<param>.bin with
//       <out>/rank<r>.json = {param: {dtype, global_shape, origin, shape, file}}.
//   mpirun -n N cairn_orbax_interop mpi-save <dir> [save flags]
//       N MPI processes save conftest's sharded_tree(): every dtype as an (8, 6) array, rows split over the N
//       processes, plus a replicated one; each process writes only its rows.
//   cairn_orbax_interop save <dir> [--no-ocdbt] [--zarr3] [--no-compression] [--chunk-bytes N]
//       [--data-file-bytes N] [--standard]
//       Saves the matrix tree (conftest.py's matrix_tree(): every dtype, 0-d, empty and multi-chunk arrays,
//       scalars, a string, None and empty containers) with the given layout.
// Exit 0 on success; an error prints "CAIRN-ORBAX-INTEROP FAIL <code>: <message>" and exits 1.
#include <cairn/cairn.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace {

using cairn::Array, cairn::DType, cairn::Tree;
using nlohmann::json;

// conftest.py's pattern(): byte b of the array is (b * 167 + 13) % 251; bool elements are i % 3 == 0.
Array Pattern(DType dtype, cairn::Shape shape) {
  Array out = Array::Allocate(dtype, std::move(shape));
  auto bytes = out.mutable_bytes();
  for (size_t b = 0; b < bytes.size(); ++b) {
    bytes[b] = dtype == DType::kBool ? std::byte(b % 3 == 0) : std::byte((b * 167 + 13) % 251);
  }
  return out;
}

const DType kAllDTypes[] = {DType::kBool,    DType::kInt8,      DType::kInt16,        DType::kInt32,
                            DType::kInt64,   DType::kUInt8,     DType::kUInt16,       DType::kUInt32,
                            DType::kUInt64,  DType::kFloat16,   DType::kBFloat16,     DType::kFloat32,
                            DType::kFloat64, DType::kComplex64, DType::kComplex128,   DType::kFloat8E4M3FN,
                            DType::kFloat8E5M2};

// conftest's sharded_tree(), process `rank`'s part of it.
Tree ShardedTree(int rank, int n) {
  const cairn::NamedSharding rows{{n}, {"p"}, {{"p"}}};
  const cairn::NamedSharding replicated{{n}, {"p"}, {}};
  std::vector<Tree::Item> items;
  for (DType d : kAllDTypes) {
    items.emplace_back(std::string(cairn::DTypeName(d)), cairn::ShardedArray::FromGlobal(Pattern(d, {8, 6}), rows, rank));
  }
  items.emplace_back("replicated", cairn::ShardedArray::FromGlobal(Pattern(DType::kFloat32, {3, 5}), replicated, rank));
  return Tree::Dict(items);
}

// conftest.py's matrix_tree(): keep the two in step.
Tree MatrixTree(bool standard) {
  std::vector<Tree::Item> dtypes;
  for (DType d : kAllDTypes) dtypes.emplace_back(std::string(cairn::DTypeName(d)), Pattern(d, {3, 5}));
  std::vector<Tree::Item> items = {
      {"dtypes", Tree::Dict(dtypes)},
      {"shapes", Tree::Dict({{"scalar", Pattern(DType::kFloat32, {})},
                             {"empty", Pattern(DType::kInt32, {0, 4})},
                             {"vector", Pattern(DType::kInt64, {7})},
                             {"big", Pattern(DType::kFloat32, {256, 1024})}})},
      {"scalars", Tree::Dict({{"int", Tree::Scalar(int64_t{7})}, {"float", Tree::Scalar(0.5)}})},
      {"layers", Tree::List({Pattern(DType::kUInt8, {4}), Pattern(DType::kFloat16, {2, 2})})},
  };
  if (!standard) {
    items.emplace_back("name", Tree::String("run-7"));
    items.emplace_back("nothing", Tree::None());
    items.emplace_back("empty_dict", Tree::Dict(std::vector<Tree::Item>{}));
    items.emplace_back("empty_list", Tree::List({}));
  }
  return Tree::Dict(items);
}

json Shape(const cairn::Shape& shape) {
  json out = json::array();
  for (int64_t d : shape) out.push_back(d);
  return out;
}

json ScalarJson(const Tree& leaf) {
  return std::visit([](auto v) { return json(v); }, leaf.scalar_value());
}

int Dump(const std::filesystem::path& dir, const std::filesystem::path& out, const std::string& item,
         bool composite) {
  Tree restored, metadata;
  if (composite) {
    cairn::CompositeCheckpointHandler handler;
    restored = handler.restore(cairn::HandlerDirectory(dir), nullptr);
    metadata = Tree::None();
  } else {
    cairn::PyTreeCheckpointHandler handler;
    const cairn::HandlerDirectory item_dir(item.empty() ? dir : dir / item);
    restored = handler.restore(item_dir, nullptr);
    metadata = handler.metadata(item_dir);
  }
  std::filesystem::create_directories(out);
  json index = {{"leaves", json::object()}, {"metadata", json::object()}};
  int n = 0;
  for (const auto& [path, leaf] : restored.Flatten(/*include_empty_nodes=*/true)) {
    const std::string param = cairn::ParamName(path);
    json entry;
    if (leaf.is_array()) {
      const Array& a = leaf.array();
      std::string file = "leaf_" + std::to_string(n++) + ".bin";
      std::ofstream(out / file, std::ios::binary)
          .write(reinterpret_cast<const char*>(a.bytes().data()), static_cast<std::streamsize>(a.num_bytes()));
      entry = {{"kind", "array"}, {"dtype", cairn::DTypeName(a.dtype())}, {"shape", Shape(a.shape())}, {"file", file}};
    } else if (leaf.is_scalar()) {
      entry = {{"kind", "scalar"}, {"value", ScalarJson(leaf)}};
    } else if (leaf.is_string()) {
      entry = {{"kind", "string"}, {"value", leaf.string()}};
    } else if (leaf.is_none()) {
      entry = {{"kind", "none"}, {"value", nullptr}};
    } else if (leaf.is_dict()) {
      entry = {{"kind", "empty_dict"}, {"value", json::object()}};
    } else if (leaf.is_sequence()) {
      entry = {{"kind", "empty_list"}, {"value", json::array()}};
    } else {
      entry = {{"kind", "other"}, {"value", leaf.ToString()}};
    }
    index["leaves"][param] = entry;
  }
  if (!metadata.is_none()) {
    for (const auto& [path, leaf] : metadata.Flatten()) {
      if (leaf.is_spec() || leaf.is_array()) {
        auto spec = leaf.array_spec();
        index["metadata"][cairn::ParamName(path)] = {{"dtype", cairn::DTypeName(spec.dtype)},
                                                     {"shape", Shape(spec.shape)}};
      }
    }
  }
  std::ofstream(out / "index.json") << index.dump(1) << "\n";
  return 0;
}

int MpiRestore(const std::filesystem::path& dir, const std::filesystem::path& out) {
  std::shared_ptr<cairn::ProcessGroup> group = cairn::MpiProcessGroup();
  const int rank = group->index();
  const int n = group->count();
  cairn::PyTreeCheckpointHandler reader;
  Tree metadata = reader.metadata(cairn::HandlerDirectory(dir));
  std::vector<std::pair<cairn::KeyPath, Tree>> targets;
  for (const auto& [path, leaf] : metadata.Flatten()) {
    if (!leaf.is_spec()) continue;
    const cairn::ArraySpec& spec = leaf.spec();
    const bool split = !spec.shape.empty() && spec.shape[0] % n == 0;
    cairn::NamedSharding rows{{n}, {"p"}, {}};
    if (split) rows.partition_spec = {{"p"}};
    targets.emplace_back(path, cairn::ShardedArraySpec::ForProcess(spec.dtype, spec.shape, rows, rank));
  }
  cairn::CheckpointerOptions options;
  options.multiprocessing_options.process_group = group;
  options.multiprocessing_options.barrier_timeout_secs = 120;
  cairn::Checkpointer ckptr(std::make_unique<cairn::PyTreeCheckpointHandler>(), options);
  Tree restored = ckptr.restore(dir, cairn::args::PyTreeRestore{Tree::FromFlat(targets), {}, /*partial_restore=*/true});
  std::filesystem::create_directories(out);
  json index = json::object();
  for (const auto& [path, leaf] : restored.Flatten()) {
    if (!leaf.is_sharded_array()) continue;
    const cairn::ShardedArray& array = leaf.sharded_array();
    const cairn::Shard& shard = array.shards().at(0);
    const std::string param = cairn::ParamName(path);
    const std::string file = "rank" + std::to_string(rank) + "." + param + ".bin";
    std::ofstream(out / file, std::ios::binary)
        .write(reinterpret_cast<const char*>(shard.data.bytes().data()),
               static_cast<std::streamsize>(shard.data.num_bytes()));
    index[param] = {{"dtype", cairn::DTypeName(array.dtype())}, {"global_shape", Shape(array.global_shape())},
                    {"origin", Shape(shard.box.origin)}, {"shape", Shape(shard.box.shape)}, {"file", file}};
  }
  std::ofstream(out / ("rank" + std::to_string(rank) + ".json")) << index.dump(1) << "\n";
  return 0;
}

int Save(const std::filesystem::path& dir, const std::vector<std::string>& flags, bool mpi) {
  cairn::PyTreeCheckpointHandlerOptions options;
  cairn::SaveArgs save_args;
  std::optional<int64_t> data_file_bytes;
  bool standard = false;
  for (size_t i = 0; i < flags.size(); ++i) {
    const std::string& f = flags[i];
    auto value = [&] {
      if (i + 1 >= flags.size()) throw cairn::InvalidArgumentError(f + " needs a value");
      return std::stoll(flags[++i]);
    };
    if (f == "--no-ocdbt") {
      options.use_ocdbt = false;
    } else if (f == "--zarr3") {
      options.use_zarr3 = true;
    } else if (f == "--no-compression") {
      options.use_compression = false;
    } else if (f == "--chunk-bytes") {
      save_args.chunk_byte_size = value();
    } else if (f == "--data-file-bytes") {
      data_file_bytes = value();
    } else if (f == "--standard") {
      standard = true;
    } else {
      throw cairn::InvalidArgumentError("unknown flag " + f);
    }
  }
  cairn::SaveOptions save_options{.force = true, .custom_metadata = {{"from", "cairn-c++"}}};
  if (mpi) {
    cairn::CheckpointerOptions checkpointer_options;
    checkpointer_options.multiprocessing_options.process_group = cairn::MpiProcessGroup();
    checkpointer_options.multiprocessing_options.barrier_timeout_secs = 120;
    const auto& group = *checkpointer_options.multiprocessing_options.process_group;
    Tree state = ShardedTree(group.index(), group.count());
    cairn::Checkpointer ckptr(std::make_unique<cairn::PyTreeCheckpointHandler>(options), checkpointer_options);
    cairn::args::PyTreeSave args{state, {{"", save_args}}};
    args.ocdbt_target_data_file_size = data_file_bytes;
    ckptr.save(dir, args, save_options);
  } else if (standard) {
    cairn::Checkpointer ckptr(std::make_unique<cairn::StandardCheckpointHandler>(options));
    ckptr.save(dir, cairn::args::StandardSave{MatrixTree(true), {{"", save_args}}}, save_options);
  } else {
    cairn::Checkpointer ckptr(std::make_unique<cairn::PyTreeCheckpointHandler>(options));
    cairn::args::PyTreeSave args{MatrixTree(false), {{"", save_args}}};
    args.ocdbt_target_data_file_size = data_file_bytes;
    ckptr.save(dir, args, save_options);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() < 2) {
    std::cerr << "usage: cairn_orbax_interop dump <dir> <out> [--item NAME] [--composite] | save <dir> [flags] | "
                 "mpi-restore <dir> <out> | mpi-save <dir> [flags]\n";
    return 2;
  }
  try {
    if (args[0] == "dump" && args.size() >= 3) {
      std::string item;
      bool composite = false;
      for (size_t i = 3; i < args.size(); ++i) {
        if (args[i] == "--item" && i + 1 < args.size()) {
          item = args[++i];
        } else if (args[i] == "--composite") {
          composite = true;
        } else {
          throw cairn::InvalidArgumentError("unknown flag " + args[i]);
        }
      }
      return Dump(args[1], args[2], item, composite);
    }
    if (args[0] == "save") return Save(args[1], {args.begin() + 2, args.end()}, /*mpi=*/false);
    if (args[0] == "mpi-save") return Save(args[1], {args.begin() + 2, args.end()}, /*mpi=*/true);
    if (args[0] == "mpi-restore" && args.size() == 3) return MpiRestore(args[1], args[2]);
    std::cerr << "unknown command " << args[0] << "\n";
    return 2;
  } catch (const cairn::Error& e) {
    std::cout << "CAIRN-ORBAX-INTEROP FAIL " << cairn::ErrorCodeName(e.code()) << ": " << e.what() << "\n";
    return 1;
  }
}
