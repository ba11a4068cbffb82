// PyTreeCheckpointHandler: a Tree saved as Orbax's base_pytree_checkpoint_handler saves it. The item format
// itself is the item layer's (item/writer.h, item/reader.h); this handler says who writes what (the processes)
// and turns the handler contract's args into the item's requests.
#include "cairn/error.h"
#include "cairn/handlers.h"
#include "item/array_storage.h"
#include "item/delta_base.h"
#include "item/reader.h"
#include "item/writer.h"

namespace cairn {

PyTreeCheckpointHandler::PyTreeCheckpointHandler(PyTreeCheckpointHandlerOptions options)
    : options_(options), saved_buffers_(std::make_shared<item::SavedBuffers>()) {
  const std::string& c = options_.compressor;
  if (c != "zstd" && c != "blosc-lz4" && c != "blosc-zstd") {
    throw InvalidArgumentError("compressor \"" + c + "\" is not one cairn writes (zstd, blosc-lz4, blosc-zstd)");
  }
}

bool PyTreeCheckpointHandler::reads_arrays_through_snapshot() const {
  return true;  // item::WriteItem reads each array inside a SnapshotRead
}

std::string PyTreeCheckpointHandler::typestr() const {
  return "orbax.checkpoint._src.handlers.pytree_checkpoint_handler.PyTreeCheckpointHandler";
}

void PyTreeCheckpointHandler::save(const HandlerDirectory& directory, const CheckpointArgs& args) {
  const auto& a = ArgsAs<args::PyTreeSave>(args, "PyTreeCheckpointHandler");
  item::Writer writer;
  writer.process = directory.process_index();
  writer.process_count = directory.process_count();
  writer.primary = directory.is_primary();
  writer.delta = directory.delta_base();
  writer.saved_buffers = saved_buffers_;
  item::WriteItem(directory.fs_ptr(), directory, options_, writer,
                  item::SaveRequest{a.item, a.save_args, a.custom_metadata, a.ocdbt_target_data_file_size});
}

Tree PyTreeCheckpointHandler::restore(const HandlerDirectory& directory, const CheckpointArgs* args) {
  item::RestoreRequest request;
  request.restore_concurrent_gb = options_.restore_concurrent_gb;
  if (args) {
    const auto& a = ArgsAs<args::PyTreeRestore>(*args, "PyTreeCheckpointHandler");
    request.item = a.item;
    request.restore_args = a.restore_args;
    request.partial_restore = a.partial_restore;
    request.strict = a.strict;
  }
  return item::ItemReader(directory.fs_ptr(), directory, options_.verify_checksums).Restore(request);
}

Tree PyTreeCheckpointHandler::metadata(const HandlerDirectory& directory) {
  return item::ItemReader(directory.fs_ptr(), directory, options_.verify_checksums).Metadata();
}

void PyTreeCheckpointHandler::finalize(const HandlerDirectory& directory) {
  if (options_.use_ocdbt) item::FinalizeArrayStore(directory.fs_ptr(), directory, options_);
}

}  // namespace cairn
