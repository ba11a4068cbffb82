// VerifyCheckpoint: reads every byte of a checkpoint and says whether it is intact (`cairn verify`).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cairn/file_system.h"

namespace cairn {

struct VerifyOptions {
  std::shared_ptr<FileSystem> file_system = FileSystem::Default();
  // Called as bytes are read (done, total), from the calling thread or a worker, never concurrently. `total` is the
  // size of every file under the path; `done` reaches it at the end.
  std::function<void(uint64_t done, uint64_t total)> progress;
};

struct VerifyProblem {
  std::string where;    // the file, chunk ("<item>: params.w/0.0") or parameter it is about
  std::string message;  // what is wrong with it
};

struct VerifyReport {
  std::filesystem::path path;
  std::string kind;                     // "root", "step" or "item"
  std::vector<VerifyProblem> problems;  // empty: all is well
  std::vector<std::string> notes;       // facts worth knowing that are not problems ("no checksums: ...")
  uint64_t steps = 0;                   // steps verified (a root's; 1 for a step or item)
  uint64_t items = 0;                   // items verified
  uint64_t arrays = 0;                  // zarr arrays whose every chunk was read and decoded
  uint64_t chunks = 0;                  // chunks read and decoded
  uint64_t chunks_checksummed = 0;      // ... of which checked against a recorded CRC-32C
  uint64_t files_checked = 0;           // metadata files read and parsed
  uint64_t files_checksummed = 0;       // ... of which checked against a recorded CRC-32C
  uint64_t bytes_read = 0;
  bool ok() const { return problems.empty(); }
};

// Verifies the checkpoint at `path`: a single item, a step (one item or several, `_CHECKPOINT_METADATA`), or a
// CheckpointManager root (every step). It reads every metadata file and parses it, checks each against the
// CRC-32C cairn recorded in `cairn_checksums/` (when there is one), walks every OCDBT B+tree node (their own
// CRCs), and for every array reads every chunk its zarr metadata implies, checks the chunk's CRC-32C when
// recorded and decodes it. Problems are collected, not thrown: the report names each broken file, chunk or
// parameter. Checkpoints without checksums (Orbax's) get a note, and every chunk is still decoded.
//
// Throws NotFoundError when nothing is at `path` or it holds no checkpoint, InvalidArgumentError for an
// unfinished save (`*.orbax-checkpoint-tmp`).
VerifyReport VerifyCheckpoint(const std::filesystem::path& path, const VerifyOptions& options = {});

}  // namespace cairn
