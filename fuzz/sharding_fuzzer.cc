// `_sharding` (DecodeSharding): a JSON object of base64url keys whose values are JSON text themselves; then each
// NamedSharding in it read back as cairn's NamedSharding (NamedSharding::FromOrbaxJson, the public way to turn a
// `_sharding` value into a sharding) and asked for its process count.
#include "cairn/sharding.h"
#include "fuzz_util.h"
#include "metadata/array_metadata.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  cairn::fuzz::IgnoreCairnErrors([&] {
    auto shardings = cairn::metadata::DecodeSharding(cairn::fuzz::AsBytes(data, size), "_sharding");
    for (const auto& entry : shardings) {
      if (entry.second.value("sharding_type", "") != "NamedSharding") continue;
      cairn::fuzz::IgnoreCairnErrors([&] {
        cairn::NamedSharding sharding = cairn::NamedSharding::FromOrbaxJson(entry.second);
        sharding.num_processes();
      });
    }
  });
  return 0;
}
