// An OCDBT B+tree node (DecodeBtreeNode): envelope, height, data file table, then the leaf or interior columns.
// Length and CRC are repaired first (see fuzz_util.h). Decoded twice: as a node of the database's own files
// (empty transitive path) and as one reached through a merged database's base path.
#include "fuzz_util.h"
#include "kvstore/ocdbt/btree_node.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string encoded(cairn::fuzz::AsBytes(data, size));
  cairn::fuzz::RepairWholeEnvelope(encoded);
  constexpr size_t kMaxDecodedBytes = size_t{1} << 20;
  for (const char* transitive_path : {"", "ocdbt.process_0/"}) {
    cairn::fuzz::IgnoreCairnErrors([&] {
      cairn::kvstore::ocdbt::DecodeBtreeNode(encoded, transitive_path, kMaxDecodedBytes, "B+tree node");
    });
  }
  return 0;
}
