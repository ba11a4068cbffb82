// Conversions between float and the narrow floating-point formats (IEEE half, bfloat16, float8), rounding to
// nearest even as ml_dtypes does. Internal to the core layer.
#pragma once

#include <cstdint>

namespace cairn {

float HalfToFloat(uint16_t bits);
uint16_t FloatToHalf(float value);
float BFloat16ToFloat(uint16_t bits);
uint16_t FloatToBFloat16(float value);
float Float8E4M3FNToFloat(uint8_t bits);  // no infinities; NaN is S.1111.111; largest finite 448
uint8_t FloatToFloat8E4M3FN(float value);  // out of range and infinities become NaN, as ml_dtypes does
float Float8E5M2ToFloat(uint8_t bits);     // IEEE-like: infinities and NaNs
uint8_t FloatToFloat8E5M2(float value);

}  // namespace cairn
