// `_CHECKPOINT_METADATA` (DecodeCheckpointMetadata).
#include "fuzz_util.h"
#include "metadata/checkpoint_metadata.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  cairn::fuzz::IgnoreCairnErrors([&] {
    cairn::metadata::DecodeCheckpointMetadata(cairn::fuzz::AsBytes(data, size), "_CHECKPOINT_METADATA");
  });
  return 0;
}
