#include "zarr/zarr_dtype.h"

#include "cairn/error.h"

namespace cairn::zarr {
namespace {

// NumPy's kind letter for the types NumPy knows natively; 0 for the ml_dtypes, which zarr v2 spells by name.
char NumpyKind(DType dtype) {
  switch (dtype) {
    case DType::kBool: return 'b';
    case DType::kInt8:
    case DType::kInt16:
    case DType::kInt32:
    case DType::kInt64: return 'i';
    case DType::kUInt8:
    case DType::kUInt16:
    case DType::kUInt32:
    case DType::kUInt64: return 'u';
    case DType::kFloat16:
    case DType::kFloat32:
    case DType::kFloat64: return 'f';
    case DType::kComplex64:
    case DType::kComplex128: return 'c';
    default: return 0;
  }
}

// The spelling without byte order ("f4"), or the ml_dtypes name.
std::string Body(DType dtype) {
  const char kind = NumpyKind(dtype);
  if (kind == 0) return std::string(DTypeName(dtype));
  return kind + std::to_string(ItemSize(dtype));
}

}  // namespace

std::string ZarrV2DTypeString(DType dtype) {
  const char kind = NumpyKind(dtype);
  if (kind == 0) return Body(dtype);
  return (ItemSize(dtype) == 1 ? '|' : '<') + Body(dtype);
}

DType DTypeFromZarrV2(std::string_view text) {
  std::string_view body = text;
  if (!text.empty() && (text[0] == '<' || text[0] == '|' || text[0] == '=')) body = text.substr(1);
  for (int i = 0; i <= static_cast<int>(DType::kFloat4E2M1FN); ++i) {
    const auto dtype = static_cast<DType>(i);
    // Byte-ordered spellings only for NumPy's own types, bare names only for the ml_dtypes.
    if ((NumpyKind(dtype) != 0) == (body.size() != text.size()) && Body(dtype) == body) return dtype;
  }
  if (!text.empty() && text[0] == '>') {
    throw UnimplementedError("big-endian zarr dtype \"" + std::string(text) + "\" is not supported");
  }
  throw InvalidArgumentError("unknown or unsupported zarr v2 dtype \"" + std::string(text) + "\"");
}

}  // namespace cairn::zarr
