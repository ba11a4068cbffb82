// Element types of arrays, and their names in the formats Orbax writes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace cairn {

enum class DType : uint8_t {
  kBool,
  kInt8,
  kInt16,
  kInt32,
  kInt64,
  kUInt8,
  kUInt16,
  kUInt32,
  kUInt64,
  kFloat16,
  kBFloat16,
  kFloat32,
  kFloat64,
  kComplex64,
  kComplex128,
  kFloat8E4M3FN,
  kFloat8E5M2,
  // The other types of ml_dtypes that Orbax (TensorStore) writes, one byte an element: stored and restored exactly;
  // casting to or from them is an UnimplementedError. int4 and int2 keep their value in the byte's low bits.
  kInt4,
  kInt2,
  kFloat8E4M3FNUZ,
  kFloat8E4M3B11FNUZ,
  kFloat8E5M2FNUZ,
  kFloat8E3M4,
  kFloat8E8M0FNU,
  kFloat4E2M1FN,
};

// Bytes per element.
size_t ItemSize(DType dtype);

// The NumPy / JAX name: "float32", "bfloat16", "float8_e4m3fn", ... This is also zarr3's `data_type`.
std::string_view DTypeName(DType dtype);
// Inverse of DTypeName; throws InvalidArgumentError naming the unknown string.
DType DTypeFromName(std::string_view name);

bool IsFloatingPoint(DType dtype);  // float16/bfloat16/float32/float64/float8/float4
// Whether Array::Cast converts to and from this type (every type but the storage-only ones listed last above).
bool IsCastable(DType dtype);
bool IsComplex(DType dtype);
bool IsInteger(DType dtype);        // signed and unsigned, not bool

// Maps a C++ element type to its DType (for Array::FromVector<T> and data<T>()).
template <typename T>
struct DTypeOf;
template <> struct DTypeOf<bool> { static constexpr DType value = DType::kBool; };
template <> struct DTypeOf<int8_t> { static constexpr DType value = DType::kInt8; };
template <> struct DTypeOf<int16_t> { static constexpr DType value = DType::kInt16; };
template <> struct DTypeOf<int32_t> { static constexpr DType value = DType::kInt32; };
template <> struct DTypeOf<int64_t> { static constexpr DType value = DType::kInt64; };
template <> struct DTypeOf<uint8_t> { static constexpr DType value = DType::kUInt8; };
template <> struct DTypeOf<uint16_t> { static constexpr DType value = DType::kUInt16; };
template <> struct DTypeOf<uint32_t> { static constexpr DType value = DType::kUInt32; };
template <> struct DTypeOf<uint64_t> { static constexpr DType value = DType::kUInt64; };
template <> struct DTypeOf<float> { static constexpr DType value = DType::kFloat32; };
template <> struct DTypeOf<double> { static constexpr DType value = DType::kFloat64; };

// Converts `count` elements from `src` (of `from`) to `dst` (of `to`), as NumPy's astype would: floats to
// integers truncate toward zero, narrowing floats round to nearest even, complex to real drops the imaginary
// part. Equal types copy bytes exactly.
void CastElements(const void* src, DType from, void* dst, DType to, size_t count);

}  // namespace cairn
