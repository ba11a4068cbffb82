// zarr v2 `.zarray` (DecodeZarrV2Metadata).
#include "fuzz_util.h"
#include "zarr/zarr_metadata.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  cairn::fuzz::IgnoreCairnErrors([&] {
    cairn::zarr::DecodeZarrV2Metadata(cairn::fuzz::AsBytes(data, size), ".zarray");
  });
  return 0;
}
