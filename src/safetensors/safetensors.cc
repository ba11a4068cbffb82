// safetensors: header parsing with every bound checked before anything is allocated, loading into a Tree, and
// atomic writing through the FileSystem seam.
#include "cairn/safetensors.h"

#include <algorithm>
#include <limits>

#include <nlohmann/json.hpp>

#include "cairn/error.h"
#include "core/little_endian.h"
#include "metadata/python_json.h"

namespace cairn::safetensors {
namespace {

struct DTypeEntry {
  DType dtype;
  const char* name;
};
constexpr DTypeEntry kDTypes[] = {
    {DType::kBool, "BOOL"},        {DType::kUInt8, "U8"},         {DType::kInt8, "I8"},
    {DType::kInt16, "I16"},        {DType::kUInt16, "U16"},       {DType::kFloat16, "F16"},
    {DType::kBFloat16, "BF16"},    {DType::kInt32, "I32"},        {DType::kUInt32, "U32"},
    {DType::kFloat32, "F32"},      {DType::kFloat64, "F64"},      {DType::kInt64, "I64"},
    {DType::kUInt64, "U64"},       {DType::kFloat8E4M3FN, "F8_E4M3"}, {DType::kFloat8E5M2, "F8_E5M2"},
};

constexpr const char* kMetadataKey = "__metadata__";

// A JSON value that must be a non-negative integer that fits `max`.
uint64_t AsCount(const nlohmann::json& value, uint64_t max, const std::string& what) {
  if (!value.is_number_unsigned() && !(value.is_number_integer() && value.get<int64_t>() >= 0)) {
    throw CorruptionError(what + " is not a non-negative integer");
  }
  const uint64_t v = value.get<uint64_t>();
  if (v > max) throw CorruptionError(what + " is too large (" + std::to_string(v) + ")");
  return v;
}

TensorInfo ParseTensor(const std::string& name, const nlohmann::json& entry, const std::string& what) {
  const std::string where = what + ": tensor \"" + name + "\"";
  if (!entry.is_object()) throw CorruptionError(where + " is not a JSON object");
  TensorInfo info;
  info.name = name;
  auto dtype = entry.find("dtype");
  if (dtype == entry.end() || !dtype->is_string()) throw CorruptionError(where + " has no \"dtype\" string");
  try {
    info.dtype = DTypeFromSafetensors(dtype->get<std::string>());
  } catch (const UnimplementedError& e) {
    throw UnimplementedError(where + ": " + e.what());
  }
  auto shape = entry.find("shape");
  if (shape == entry.end() || !shape->is_array()) throw CorruptionError(where + " has no \"shape\" list");
  // Elements and bytes with overflow checks: a hostile shape must not wrap around to match a small size.
  uint64_t elements = 1;
  for (const auto& dim : *shape) {
    const uint64_t d = AsCount(dim, static_cast<uint64_t>(std::numeric_limits<int64_t>::max()), where + ": a dimension");
    info.shape.push_back(static_cast<int64_t>(d));
    if (__builtin_mul_overflow(elements, d, &elements)) throw CorruptionError(where + ": the shape's size overflows");
  }
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(elements, static_cast<uint64_t>(ItemSize(info.dtype)), &bytes)) {
    throw CorruptionError(where + ": the shape's byte size overflows");
  }
  auto offsets = entry.find("data_offsets");
  if (offsets == entry.end() || !offsets->is_array() || offsets->size() != 2) {
    throw CorruptionError(where + " has no \"data_offsets\" pair");
  }
  info.begin = AsCount((*offsets)[0], std::numeric_limits<uint64_t>::max(), where + ": data_offsets[0]");
  info.end = AsCount((*offsets)[1], std::numeric_limits<uint64_t>::max(), where + ": data_offsets[1]");
  if (info.end < info.begin) {
    throw CorruptionError(where + ": data_offsets [" + std::to_string(info.begin) + ", " + std::to_string(info.end) +
                          "] end before they begin");
  }
  if (info.end - info.begin != bytes) {
    throw CorruptionError(where + ": " + std::string(DTypeToSafetensors(info.dtype)) + ShapeToString(info.shape) +
                          " needs " + std::to_string(bytes) + " bytes but data_offsets [" +
                          std::to_string(info.begin) + ", " + std::to_string(info.end) + "] hold " +
                          std::to_string(info.end - info.begin));
  }
  return info;
}

// "a.b.c" -> dict keys a, b, c. Empty segments cannot come from a tree.
KeyPath NameToPath(const std::string& name, const std::string& what) {
  KeyPath path;
  size_t start = 0;
  while (true) {
    const size_t dot = name.find('.', start);
    std::string key = name.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (key.empty()) {
      throw InvalidArgumentError(what + ": tensor name \"" + name + "\" has an empty part between dots, so it cannot nest " +
                                 "into a tree (load with nest=false to keep the names flat)");
    }
    path.push_back({std::move(key), KeyType::kDict});
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return path;
}

Loaded BuildLoaded(const Header& header, std::vector<Array> arrays, const LoadOptions& options,
                   const std::string& what) {
  Loaded out;
  out.metadata = header.metadata;
  std::vector<std::pair<KeyPath, Tree>> leaves;
  leaves.reserve(arrays.size());
  for (size_t i = 0; i < arrays.size(); ++i) {
    KeyPath path = options.nest ? NameToPath(header.tensors[i].name, what)
                                : KeyPath{{header.tensors[i].name, KeyType::kDict}};
    leaves.emplace_back(std::move(path), Tree(std::move(arrays[i])));
  }
  // Sorted by name, so "a" comes before "a.b" and a conflict is reported about the pair.
  std::sort(leaves.begin(), leaves.end(), [](const auto& a, const auto& b) { return ParamName(a.first) < ParamName(b.first); });
  try {
    out.tree = Tree::FromFlat(leaves);
  } catch (const InvalidArgumentError& e) {
    throw InvalidArgumentError(what + ": the tensor names do not nest into a tree (" + e.what() +
                               "); load with nest=false to keep them flat");
  }
  return out;
}

struct Plan {
  std::vector<std::pair<std::string, Array>> tensors;
  std::string prefix;  // length + header
  uint64_t data_bytes = 0;
  std::vector<std::string> skipped;
};

Plan MakePlan(const Tree& tree, const SaveOptions& options) {
  Plan plan;
  for (const auto& [path, leaf] : tree.Flatten(/*include_empty_nodes=*/true)) {
    std::string name;
    for (const auto& entry : path) {
      if (entry.key.empty() || entry.key.find('.') != std::string::npos) {
        throw InvalidArgumentError("tree key " + KeyPathToString(path) + " cannot be a safetensors name: keys are " +
                                   "joined with '.', so they must be non-empty and contain no '.'");
      }
      if (!name.empty()) name += '.';
      name += entry.key;
    }
    if (path.empty()) name = "";  // a bare leaf: checked below
    const std::string shown = path.empty() ? "the tree's root" : name;
    switch (leaf.kind()) {
      case Tree::Kind::kNone:
      case Tree::Kind::kDict:
      case Tree::Kind::kList:
      case Tree::Kind::kTuple:
        plan.skipped.push_back(shown + " (an empty node: no data)");
        continue;
      case Tree::Kind::kString:
      case Tree::Kind::kPlaceholder:
        if (!options.skip_unsupported) {
          throw InvalidArgumentError(shown + " is a " + (leaf.is_string() ? "string" : "placeholder") +
                                     ", which safetensors cannot hold (skip such leaves to leave them out)");
        }
        plan.skipped.push_back(shown + (leaf.is_string() ? " (a string)" : " (a placeholder)"));
        continue;
      case Tree::Kind::kArraySpec:
      case Tree::Kind::kShardedArraySpec:
        throw InvalidArgumentError(shown + " is a spec, which has no data to save");
      case Tree::Kind::kShardedArray:
        throw InvalidArgumentError(shown + " is a sharded array; gather it into one Array first");
      case Tree::Kind::kScalar:
      case Tree::Kind::kArray:
        break;
    }
    if (path.empty()) throw InvalidArgumentError("a safetensors file holds named tensors: give a dict, not a bare leaf");
    if (name == kMetadataKey) throw InvalidArgumentError("\"__metadata__\" is reserved and cannot name a tensor");
    Array array = leaf.is_array() ? leaf.array()
                                  : std::visit([](auto v) { return Array::FromScalar(v); }, leaf.scalar_value());
    if (IsComplex(array.dtype())) {
      throw InvalidArgumentError(name + " is " + std::string(cairn::DTypeName(array.dtype())) +
                                 ", which safetensors has no type for");
    }
    plan.tensors.emplace_back(name, std::move(array));
  }
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!options.metadata.empty()) {
    header[kMetadataKey] = nlohmann::ordered_json::object();
    for (const auto& [k, v] : options.metadata) header[kMetadataKey][k] = v;
  }
  for (const auto& [name, array] : plan.tensors) {
    nlohmann::ordered_json entry;
    entry["dtype"] = DTypeToSafetensors(array.dtype());
    entry["shape"] = array.shape();
    entry["data_offsets"] = {plan.data_bytes, plan.data_bytes + array.num_bytes()};
    plan.data_bytes += array.num_bytes();
    header[name] = std::move(entry);
  }
  std::string text = header.dump();
  // Padded with spaces so that the data starts 8-byte aligned, as the reference writer does.
  text.append((8 - text.size() % 8) % 8, ' ');
  AppendLe(plan.prefix, text.size(), 8);
  plan.prefix += text;
  return plan;
}

}  // namespace

std::string_view DTypeToSafetensors(DType dtype) {
  for (const auto& d : kDTypes) {
    if (d.dtype == dtype) return d.name;
  }
  throw InvalidArgumentError("safetensors has no type for " + std::string(cairn::DTypeName(dtype)));
}

DType DTypeFromSafetensors(std::string_view name) {
  for (const auto& d : kDTypes) {
    if (name == d.name) return d.dtype;
  }
  std::string shown(name.substr(0, 64));
  throw UnimplementedError("safetensors dtype \"" + shown + "\" is not one cairn supports");
}

uint64_t HeaderLength(std::string_view prefix, uint64_t file_size, const std::string& what) {
  if (prefix.size() < 8 || file_size < 8) {
    throw CorruptionError(what + " is too short to be a safetensors file (" + std::to_string(file_size) +
                          " bytes; the header length alone takes 8)");
  }
  const uint64_t n = LoadLe(prefix.data(), 8);
  if (n > file_size - 8) {
    throw CorruptionError(what + ": its header length (" + std::to_string(n) + " bytes) runs past the end of the " +
                          std::to_string(file_size) + "-byte file");
  }
  if (n > kMaxHeaderBytes) {
    throw CorruptionError(what + ": its header length (" + std::to_string(n) + " bytes) is over the limit of " +
                          std::to_string(kMaxHeaderBytes));
  }
  if (n < 2) throw CorruptionError(what + ": its header (" + std::to_string(n) + " bytes) cannot hold a JSON object");
  return n;
}

Header ParseHeader(std::string_view prefix, uint64_t file_size, const std::string& what) {
  Header header;
  header.header_bytes = HeaderLength(prefix, file_size, what);
  if (prefix.size() - 8 < header.header_bytes) {
    throw CorruptionError(what + ": only " + std::to_string(prefix.size() - 8) + " of its " +
                          std::to_string(header.header_bytes) + " header bytes were given");
  }
  const std::string_view text = prefix.substr(8, header.header_bytes);
  if (text.front() != '{') throw CorruptionError(what + ": its header does not start with '{'");
  const nlohmann::json doc = metadata::ParseJson(text, what + "'s header");
  if (!doc.is_object()) throw CorruptionError(what + ": its header is not a JSON object");
  for (const auto& [name, entry] : doc.items()) {
    if (name == kMetadataKey) {
      if (!entry.is_object()) throw CorruptionError(what + ": \"__metadata__\" is not a JSON object");
      for (const auto& [k, v] : entry.items()) {
        if (!v.is_string()) throw CorruptionError(what + ": \"__metadata__\" value of \"" + k + "\" is not a string");
        header.metadata[k] = v.get<std::string>();
      }
      continue;
    }
    header.tensors.push_back(ParseTensor(name, entry, what));
  }
  std::sort(header.tensors.begin(), header.tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  const uint64_t data_bytes = file_size - 8 - header.header_bytes;
  uint64_t cursor = 0;
  for (const auto& t : header.tensors) {
    if (t.begin != cursor) {
      throw CorruptionError(what + ": tensor \"" + t.name + "\" starts at byte " + std::to_string(t.begin) +
                            " of the data, but the tensors before it end at " + std::to_string(cursor) + " (" +
                            (t.begin < cursor ? "they overlap" : "a gap") + "); tensors must be contiguous");
    }
    cursor = t.end;
  }
  if (cursor != data_bytes) {
    throw CorruptionError(what + ": the tensors cover " + std::to_string(cursor) + " bytes of data but the file holds " +
                          std::to_string(data_bytes) + " after its header");
  }
  return header;
}

Header ReadHeader(const std::filesystem::path& path, const std::shared_ptr<FileSystem>& fs) {
  auto file = fs->OpenForRead(path);
  const uint64_t size = file->Size();
  std::string prefix(std::min<uint64_t>(size, 8), '\0');
  if (!prefix.empty()) file->ReadAt(0, prefix.size(), prefix.data());
  const uint64_t n = HeaderLength(prefix, size, path.string());
  prefix.resize(8 + n);
  file->ReadAt(8, n, prefix.data() + 8);
  return ParseHeader(prefix, size, path.string());
}

Loaded Load(const std::filesystem::path& path, const LoadOptions& options) {
  const auto& fs = options.file_system ? options.file_system : FileSystem::Default();
  Header header = ReadHeader(path, fs);
  auto file = fs->OpenForRead(path);
  std::vector<Array> arrays;
  arrays.reserve(header.tensors.size());
  for (const auto& t : header.tensors) {
    Array array = Array::Allocate(t.dtype, t.shape);
    if (array.num_bytes() > 0) {
      file->ReadAt(header.data_offset() + t.begin, array.num_bytes(),
                   reinterpret_cast<char*>(array.mutable_bytes().data()));
    }
    arrays.push_back(std::move(array));
  }
  return BuildLoaded(header, std::move(arrays), options, path.string());
}

Loaded LoadFromBytes(std::string_view bytes, const std::string& what, const LoadOptions& options) {
  Header header = ParseHeader(bytes, bytes.size(), what);
  std::vector<Array> arrays;
  arrays.reserve(header.tensors.size());
  for (const auto& t : header.tensors) {
    arrays.push_back(Array::FromBytes(t.dtype, t.shape, bytes.data() + header.data_offset() + t.begin, t.end - t.begin));
  }
  return BuildLoaded(header, std::move(arrays), options, what);
}

std::string SaveToBytes(const Tree& tree, const SaveOptions& options, SaveResult* result) {
  Plan plan = MakePlan(tree, options);
  std::string out = std::move(plan.prefix);
  out.reserve(out.size() + plan.data_bytes);
  for (const auto& [name, array] : plan.tensors) {
    out.append(reinterpret_cast<const char*>(array.bytes().data()), array.num_bytes());
  }
  if (result) {
    result->skipped = std::move(plan.skipped);
    result->bytes_written = out.size();
  }
  return out;
}

SaveResult Save(const std::filesystem::path& path, const Tree& tree, const SaveOptions& options) {
  const auto& fs = options.file_system ? options.file_system : FileSystem::Default();
  Plan plan = MakePlan(tree, options);
  if (auto info = fs->Stat(path); info && info->is_directory) {
    throw AlreadyExistsError(path.string() + " is a directory; a safetensors file cannot replace it");
  }
  const std::filesystem::path tmp = path.string() + ".cairn-tmp";
  SaveResult result;
  try {
    auto file = fs->NewWritableFile(tmp);
    file->Append(plan.prefix);
    for (const auto& [name, array] : plan.tensors) {
      file->Append(std::string_view(reinterpret_cast<const char*>(array.bytes().data()), array.num_bytes()));
    }
    file->Sync();
    file->Close();
    fs->Rename(tmp, path);
  } catch (...) {
    try {
      if (fs->Exists(tmp)) fs->RemoveFile(tmp);
    } catch (...) {
    }
    throw;
  }
  const std::filesystem::path parent = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  fs->SyncDir(parent);
  result.skipped = std::move(plan.skipped);
  result.bytes_written = plan.prefix.size() + plan.data_bytes;
  return result;
}

}  // namespace cairn::safetensors
