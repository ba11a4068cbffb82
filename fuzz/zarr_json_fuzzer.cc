// zarr3 `zarr.json` (DecodeZarr3Metadata).
#include "fuzz_util.h"
#include "zarr/zarr_metadata.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  cairn::fuzz::IgnoreCairnErrors([&] {
    cairn::zarr::DecodeZarr3Metadata(cairn::fuzz::AsBytes(data, size), "zarr.json");
  });
  return 0;
}
