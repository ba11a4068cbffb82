// VerifyCheckpoint: every file, every OCDBT node, every chunk, each checked against what was recorded for it. This
// file walks roots, steps and non-PyTree items; a PyTree item is read by the item layer's reader in its checking
// mode (item::ItemReader::Check), which reports every problem instead of stopping at the first.
#include "cairn/verify.h"

#include <algorithm>
#include <functional>
#include <mutex>
#include <optional>

#include "cairn/error.h"
#include "checkpoint/layout.h"
#include "io/disk_usage.h"
#include "io/temporary_path.h"
#include "item/reader.h"
#include "metadata/checkpoint_metadata.h"
#include "metadata/checksums.h"
#include "metadata/python_json.h"

namespace cairn {
namespace {

namespace md = metadata;
namespace fs_ns = std::filesystem;

class Verifier {
 public:
  Verifier(const std::shared_ptr<FileSystem>& fs, fs_ns::path root, const VerifyOptions& options, VerifyReport& report)
      : fs_(fs), root_(std::move(root)), options_(options), report_(report) {
    if (options_.progress) total_ = io::BytesUnder(*fs_, root_);
  }

  void Root() {
    const auto layout = checkpoint::ListSteps(*fs_, root_);
    for (const auto& name : layout.unfinished) {
      Note(name + ": an unfinished save (not a step; a CheckpointManager ignores it and cleans it up)");
    }
    if (layout.steps.empty()) Problem(".", "holds no finished step");
    for (const auto& name : layout.steps) Step(root_ / name);
  }

  void Step(const fs_ns::path& step) {
    ++report_.steps;
    const std::string label = Label(step);
    if (auto text = ReadFile(step, md::kCheckpointMetadataFile)) {
      try {
        CheckSiblingChecksum(step / md::kCheckpointMetadataFile, step / md::kCheckpointMetadataChecksumFile);
        md::DecodeCheckpointMetadata(*text, (step / md::kCheckpointMetadataFile).string());
      } catch (const Error& e) {
        Problem(label + md::kCheckpointMetadataFile, e.what());
      }
    } else if (fs_->Exists(step / md::kCheckpointMetadataChecksumFile)) {
      Problem(label + md::kCheckpointMetadataFile, "is missing, but its checksum file is there: it was written "
                                                   "and has since been lost");
    } else if (!fs_->Exists(step / md::kCheckpointMetadataFile)) {
      Note((label.empty() ? std::string(".") : label) + ": no " + md::kCheckpointMetadataFile +
           " (Orbax restores such checkpoints too)");
    }
    const auto items = checkpoint::ListItems(*fs_, step);
    if (items.empty()) Problem(label.empty() ? "." : label, "holds no checkpoint item");
    for (const auto& item : items) {
      if (!item.name.empty() && item.handler.empty()) {
        // Its bytes may be intact, but a restore without args refuses the step (as Orbax's does): that is not
        // "all is well".
        Problem(label + item.name, std::string("no handler is recorded for this item (") + md::kCheckpointMetadataFile +
                                       " or its item_handlers is missing): a restore without args refuses the "
                                       "step; only a restore with args naming the item's handler reads it");
      }
      ++report_.items;
      if (item.is_pytree) {
        PyTreeItem(item.dir);
      } else {
        OtherItem(item.dir, item.handler);
      }
    }
  }

  // A PyTree item, read by the item layer's reader in its checking mode (item::ItemReader::Check): it reports every
  // problem it finds here, each named relative to the item.
  void PyTreeItem(const fs_ns::path& dir) {
    class Sink final : public item::ItemCheckSink {
     public:
      Sink(Verifier& verifier, std::string label) : verifier_(verifier), label_(std::move(label)) {}
      void Problem(const std::string& where, const std::string& message) override {
        verifier_.Problem(where.empty() ? Shown() : label_ + where, message);
      }
      void Note(const std::string& note) override { verifier_.Note(Shown() + ": " + note); }
      void BytesRead(uint64_t bytes) override { verifier_.Count(bytes); }
      // The item itself: its label without the trailing '/', or "." for the verified path.
      std::string Shown() const { return label_.empty() ? "." : label_.substr(0, label_.size() - 1); }

     private:
      Verifier& verifier_;
      std::string label_;
    };
    Sink sink(*this, Label(dir));
    try {
      item::ItemReader reader(fs_, dir, /*verify_checksums=*/true, &sink);
      const item::ItemCheckCounts counts = reader.Check();
      std::lock_guard lock(mu_);
      report_.arrays += counts.arrays;
      report_.chunks += counts.chunks;
      report_.chunks_checksummed += counts.chunks_checksummed;
      report_.files_checked += counts.files_checked;
      report_.files_checksummed += counts.files_checksummed;
    } catch (const Error& e) {
      Problem(sink.Shown(), e.what());
    }
  }

  void OtherItem(const fs_ns::path& dir, const std::string& handler) {
    const bool json = handler.find("JsonCheckpointHandler") != std::string::npos;
    std::function<void(const fs_ns::path&)> walk = [&](const fs_ns::path& d) {
      for (const auto& name : fs_->ListDir(d)) {
        const auto path = d / name;
        if (fs_->IsDirectory(path)) {
          walk(path);
          continue;
        }
        if (name == io::kCommitSuccessFile) continue;  // Orbax's marker, in every item of a Composite
        if (md::IsChecksumFileName(name)) {
          // Checked with the file it belongs to; one whose file is gone means that file was lost.
          const auto file = path.parent_path() / name.substr(6, name.size() - 6 - 7);
          if (!fs_->Exists(file)) Problem(Label(path.parent_path()) + file.filename().string(), "is missing, but its "
                                          "checksum file " + name + " is there: it was written and has since been lost");
          continue;
        }
        auto text = ReadFile(path.parent_path(), name);
        if (!text) continue;
        try {
          CheckSiblingChecksum(path, md::ChecksumFileFor(path));
          if (!json) continue;
          md::ParseJson(*text, path.string());
        } catch (const Error& e) {
          Problem(Label(path.parent_path()) + path.filename().string(), e.what());
        }
      }
    };
    walk(dir);
    if (!json) {
      const std::string label = Label(dir);
      Note((label.empty() ? std::string(".") : label.substr(0, label.size() - 1)) + ": " +
           (handler.empty() ? "no handler recorded" : "handler " + handler) +
           "; its files were read, their contents not checked");
    }
  }

  void Finish() {
    if (options_.progress) options_.progress(total_, total_);
  }

 private:
  // `path` relative to the verified path, with a trailing '/', or "" for the path itself.
  std::string Label(const fs_ns::path& path) const {
    std::string rel = path.lexically_relative(root_).generic_string();
    if (rel.empty() || rel == ".") return "";
    return rel + "/";
  }

  // Reads `dir/relative`, counting it; checked against `sums` when it records the file. nullopt (with a problem
  // reported) when it cannot be read or fails its check.
  // A file whose CRC-32C is kept in a sibling checksum file (a step's _CHECKPOINT_METADATA, a JSON item's file):
  // throws a CorruptionError naming the file (or the checksum file) when they disagree.
  void CheckSiblingChecksum(const fs_ns::path& file, const fs_ns::path& checksum_file) {
    if (!fs_->Exists(checksum_file)) return;
    md::ReadFileWithChecksum(*fs_, file, checksum_file);
    std::lock_guard lock(mu_);
    ++report_.files_checksummed;
  }

  // Reads `dir/relative` (a step's or a non-PyTree item's file), counting it. nullopt (with a problem reported)
  // when it cannot be read.
  std::optional<std::string> ReadFile(const fs_ns::path& dir, const std::string& relative) {
    if (!fs_->Exists(dir / relative)) return std::nullopt;
    std::string text;
    try {
      text = fs_->ReadFileBelow(dir, relative, kMaxMetadataFileBytes);
    } catch (const Error& e) {
      Problem(Label(dir) + relative, e.what());
      return std::nullopt;
    }
    Count(text.size());
    std::lock_guard lock(mu_);
    ++report_.files_checked;
    return text;
  }

  void Problem(const std::string& where, const std::string& message) {
    std::lock_guard lock(mu_);
    report_.problems.push_back({where, message});
  }
  void Note(const std::string& note) {
    std::lock_guard lock(mu_);
    report_.notes.push_back(note);
  }
  void Count(uint64_t bytes) {
    std::lock_guard lock(mu_);
    report_.bytes_read += bytes;
    if (options_.progress) options_.progress(std::min(report_.bytes_read, total_), total_);
  }

  std::shared_ptr<FileSystem> fs_;
  fs_ns::path root_;
  const VerifyOptions& options_;
  VerifyReport& report_;
  uint64_t total_ = 0;
  std::mutex mu_;
};

}  // namespace

VerifyReport VerifyCheckpoint(const std::filesystem::path& path_in, const VerifyOptions& options) {
  const auto fs = options.file_system ? options.file_system : FileSystem::Default();
  const auto [path, kind] = checkpoint::OpenCheckpointPath(*fs, path_in);
  VerifyReport report;
  report.path = path;
  report.kind = checkpoint::PathKindName(kind);
  Verifier verifier(fs, path, options, report);
  if (kind == checkpoint::PathKind::kRoot) {
    verifier.Root();
  } else {
    verifier.Step(path);
  }
  verifier.Finish();
  return report;
}

}  // namespace cairn
