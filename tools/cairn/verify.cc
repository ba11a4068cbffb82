// cairn verify: every byte read, every checksum checked.
#include <iostream>

#include "cairn/error.h"
#include "cairn/safetensors.h"
#include "cairn/verify.h"
#include "checkpoint/layout.h"
#include "cli.h"

namespace cairn::cli {
namespace {

constexpr const char* kHelp = R"(usage: cairn verify [--json] [--no-progress] DIR|FILE

Reads every byte of the checkpoint: parses every metadata file and checks it against the
CRC-32C cairn recorded in cairn_checksums/, walks every OCDBT node (their own CRCs), and
reads and decodes every chunk each array's zarr metadata implies, checking its CRC-32C.
Checkpoints without checksums (written by Orbax) are still read and decoded whole, and the
report says there was nothing to compare against. DIR may be a manager's directory (every
step is verified), a step or an item. A safetensors FILE has its header validated and every
tensor read (the format has no checksums).

Exit status: 0 when all is well, 1 when anything is wrong (each problem is named), 3 when
there is no checkpoint, 5 for an unfinished save.

  --json          print the report as JSON
  --no-progress   no progress bar (it is shown only when stderr is a terminal)
)";

nlohmann::ordered_json ReportJson(const VerifyReport& r) {
  nlohmann::ordered_json out;
  out["path"] = r.path.string();
  out["kind"] = r.kind;
  out["ok"] = r.ok();
  out["problems"] = nlohmann::ordered_json::array();
  for (const auto& p : r.problems) out["problems"].push_back({{"where", p.where}, {"message", p.message}});
  out["notes"] = r.notes;
  out["steps"] = r.steps;
  out["items"] = r.items;
  out["arrays"] = r.arrays;
  out["chunks"] = r.chunks;
  out["chunks_checksummed"] = r.chunks_checksummed;
  out["files_checked"] = r.files_checked;
  out["files_checksummed"] = r.files_checksummed;
  out["bytes_read"] = r.bytes_read;
  return out;
}

VerifyReport VerifySafetensors(const std::filesystem::path& path, Progress& progress) {
  VerifyReport report;
  report.path = path;
  report.kind = "safetensors";
  try {
    auto header = safetensors::ReadHeader(path);
    const uint64_t total = header.data_offset() + (header.tensors.empty() ? 0 : header.tensors.back().end);
    report.files_checked = 1;
    auto loaded = safetensors::Load(path);  // reads every tensor
    report.arrays = header.tensors.size();
    report.bytes_read = total;
    progress.Update(total, total);
    report.notes.push_back("safetensors files carry no checksums: the header was validated and every tensor read");
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kCorruption && e.code() != ErrorCode::kUnimplemented &&
        e.code() != ErrorCode::kInvalidArgument) {
      throw;
    }
    report.problems.push_back({path.filename().string(), e.what()});
  }
  return report;
}

}  // namespace

int Verify(const std::vector<std::string>& argv) {
  Args args = ParseArgs(argv, {}, {"json", "no-progress", "help"});
  if (args.has("help")) {
    std::cout << kHelp;
    return kOk;
  }
  if (args.positional.size() != 1) throw UsageError("verify takes one DIR");
  const std::filesystem::path path = args.positional[0];
  const auto kind = checkpoint::ClassifyPath(*FileSystem::Default(), path);
  if (kind == checkpoint::PathKind::kIncomplete) {
    throw Failure(kIncomplete, "Found incomplete checkpoint at " + path.string() + ": its save did not finish");
  }
  Progress progress("verify", ProgressWanted(args));
  VerifyReport report;
  if (kind == checkpoint::PathKind::kFile) {
    report = VerifySafetensors(path, progress);
  } else {
    VerifyOptions options;
    options.progress = [&](uint64_t done, uint64_t total) { progress.Update(done, total); };
    report = VerifyCheckpoint(path, options);
  }
  progress.Finish();
  if (args.has("json")) {
    std::cout << ReportJson(report).dump(2) << "\n";
  } else {
    for (const auto& p : report.problems) std::cout << "BAD  " << p.where << ": " << p.message << "\n";
    for (const auto& n : report.notes) std::cout << "note " << n << "\n";
    std::cout << (report.ok() ? "OK   " : "FAILED ") << report.path.string() << ": ";
    if (report.kind == "safetensors") {
      std::cout << report.arrays << " tensors, ";
    } else {
      std::cout << report.steps << (report.steps == 1 ? " step, " : " steps, ") << report.items
                << (report.items == 1 ? " item, " : " items, ") << report.arrays << " arrays, " << report.chunks
                << " chunks (" << report.chunks_checksummed << " with a checksum), " << report.files_checked
                << " metadata files (" << report.files_checksummed << " with a checksum), ";
    }
    std::cout << HumanBytes(report.bytes_read) << " read";
    if (!report.ok()) std::cout << "; " << report.problems.size() << " problem" << (report.problems.size() == 1 ? "" : "s");
    std::cout << "\n";
  }
  return report.ok() ? kOk : kFound;
}

}  // namespace cairn::cli
