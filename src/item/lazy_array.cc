#include "item/lazy_array.h"

#include "zarr/zarr_array.h"

namespace cairn::item {

std::optional<Array> MapLazily(kvstore::KvStore& store, const std::string& param, const zarr::ZarrMetadata& metadata,
                               const Shape& shape, DType dtype, const RestoreArgs* args) {
  if (!args || !args->lazy) return std::nullopt;
  const kvstore::MapCheck check = args->lazy_check == RestoreArgs::LazyCheck::kUpFront ? kvstore::MapCheck::kUpFront
                                                                                      : kvstore::MapCheck::kOnAccess;
  return zarr::MapZarrRegion(store, param, metadata, Shape(shape.size(), 0), shape, dtype, check);
}

}  // namespace cairn::item
