#include "cairn/dtype.h"

#include <array>
#include <cmath>
#include <complex>
#include <cstring>

#include "cairn/error.h"
#include "core/float_conversions.h"

namespace cairn {
namespace {

struct DTypeInfo {
  DType dtype;
  size_t item_size;
  std::string_view name;  // NumPy / zarr3 name
};

constexpr std::array<DTypeInfo, 25> kDTypes = {{
    {DType::kBool, 1, "bool"},
    {DType::kInt8, 1, "int8"},
    {DType::kInt16, 2, "int16"},
    {DType::kInt32, 4, "int32"},
    {DType::kInt64, 8, "int64"},
    {DType::kUInt8, 1, "uint8"},
    {DType::kUInt16, 2, "uint16"},
    {DType::kUInt32, 4, "uint32"},
    {DType::kUInt64, 8, "uint64"},
    {DType::kFloat16, 2, "float16"},
    {DType::kBFloat16, 2, "bfloat16"},
    {DType::kFloat32, 4, "float32"},
    {DType::kFloat64, 8, "float64"},
    {DType::kComplex64, 8, "complex64"},
    {DType::kComplex128, 16, "complex128"},
    {DType::kFloat8E4M3FN, 1, "float8_e4m3fn"},
    {DType::kFloat8E5M2, 1, "float8_e5m2"},
    {DType::kInt4, 1, "int4"},
    {DType::kInt2, 1, "int2"},
    {DType::kFloat8E4M3FNUZ, 1, "float8_e4m3fnuz"},
    {DType::kFloat8E4M3B11FNUZ, 1, "float8_e4m3b11fnuz"},
    {DType::kFloat8E5M2FNUZ, 1, "float8_e5m2fnuz"},
    {DType::kFloat8E3M4, 1, "float8_e3m4"},
    {DType::kFloat8E8M0FNU, 1, "float8_e8m0fnu"},
    {DType::kFloat4E2M1FN, 1, "float4_e2m1fn"},
}};

const DTypeInfo& Info(DType dtype) {
  auto index = static_cast<size_t>(dtype);
  if (index >= kDTypes.size()) throw InvalidArgumentError("invalid DType value " + std::to_string(index));
  return kDTypes[index];
}

// Every element passes through one of these two "wide" forms: integers (and bool) as int64/uint64 so that
// 64-bit values survive exactly, everything else as complex<double>.
enum class Wide { kSigned, kUnsigned, kFloat };

Wide WideKind(DType dtype) {
  switch (dtype) {
    case DType::kBool:
    case DType::kUInt8:
    case DType::kUInt16:
    case DType::kUInt32:
    case DType::kUInt64: return Wide::kUnsigned;
    case DType::kInt8:
    case DType::kInt16:
    case DType::kInt32:
    case DType::kInt64:
    case DType::kInt4:
    case DType::kInt2: return Wide::kSigned;
    default: return Wide::kFloat;
  }
}

template <typename T>
T Load(const std::byte* p) {
  T value;
  std::memcpy(&value, p, sizeof(T));
  return value;
}
template <typename T>
void Store(std::byte* p, T value) {
  std::memcpy(p, &value, sizeof(T));
}

int64_t LoadSigned(DType dtype, const std::byte* p) {
  switch (dtype) {
    // Sign-extended from the byte's low bits, as ml_dtypes keeps them.
    case DType::kInt4: return static_cast<int8_t>(Load<uint8_t>(p) << 4) >> 4;
    case DType::kInt2: return static_cast<int8_t>(Load<uint8_t>(p) << 6) >> 6;
    case DType::kInt8: return Load<int8_t>(p);
    case DType::kInt16: return Load<int16_t>(p);
    case DType::kInt32: return Load<int32_t>(p);
    default: return Load<int64_t>(p);
  }
}

uint64_t LoadUnsigned(DType dtype, const std::byte* p) {
  switch (dtype) {
    case DType::kBool: return Load<uint8_t>(p) != 0;
    case DType::kUInt8: return Load<uint8_t>(p);
    case DType::kUInt16: return Load<uint16_t>(p);
    case DType::kUInt32: return Load<uint32_t>(p);
    default: return Load<uint64_t>(p);
  }
}

std::complex<double> LoadFloat(DType dtype, const std::byte* p) {
  switch (dtype) {
    case DType::kFloat16: return HalfToFloat(Load<uint16_t>(p));
    case DType::kBFloat16: return BFloat16ToFloat(Load<uint16_t>(p));
    case DType::kFloat32: return Load<float>(p);
    case DType::kFloat64: return Load<double>(p);
    case DType::kComplex64: return Load<std::complex<float>>(p);
    case DType::kComplex128: return Load<std::complex<double>>(p);
    case DType::kFloat8E4M3FN: return Float8E4M3FNToFloat(Load<uint8_t>(p));
    case DType::kFloat8E5M2: return Float8E5M2ToFloat(Load<uint8_t>(p));
    default: return 0.0;
  }
}

// Float to integer as NumPy does on x86: truncation toward zero; NaN and out-of-range values are undefined
// there, and here they saturate (NaN becomes 0) so the result is at least deterministic.
template <typename I>
I FloatToInt(double value) {
  if (std::isnan(value)) return 0;
  if (value <= static_cast<double>(std::numeric_limits<I>::min())) return std::numeric_limits<I>::min();
  if (value >= static_cast<double>(std::numeric_limits<I>::max())) return std::numeric_limits<I>::max();
  return static_cast<I>(value);
}

void StoreInteger(DType dtype, std::byte* p, int64_t s, uint64_t u, bool is_signed) {
  // Integer to integer conversion wraps modulo 2^bits, as NumPy's astype does.
  uint64_t bits = is_signed ? static_cast<uint64_t>(s) : u;
  switch (dtype) {
    case DType::kBool: Store<uint8_t>(p, bits != 0); break;
    case DType::kInt4: Store<uint8_t>(p, static_cast<uint8_t>(bits & 0xF)); break;
    case DType::kInt2: Store<uint8_t>(p, static_cast<uint8_t>(bits & 0x3)); break;
    case DType::kInt8:
    case DType::kUInt8: Store<uint8_t>(p, static_cast<uint8_t>(bits)); break;
    case DType::kInt16:
    case DType::kUInt16: Store<uint16_t>(p, static_cast<uint16_t>(bits)); break;
    case DType::kInt32:
    case DType::kUInt32: Store<uint32_t>(p, static_cast<uint32_t>(bits)); break;
    default: Store<uint64_t>(p, bits); break;
  }
}

void StoreFloat(DType dtype, std::byte* p, std::complex<double> value) {
  double re = value.real();
  switch (dtype) {
    case DType::kBool: Store<uint8_t>(p, value != std::complex<double>(0.0)); break;
    case DType::kInt8: Store<int8_t>(p, FloatToInt<int8_t>(re)); break;
    case DType::kInt16: Store<int16_t>(p, FloatToInt<int16_t>(re)); break;
    case DType::kInt32: Store<int32_t>(p, FloatToInt<int32_t>(re)); break;
    case DType::kInt64: Store<int64_t>(p, FloatToInt<int64_t>(re)); break;
    case DType::kUInt8: Store<uint8_t>(p, FloatToInt<uint8_t>(re)); break;
    case DType::kUInt16: Store<uint16_t>(p, FloatToInt<uint16_t>(re)); break;
    case DType::kUInt32: Store<uint32_t>(p, FloatToInt<uint32_t>(re)); break;
    case DType::kUInt64: Store<uint64_t>(p, FloatToInt<uint64_t>(re)); break;
    case DType::kFloat16: Store<uint16_t>(p, FloatToHalf(static_cast<float>(re))); break;
    case DType::kBFloat16: Store<uint16_t>(p, FloatToBFloat16(static_cast<float>(re))); break;
    case DType::kFloat32: Store<float>(p, static_cast<float>(re)); break;
    case DType::kFloat64: Store<double>(p, re); break;
    case DType::kComplex64: Store<std::complex<float>>(p, std::complex<float>(value)); break;
    case DType::kComplex128: Store<std::complex<double>>(p, value); break;
    case DType::kFloat8E4M3FN: Store<uint8_t>(p, FloatToFloat8E4M3FN(static_cast<float>(re))); break;
    case DType::kFloat8E5M2: Store<uint8_t>(p, FloatToFloat8E5M2(static_cast<float>(re))); break;
    case DType::kInt4: Store<uint8_t>(p, static_cast<uint8_t>(FloatToInt<int8_t>(re) & 0xF)); break;
    case DType::kInt2: Store<uint8_t>(p, static_cast<uint8_t>(FloatToInt<int8_t>(re) & 0x3)); break;
    default: throw UnimplementedError("casting to " + std::string(DTypeName(dtype)) + " is not supported");
  }
}

}  // namespace

size_t ItemSize(DType dtype) { return Info(dtype).item_size; }

std::string_view DTypeName(DType dtype) { return Info(dtype).name; }

DType DTypeFromName(std::string_view name) {
  for (const auto& info : kDTypes) {
    if (info.name == name) return info.dtype;
  }
  throw InvalidArgumentError("unknown dtype name \"" + std::string(name) + "\"");
}

bool IsFloatingPoint(DType dtype) {
  switch (dtype) {
    case DType::kFloat16:
    case DType::kBFloat16:
    case DType::kFloat32:
    case DType::kFloat64:
    case DType::kFloat8E4M3FN:
    case DType::kFloat8E5M2:
    case DType::kFloat8E4M3FNUZ:
    case DType::kFloat8E4M3B11FNUZ:
    case DType::kFloat8E5M2FNUZ:
    case DType::kFloat8E3M4:
    case DType::kFloat8E8M0FNU:
    case DType::kFloat4E2M1FN: return true;
    default: return false;
  }
}

bool IsCastable(DType dtype) {
  switch (dtype) {
    case DType::kFloat8E4M3FNUZ:
    case DType::kFloat8E4M3B11FNUZ:
    case DType::kFloat8E5M2FNUZ:
    case DType::kFloat8E3M4:
    case DType::kFloat8E8M0FNU:
    case DType::kFloat4E2M1FN: return false;
    default: return true;
  }
}

bool IsComplex(DType dtype) { return dtype == DType::kComplex64 || dtype == DType::kComplex128; }

bool IsInteger(DType dtype) { return WideKind(dtype) != Wide::kFloat && dtype != DType::kBool; }

void CastElements(const void* src, DType from, void* dst, DType to, size_t count) {
  const size_t in_size = ItemSize(from), out_size = ItemSize(to);
  if (from == to) {
    std::memcpy(dst, src, count * in_size);
    return;
  }
  if (!IsCastable(from) || !IsCastable(to)) {
    throw UnimplementedError("casting " + std::string(DTypeName(from)) + " to " + std::string(DTypeName(to)) +
                             " is not supported (" + std::string(DTypeName(IsCastable(from) ? to : from)) +
                             " is stored and restored as it is, without conversion)");
  }
  auto in = static_cast<const std::byte*>(src);
  auto out = static_cast<std::byte*>(dst);
  const Wide kind = WideKind(from);
  const bool to_float = WideKind(to) == Wide::kFloat;
  for (size_t i = 0; i < count; ++i, in += in_size, out += out_size) {
    if (kind == Wide::kFloat) {
      StoreFloat(to, out, LoadFloat(from, in));
    } else if (kind == Wide::kSigned) {
      int64_t v = LoadSigned(from, in);
      if (to_float) StoreFloat(to, out, static_cast<double>(v));
      else StoreInteger(to, out, v, 0, true);
    } else {
      uint64_t v = LoadUnsigned(from, in);
      if (to_float) StoreFloat(to, out, static_cast<double>(v));
      else StoreInteger(to, out, 0, v, false);
    }
  }
}

}  // namespace cairn
