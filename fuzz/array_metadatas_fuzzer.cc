// `array_metadatas/process_<i>` (DecodeArrayMetadatas).
#include "fuzz_util.h"
#include "metadata/array_metadata.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  cairn::fuzz::IgnoreCairnErrors([&] {
    cairn::metadata::DecodeArrayMetadatas(cairn::fuzz::AsBytes(data, size), "array_metadatas/process_0");
  });
  return 0;
}
