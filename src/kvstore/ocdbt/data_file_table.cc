#include "kvstore/ocdbt/data_file_table.h"

#include <algorithm>

#include "cairn/error.h"
#include "kvstore/ocdbt/codec.h"

namespace cairn::kvstore::ocdbt {

const DataFileId& ReadDataFileId(ByteReader& reader, const std::vector<DataFileId>& files) {
  if (files.empty()) reader.Fail("data file reference with an empty data file table");
  return files[reader.ReadVarint("data file id", files.size() - 1)];
}

std::vector<DataFileId> DecodeDataFileTable(ByteReader& reader, std::string_view transitive_path) {
  if (transitive_path.size() > kMaxPathLength) reader.Fail("transitive data file path is too long");
  const size_t max_path_length = kMaxPathLength - transitive_path.size();
  // Every file costs at least two bytes (its suffix and base-path lengths), which bounds the count before any
  // allocation.
  uint64_t num_files = reader.ReadVarint("data file count", reader.remaining() / 2);
  // The columns grow as bytes are consumed, so a corrupt count cannot allocate more than the input justifies.
  std::vector<uint64_t> prefix_length, suffix_length, base_length;
  if (num_files > 0) prefix_length.push_back(0);
  for (uint64_t i = 1; i < num_files; ++i) {
    prefix_length.push_back(reader.ReadVarint("data file path prefix length", kMaxPathLength));
  }
  for (uint64_t i = 0; i < num_files; ++i) {
    suffix_length.push_back(reader.ReadVarint("data file path suffix length", kMaxPathLength));
  }
  for (uint64_t i = 0; i < num_files; ++i) {
    base_length.push_back(reader.ReadVarint("data file base path length", kMaxPathLength));
  }

  std::vector<DataFileId> files;
  files.reserve(num_files);
  std::string prev_path;  // base_path + relative_path as stored, without the transitive path
  uint64_t prev_base_length = 0;
  for (uint64_t i = 0; i < num_files; ++i) {
    const uint64_t prefix = prefix_length[i], suffix = suffix_length[i], base = base_length[i];
    const std::string file = "data file " + std::to_string(i);
    if (prefix > prev_path.size()) {
      reader.Fail(file + ": path prefix length " + std::to_string(prefix) + " exceeds the previous path's length " +
                  std::to_string(prev_path.size()));
    }
    if (suffix > max_path_length || prefix + suffix > max_path_length) {
      reader.Fail(file + ": path length exceeds " + std::to_string(max_path_length));
    }
    const uint64_t path_length = prefix + suffix;
    if (base > path_length) {
      reader.Fail(file + ": base path length " + std::to_string(base) + " exceeds the path length " +
                  std::to_string(path_length));
    }
    // A shared prefix may reach past a base path's end only when both base paths are the same.
    if (prefix > std::min(prev_base_length, base) && base != prev_base_length) {
      reader.Fail(file + ": path prefix extends past a base path that differs from the previous one");
    }
    std::string path = prev_path.substr(0, prefix);
    path.append(reader.ReadBytes(suffix, "data file path"));
    DataFileId id;
    id.base_path.reserve(transitive_path.size() + base);
    id.base_path.append(transitive_path).append(path, 0, base);
    id.relative_path = path.substr(base);
    files.push_back(std::move(id));
    prev_path = std::move(path);
    prev_base_length = base;
  }
  return files;
}

void DataFileTableBuilder::Encode(std::string& out) {
  AppendVarint(out, index_.size());
  std::vector<const DataFileId*> files;
  files.reserve(index_.size());
  for (auto& [id, index] : index_) {
    if (id.base_path.size() + id.relative_path.size() > kMaxPathLength) {
      throw InvalidArgumentError("data file path " + id.FullPath() + " is longer than " +
                                 std::to_string(kMaxPathLength) + " bytes");
    }
    index = files.size();
    files.push_back(&id);
  }
  std::vector<size_t> prefix(files.size(), 0);
  for (size_t i = 1; i < files.size(); ++i) {
    const DataFileId& prev = *files[i - 1];
    const DataFileId& cur = *files[i];
    // The shared prefix may continue into the relative path only when the base paths are equal, which keeps the
    // decoder's base/relative split unambiguous.
    size_t n = CommonPrefixLength(prev.base_path, cur.base_path);
    if (n == prev.base_path.size() && n == cur.base_path.size()) {
      n += CommonPrefixLength(prev.relative_path, cur.relative_path);
    }
    prefix[i] = n;
    AppendVarint(out, n);
  }
  for (size_t i = 0; i < files.size(); ++i) {
    AppendVarint(out, files[i]->base_path.size() + files[i]->relative_path.size() - prefix[i]);
  }
  for (const DataFileId* file : files) AppendVarint(out, file->base_path.size());
  for (size_t i = 0; i < files.size(); ++i) {
    out.append(files[i]->FullPath(), prefix[i]);
  }
}

uint64_t DataFileTableBuilder::IndexOf(const DataFileId& id) const {
  auto it = index_.find(id);
  if (it == index_.end()) throw InvalidArgumentError("data file " + id.FullPath() + " is not in the table");
  return it->second;
}

}  // namespace cairn::kvstore::ocdbt
