// The state the crash-loop helper saves at each step, derivable from the step number alone, so that the test
// that kills the helper can check every restored step bit for bit.
#pragma once

#include <cstdint>
#include <string>

#include "cairn/cairn.h"

namespace cairn::testing {

inline double CrashLossAt(int64_t step) { return static_cast<double>((step * 7919 + 13) % 1009) / 1009.0; }

// A few leaves of different kinds (float32 and int64 arrays, a scalar, a string): one save writes every file
// type of the default layout (OCDBT + zstd), and the float array is large enough that a save takes a moment.
inline Tree CrashState(int64_t step) {
  Array w = Array::Allocate(DType::kFloat32, {64, 128});
  auto wv = w.mutable_data<float>();
  for (size_t i = 0; i < wv.size(); ++i) {
    wv[i] = static_cast<float>((static_cast<int64_t>(i) * 7 + step * 131) % 1000) * 0.25f + static_cast<float>(step);
  }
  Array b = Array::Allocate(DType::kInt64, {257});
  auto bv = b.mutable_data<int64_t>();
  for (size_t i = 0; i < bv.size(); ++i) bv[i] = step * 1000003 + static_cast<int64_t>(i);
  return Tree::Dict({{"params", Tree::Dict({{"w", w}, {"b", b}})},
                     {"step", Tree::Scalar(step)},
                     {"note", Tree::String("step " + std::to_string(step))}});
}

}  // namespace cairn::testing
