#include "cairn/checkpointer.h"

#include "cairn/error.h"
#include "io/temporary_path.h"
#include "metadata/checkpoint_metadata.h"

namespace cairn {
namespace {

std::filesystem::path Normalize(const std::filesystem::path& directory) {
  if (directory.empty()) throw InvalidArgumentError("checkpoint directory is empty");
  auto path = std::filesystem::absolute(directory).lexically_normal();
  if (!path.has_filename()) path = path.parent_path();
  return path;
}

bool UsesCommitFile(const AtomicityOptions& options) { return options.mode == AtomicityMode::kCommitFile; }

template <typename Fn>
void IgnoreErrors(Fn&& fn) {
  try {
    fn();
  } catch (...) {
  }
}

}  // namespace

Checkpointer::Checkpointer(std::unique_ptr<CheckpointHandler> handler, CheckpointerOptions options)
    : handler_(std::move(handler)), options_(std::move(options)) {
  if (!handler_) throw InvalidArgumentError("Checkpointer needs a handler");
  if (!options_.file_system) options_.file_system = FileSystem::Default();
  handler_->Configure(options_.file_system, options_.multiprocessing_options, options_.file_options);
}

Checkpointer::~Checkpointer() = default;

void Checkpointer::save(const std::filesystem::path& directory_in, const CheckpointArgs& args,
                        const SaveOptions& options) {
  FileSystem& fs = *options_.file_system;
  const auto directory = Normalize(directory_in);
  if (io::IsTemporaryPath(directory)) {
    throw InvalidArgumentError("cannot save to " + directory.string() + ": the name is reserved for unfinished saves");
  }
  if (!options.custom_metadata.is_null() && !options.custom_metadata.is_object()) {
    throw InvalidArgumentError("custom_metadata must be a JSON object, got " + options.custom_metadata.dump());
  }
  const bool exists = fs.Exists(directory);
  if (exists && !options.force) {
    throw AlreadyExistsError("Destination " + directory.string() + " already exists (pass force to replace it)");
  }
  const bool commit_file = UsesCommitFile(options_.atomicity_options);
  // With a commit file the checkpoint is written in place, so an existing one must go first (as in Orbax).
  if (exists && commit_file) fs.RemoveAll(directory);
  const auto work = commit_file ? directory : io::TemporaryPathFor(directory);
  const auto mode = options_.file_options.path_permission_mode;

  fs.CreateDirs(directory.parent_path(), mode);
  fs.RemoveAll(work);  // a stale unfinished save of the same step
  fs.CreateDir(work, mode);
  std::optional<std::filesystem::path> parked;  // the checkpoint being replaced (force), while the new one moves in
  bool renamed = false;
  try {
    StepMetadata step;
    step.init_timestamp_nsecs = metadata::NowNanoseconds();
    metadata::WriteCheckpointMetadata(fs, work, step);

    handler_->save(work, args);
    handler_->finalize(work);

    step.item_handlers = handler_->item_handlers();
    step.custom_metadata = options.custom_metadata.is_null() ? nlohmann::json::object() : options.custom_metadata;
    step.commit_timestamp_nsecs = metadata::NowNanoseconds();
    metadata::WriteCheckpointMetadata(fs, work, step);
    fs.WriteFile(work / io::kCommitSuccessFile, "Checkpoint commit was successful to " + directory.string(),
                 /*sync=*/true);
    io::SyncDirectoryTree(fs, work);

    if (!commit_file) {
      if (exists) {
        // force: park the old checkpoint under a temporary name (which no reader lists), move the new one in,
        // and delete the old one only once the new one is durable.
        parked = directory.parent_path() / (directory.filename().string() + std::string(io::kTmpSuffix) + "-" +
                                            std::to_string(metadata::NowNanoseconds()));
        fs.Rename(directory, *parked);
      }
      fs.Rename(work, directory);
      renamed = true;
    }
    fs.SyncDir(directory.parent_path());
  } catch (...) {
    // A failed save must not leave anything that restores as a checkpoint, and must leave an earlier one as it
    // was: undo the rename(s), then remove the unfinished directory. Each step is best effort; if one fails,
    // what remains still carries a temporary name (or lacks its commit file).
    if (renamed) IgnoreErrors([&] { fs.Rename(directory, work); });
    if (parked) IgnoreErrors([&] { if (!fs.Exists(directory)) fs.Rename(*parked, directory); });
    IgnoreErrors([&] { fs.RemoveAll(work); });
    throw;
  }
  // Committed. Failing to delete the replaced checkpoint does not undo that: the leftover has a temporary
  // name, which no reader lists and the next cleanup removes.
  if (parked) IgnoreErrors([&] { fs.RemoveAll(*parked); });
}

Tree Checkpointer::restore(const std::filesystem::path& directory) { return RestoreImpl(directory, nullptr); }

Tree Checkpointer::restore(const std::filesystem::path& directory, const CheckpointArgs& args) {
  return RestoreImpl(directory, &args);
}

namespace {

void RequireFinalized(FileSystem& fs, const std::filesystem::path& directory, const AtomicityOptions& atomicity) {
  if (io::IsTemporaryPath(directory)) {
    throw InvalidArgumentError("Found incomplete checkpoint at " + directory.string() +
                               ": its save did not finish (temporary directory)");
  }
  if (!fs.IsDirectory(directory)) {
    if (fs.Exists(io::TemporaryPathFor(directory))) {
      throw InvalidArgumentError("Found incomplete checkpoint at " + directory.string() + ": only " +
                                 io::TemporaryPathFor(directory).string() + " exists, whose save did not finish");
    }
    if (fs.Exists(directory)) throw InvalidArgumentError(directory.string() + " is a file, not a checkpoint directory");
    throw NotFoundError("No checkpoint at " + directory.string() + ": no such directory");
  }
  if (UsesCommitFile(atomicity) && !atomicity.allow_legacy_atomic_rename &&
      !fs.Exists(directory / io::kCommitSuccessFile)) {
    throw InvalidArgumentError("Found incomplete checkpoint at " + directory.string() + ": no " +
                               io::kCommitSuccessFile);
  }
}

}  // namespace

Tree Checkpointer::RestoreImpl(const std::filesystem::path& directory_in, const CheckpointArgs* args) {
  const auto directory = Normalize(directory_in);
  RequireFinalized(*options_.file_system, directory, options_.atomicity_options);
  return handler_->restore(directory, args);
}

StepMetadata Checkpointer::metadata(const std::filesystem::path& directory_in) {
  const auto directory = Normalize(directory_in);
  FileSystem& fs = *options_.file_system;
  RequireFinalized(fs, directory, options_.atomicity_options);
  StepMetadata step = metadata::ReadCheckpointMetadata(fs, directory).value_or(StepMetadata{});
  step.item_metadata = handler_->metadata(directory);
  return step;
}

void Checkpointer::close() { handler_->close(); }

}  // namespace cairn
