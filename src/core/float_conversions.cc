#include "core/float_conversions.h"

#include <cmath>
#include <cstring>
#include <limits>

namespace cairn {
namespace {

// A small binary floating-point format: 1 sign bit, `exponent_bits`, `mantissa_bits`.
struct SmallFloat {
  int exponent_bits;
  int mantissa_bits;
  int bias;
  bool ieee;  // true: all-ones exponent is inf/NaN. false (the "fn" formats): only all-ones bits are NaN.
};

constexpr SmallFloat kHalf{5, 10, 15, true};
constexpr SmallFloat kE4M3FN{4, 3, 7, false};
constexpr SmallFloat kE5M2{5, 2, 15, true};

uint32_t Encode(const SmallFloat& f, float value) {
  const uint32_t sign = std::signbit(value) ? 1u << (f.exponent_bits + f.mantissa_bits) : 0u;
  const uint32_t exponent_mask = (1u << f.exponent_bits) - 1;
  const uint32_t mantissa_mask = (1u << f.mantissa_bits) - 1;
  const uint32_t nan = f.ieee ? (exponent_mask << f.mantissa_bits) | (1u << (f.mantissa_bits - 1))
                              : (exponent_mask << f.mantissa_bits) | mantissa_mask;
  const uint32_t overflow = f.ieee ? exponent_mask << f.mantissa_bits : nan;
  if (std::isnan(value)) return sign | nan;
  double a = std::fabs(static_cast<double>(value));
  if (std::isinf(a)) return sign | overflow;
  if (a == 0.0) return sign;
  const int min_exponent = 1 - f.bias;
  int exponent;
  std::frexp(a, &exponent);
  exponent -= 1;  // a = m * 2^exponent with m in [1, 2)
  if (exponent < min_exponent) {
    // Subnormal; rounding may carry into the smallest normal, which the integer code expresses by itself.
    double q = std::nearbyint(std::ldexp(a, f.mantissa_bits - min_exponent));
    return sign | static_cast<uint32_t>(q);
  }
  double mantissa = std::nearbyint(std::ldexp(a, f.mantissa_bits - exponent));
  if (mantissa >= std::ldexp(1.0, f.mantissa_bits + 1)) {
    mantissa = std::ldexp(1.0, f.mantissa_bits);
    exponent += 1;
  }
  const uint32_t field = static_cast<uint32_t>(exponent + f.bias);
  const uint32_t code = (field << f.mantissa_bits) | (static_cast<uint32_t>(mantissa) & mantissa_mask);
  const uint32_t max_finite = f.ieee ? ((exponent_mask - 1) << f.mantissa_bits) | mantissa_mask : nan - 1;
  if (field > exponent_mask || code > max_finite) return sign | overflow;
  return sign | code;
}

float Decode(const SmallFloat& f, uint32_t bits) {
  const uint32_t exponent_mask = (1u << f.exponent_bits) - 1;
  const uint32_t mantissa_mask = (1u << f.mantissa_bits) - 1;
  const bool negative = (bits >> (f.exponent_bits + f.mantissa_bits)) & 1;
  const uint32_t field = (bits >> f.mantissa_bits) & exponent_mask;
  const uint32_t mantissa = bits & mantissa_mask;
  double magnitude;
  if (field == exponent_mask && (f.ieee || mantissa == mantissa_mask)) {
    magnitude = (f.ieee && mantissa == 0) ? std::numeric_limits<double>::infinity()
                                          : std::numeric_limits<double>::quiet_NaN();
  } else if (field == 0) {
    magnitude = std::ldexp(static_cast<double>(mantissa), 1 - f.bias - f.mantissa_bits);
  } else {
    magnitude = std::ldexp(static_cast<double>(mantissa | (1u << f.mantissa_bits)),
                           static_cast<int>(field) - f.bias - f.mantissa_bits);
  }
  return static_cast<float>(negative ? -magnitude : magnitude);
}

}  // namespace

float HalfToFloat(uint16_t bits) { return Decode(kHalf, bits); }
uint16_t FloatToHalf(float value) { return static_cast<uint16_t>(Encode(kHalf, value)); }
float Float8E4M3FNToFloat(uint8_t bits) { return Decode(kE4M3FN, bits); }
uint8_t FloatToFloat8E4M3FN(float value) { return static_cast<uint8_t>(Encode(kE4M3FN, value)); }
float Float8E5M2ToFloat(uint8_t bits) { return Decode(kE5M2, bits); }
uint8_t FloatToFloat8E5M2(float value) { return static_cast<uint8_t>(Encode(kE5M2, value)); }

float BFloat16ToFloat(uint16_t bits) {
  uint32_t wide = static_cast<uint32_t>(bits) << 16;
  float value;
  std::memcpy(&value, &wide, sizeof value);
  return value;
}

uint16_t FloatToBFloat16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  if (std::isnan(value)) return static_cast<uint16_t>((bits >> 16) | 0x40);  // keep it a quiet NaN
  bits += 0x7fff + ((bits >> 16) & 1);  // round to nearest even
  return static_cast<uint16_t>(bits >> 16);
}

}  // namespace cairn
