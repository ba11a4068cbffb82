#include "zarr/zarr_dtype.h"

#include <gtest/gtest.h>

#include "cairn/error.h"

namespace cairn::zarr {
namespace {

TEST(ZarrDType, RoundTripsEveryDType) {
  for (int i = 0; i <= static_cast<int>(DType::kFloat4E2M1FN); ++i) {
    const auto dtype = static_cast<DType>(i);
    EXPECT_EQ(DTypeFromZarrV2(ZarrV2DTypeString(dtype)), dtype) << DTypeName(dtype);
  }
}

TEST(ZarrDType, StringsAreTensorStores) {
  EXPECT_EQ(ZarrV2DTypeString(DType::kFloat32), "<f4");
  EXPECT_EQ(ZarrV2DTypeString(DType::kInt64), "<i8");
  EXPECT_EQ(ZarrV2DTypeString(DType::kBool), "|b1");
  EXPECT_EQ(ZarrV2DTypeString(DType::kUInt8), "|u1");
  EXPECT_EQ(ZarrV2DTypeString(DType::kInt8), "|i1");
  EXPECT_EQ(ZarrV2DTypeString(DType::kFloat16), "<f2");
  EXPECT_EQ(ZarrV2DTypeString(DType::kComplex64), "<c8");
  EXPECT_EQ(ZarrV2DTypeString(DType::kBFloat16), "bfloat16");
  EXPECT_EQ(ZarrV2DTypeString(DType::kComplex128), "<c16");
  EXPECT_EQ(ZarrV2DTypeString(DType::kFloat8E4M3FN), "float8_e4m3fn");
  EXPECT_EQ(ZarrV2DTypeString(DType::kInt4), "int4");
  EXPECT_EQ(DTypeFromZarrV2("=i4"), DType::kInt32);
  EXPECT_EQ(DTypeFromZarrV2("|i1"), DType::kInt8);
  EXPECT_EQ(DTypeFromZarrV2("<u1"), DType::kUInt8);
}

TEST(ZarrDType, UnknownStringsAreClearErrors) {
  EXPECT_THROW(DTypeFromZarrV2("<q9"), InvalidArgumentError);
  EXPECT_THROW(DTypeFromZarrV2("f4"), InvalidArgumentError);
  EXPECT_THROW(DTypeFromZarrV2("<bfloat16"), InvalidArgumentError);
  EXPECT_THROW(DTypeFromZarrV2(""), InvalidArgumentError);
  EXPECT_THROW(DTypeFromZarrV2(">f4"), UnimplementedError);
}

}  // namespace
}  // namespace cairn::zarr
