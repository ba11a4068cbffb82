// safetensors files (safetensors::LoadFromBytes: the header's length, JSON, dtypes, shapes and offsets checked
// against the file's size, then the tensors read and nested into a Tree). The input is a whole file.
#include "cairn/safetensors.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  cairn::fuzz::IgnoreCairnErrors([&] {
    cairn::safetensors::LoadFromBytes(cairn::fuzz::AsBytes(data, size), "fuzz.safetensors");
  });
  return 0;
}
