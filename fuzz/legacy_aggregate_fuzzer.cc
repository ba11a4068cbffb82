// The legacy msgpack aggregate file `checkpoint` (DecodeMsgpackAggregate): Flax's msgpack with ndarray, NumPy
// scalar, complex and tuple extensions and chunked arrays.
#include "fuzz_util.h"
#include "metadata/legacy_aggregate.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  cairn::fuzz::IgnoreCairnErrors(
      [&] { cairn::metadata::DecodeMsgpackAggregate(cairn::fuzz::AsBytes(data, size), "checkpoint"); });
  return 0;
}
