// JsonCheckpointHandler: one JSON document, written by the primary host as Python's json.dumps would.
#include "cairn/error.h"
#include "core/plain_name.h"
#include "cairn/handlers.h"
#include "metadata/checksums.h"
#include "metadata/python_json.h"

namespace cairn {
namespace {
// Orbax's v1 JsonHandler names its file `data.json`; v0 names it after the handler's `filename`.
constexpr const char* kV1JsonFile = "data.json";
}  // namespace

JsonCheckpointHandler::JsonCheckpointHandler(std::string filename) : filename_(std::move(filename)) {
  if (!IsPlainName(filename_)) {
    throw InvalidArgumentError("JsonCheckpointHandler: bad filename \"" + filename_ + "\": " + kPlainNameRule);
  }
}

bool JsonCheckpointHandler::reads_arrays_through_snapshot() const {
  return true;  // it reads no arrays
}

std::string JsonCheckpointHandler::typestr() const {
  return "orbax.checkpoint._src.handlers.json_checkpoint_handler.JsonCheckpointHandler";
}

void JsonCheckpointHandler::save(const HandlerDirectory& directory, const CheckpointArgs& args) {
  const auto& a = ArgsAs<args::JsonSave>(args, "JsonCheckpointHandler");
  if (!directory.is_primary()) return;  // written once, by the primary
  // With its CRC-32C beside it (cairn_<filename>.crc32c), checked on every read.
  const auto path = directory / filename_;
  metadata::WriteFileWithChecksum(directory.fs(), path, metadata::PythonJsonDumps(nlohmann::ordered_json(a.item)),
                                  metadata::ChecksumFileFor(path));
}

Tree JsonCheckpointHandler::restore(const HandlerDirectory& directory, const CheckpointArgs* args) {
  if (args) ArgsAs<args::JsonRestore>(*args, "JsonCheckpointHandler");
  auto path = directory / filename_;
  if (!directory.fs().Exists(path) && !directory.fs().Exists(metadata::ChecksumFileFor(path)) &&
      directory.fs().Exists(directory / kV1JsonFile)) {
    path = directory / kV1JsonFile;
  }
  auto text = metadata::ReadFileWithChecksum(directory.fs(), path, metadata::ChecksumFileFor(path));
  if (!text) throw NotFoundError("JSON item file " + path.string() + " does not exist");
  return Tree::FromJson(metadata::ParseJson(*text, path.string()));
}

Tree JsonCheckpointHandler::metadata(const HandlerDirectory& directory) { return restore(directory, nullptr); }

}  // namespace cairn
