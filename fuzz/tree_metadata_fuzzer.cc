// `_METADATA` (DecodeTreeMetadata), then the tree a restore builds from it (TreeFromMetadata), whose key paths
// come from the file and may clash.
#include "cairn/tree.h"
#include "fuzz_util.h"
#include "metadata/tree_metadata.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  cairn::fuzz::IgnoreCairnErrors([&] {
    namespace md = cairn::metadata;
    md::TreeMetadata metadata = md::DecodeTreeMetadata(cairn::fuzz::AsBytes(data, size), "_METADATA");
    md::TreeFromMetadata(metadata, [](const md::TreeMetadataEntry&) { return cairn::Tree::Placeholder(); });
  });
  return 0;
}
