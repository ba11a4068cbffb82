#include "kvstore/ocdbt/random_id.h"

#include <random>

namespace cairn::kvstore::ocdbt {

std::array<uint8_t, 16> RandomId128() {
  // std::random_device reads the OS entropy source on Linux; ids are rare (one per data file), so its cost is moot.
  std::random_device device;
  std::array<uint8_t, 16> id{};
  for (size_t i = 0; i < id.size(); i += 4) {
    uint32_t word = device();
    for (size_t j = 0; j < 4; ++j) id[i + j] = static_cast<uint8_t>(word >> (8 * j));
  }
  return id;
}

std::string ToLowerHex(const std::array<uint8_t, 16>& id) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(32);
  for (uint8_t byte : id) {
    out.push_back(kDigits[byte >> 4]);
    out.push_back(kDigits[byte & 0xf]);
  }
  return out;
}

}  // namespace cairn::kvstore::ocdbt
