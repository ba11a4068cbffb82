// The data file table that opens every manifest and node: the list of data files the object's references point
// into (a reference stores only an index into this table).
//
// Each file is (base_path, relative_path). Its path relative to the database directory is
// transitive_path + base_path + relative_path, where transitive_path is "" in the manifest and, for a node, the
// transitive_path + base_path of the file the node was read from. That is how a merged root database refers to
// values in `ocdbt.process_N/d/...`: base_path "ocdbt.process_N/", relative_path "d/<id>".
//
// Encoding: num_files:varint, then columns prefix_len[n-1], suffix_len[n], base_path_len[n], then all suffixes
// concatenated; each combined path is prefix-compressed against the previous one.
#pragma once

#include <compare>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace cairn::kvstore::ocdbt {

class ByteReader;

constexpr size_t kMaxPathLength = 65535;

struct DataFileId {
  // When decoded, base_path already includes the transitive path of the enclosing object.
  std::string base_path;
  std::string relative_path;

  std::string FullPath() const { return base_path + relative_path; }
  auto operator<=>(const DataFileId&) const = default;
};

// Decodes a table; `transitive_path` is prepended to every base_path.
std::vector<DataFileId> DecodeDataFileTable(ByteReader& reader, std::string_view transitive_path);

// The file a reference names by its index in `files` (the decoded table of the enclosing object).
const DataFileId& ReadDataFileId(ByteReader& reader, const std::vector<DataFileId>& files);

// Collects the files an object references, then encodes them sorted by (base_path, relative_path), as TensorStore
// does, and maps each file to its index.
class DataFileTableBuilder {
 public:
  void Add(const DataFileId& id) { index_.emplace(id, 0); }
  size_t size() const { return index_.size(); }
  // Appends the encoded table and fixes every file's index.
  void Encode(std::string& out);
  // Valid after Encode.
  uint64_t IndexOf(const DataFileId& id) const;

 private:
  std::map<DataFileId, uint64_t> index_;  // ordered by (base_path, relative_path): the encoding order
};

}  // namespace cairn::kvstore::ocdbt
