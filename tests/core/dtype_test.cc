#include "cairn/dtype.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "cairn/error.h"
#include "core/float_conversions.h"

namespace cairn {
namespace {

const DType kAll[] = {DType::kBool,     DType::kInt8,      DType::kInt16,        DType::kInt32,     DType::kInt64,
                      DType::kUInt8,    DType::kUInt16,    DType::kUInt32,       DType::kUInt64,    DType::kFloat16,
                      DType::kBFloat16, DType::kFloat32,   DType::kFloat64,      DType::kComplex64, DType::kComplex128,
                      DType::kFloat8E4M3FN, DType::kFloat8E5M2};

TEST(DType, NamesRoundTrip) {
  for (DType dtype : kAll) {
    EXPECT_EQ(DTypeFromName(DTypeName(dtype)), dtype);
  }
}

TEST(DType, UnknownNamesAreClearErrors) {
  EXPECT_THROW(DTypeFromName("float128"), InvalidArgumentError);
}

TEST(DType, ItemSizes) {
  EXPECT_EQ(ItemSize(DType::kBool), 1u);
  EXPECT_EQ(ItemSize(DType::kBFloat16), 2u);
  EXPECT_EQ(ItemSize(DType::kComplex64), 8u);
  EXPECT_EQ(ItemSize(DType::kComplex128), 16u);
  EXPECT_EQ(ItemSize(DType::kFloat8E5M2), 1u);
}

TEST(DType, CastIntegersWrapLikeNumpy) {
  int32_t in[] = {-1, 300, 7};
  uint8_t out[3];
  CastElements(in, DType::kInt32, out, DType::kUInt8, 3);
  EXPECT_EQ(out[0], 255);
  EXPECT_EQ(out[1], 44);
  EXPECT_EQ(out[2], 7);
}

TEST(DType, CastFloatToIntTruncates) {
  double in[] = {-2.7, 2.7, 1e300, std::nan("")};
  int32_t out[4];
  CastElements(in, DType::kFloat64, out, DType::kInt32, 4);
  EXPECT_EQ(out[0], -2);
  EXPECT_EQ(out[1], 2);
  EXPECT_EQ(out[2], std::numeric_limits<int32_t>::max());
  EXPECT_EQ(out[3], 0);
}

TEST(DType, Int64SurvivesExactly) {
  int64_t in[] = {std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()};
  uint64_t out[2];
  CastElements(in, DType::kInt64, out, DType::kUInt64, 2);
  EXPECT_EQ(out[0], uint64_t{1} << 63);
  EXPECT_EQ(out[1], (uint64_t{1} << 63) - 1);
}

TEST(DType, BoolCasts) {
  float in[] = {0.0f, -0.5f, 3.0f};
  uint8_t out[3];
  CastElements(in, DType::kFloat32, out, DType::kBool, 3);
  EXPECT_EQ(out[0], 0);
  EXPECT_EQ(out[1], 1);
  EXPECT_EQ(out[2], 1);
}

TEST(DType, NarrowFloatsRoundToNearestEven) {
  EXPECT_EQ(FloatToBFloat16(1.0f), 0x3f80);
  EXPECT_EQ(BFloat16ToFloat(0x3f80), 1.0f);
  // 1 + 2^-8 lies halfway between two bfloat16 values: ties go to the even mantissa (1.0).
  EXPECT_EQ(FloatToBFloat16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);
  EXPECT_EQ(FloatToHalf(1.0f), 0x3c00);
  EXPECT_EQ(FloatToHalf(65504.0f), 0x7bff);
  EXPECT_EQ(FloatToHalf(1e6f), 0x7c00);  // overflow -> inf
  EXPECT_EQ(HalfToFloat(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -24)), 0x0001);
  EXPECT_TRUE(std::isnan(HalfToFloat(0x7e00)));
  EXPECT_EQ(FloatToFloat8E4M3FN(448.0f), 0x7e);
  EXPECT_EQ(Float8E4M3FNToFloat(0x7e), 448.0f);
  EXPECT_TRUE(std::isnan(Float8E4M3FNToFloat(0x7f)));
  EXPECT_EQ(FloatToFloat8E4M3FN(1000.0f), 0x7f);  // no infinity in e4m3fn: NaN
  EXPECT_EQ(FloatToFloat8E5M2(1.0f), 0x3c);
  EXPECT_EQ(FloatToFloat8E5M2(1e6f), 0x7c);  // inf
  EXPECT_EQ(Float8E5M2ToFloat(0x3c), 1.0f);
  EXPECT_EQ(FloatToFloat8E4M3FN(-0.0f), 0x80);
}

TEST(DType, EveryNarrowFloatCodeRoundTrips) {
  for (uint32_t bits = 0; bits < 65536; ++bits) {
    float f = HalfToFloat(static_cast<uint16_t>(bits));
    if (!std::isnan(f)) {
      EXPECT_EQ(FloatToHalf(f), bits);
    }
    float b = BFloat16ToFloat(static_cast<uint16_t>(bits));
    if (!std::isnan(b)) {
      EXPECT_EQ(FloatToBFloat16(b), bits);
    }
  }
  for (uint32_t bits = 0; bits < 256; ++bits) {
    float a = Float8E4M3FNToFloat(static_cast<uint8_t>(bits));
    if (!std::isnan(a)) {
      EXPECT_EQ(FloatToFloat8E4M3FN(a), bits);
    }
    float b = Float8E5M2ToFloat(static_cast<uint8_t>(bits));
    if (!std::isnan(b)) {
      EXPECT_EQ(FloatToFloat8E5M2(b), bits);
    }
  }
}

TEST(DType, ComplexToRealDropsImaginary) {
  float in[] = {1.5f, 9.0f};  // one complex64
  double out;
  CastElements(in, DType::kComplex64, &out, DType::kFloat64, 1);
  EXPECT_EQ(out, 1.5);
}

}  // namespace
}  // namespace cairn
