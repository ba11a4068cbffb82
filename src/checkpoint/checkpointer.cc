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
        // then delete the old. A crash between the two renames leaves no checkpoint at `directory`, but both
        // copies survive under names Orbax and cairn recognise as unfinished.
        auto parked = directory.parent_path() /
                      (directory.filename().string() + std::string(io::kTmpSuffix) + "-" +
                       std::to_string(metadata::NowNanoseconds()));
        fs.Rename(directory, parked);
        fs.Rename(work, directory);
        fs.SyncDir(directory.parent_path());
        fs.RemoveAll(parked);
      } else {
        fs.Rename(work, directory);
      }
    }
    fs.SyncDir(directory.parent_path());
  } catch (...) {
    // Nothing half-written may look like a checkpoint: remove the unfinished directory (best effort; if even
    // that fails, its temporary name or missing commit file already marks it unfinished).
    try {
      fs.RemoveAll(work);
    } catch (...) {
    }
    throw;
  }
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
