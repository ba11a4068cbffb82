// An OCDBT manifest (`manifest.ocdbt` or `manifest.<16 hex>`; DecodeManifest): envelope, config, data file table,
// inline versions and version-tree node references. Length and CRC are repaired first (see fuzz_util.h).
#include "fuzz_util.h"
#include "kvstore/ocdbt/manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string encoded(cairn::fuzz::AsBytes(data, size));
  cairn::fuzz::RepairWholeEnvelope(encoded);
  cairn::fuzz::IgnoreCairnErrors([&] { cairn::kvstore::ocdbt::DecodeManifest(encoded, "manifest.ocdbt"); });
  return 0;
}
