#include "checkpoint/save_pipeline.h"

#include "cairn/error.h"
#include "cairn/object_store.h"
#include "distributed/agreement.h"
#include "io/objstore/object_store_file_system.h"
#include "io/temporary_path.h"
#include "metadata/checkpoint_metadata.h"

namespace cairn::checkpoint {
namespace {

template <typename Fn>
void IgnoreErrors(Fn&& fn) {
  try {
    fn();
  } catch (...) {
  }
}

}  // namespace

std::filesystem::path NormalizeCheckpointPath(const std::filesystem::path& directory) {
  if (directory.empty()) throw InvalidArgumentError("checkpoint directory is empty");
  if (IsObjectStoreUrl(directory.native())) {
    auto url = io::objstore::NormalizeObjectUrl(directory);
    if (url.native().find('/', url.native().find("//") + 2) == std::string::npos) {
      throw InvalidArgumentError("checkpoint directory " + url.string() + " is a bucket: give a prefix below it");
    }
    return url;
  }
  auto path = std::filesystem::absolute(directory).lexically_normal();
  if (!path.has_filename()) path = path.parent_path();
  return path;
}

AtomicityOptions ResolveAtomicity(FileSystem& fs, const std::filesystem::path& directory, AtomicityOptions requested) {
  const bool can_rename = fs.HasAtomicRename(directory);
  if (requested.mode == AtomicityMode::kAuto) {
    requested.mode = can_rename ? AtomicityMode::kAtomicRename : AtomicityMode::kCommitFile;
  } else if (requested.mode == AtomicityMode::kAtomicRename && !can_rename) {
    throw InvalidArgumentError("AtomicityMode::kAtomicRename is impossible at " + directory.string() +
                               ": the file system cannot rename a directory atomically (use kAuto or kCommitFile)");
  }
  return requested;
}

namespace {

CheckpointHandler::DeltaBase PlanDelta(FileSystem& fs, const SavePlan& plan, const SaveOptions& save_options) {
  CheckpointHandler::DeltaBase delta;
  const double fraction = save_options.delta_max_changed_fraction;
  if (!(fraction >= 0.0 && fraction <= 1.0)) {
    throw InvalidArgumentError("delta_max_changed_fraction must lie in [0, 1], got " + std::to_string(fraction));
  }
  delta.max_changed_fraction = fraction;
  if (!save_options.delta_base) return delta;  // only recording hashes
  const std::string what = "cannot save " + plan.directory.string() + " as a delta against ";
  if (save_options.delta_base->empty()) throw InvalidArgumentError("delta_base is empty");
  const std::filesystem::path base = NormalizeCheckpointPath(*save_options.delta_base);
  if (base == plan.directory) throw InvalidArgumentError(what + "itself");
  // The new step shares the base's data files by hard links, or on an object store by server-side copies.
  if (fs.HowFilesAreShared(plan.directory) == FileSystem::FileSharing::kNone) {
    throw UnimplementedError(what + base.string() + ": delta saves need hard links or a server-side copy, which " +
                             "this file system (" + plan.directory.string() + ") does not have; save in full");
  }
  if (io::IsTemporaryPath(base)) {
    throw InvalidArgumentError(what + base.string() + ": the base is an unfinished save, not a committed checkpoint");
  }
  if (!fs.IsDirectory(base)) {
    throw NotFoundError(what + base.string() + ": the base step does not exist");
  }
  if (!fs.Exists(base / io::kCommitSuccessFile)) {
    throw InvalidArgumentError(what + base.string() + ": the base is not a committed checkpoint (no " +
                               std::string(io::kCommitSuccessFile) + ")");
  }
  delta.item_dir = base;
  return delta;
}

}  // namespace

SavePlan PlanSave(FileSystem& fs, const CheckpointerOptions& options, const std::filesystem::path& directory_in,
                  const SaveOptions& save_options) {
  SavePlan plan;
  plan.directory = NormalizeCheckpointPath(directory_in);
  if (io::IsTemporaryPath(plan.directory)) {
    throw InvalidArgumentError("cannot save to " + plan.directory.string() +
                               ": the name is reserved for unfinished saves");
  }
  if (!save_options.custom_metadata.is_null() && !save_options.custom_metadata.is_object()) {
    throw InvalidArgumentError("custom_metadata must be a JSON object, got " + save_options.custom_metadata.dump());
  }
  const AtomicityOptions atomicity = ResolveAtomicity(fs, plan.directory, options.atomicity_options);
  plan.commit_file = atomicity.mode == AtomicityMode::kCommitFile;
  bool exists = fs.Exists(plan.directory);
  if (exists && plan.commit_file && !atomicity.allow_legacy_atomic_rename &&
      !fs.Exists(plan.directory / io::kCommitSuccessFile)) {
    // Written in place but never committed: a save that failed or was killed, the counterpart of a stale
    // `.orbax-checkpoint-tmp` directory. Not a checkpoint; StartSave removes it.
    exists = false;
  }
  if (exists && !save_options.force) {
    throw AlreadyExistsError("Destination " + plan.directory.string() + " already exists (pass force to replace it)");
  }
  plan.replaces_existing = exists;
  plan.work = plan.commit_file ? plan.directory : io::TemporaryPathFor(plan.directory);
  plan.mode = options.file_options.path_permission_mode;
  plan.custom_metadata = save_options.custom_metadata.is_null() ? nlohmann::json::object() : save_options.custom_metadata;
  plan.init_timestamp_nsecs = metadata::NowNanoseconds();
  plan.multiprocessing = options.multiprocessing_options;
  plan.file_system = options.file_system;
  plan.file_options = options.file_options;
  plan.primary = distributed::IsPrimary(plan.multiprocessing);
  if (save_options.delta_base || save_options.record_delta_hashes) {
    plan.delta = PlanDelta(fs, plan, save_options);
  }
  return plan;
}

void StartSave(FileSystem& fs, const SavePlan& plan) {
  // The primary process creates the directory; the others wait for it at the barrier and write into it.
  distributed::Agree(plan.multiprocessing, "Checkpointer:create_directory", [&] {
    try {
      // With a commit file the checkpoint is written in place, so an existing one must go first (as in Orbax). Its
      // commit file goes first of all: from then on no reader takes the half-deleted directory for a checkpoint.
      if (plan.replaces_existing && plan.commit_file) {
        const auto commit_file = plan.directory / io::kCommitSuccessFile;
        if (fs.Exists(commit_file)) fs.RemoveFile(commit_file);
        fs.RemoveAll(plan.directory);
      }
      fs.CreateDirs(plan.directory.parent_path(), plan.mode);
      fs.RemoveAll(plan.work);  // a stale unfinished save of the same step
      fs.CreateDir(plan.work, plan.mode);
      StepMetadata step;
      step.init_timestamp_nsecs = plan.init_timestamp_nsecs;
      metadata::WriteCheckpointMetadata(fs, plan.work, step);
    } catch (...) {
      IgnoreErrors([&] { fs.RemoveAll(plan.work); });
      throw;
    }
  }, /*run_here=*/plan.primary);
}

namespace {

// The primary's half of a save once every process has written: finalize, metadata, commit. On failure it
// undoes what it did, so that nothing restores as a checkpoint and an earlier one is left as it was.
void Commit(FileSystem& fs, CheckpointHandler& handler, const SavePlan& plan, const CommitHooks& hooks) {
  const auto& directory = plan.directory;
  const auto& work = plan.work;
  std::optional<std::filesystem::path> parked;  // the checkpoint being replaced (force), while the new one moves in
  bool renamed = false;
  try {
    if (hooks.check_continue) hooks.check_continue();
    handler.finalize(WorkDirectory(plan));
    if (hooks.post_finalization) hooks.post_finalization();

    StepMetadata step;
    step.init_timestamp_nsecs = plan.init_timestamp_nsecs;
    step.item_handlers = handler.item_handlers();
    step.custom_metadata = plan.custom_metadata;
    step.commit_timestamp_nsecs = metadata::NowNanoseconds();
    metadata::WriteCheckpointMetadata(fs, work, step);
    fs.WriteFile(work / io::kCommitSuccessFile, "Checkpoint commit was successful to " + directory.string(),
                 /*sync=*/true);
    io::SyncDirectoryTree(fs, work);
    // The last point at which the save can be abandoned.
    if (hooks.begin_commit) hooks.begin_commit();
    else if (hooks.check_continue) hooks.check_continue();

    if (!plan.commit_file) {
      if (plan.replaces_existing) {
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
    // Undo the rename(s), then remove the unfinished directory. Each step is best effort; if one fails, what
    // remains still carries a temporary name (or lacks its commit file).
    if (renamed) IgnoreErrors([&] { fs.Rename(directory, work); });
    if (parked) IgnoreErrors([&] { if (!fs.Exists(directory)) fs.Rename(*parked, directory); });
    IgnoreErrors([&] { fs.RemoveAll(work); });
    throw;
  }
  // Committed. Failing to delete the replaced checkpoint does not undo that: the leftover has a temporary name,
  // which no reader lists and the next cleanup removes.
  if (parked) IgnoreErrors([&] { fs.RemoveAll(*parked); });
}

}  // namespace

HandlerDirectory WorkDirectory(const SavePlan& plan) {
  return HandlerDirectory(plan.work, plan.file_system, plan.multiprocessing, plan.file_options, plan.delta);
}

void FinishSave(FileSystem& fs, CheckpointHandler& handler, const SavePlan& plan, const CheckpointArgs& args,
                const CommitHooks& hooks) {
  // Every process writes its part; if any fails, all stop here and the primary removes the directory.
  try {
    distributed::Agree(plan.multiprocessing, "Checkpointer:save", [&] {
      if (hooks.check_continue) hooks.check_continue();
      handler.save(WorkDirectory(plan), args);
    });
  } catch (...) {
    if (plan.primary) IgnoreErrors([&] { fs.RemoveAll(plan.work); });
    throw;
  }
  // The primary merges, finalizes and commits; the others learn the outcome at the barrier.
  distributed::Agree(plan.multiprocessing, "Checkpointer:finalize", [&] { Commit(fs, handler, plan, hooks); },
                     /*run_here=*/plan.primary);
}

}  // namespace cairn::checkpoint
