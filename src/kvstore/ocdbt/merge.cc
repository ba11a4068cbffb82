// Orbax's finalize for multi-process saves (ocdbt_utils.merge_ocdbt_per_process_files): every process wrote its own
// database under `ocdbt.process_<i>/`; process 0 then builds one root database over all of them.
//
// As TensorStore's copy_range_to does, leaf entries are re-inserted with their value references unchanged: an
// out-of-line value stays in `ocdbt.process_<i>/d/<id>` and the root's leaf refers to it through the data file
// table (base_path "ocdbt.process_<i>/", relative_path "d/<id>"). Inline values are copied and the B+tree nodes are
// rebuilt. The child directories must therefore be kept.
#include <algorithm>
#include <numeric>

#include "cairn/error.h"
#include "kvstore/ocdbt/ocdbt.h"
#include "kvstore/ocdbt/reader.h"
#include "kvstore/ocdbt/writer.h"

namespace cairn::kvstore {
namespace {

// A child directory relative to the root, without a trailing slash; no escaping the root.
std::string NormalizeChild(const std::string& child) {
  std::string out = child;
  while (!out.empty() && out.back() == '/') out.pop_back();
  bool ok = !out.empty() && out.front() != '/' && out.find('\0') == std::string::npos;
  for (size_t start = 0; ok && start <= out.size();) {
    size_t end = std::min(out.find('/', start), out.size());
    std::string_view segment = std::string_view(out).substr(start, end - start);
    ok = !segment.empty() && segment != "." && segment != "..";
    start = end + 1;
  }
  if (!ok) throw InvalidArgumentError("invalid OCDBT child database directory '" + child + "'");
  return out;
}

}  // namespace

void MergeOcdbtDatabases(std::shared_ptr<FileSystem> fs, const std::filesystem::path& root_dir,
                         const std::vector<std::string>& child_subdirs, OcdbtWriterOptions options) {
  ocdbt::CheckNoDatabase(*fs, root_dir);
  std::vector<ocdbt::LeafEntry> entries;
  std::vector<size_t> origin;  // which child each entry came from, to name both sides of a duplicate
  std::vector<std::string> children;
  for (const std::string& raw : child_subdirs) children.push_back(NormalizeChild(raw));

  for (size_t c = 0; c < children.size(); ++c) {
    const std::string base = children[c] + "/";
    OcdbtReader child(fs, root_dir / children[c]);
    child.ForEach("", [&](const std::string& key, const ocdbt::LeafEntry& entry) {
      ocdbt::LeafEntry copy{key, entry.value};
      if (auto* ref = std::get_if<ocdbt::IndirectRef>(&copy.value)) {
        // The reference was relative to the child's directory; seen from the root it lies below `base`.
        ref->file.base_path = base + ref->file.base_path;
      }
      entries.push_back(std::move(copy));
      origin.push_back(c);
    });
  }

  std::vector<size_t> order(entries.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return entries[a].key < entries[b].key; });
  std::vector<ocdbt::LeafEntry> sorted;
  sorted.reserve(entries.size());
  for (size_t i = 0; i < order.size(); ++i) {
    if (!sorted.empty() && entries[order[i]].key == sorted.back().key) {
      throw InvalidArgumentError("cannot merge OCDBT databases into " + root_dir.string() + ": key '" +
                                 entries[order[i]].key + "' is present in both " + children[origin[order[i - 1]]] +
                                 " and " + children[origin[order[i]]]);
    }
    sorted.push_back(std::move(entries[order[i]]));
  }

  fs->CreateDirs(root_dir);
  ocdbt::DataFileWriter data(fs, root_dir, ocdbt::DataFileOptions(options));
  ocdbt::CommitNewDatabase(*fs, root_dir, options, std::move(sorted), data);
}

}  // namespace cairn::kvstore
