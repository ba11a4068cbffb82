#include "cairn/array.h"

#include <gtest/gtest.h>

#include <cstring>
#include <limits>
#include <vector>

#include "peak_rss.h"

namespace cairn {
namespace {

TEST(Array, FromVectorAndView) {
  Array a = Array::FromVector<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  EXPECT_EQ(a.dtype(), DType::kFloat32);
  EXPECT_EQ(a.shape(), (Shape{2, 3}));
  EXPECT_EQ(a.num_elements(), 6);
  EXPECT_EQ(a.num_bytes(), 24u);
  EXPECT_EQ(a.data<float>()[5], 6.0f);
  EXPECT_EQ(a.ownership(), Ownership::kOwned);
  EXPECT_THROW(a.data<double>(), InvalidArgumentError);
}

TEST(Array, FromVectorChecksCount) {
  EXPECT_THROW(Array::FromVector<int32_t>({3}, {1, 2}), InvalidArgumentError);
}

TEST(Array, BoolVector) {
  Array a = Array::FromVector<bool>({3}, {true, false, true});
  EXPECT_EQ(a.dtype(), DType::kBool);
  EXPECT_TRUE(a.data<bool>()[2]);
}

TEST(Array, ZerosAndScalars) {
  Array z = Array::Zeros(DType::kBFloat16, {3});
  for (auto b : z.bytes()) EXPECT_EQ(b, std::byte{0});
  Array s = Array::FromScalar<int64_t>(42);
  EXPECT_EQ(s.rank(), 0);
  EXPECT_EQ(s.num_elements(), 1);
  EXPECT_EQ(s.data<int64_t>()[0], 42);
}

TEST(Array, SharedAndBorrowedAreNotCopied) {
  auto bytes = std::make_shared<std::vector<float>>(std::vector<float>{1, 2, 3});
  std::shared_ptr<const void> holder(bytes, bytes->data());
  Array shared = Array::FromShared(holder, DType::kFloat32, {3});
  EXPECT_EQ(shared.ownership(), Ownership::kShared);
  EXPECT_EQ(shared.bytes().data(), reinterpret_cast<const std::byte*>(bytes->data()));
  EXPECT_THROW(shared.mutable_bytes(), InvalidArgumentError);

  float local[2] = {7, 8};
  Array borrowed = Array::FromBorrowed(local, DType::kFloat32, {2});
  EXPECT_EQ(borrowed.ownership(), Ownership::kBorrowed);
  EXPECT_EQ(borrowed.data<float>().data(), local);
  Array copy = borrowed.Copy();
  EXPECT_EQ(copy.ownership(), Ownership::kOwned);
  EXPECT_NE(copy.data<float>().data(), local);
  EXPECT_EQ(copy, borrowed);
}

TEST(Array, CastAndEquality) {
  Array a = Array::FromVector<int32_t>({2}, {1, -2});
  Array d = a.Cast(DType::kFloat64);
  EXPECT_EQ(d.data<double>()[1], -2.0);
  EXPECT_FALSE(a == d);
  EXPECT_EQ(a, Array::FromVector<int32_t>({2}, {1, -2}));
  EXPECT_FALSE(a == Array::FromVector<int32_t>({1, 2}, {1, -2}));
}

TEST(Array, ShapeOverflowIsAnError) {
  const int64_t big = std::numeric_limits<int64_t>::max() / 2;
  EXPECT_THROW(NumElements({big, 4}), InvalidArgumentError);
  EXPECT_THROW(NumBytes(DType::kFloat64, {big}), InvalidArgumentError);
  EXPECT_THROW(NumElements({-1}), InvalidArgumentError);
  EXPECT_THROW(Array::Allocate(DType::kFloat32, {big, 4}), InvalidArgumentError);
}

TEST(Array, ShapeToString) {
  EXPECT_EQ(ShapeToString({}), "()");
  EXPECT_EQ(ShapeToString({3}), "(3,)");
  EXPECT_EQ(ShapeToString({2, 3}), "(2, 3)");
}

// Arrays of 1 MiB or more are memory of their own (whole pages; from 2 MiB on 2 MiB-aligned, for huge pages), and
// go back to the kernel when freed: restores one after another do not pile up freed blocks in the allocator.
TEST(ArrayMemory, LargeArraysAreWholePagesAndGoBackWhenFreed) {
  for (size_t n : {size_t{1} << 20, (size_t{3} << 20) + 5, size_t{8} << 20, (size_t{20} << 20) + 3}) {
    Array a = Array::Allocate(DType::kUInt8, {static_cast<int64_t>(n)});
    const auto address = reinterpret_cast<uintptr_t>(a.bytes().data());
    EXPECT_EQ(address % (n >= (size_t{2} << 20) ? (size_t{2} << 20) : 4096), 0u) << n;
    std::memset(a.mutable_bytes().data(), 1, n);
  }
// The memory measure is left out under sanitizers: AddressSanitizer's allocator keeps freed blocks in quarantine,
// and ThreadSanitizer's shadow of the mapped arrays counts in RSS and stays after they are unmapped.
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
  // Rounds of arrays of 1 to 31 MiB (as a restore makes), each round freed before the next.
  auto round = [] {
    std::vector<Array> arrays;
    for (size_t mib = 1; mib < 32; mib += 3) {
      arrays.push_back(Array::Allocate(DType::kUInt8, {static_cast<int64_t>(mib << 20) + 100}));
      std::memset(arrays.back().mutable_bytes().data(), 1, arrays.back().num_bytes());
    }
  };
  round();
  cairn::testing::ResetPeakRss();
  const uint64_t before = cairn::testing::PeakRss();
  for (int i = 0; i < 4; ++i) round();
  EXPECT_LT(cairn::testing::PeakRssGrowth(before), uint64_t{200} << 20);  // one round holds 176 MiB
#endif
}

// An array a little over a huge page (2 MiB + 4 KiB) costs its pages, not two huge pages: only the whole 2 MiB
// ranges get huge pages, the tail small ones.
TEST(ArrayMemory, HugePageAlignedArraysSpendNothingOnRounding) {
  constexpr size_t kBytes = (size_t{2} << 20) + 4096;
  constexpr int kCount = 64;
  cairn::testing::ResetPeakRss();
  const uint64_t before = cairn::testing::PeakRss();
  std::vector<Array> arrays;
  for (int i = 0; i < kCount; ++i) {
    arrays.push_back(Array::Allocate(DType::kUInt8, {static_cast<int64_t>(kBytes)}));
    std::memset(arrays.back().mutable_bytes().data(), 1, kBytes);
  }
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
  EXPECT_LT(cairn::testing::PeakRssGrowth(before), kBytes * kCount * 5 / 4);  // rounding up would be 2x
#endif
  for (const Array& a : arrays) EXPECT_EQ(a.bytes()[kBytes - 1], std::byte{1});
}

// A large Zeros array is a fresh mapping, zero already: it is not written (no page is touched until used), and
// reads as zeros.
TEST(ArrayMemory, LargeZerosAreZeroWithoutTouchingTheirPages) {
  constexpr size_t kBytes = size_t{256} << 20;
  cairn::testing::ResetPeakRss();
  const uint64_t before = cairn::testing::PeakRss();
  Array z = Array::Zeros(DType::kUInt8, {static_cast<int64_t>(kBytes)});
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
  EXPECT_LT(cairn::testing::PeakRssGrowth(before), uint64_t{64} << 20);
#endif
  for (size_t at = 0; at < kBytes; at += 4093) ASSERT_EQ(z.bytes()[at], std::byte{0}) << at;
  for (size_t n : {size_t{1}, size_t{1000}, (size_t{1} << 20) + 1}) {
    Array small = Array::Zeros(DType::kUInt8, {static_cast<int64_t>(n)});
    for (std::byte b : small.bytes()) ASSERT_EQ(b, std::byte{0});
  }
}

}  // namespace
}  // namespace cairn
