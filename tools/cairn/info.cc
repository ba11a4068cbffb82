// cairn info: the tree, storage and step metadata, from metadata files alone.
#include <cstdio>
#include <iostream>

#include "cairn/inspect.h"
#include "cairn/safetensors.h"
#include "checkpoint/layout.h"
#include "cli.h"

namespace cairn::cli {
namespace {

using ojson = nlohmann::ordered_json;

constexpr const char* kHelp = R"(usage: cairn info [--json] DIR|FILE

What a checkpoint holds, read from its metadata files only (no array data is read):
the tree (parameter name, dtype, shape, bytes, chunk shape, compression), the step's
_CHECKPOINT_METADATA (handlers, metrics, timestamps, custom metadata) and the layout
(OCDBT or per-parameter zarr directories, zarr v2 or zarr3, processes, checksums) and, for steps saved with
delta tracking, how many chunk bytes the step wrote and how many it shares with its base step.
DIR may be a checkpoint manager's directory (its steps are listed), a step, a composite
step, or a single item. FILE may be a safetensors file (its header is shown).

  --json    print the description as JSON (the schema is in docs/cli.md)
  --stored  also read every chunk, to show what compression made of each array: its stored
            bytes (and their share of the array's) and how many chunks were stored without
            compression (zstd writes a chunk it does not shrink by 10% as raw blocks)
)";

std::string Str(const ojson& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

std::string Time(const ojson& nsecs) {
  if (!nsecs.is_number_integer()) return "-";
  std::time_t t = static_cast<std::time_t>(nsecs.get<int64_t>() / 1000000000);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", std::gmtime(&t));
  return buf;
}

std::string ShortHandler(const std::string& handler) {
  auto dot = handler.rfind('.');
  return dot == std::string::npos ? handler : handler.substr(dot + 1);
}

void PrintTable(const std::vector<std::vector<std::string>>& rows, const std::string& indent) {
  std::vector<size_t> width;
  for (const auto& row : rows) {
    width.resize(std::max(width.size(), row.size()));
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line = indent;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    std::cout << line << "\n";
  }
}

void PrintStep(const ojson& step, const std::string& indent) {
  const ojson& meta = step["step_metadata"];
  if (meta.is_null()) {
    std::cout << indent << "no _CHECKPOINT_METADATA\n";
  } else {
    std::cout << indent << "saved " << Time(meta["commit_timestamp_nsecs"]) << " (started "
              << Time(meta["init_timestamp_nsecs"]) << ")" << (step["committed"].get<bool>() ? ", committed" : "")
              << "\n";
    if (!meta["metrics"].empty()) std::cout << indent << "metrics: " << meta["metrics"].dump() << "\n";
    if (!meta["custom_metadata"].empty()) std::cout << indent << "custom_metadata: " << meta["custom_metadata"].dump() << "\n";
  }
  for (const auto& item : step["items"]) {
    const std::string name = item["name"].get<std::string>();
    std::string head = name.empty() ? "item" : "item " + name;
    if (!item["handler"].get<std::string>().empty()) head += " (" + ShortHandler(item["handler"]) + ")";
    if (item["kind"] == "pytree") {
      const ojson& layout = item["layout"];
      std::string zarr;
      for (const auto& f : layout["zarr_formats"]) zarr += std::string(zarr.empty() ? "" : "+") + (f == 3 ? "zarr3" : "zarr v2");
      std::cout << indent << head << ": " << (layout["ocdbt"].get<bool>() ? "OCDBT" : "per-parameter zarr directories")
                << (zarr.empty() ? "" : ", " + zarr) << ", " << layout["processes"].get<int>() << " process"
                << (layout["processes"].get<int>() == 1 ? "" : "es") << ", "
                << (layout["checksums"].get<bool>() ? "cairn checksums" : "no checksums")
                << (layout["metadata_file"].get<bool>() ? "" : ", no _METADATA") << "\n";
      if (!item["custom_metadata"].is_null() && !item["custom_metadata"].empty()) {
        std::cout << indent << "  custom_metadata: " << item["custom_metadata"].dump() << "\n";
      }
      if (item.contains("delta") && item["delta"].is_object()) {
        const ojson& delta = item["delta"];
        if (delta.contains("error")) {
          std::cout << indent << "  delta record: error: " << Str(delta["error"]) << "\n";
        } else {
          std::cout << indent << "  chunk bytes: " << HumanBytes(delta["bytes_written"].get<uint64_t>())
                    << " written, " << HumanBytes(delta["bytes_shared"].get<uint64_t>()) << " shared"
                    << (delta["base"].is_null() ? std::string(" (full step)")
                                                : " with " + delta["base"].get<std::string>())
                    << "\n";
        }
      }
      std::vector<std::vector<std::string>> rows = {{"name", "type", "dtype", "shape", "bytes", "chunks", "compression"}};
      size_t arrays = 0;
      for (const auto& leaf : item["tree"]) {
        std::vector<std::string> row = {Str(leaf["name"]), Str(leaf["value_type"])};
        if (leaf.contains("error")) {
          row.push_back("error: " + Str(leaf["error"]));
        } else if (leaf.contains("dtype")) {
          ++arrays;
          row.push_back(Str(leaf["dtype"]));
          row.push_back(ShapeText(leaf["shape"]));
          row.push_back(HumanBytes(leaf["bytes"].get<uint64_t>()));
          if (leaf.contains("chunks")) {
            row.push_back(ShapeText(leaf["chunks"]));
            std::string compression = leaf["compression"].is_null() ? "none" : Str(leaf["compression"]);
            if (leaf.contains("stored_bytes")) {
              const uint64_t bytes = leaf["bytes"].get<uint64_t>(), stored = leaf["stored_bytes"].get<uint64_t>();
              char share[32];
              std::snprintf(share, sizeof share, "%.0f%%", bytes ? 100.0 * static_cast<double>(stored) / bytes : 100.0);
              compression += ": " + HumanBytes(stored) + " stored (" + share + ")";
              if (leaf.contains("chunks_not_compressed")) {
                compression += ", " + std::to_string(leaf["chunks_not_compressed"].get<uint64_t>()) + "/" +
                               std::to_string(leaf["stored_chunks"].get<uint64_t>()) + " chunks raw";
              }
            }
            row.push_back(compression);
          } else {
            row.push_back("-");
            row.push_back("legacy msgpack file");
          }
        } else if (leaf.contains("value")) {
          row.push_back(Str(leaf["value"]));
        }
        rows.push_back(std::move(row));
      }
      PrintTable(rows, indent + "  ");
      std::cout << indent << "  " << arrays << " arrays, " << HumanBytes(item["bytes"].get<uint64_t>()) << "\n";
    } else {
      std::cout << indent << head << ": " << item["kind"].get<std::string>() << "\n";
      for (const auto& [file, value] : item["files"].items()) {
        std::cout << indent << "  " << file << ": " << value.dump() << "\n";
      }
    }
  }
}

ojson DescribeSafetensors(const std::filesystem::path& path) {
  auto header = safetensors::ReadHeader(path);
  ojson out;
  out["path"] = path.string();
  out["kind"] = "safetensors";
  out["metadata"] = header.metadata;
  uint64_t total = 0;
  ojson tensors = ojson::array();
  for (const auto& t : header.tensors) {
    ojson e;
    e["name"] = t.name;
    e["dtype"] = DTypeName(t.dtype);
    e["safetensors_dtype"] = safetensors::DTypeToSafetensors(t.dtype);
    e["shape"] = t.shape;
    e["bytes"] = t.end - t.begin;
    e["data_offsets"] = {t.begin, t.end};
    total += t.end - t.begin;
    tensors.push_back(std::move(e));
  }
  out["tensors"] = std::move(tensors);
  out["bytes"] = total;
  out["header_bytes"] = header.header_bytes;
  return out;
}

// Whether the description holds an error (a step that could not be read, an array whose metadata does not decode):
// the checkpoint is damaged, which the exit status must say even though the rest was printed.
bool HasErrors(const ojson& d) {
  auto step_has_errors = [](const ojson& step) {
    if (step.contains("error")) return true;
    for (const auto& item : step.value("items", ojson::array())) {
      for (const auto& leaf : item.value("tree", ojson::array())) {
        if (leaf.contains("error")) return true;
      }
    }
    return false;
  };
  if (d["kind"] != "root") return step_has_errors(d);
  for (const auto& step : d["steps"]) {
    if (step_has_errors(step)) return true;
  }
  return false;
}

}  // namespace

int Info(const std::vector<std::string>& argv) {
  Args args = ParseArgs(argv, {}, {"json", "stored", "help"});
  if (args.has("help")) {
    std::cout << kHelp;
    return kOk;
  }
  if (args.positional.size() != 1) throw UsageError("info takes one DIR or FILE");
  const std::filesystem::path path = args.positional[0];
  const auto kind = checkpoint::ClassifyPath(*FileSystem::Default(), path);
  if (kind == checkpoint::PathKind::kIncomplete) {
    throw Failure(kIncomplete, "Found incomplete checkpoint at " + path.string() + ": its save did not finish");
  }
  const ojson d = kind == checkpoint::PathKind::kFile ? DescribeSafetensors(path) : DescribeCheckpoint(path, FileSystem::Default(), args.has("stored"));
  const int status = HasErrors(d) ? kCorrupt : kOk;
  if (args.has("json")) {
    std::cout << d.dump(2) << "\n";
    return status;
  }
  const std::string k = d["kind"];
  if (k == "safetensors") {
    std::cout << d["path"].get<std::string>() << ": safetensors file, " << d["tensors"].size() << " tensors, "
              << HumanBytes(d["bytes"].get<uint64_t>()) << "\n";
    if (!d["metadata"].empty()) std::cout << "  __metadata__: " << d["metadata"].dump() << "\n";
    std::vector<std::vector<std::string>> rows = {{"name", "dtype", "shape", "bytes"}};
    for (const auto& t : d["tensors"]) {
      rows.push_back({Str(t["name"]), Str(t["dtype"]) + " (" + Str(t["safetensors_dtype"]) + ")", ShapeText(t["shape"]),
                      HumanBytes(t["bytes"].get<uint64_t>())});
    }
    PrintTable(rows, "  ");
  } else if (k == "root") {
    std::cout << d["path"].get<std::string>() << ": checkpoint manager directory, " << d["steps"].size() << " steps\n";
    for (const auto& step : d["steps"]) {
      std::cout << "step " << step["name"].get<std::string>() << "\n";
      if (step.contains("error")) {
        std::cout << "  error: " << Str(step["error"]) << "\n";
      } else {
        PrintStep(step, "  ");
      }
    }
    for (const auto& u : d["unfinished"]) std::cout << "unfinished save: " << Str(u) << "\n";
  } else {
    std::cout << d["path"].get<std::string>() << ": " << (k == "item" ? "checkpoint item" : "checkpoint") << "\n";
    PrintStep(d, "  ");
  }
  if (status != kOk) std::cerr << "cairn info: the checkpoint is damaged (errors above)\n";
  return status;
}

}  // namespace cairn::cli
