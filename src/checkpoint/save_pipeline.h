// The steps of an atomic save, shared by Checkpointer (all on the caller's thread) and AsyncCheckpointer
// (planning and snapshotting on the caller's thread, the rest in the background).
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include "cairn/checkpoint_handler.h"
#include "cairn/options.h"

namespace cairn::checkpoint {

// `directory` made absolute and normal, without a trailing '/' (an s3:// or gs:// URL made normal);
// InvalidArgumentError when empty.
std::filesystem::path NormalizeCheckpointPath(const std::filesystem::path& directory);

// The atomicity that saving or reading `directory` uses. kAuto becomes kAtomicRename where `fs` renames directories
// atomically and kCommitFile where it cannot (object stores), as Orbax does for gs://; kAtomicRename asked for
// where it is impossible is an InvalidArgumentError.
AtomicityOptions ResolveAtomicity(FileSystem& fs, const std::filesystem::path& directory, AtomicityOptions requested);

struct SavePlan {
  std::filesystem::path directory;  // where the checkpoint will appear
  std::filesystem::path work;       // where it is written: `<directory>.orbax-checkpoint-tmp`, or `directory` itself
  bool replaces_existing = false;   // force, with a checkpoint already at `directory`
  bool commit_file = false;         // AtomicityMode::kCommitFile
  std::optional<uint32_t> mode;
  nlohmann::json custom_metadata;
  int64_t init_timestamp_nsecs = 0;
  MultiprocessingOptions multiprocessing;
  std::shared_ptr<FileSystem> file_system;  // the checkpointer's, handed to the handler with its directory
  FileOptions file_options;
  bool primary = true;  // this process creates, finalizes and commits
  // A delta save (SaveOptions::delta_base), or one recording hashes for later deltas (item_dir empty): handed to the
  // handler with the directory of its save.
  std::optional<CheckpointHandler::DeltaBase> delta;
};

// Validates the request and decides the paths; touches nothing but Stat. AlreadyExistsError when the
// destination exists without force. A delta base that is missing (NotFoundError), not a committed checkpoint
// (InvalidArgumentError), or unusable here (object stores, several processes: UnimplementedError) is refused here,
// before anything is written.
SavePlan PlanSave(FileSystem& fs, const CheckpointerOptions& options, const std::filesystem::path& directory,
                  const SaveOptions& save_options);

// The primary creates the working directory with its first `_CHECKPOINT_METADATA`; every process returns once
// it exists (or throws, on every process, when it could not be made). On failure nothing is left behind.
void StartSave(FileSystem& fs, const SavePlan& plan);

struct CommitHooks {
  // Called between steps and right before the commit, which cannot be undone; throws to abandon the save
  // (timeouts, cancellation).
  std::function<void()> check_continue;
  // Called once, right before the commit: throws to abandon the save; once it returns, the save can no longer
  // be abandoned. Defaults to check_continue.
  std::function<void()> begin_commit;
  // AsyncOptions::post_finalization_callback: after the handler's finalize, before the commit.
  std::function<void()> post_finalization;
};

// Every process runs the handler's save; then the primary runs finalize (the OCDBT merge), writes the step
// metadata and `commit_success.txt`, fsyncs, and renames; the others wait for its outcome. A failure on any
// process (or check_continue throwing) fails the save on every process: the working directory is removed and an
// earlier checkpoint at the destination is left exactly as it was.
// The directory of `plan`'s save as its handler sees it.
HandlerDirectory WorkDirectory(const SavePlan& plan);

void FinishSave(FileSystem& fs, CheckpointHandler& handler, const SavePlan& plan, const CheckpointArgs& args,
                const CommitHooks& hooks = {});

}  // namespace cairn::checkpoint
