// The options Orbax's checkpointers take, with Orbax's names and defaults.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cairn/file_system.h"
#include "cairn/multiprocessing_options.h"

namespace cairn {

enum class AtomicityMode {
  kAuto,          // kAtomicRename where the file system renames directories atomically (local ones), else
                  // kCommitFile (object stores: s3://, gs://)
  kAtomicRename,  // write `<dir>.orbax-checkpoint-tmp`, then rename it to `<dir>`
  kCommitFile,    // write in place; the checkpoint counts only once `commit_success.txt` exists
};

struct AtomicityOptions {
  AtomicityMode mode = AtomicityMode::kAuto;
  // With kCommitFile: also accept checkpoints without `commit_success.txt` (written before it existed).
  bool allow_legacy_atomic_rename = false;
};

struct CheckpointerOptions {
  MultiprocessingOptions multiprocessing_options;
  FileOptions file_options;
  AtomicityOptions atomicity_options;
  // Every file access goes through this (tests pass an in-memory or fault-injecting one).
  std::shared_ptr<FileSystem> file_system = FileSystem::Default();
};

// How an AsyncCheckpointer runs its background saves (Orbax's AsyncOptions).
struct AsyncOptions {
  // A background save still running after this many seconds ends with a TimeoutError and commits nothing.
  int64_t timeout_secs = 600;
  // Replaces the barrier between processes: called with (key, timeout_ms) where Orbax synchronises hosts.
  std::function<void(const std::string& key, int64_t timeout_ms)> barrier_sync_fn;
  // Runs on the primary host after the handler's finalize and before the commit rename.
  std::function<void()> post_finalization_callback;
  // Create the temporary directory in the background too, so that save() only snapshots the arrays.
  bool create_directories_asynchronously = true;
  // cairn addition: snapshot owned arrays copy-on-write (write-protect the caller's pages; copy a page only when the
  // caller writes it before the background write has read it) where the kernel allows it, instead of copying the
  // whole state before save() returns (docs/reliability.md, "Asynchronous saves"). False: always copy (staging).
  // The environment variable CAIRN_ASYNC_SNAPSHOT=staging does the same for a whole process.
  bool copy_on_write = true;
};

// The keyword arguments of Checkpointer::save.
struct SaveOptions {
  // Replace an existing checkpoint at the destination, once the new one is complete.
  bool force = false;
  // A JSON object stored in `_CHECKPOINT_METADATA`; opaque to cairn.
  nlohmann::json custom_metadata = nlohmann::json::object();
  // cairn addition (docs/format.md, "Delta steps"): a committed step directory saved earlier by cairn. Chunks whose
  // encoded bytes equal one of that step's (SHA-256 and CRC-32C both match), or that SaveArgs::frozen declares
  // unchanged, are not written again: the new step hard-links the base's data files (on an object store: copies
  // them server-side) and its OCDBT tree points at byte ranges in them. The new step is still complete on its own
  // (Orbax reads it; deleting the base does not harm it). A base that is missing, uncommitted or damaged is an
  // error before anything is written; a file system with neither hard links nor a server-side copy is an
  // UnimplementedError.
  std::optional<std::filesystem::path> delta_base{};
  // With delta_base: when more than this fraction of the chunk bytes changed, the unchanged ones are copied into
  // the new step's own data files instead of shared (a full step, which keeps none of the base's files alive).
  double delta_max_changed_fraction = 1.0;
  // Record a SHA-256 of every chunk (`cairn_delta/`) so that this step can be the delta_base of a later save, at
  // the cost of hashing what is written (about 2 GB/s per core). Implied by delta_base; CheckpointManager sets it
  // for every save when its save_deltas is on.
  bool record_delta_hashes = false;
};

}  // namespace cairn
