// DescribeCheckpoint: what a checkpoint holds, from its metadata alone (`cairn info`).
#pragma once

#include <filesystem>
#include <memory>

#include <nlohmann/json.hpp>

#include "cairn/file_system.h"

namespace cairn {

// A JSON description of the checkpoint at `path`, read from metadata files only (no array chunk is read):
//   {"path", "kind": "root" | "step" | "item",
//    root:  "steps": [<step description, plus "name">...], "unfinished": [names]
//    step/item: "step_metadata": _CHECKPOINT_METADATA as JSON (null when absent), "committed": bool,
//           "items": [{"name" ("" when the directory is the item), "handler", "kind": "pytree" | "json" | "other",
//                      pytree: "layout": {"ocdbt", "zarr_formats": [2|3...], "processes", "checksums"},
//                              "custom_metadata", "bytes" (sum over arrays),
//                              "delta": null, or (steps saved with delta tracking, `cairn_delta/`) {"base" (the base
//                                       item's directory, null for a full step), "bytes_written", "bytes_shared"},
//                              "tree": [{"name" (the parameter name), "value_type", and for arrays "dtype",
//                                        "shape", "bytes", "chunks", "compression" (null, "zstd(<level>)" or
//                                        "blosc(<cname>, <clevel>, <shuffle>)"), "zarr_format", "sharding" (its
//                                        `_sharding` entry, when there is one), "in_aggregate" (kept in the
//                                        legacy msgpack file); with `stored_sizes`, also "stored_bytes",
//                                        "stored_chunks" and, when compressed, "chunks_not_compressed" (stored at
//                                        full size: zstd's raw blocks)}],
//                      json: "files": {name: parsed JSON}}]}
// Problems with a single array's metadata are reported in its entry ("error") rather than thrown, so one broken
// array does not hide the rest. Throws NotFoundError (nothing there, or not a checkpoint) and
// InvalidArgumentError for an unfinished save. `stored_sizes` reads every chunk of every array to report what the
// compressor made of it (the only case where array data is read).
nlohmann::ordered_json DescribeCheckpoint(const std::filesystem::path& path,
                                          const std::shared_ptr<FileSystem>& fs = FileSystem::Default(),
                                          bool stored_sizes = false);

}  // namespace cairn
