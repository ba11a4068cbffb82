// The zarr v2 spelling of dtypes (`.zarray`'s "dtype"); zarr3 uses DTypeName.
#pragma once

#include <string>
#include <string_view>

#include "cairn/dtype.h"

namespace cairn::zarr {

// As TensorStore writes it on a little-endian host: "<f4", "|b1", and the ml_dtypes by name ("bfloat16", ...).
std::string ZarrV2DTypeString(DType dtype);
// Parses a zarr v2 dtype string. Accepts "<", "|" and "=" byte orders; big-endian (">") is rejected with
// UnimplementedError since no Orbax writer produces it; anything else unknown is an InvalidArgumentError.
DType DTypeFromZarrV2(std::string_view text);

}  // namespace cairn::zarr
