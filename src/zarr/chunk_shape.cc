#include "zarr/chunk_shape.h"

namespace cairn::zarr {
namespace {

std::vector<int64_t> Divisors(int64_t n) {
  std::vector<int64_t> out;
  for (int64_t i = 1; i <= n; ++i) {
    if (n % i == 0) out.push_back(i);
  }
  return out;
}

}  // namespace

Shape ChooseChunkShape(const Shape& global_shape, const Shape& write_shape, DType dtype,
                       std::optional<int64_t> target_byte_size) {
  Shape chunk = write_shape;
  for (auto& dim : chunk) dim = std::max<int64_t>(dim, 1);
  if (!target_byte_size) return chunk;
  const int64_t item = static_cast<int64_t>(ItemSize(dtype));
  const int64_t target_elements = std::max<int64_t>(*target_byte_size / item, 1);
  // divisors[d] ends with the current chunk size of dimension d; popping moves to the next smaller divisor.
  std::vector<std::vector<int64_t>> divisors;
  for (int64_t dim : chunk) divisors.push_back(dim <= (1 << 20) ? Divisors(dim) : std::vector<int64_t>{1, dim});
  auto total = [&] {
    int64_t n = 1;
    for (const auto& d : divisors) n *= d.back();
    return n;
  };
  auto reduce = [&](bool sharded) {
    while (total() > target_elements) {
      int best = -1;
      for (size_t d = 0; d < divisors.size(); ++d) {
        bool is_sharded = d < global_shape.size() && global_shape[d] != write_shape[d];
        if (is_sharded != sharded || divisors[d].size() < 2) continue;
        if (best < 0 || divisors[d].back() > divisors[best].back()) best = static_cast<int>(d);
      }
      if (best < 0) return;
      divisors[best].pop_back();
    }
  };
  reduce(true);
  reduce(false);
  for (size_t d = 0; d < chunk.size(); ++d) chunk[d] = divisors[d].back();
  return chunk;
}

}  // namespace cairn::zarr
