// CRC-32C: a slicing-by-8 table fallback, and the SSE4.2 instruction chosen at run time (the library is built for
// baseline x86-64, so the instruction may only be used behind a CPU check).
#include "core/crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace cairn {
namespace crc32c_internal {
namespace {

constexpr uint32_t kPolynomial = 0x82F63B78;  // Castagnoli, bit-reversed

using Tables = std::array<std::array<uint32_t, 256>, 8>;

// tables[k][b] is the CRC contribution of byte b followed by k zero bytes; slicing-by-8 folds 8 input bytes per
// step with 8 lookups instead of 8 dependent shift loops.
constexpr Tables MakeTables() {
  Tables tables{};
  for (uint32_t b = 0; b < 256; ++b) {
    uint32_t crc = b;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1) ? kPolynomial : 0);
    tables[0][b] = crc;
  }
  for (uint32_t b = 0; b < 256; ++b) {
    for (int k = 1; k < 8; ++k) tables[k][b] = (tables[k - 1][b] >> 8) ^ tables[0][tables[k - 1][b] & 0xff];
  }
  return tables;
}

constexpr Tables kTables = MakeTables();

inline uint32_t LoadLE32(const unsigned char* p) {
  return uint32_t{p[0]} | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 24);
}

}  // namespace

uint32_t Software(std::string_view data, uint32_t crc) {
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  size_t n = data.size();
  uint32_t c = ~crc;
  while (n >= 8) {
    uint32_t lo = LoadLE32(p) ^ c;
    uint32_t hi = LoadLE32(p + 4);
    c = kTables[7][lo & 0xff] ^ kTables[6][(lo >> 8) & 0xff] ^ kTables[5][(lo >> 16) & 0xff] ^
        kTables[4][lo >> 24] ^ kTables[3][hi & 0xff] ^ kTables[2][(hi >> 8) & 0xff] ^
        kTables[1][(hi >> 16) & 0xff] ^ kTables[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) c = (c >> 8) ^ kTables[0][(c ^ *p++) & 0xff];
  return ~c;
}

// GF(2) arithmetic modulo the CRC polynomial, in the CRC's bit-reflected order (x^0 is the top bit). Used only
// to join CRCs of consecutive pieces: a few hundred operations per join, whatever the pieces' lengths.
uint32_t MultiplyModP(uint32_t a, uint32_t b) {
  uint32_t product = 0;
  for (uint32_t bit = 1u << 31; bit != 0; bit >>= 1) {
    if (a & bit) product ^= b;
    b = (b & 1) ? (b >> 1) ^ kPolynomial : b >> 1;
  }
  return product;
}

// x^(8 * bytes) mod P: the operator that advances a raw CRC state over `bytes` zero bytes.
uint32_t ZeroBytesOperator(uint64_t bytes) {
  uint32_t result = 1u << 31;      // x^0
  uint32_t x_power = 1u << 23;     // x^8: one byte
  for (; bytes != 0; bytes >>= 1) {
    if (bytes & 1) result = MultiplyModP(x_power, result);
    x_power = MultiplyModP(x_power, x_power);
  }
  return result;
}

#if defined(__x86_64__)

bool HardwareAvailable() {
  static const bool available = __builtin_cpu_supports("sse4.2");
  return available;
}

namespace {

__attribute__((target("sse4.2"))) inline uint64_t Load64(const char* p) {
  uint64_t word;
  std::memcpy(&word, p, 8);  // unaligned-safe; x86 is little-endian, as the CRC's byte order wants
  return word;
}

// Below this many bytes one stream is as fast as three plus the joins.
constexpr size_t kInterleaveMinBytes = 3 * 1024;

}  // namespace

// The crc32 instruction has a latency of three cycles and a throughput of one per cycle, so one dependent stream
// runs at a third of the unit's speed. Three independent streams over the three thirds of a long buffer keep it
// busy; their CRCs are then joined with the linearity of the CRC: crc(A || B) = shift(crc(A), |B|) ^ crc0(B),
// where crc0 starts from a zero state and shift advances a state over |B| zero bytes.
__attribute__((target("sse4.2"))) uint32_t Hardware(std::string_view data, uint32_t crc) {
  const char* p = data.data();
  size_t n = data.size();
  uint64_t c = ~crc;
  if (n >= kInterleaveMinBytes) {
    const size_t third = (n / 24) * 8;  // each stream a whole number of 8-byte words
    const char* a = p;
    const char* b = p + third;
    const char* d = p + 2 * third;
    uint64_t ca = c, cb = 0, cd = 0;
    for (size_t i = 0; i < third; i += 8) {
      ca = _mm_crc32_u64(ca, Load64(a + i));
      cb = _mm_crc32_u64(cb, Load64(b + i));
      cd = _mm_crc32_u64(cd, Load64(d + i));
    }
    const uint32_t shift = ZeroBytesOperator(third);
    uint32_t joined = MultiplyModP(shift, static_cast<uint32_t>(ca)) ^ static_cast<uint32_t>(cb);
    joined = MultiplyModP(shift, joined) ^ static_cast<uint32_t>(cd);
    c = joined;
    p += 3 * third;
    n -= 3 * third;
  }
  while (n >= 8) {
    c = _mm_crc32_u64(c, Load64(p));
    p += 8;
    n -= 8;
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  while (n-- > 0) c32 = _mm_crc32_u8(c32, static_cast<unsigned char>(*p++));
  return ~c32;
}

#else

bool HardwareAvailable() { return false; }
uint32_t Hardware(std::string_view data, uint32_t crc) { return Software(data, crc); }

#endif

}  // namespace crc32c_internal

// With raw states (no inversion) shift(s, n) = s * x^(8n) mod P is linear, and the inversions at both ends cancel:
// Crc32c(a + b) = shift(Crc32c(a), |b|) ^ Crc32c(b) (zlib's crc32_combine, for this polynomial).
uint32_t Crc32cWithBlocks(std::string_view value, std::vector<uint32_t>* blocks) {
  if (value.size() <= kCrc32cBlockBytes) return Crc32c(value);
  uint32_t whole = 0;
  for (uint64_t begin = 0; begin < value.size(); begin += kCrc32cBlockBytes) {
    const auto block = value.substr(begin, kCrc32cBlockBytes);
    const uint32_t crc = Crc32c(block);
    if (blocks) blocks->push_back(crc);
    whole = begin == 0 ? crc : Crc32cCombine(whole, crc, block.size());
  }
  return whole;
}

uint32_t Crc32cCombine(uint32_t crc_a, uint32_t crc_b, uint64_t length_b) {
  return crc32c_internal::MultiplyModP(crc32c_internal::ZeroBytesOperator(length_b), crc_a) ^ crc_b;
}

uint32_t Crc32c(std::string_view data, uint32_t crc) {
  if (crc32c_internal::HardwareAvailable()) return crc32c_internal::Hardware(data, crc);
  return crc32c_internal::Software(data, crc);
}

}  // namespace cairn
