#include "metadata/self_crc.h"

#include "core/crc32c.h"

namespace cairn::metadata {

void AddSelfCrc(nlohmann::json& doc) { doc[kSelfCrcMember] = Crc32c(doc.dump()); }

bool TakeSelfCrc(nlohmann::json& doc, bool* present) {
  const auto it = doc.find(kSelfCrcMember);
  const bool valid = it != doc.end() && it->is_number_unsigned() && it->get<uint64_t>() <= 0xffffffffu;
  if (present) *present = valid;
  if (!valid) return false;
  const uint32_t recorded = it->get<uint32_t>();
  doc.erase(it);
  return Crc32c(doc.dump()) == recorded;
}

}  // namespace cairn::metadata
