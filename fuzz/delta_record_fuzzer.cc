// `cairn_delta/process_<i>` (DecodeDeltaRecord): JSON with its own CRC-32C, SHA-256 digests in hex by key. A mutated
// record nearly always fails its CRC, so each input is tried as given and then with the CRC repaired (as the OCDBT
// targets repair envelopes), so that mutations reach the fields behind the check. A record that decodes must encode
// and decode again to the same record.
#include <nlohmann/json.hpp>

#include "core/crc32c.h"
#include "fuzz_util.h"
#include "metadata/delta_record.h"

namespace {

void DecodeAndRoundTrip(std::string_view text) {
  cairn::fuzz::IgnoreCairnErrors([&] {
    const cairn::metadata::DeltaRecordFile record = cairn::metadata::DecodeDeltaRecord(text, "record");
    const cairn::metadata::DeltaRecordFile again =
        cairn::metadata::DecodeDeltaRecord(cairn::metadata::EncodeDeltaRecord(record), "re-encoded record");
    if (again.sha256 != record.sha256 || again.raw_sha256 != record.raw_sha256 ||
        again.raw_crc32c != record.raw_crc32c ||
        again.bytes_written != record.bytes_written || again.bytes_shared != record.bytes_shared ||
        again.base != record.base || again.save_id != record.save_id) {
      __builtin_trap();  // a record that does not survive its own encoding
    }
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text = cairn::fuzz::AsBytes(data, size);
  DecodeAndRoundTrip(text);
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) return 0;
  doc.erase("crc32c");
  doc["crc32c"] = cairn::Crc32c(doc.dump());
  DecodeAndRoundTrip(doc.dump());
  return 0;
}
