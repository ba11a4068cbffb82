#include "metadata/legacy_aggregate.h"

#include <algorithm>
#include <complex>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include <gtest/gtest.h>

#ifndef MSGPACK_NO_BOOST
#define MSGPACK_NO_BOOST
#endif
#include <msgpack.hpp>

#include "cairn/array.h"
#include "cairn/dtype.h"
#include "cairn/error.h"
#include "cairn/tree.h"

namespace cairn::metadata {
namespace {

std::string ReadFixture(const std::string& relative) {
  std::string path = std::string(CAIRN_FIXTURES_DIR) + "/" + relative;
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

const char* kSomeFixture = "zarr_v2/aggregate_some.checkpoint/checkpoint";
const char* kAllFixture = "zarr_v2/aggregate_all.checkpoint/checkpoint";

std::vector<int64_t> Iota(int64_t count, int64_t step) {
  std::vector<int64_t> out;
  for (int64_t i = 0; i < count; ++i) out.push_back(i * step);
  return out;
}

// The `c` subtree both fixtures share: c.a = (arange(8) * 3).reshape(2, 4), c.e = (arange(16) * 4).reshape(4, 4),
// int64.
Tree FixtureC() {
  return Tree::Dict({{"a", Tree(Array::FromVector<int64_t>({2, 4}, Iota(8, 3)))},
                     {"e", Tree(Array::FromVector<int64_t>({4, 4}, Iota(16, 4)))}});
}

// --- packing helpers (msgpack-cxx's packer, as Flax's msgpack.packb would lay things out) ---

using Packer = msgpack::packer<msgpack::sbuffer>;

// msgpack-cxx packs an integral double as an integer; Python's msgpack always writes float64 (0xcb + 8 bytes
// big-endian). pack_bin_body appends raw bytes without a header.
void PackFloat64(Packer& p, double value) {
  uint64_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  char raw[9] = {static_cast<char>(0xcb)};
  for (int i = 0; i < 8; ++i) raw[1 + i] = static_cast<char>(bits >> (56 - 8 * i));
  p.pack_bin_body(raw, sizeof(raw));
}

std::string Bytes(const msgpack::sbuffer& buffer) { return std::string(buffer.data(), buffer.size()); }

void PackStr(Packer& p, const std::string& text) {
  p.pack_str(static_cast<uint32_t>(text.size()));
  p.pack_str_body(text.data(), static_cast<uint32_t>(text.size()));
}

void PackBin(Packer& p, const std::string& bytes) {
  p.pack_bin(static_cast<uint32_t>(bytes.size()));
  p.pack_bin_body(bytes.data(), static_cast<uint32_t>(bytes.size()));
}

// Flax's `_ndarray_to_bytes`: msgpack (shape tuple, dtype name, C-order bytes), use_bin_type=True.
std::string NdarrayPayload(const Shape& shape, const std::string& dtype_name, const std::string& data) {
  msgpack::sbuffer buffer;
  Packer p(buffer);
  p.pack_array(3);
  p.pack_array(static_cast<uint32_t>(shape.size()));
  for (int64_t dim : shape) p.pack_uint64(static_cast<uint64_t>(dim));
  PackStr(p, dtype_name);
  PackBin(p, data);
  return Bytes(buffer);
}

void PackExt(Packer& p, int8_t type, const std::string& payload) {
  p.pack_ext(payload.size(), type);
  p.pack_ext_body(payload.data(), static_cast<uint32_t>(payload.size()));
}

void PackArray(Packer& p, const Array& array, int8_t type = 1) {
  std::string data(reinterpret_cast<const char*>(array.bytes().data()), array.num_bytes());
  PackExt(p, type, NdarrayPayload(array.shape(), std::string(DTypeName(array.dtype())), data));
}

std::string PackOne(const std::function<void(Packer&)>& fn) {
  msgpack::sbuffer buffer;
  Packer p(buffer);
  fn(p);
  return Bytes(buffer);
}

// An array of `dtype` whose bytes are 0, 1, 2, ... (any bit pattern is a valid element for these tests).
Array PatternArray(DType dtype, Shape shape, uint8_t seed = 0) {
  Array array = Array::Allocate(dtype, std::move(shape));
  auto bytes = array.mutable_bytes();
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::byte>((i * 7 + seed) & 0xff);
  if (dtype == DType::kBool) {
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::byte>(i % 2);
  }
  return array;
}

const std::vector<DType> kAllDTypes = {
    DType::kBool,    DType::kInt8,     DType::kInt16,    DType::kInt32,     DType::kInt64,
    DType::kUInt8,   DType::kUInt16,   DType::kUInt32,   DType::kUInt64,    DType::kFloat16,
    DType::kBFloat16, DType::kFloat32, DType::kFloat64,  DType::kComplex64, DType::kComplex128,
    DType::kFloat8E4M3FN, DType::kFloat8E5M2};

Tree Decode(const std::string& bytes) { return DecodeMsgpackAggregate(bytes, "test/checkpoint"); }

// --- the fixtures ---

TEST(LegacyAggregateTest, AggregateSomeFixture) {
  std::string bytes = ReadFixture(kSomeFixture);
  ASSERT_EQ(bytes.size(), 266u);
  Tree tree = DecodeMsgpackAggregate(bytes, kSomeFixture);
  std::cout << "aggregate_some: " << tree.ToString() << "\n";

  Tree expected = Tree::Dict({{"a", Tree("PLACEHOLDER://a")}, {"b", Tree("PLACEHOLDER://b")}, {"c", FixtureC()}});
  EXPECT_EQ(tree, expected);
  EXPECT_TRUE(IsAggregatePlaceholder(tree["a"]));
  EXPECT_TRUE(IsAggregatePlaceholder(tree["b"]));
  EXPECT_FALSE(IsAggregatePlaceholder(tree["c"]["a"]));
  EXPECT_EQ(tree["c"]["a"].array().dtype(), DType::kInt64);
  EXPECT_EQ(tree["c"]["a"].array().shape(), (Shape{2, 4}));
  EXPECT_EQ(tree["c"]["e"].array().shape(), (Shape{4, 4}));
  auto e = tree["c"]["e"].array().data<int64_t>();
  EXPECT_EQ(std::vector<int64_t>(e.begin(), e.end()), Iota(16, 4));
}

TEST(LegacyAggregateTest, AggregateAllFixture) {
  std::string bytes = ReadFixture(kAllFixture);
  ASSERT_EQ(bytes.size(), 454u);
  Tree tree = DecodeMsgpackAggregate(bytes, kAllFixture);
  std::cout << "aggregate_all: " << tree.ToString() << "\n";

  Tree expected = Tree::Dict({{"a", Tree(Array::FromVector<int64_t>({8}, Iota(8, 1)))},
                              {"b", Tree(Array::FromVector<int64_t>({16}, Iota(16, 2)))},
                              {"c", FixtureC()}});
  EXPECT_EQ(tree, expected);
  for (const auto& [path, leaf] : tree.Flatten()) EXPECT_FALSE(IsAggregatePlaceholder(leaf)) << ParamName(path);
}

TEST(LegacyAggregateTest, IsAggregatePlaceholder) {
  EXPECT_TRUE(IsAggregatePlaceholder(Tree("PLACEHOLDER://params.w")));
  EXPECT_TRUE(IsAggregatePlaceholder(Tree("PLACEHOLDER://")));
  EXPECT_FALSE(IsAggregatePlaceholder(Tree("PLACEHOLDER:/a")));
  EXPECT_FALSE(IsAggregatePlaceholder(Tree("placeholder://a")));
  EXPECT_FALSE(IsAggregatePlaceholder(Tree::Placeholder()));
  EXPECT_FALSE(IsAggregatePlaceholder(Tree::None()));
  EXPECT_FALSE(IsAggregatePlaceholder(Tree::Scalar(1)));
}

// --- synthetic round trips ---

TEST(LegacyAggregateTest, Scalars) {
  std::string bytes = PackOne([](Packer& p) {
    p.pack_map(12);
    PackStr(p, "integral_double");
    PackFloat64(p, 2.0);
    PackStr(p, "int");
    p.pack_int64(42);
    PackStr(p, "negative");
    p.pack_int64(-7);
    PackStr(p, "big");
    p.pack_uint64(static_cast<uint64_t>(std::numeric_limits<int64_t>::max()));
    PackStr(p, "most_negative");
    p.pack_int64(std::numeric_limits<int64_t>::min());
    PackStr(p, "double");
    p.pack_double(0.1);
    PackStr(p, "float");
    p.pack_float(1.5f);
    PackStr(p, "true");
    p.pack_true();
    PackStr(p, "false");
    p.pack_false();
    PackStr(p, "none");
    p.pack_nil();
    PackStr(p, "text");
    PackStr(p, "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80");
    PackStr(p, "empty");
    PackStr(p, "");
  });
  Tree tree = Decode(bytes);
  Tree expected = Tree::Dict({{"integral_double", Tree::Scalar(2.0)},
                              {"int", Tree::Scalar(int64_t{42})},
                              {"negative", Tree::Scalar(int64_t{-7})},
                              {"big", Tree::Scalar(std::numeric_limits<int64_t>::max())},
                              {"most_negative", Tree::Scalar(std::numeric_limits<int64_t>::min())},
                              {"double", Tree::Scalar(0.1)},
                              {"float", Tree::Scalar(1.5)},
                              {"true", Tree::Scalar(true)},
                              {"false", Tree::Scalar(false)},
                              {"none", Tree::None()},
                              {"text", Tree("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80")},
                              {"empty", Tree("")}});
  EXPECT_EQ(tree, expected);
  EXPECT_TRUE(std::holds_alternative<int64_t>(tree["big"].scalar_value()));
  EXPECT_TRUE(std::holds_alternative<double>(tree["float"].scalar_value()));
  EXPECT_TRUE(std::holds_alternative<double>(tree["integral_double"].scalar_value()));
  EXPECT_TRUE(std::holds_alternative<bool>(tree["true"].scalar_value()));
}

TEST(LegacyAggregateTest, TopLevelValuesNeedNotBeMaps) {
  EXPECT_EQ(Decode(PackOne([](Packer& p) { p.pack_int64(5); })), Tree::Scalar(int64_t{5}));
  EXPECT_EQ(Decode(PackOne([](Packer& p) { p.pack_nil(); })), Tree::None());
  EXPECT_EQ(Decode(PackOne([](Packer& p) { p.pack_map(0); })), Tree::Dict({}));
  EXPECT_EQ(Decode(PackOne([](Packer& p) { p.pack_array(0); })), Tree::List({}));
}

TEST(LegacyAggregateTest, NestedDictsListsTuplesAndIntegerKeys) {
  Array w = Array::FromVector<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  std::string tuple_payload = PackOne([](Packer& p) {
    p.pack_array(2);
    p.pack_int64(1);
    PackStr(p, "two");
  });
  std::string bytes = PackOne([&](Packer& p) {
    p.pack_map(4);
    PackStr(p, "params");
    p.pack_map(2);
    PackStr(p, "dense");
    p.pack_map(2);
    PackStr(p, "kernel");
    PackArray(p, w);
    PackStr(p, "bias");
    PackStr(p, "PLACEHOLDER://params.dense.bias");
    PackStr(p, "empty");
    p.pack_map(0);
    // Flax's state dicts turn lists into maps keyed '0', '1', ...: they stay dicts.
    PackStr(p, "layers");
    p.pack_map(2);
    PackStr(p, "0");
    p.pack_int64(10);
    PackStr(p, "1");
    p.pack_int64(11);
    // A msgpack array, and integer map keys.
    PackStr(p, "list");
    p.pack_array(3);
    p.pack_int64(1);
    p.pack_map(2);
    p.pack_int64(7);
    PackStr(p, "seven");
    p.pack_int64(-3);
    p.pack_nil();
    PackExt(p, 4, tuple_payload);
    PackStr(p, "step");
    p.pack_int64(1000);
  });
  Tree tree = Decode(bytes);
  Tree expected = Tree::Dict(
      {{"params", Tree::Dict({{"dense", Tree::Dict({{"kernel", Tree(w)},
                                                    {"bias", Tree("PLACEHOLDER://params.dense.bias")}})},
                              {"empty", Tree::Dict({})}})},
       {"layers", Tree::Dict({{"0", Tree::Scalar(10)}, {"1", Tree::Scalar(11)}})},
       {"list", Tree::List({Tree::Scalar(1), Tree::Dict({{"7", Tree("seven")}, {"-3", Tree::None()}}),
                            Tree::Tuple({Tree::Scalar(1), Tree("two")})})},
       {"step", Tree::Scalar(1000)}});
  EXPECT_EQ(tree, expected) << tree.ToString();
  EXPECT_EQ(tree["list"][2].kind(), Tree::Kind::kTuple);
  EXPECT_TRUE(IsAggregatePlaceholder(tree["params"]["dense"]["bias"]));
}

TEST(LegacyAggregateTest, EveryDTypeAsArrayAndNumpyScalar) {
  for (DType dtype : kAllDTypes) {
    SCOPED_TRACE(std::string(DTypeName(dtype)));
    Array matrix = PatternArray(dtype, {3, 5}, 1);
    Array vector = PatternArray(dtype, {4}, 2);
    Array zero_d = PatternArray(dtype, {}, 3);
    Array empty = PatternArray(dtype, {0, 3});
    Array scalar = PatternArray(dtype, {}, 4);
    std::string bytes = PackOne([&](Packer& p) {
      p.pack_map(5);
      PackStr(p, "matrix");
      PackArray(p, matrix);
      PackStr(p, "vector");
      PackArray(p, vector);
      PackStr(p, "zero_d");
      PackArray(p, zero_d);
      PackStr(p, "empty");
      PackArray(p, empty);
      PackStr(p, "scalar");
      PackArray(p, scalar, /*type=npscalar*/ 3);
    });
    Tree tree = Decode(bytes);
    Tree expected = Tree::Dict({{"matrix", Tree(matrix)},
                                {"vector", Tree(vector)},
                                {"zero_d", Tree(zero_d)},
                                {"empty", Tree(empty)},
                                {"scalar", Tree(scalar)}});
    EXPECT_EQ(tree, expected);
    EXPECT_EQ(tree["matrix"].array().dtype(), dtype);
    EXPECT_EQ(tree["scalar"].array().rank(), 0);
  }
}

TEST(LegacyAggregateTest, TypedValuesSurvive) {
  Array f = Array::FromVector<double>({3}, {1.5, -2.25, 1e300});
  Array u = Array::FromVector<uint64_t>({2}, {0, std::numeric_limits<uint64_t>::max()});
  std::string bytes = PackOne([&](Packer& p) {
    p.pack_array(3);
    PackArray(p, f);
    PackArray(p, u);
    PackArray(p, Array::FromScalar<int32_t>(-5), 3);
  });
  Tree tree = Decode(bytes);
  auto fd = tree[0].array().data<double>();
  EXPECT_EQ(std::vector<double>(fd.begin(), fd.end()), (std::vector<double>{1.5, -2.25, 1e300}));
  EXPECT_EQ(tree[1].array().data<uint64_t>()[1], std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(tree[2].scalar<int32_t>(), -5);
}

TEST(LegacyAggregateTest, DTypeNameAndDataMayBeStrOrBin) {
  // Flax reads the ndarray triple with raw=True, so str/bin are interchangeable there.
  Array a = Array::FromVector<int16_t>({2}, {-1, 300});
  std::string data(reinterpret_cast<const char*>(a.bytes().data()), a.num_bytes());
  std::string payload = PackOne([&](Packer& p) {
    p.pack_array(3);
    p.pack_array(1);
    p.pack_int64(2);
    PackBin(p, "int16");
    PackStr(p, data);
  });
  EXPECT_EQ(Decode(PackOne([&](Packer& p) { PackExt(p, 1, payload); })), Tree(a));
}

TEST(LegacyAggregateTest, NativeComplex) {
  std::string payload = PackOne([](Packer& p) {
    p.pack_array(2);
    PackFloat64(p, 1.5);
    PackFloat64(p, -2.0);
  });
  Tree tree = Decode(PackOne([&](Packer& p) { PackExt(p, 2, payload); }));
  ASSERT_TRUE(tree.is_array());
  EXPECT_EQ(tree.array().dtype(), DType::kComplex128);
  EXPECT_EQ(tree.array().rank(), 0);
  std::complex<double> value;
  std::memcpy(&value, tree.array().bytes().data(), sizeof(value));
  EXPECT_EQ(value, std::complex<double>(1.5, -2.0));

  // msgpack-cxx's packer writes integral doubles as integers: accepted as well.
  std::string integral = PackOne([](Packer& p) {
    p.pack_array(2);
    p.pack_double(3.0);
    p.pack_double(-4.0);
  });
  tree = Decode(PackOne([&](Packer& p) { PackExt(p, 2, integral); }));
  std::memcpy(&value, tree.array().bytes().data(), sizeof(value));
  EXPECT_EQ(value, std::complex<double>(3.0, -4.0));
}

// Flax's `_chunk`: {'__msgpack_chunked_array__': True, 'shape': {'0': d0, ...}, 'chunks': {'0': c0, ...}}.
void PackChunked(Packer& p, const Array& whole, int64_t chunk_elements) {
  int64_t total = whole.num_elements();
  size_t item = ItemSize(whole.dtype());
  int64_t num_chunks = (total + chunk_elements - 1) / chunk_elements;
  p.pack_map(3);
  PackStr(p, "__msgpack_chunked_array__");
  p.pack_true();
  PackStr(p, "shape");
  p.pack_map(static_cast<uint32_t>(whole.rank()));
  for (int64_t i = 0; i < whole.rank(); ++i) {
    PackStr(p, std::to_string(i));
    p.pack_int64(whole.shape()[i]);
  }
  PackStr(p, "chunks");
  p.pack_map(static_cast<uint32_t>(num_chunks));
  for (int64_t c = 0; c < num_chunks; ++c) {
    int64_t begin = c * chunk_elements;
    int64_t count = std::min(chunk_elements, total - begin);
    PackStr(p, std::to_string(c));
    std::string data(reinterpret_cast<const char*>(whole.bytes().data()) + begin * item, count * item);
    PackExt(p, 1, NdarrayPayload({count}, std::string(DTypeName(whole.dtype())), data));
  }
}

TEST(LegacyAggregateTest, ChunkedArraysAreReassembled) {
  std::vector<int32_t> values;
  for (int i = 0; i < 60; ++i) values.push_back(i * i - 100);
  Array big = Array::FromVector<int32_t>({3, 4, 5}, values);
  Array bf16 = PatternArray(DType::kBFloat16, {7, 3});
  std::string bytes = PackOne([&](Packer& p) {
    p.pack_map(3);
    PackStr(p, "embedding");
    PackChunked(p, big, 5);  // 12 chunks: keys '10', '11' sort before '2' and must not be reordered
    PackStr(p, "bf16");
    PackChunked(p, bf16, 8);  // a short last chunk
    PackStr(p, "nested");
    p.pack_map(1);
    PackStr(p, "one_chunk");
    PackChunked(p, big, 1000);
  });
  Tree tree = Decode(bytes);
  Tree expected =
      Tree::Dict({{"embedding", Tree(big)}, {"bf16", Tree(bf16)}, {"nested", Tree::Dict({{"one_chunk", Tree(big)}})}});
  EXPECT_EQ(tree, expected);

  // Flax also unchunks a chunked array that is the whole tree.
  EXPECT_EQ(Decode(PackOne([&](Packer& p) { PackChunked(p, big, 7); })), Tree(big));
}

TEST(LegacyAggregateTest, MalformedChunkedArrays) {
  Array a = Array::FromVector<int32_t>({2, 3}, {1, 2, 3, 4, 5, 6});
  auto chunked = [&](const std::function<void(Packer&)>& shape, const std::function<void(Packer&)>& chunks) {
    return PackOne([&](Packer& p) {
      p.pack_map(3);
      PackStr(p, "__msgpack_chunked_array__");
      p.pack_true();
      PackStr(p, "shape");
      shape(p);
      PackStr(p, "chunks");
      chunks(p);
    });
  };
  auto shape23 = [](Packer& p) {
    p.pack_map(2);
    PackStr(p, "0");
    p.pack_int64(2);
    PackStr(p, "1");
    p.pack_int64(3);
  };
  auto chunk = [&](Packer& p, const std::string& key, int64_t begin, int64_t count, const char* dtype = "int32") {
    PackStr(p, key);
    std::string data(reinterpret_cast<const char*>(a.bytes().data()) + begin * 4, count * 4);
    PackExt(p, 1, NdarrayPayload({count}, dtype, data));
  };
  auto two_chunks = [&](Packer& p) {
    p.pack_map(2);
    chunk(p, "0", 0, 4);
    chunk(p, "1", 4, 2);
  };
  ASSERT_EQ(Decode(chunked(shape23, two_chunks)), Tree(a));

  // Too few elements.
  EXPECT_THROW(Decode(chunked(shape23, [&](Packer& p) {
                 p.pack_map(1);
                 chunk(p, "0", 0, 4);
               })),
               CorruptionError);
  // Chunk keys not 0..n-1.
  EXPECT_THROW(Decode(chunked(shape23, [&](Packer& p) {
                 p.pack_map(2);
                 chunk(p, "0", 0, 4);
                 chunk(p, "2", 4, 2);
               })),
               CorruptionError);
  // Mixed dtypes.
  EXPECT_THROW(Decode(chunked(shape23, [&](Packer& p) {
                 p.pack_map(2);
                 chunk(p, "0", 0, 4);
                 chunk(p, "1", 4, 1, "int64");
               })),
               CorruptionError);
  // No chunks at all.
  EXPECT_THROW(Decode(chunked(shape23, [](Packer& p) { p.pack_map(0); })), CorruptionError);
  // Chunks not an array / shape not integers / negative dims / shape not a map.
  EXPECT_THROW(Decode(chunked(shape23, [](Packer& p) {
                 p.pack_map(1);
                 PackStr(p, "0");
                 p.pack_int64(1);
               })),
               CorruptionError);
  EXPECT_THROW(Decode(chunked(
                   [](Packer& p) {
                     p.pack_map(1);
                     PackStr(p, "0");
                     PackFloat64(p, 6.0);
                   },
                   two_chunks)),
               CorruptionError);
  EXPECT_THROW(Decode(chunked(
                   [](Packer& p) {
                     p.pack_map(2);
                     PackStr(p, "0");
                     p.pack_int64(-2);
                     PackStr(p, "1");
                     p.pack_int64(-3);
                   },
                   two_chunks)),
               CorruptionError);
  EXPECT_THROW(Decode(chunked([](Packer& p) { p.pack_int64(6); }, two_chunks)), CorruptionError);
  // A shape whose element count overflows.
  EXPECT_THROW(Decode(chunked(
                   [](Packer& p) {
                     p.pack_map(3);
                     for (int i = 0; i < 3; ++i) {
                       PackStr(p, std::to_string(i));
                       p.pack_int64(int64_t{1} << 40);
                     }
                   },
                   two_chunks)),
               CorruptionError);
  // Extra key.
  EXPECT_THROW(Decode(PackOne([&](Packer& p) {
                 p.pack_map(4);
                 PackStr(p, "__msgpack_chunked_array__");
                 p.pack_true();
                 PackStr(p, "shape");
                 shape23(p);
                 PackStr(p, "chunks");
                 two_chunks(p);
                 PackStr(p, "extra");
                 p.pack_nil();
               })),
               CorruptionError);
}

// --- errors ---

std::string Ndarray(const Shape& shape, const std::string& dtype, const std::string& data) {
  return PackOne([&](Packer& p) { PackExt(p, 1, NdarrayPayload(shape, dtype, data)); });
}

TEST(LegacyAggregateTest, MalformedArrays) {
  // Byte count does not match shape x itemsize.
  EXPECT_THROW(Decode(Ndarray({3}, "int64", std::string(23, '\0'))), CorruptionError);
  EXPECT_THROW(Decode(Ndarray({3}, "int64", std::string(25, '\0'))), CorruptionError);
  EXPECT_THROW(Decode(Ndarray({2, 2}, "float32", std::string(8, '\0'))), CorruptionError);
  // Absurd shapes must not allocate.
  EXPECT_THROW(Decode(Ndarray({int64_t{1} << 40, int64_t{1} << 40}, "float32", "")), CorruptionError);
  EXPECT_THROW(Decode(Ndarray({int64_t{1} << 62}, "float64", "")), CorruptionError);
  EXPECT_THROW(Decode(Ndarray({int64_t{1} << 40}, "uint8", "abc")), CorruptionError);
  // Zero-sized dimensions make an empty array whatever the others are.
  EXPECT_EQ(Decode(Ndarray({int64_t{1} << 40, 0}, "uint8", "")).array().shape(), (Shape{int64_t{1} << 40, 0}));
  // Unknown and unsupported dtypes.
  EXPECT_THROW(Decode(Ndarray({1}, "int\x01\x02", "a")), CorruptionError);
  EXPECT_THROW(Decode(Ndarray({1}, "", "a")), CorruptionError);
  EXPECT_THROW(Decode(Ndarray({1}, "#$%", "a")), CorruptionError);
  EXPECT_THROW(Decode(Ndarray({1}, std::string(100, 'f'), "a")), CorruptionError);
  EXPECT_THROW(Decode(Ndarray({1}, "object", std::string(8, '\0'))), UnimplementedError);
  EXPECT_THROW(Decode(Ndarray({1}, "float128", std::string(16, '\0'))), UnimplementedError);
  EXPECT_THROW(Decode(Ndarray({2}, "str32", std::string(8, '\0'))), UnimplementedError);
  EXPECT_THROW(Decode(Ndarray({1}, "datetime64[ns]", std::string(8, '\0'))), UnimplementedError);
  EXPECT_THROW(Decode(Ndarray({1}, "uint4", "a")), UnimplementedError);
  // Rank above NumPy's limit.
  EXPECT_THROW(Decode(Ndarray(Shape(65, 1), "uint8", "a")), CorruptionError);
  // npscalar with a non-0-d shape.
  EXPECT_THROW(Decode(PackOne([](Packer& p) { PackExt(p, 3, NdarrayPayload({2}, "uint8", "ab")); })),
               CorruptionError);

  auto ext1 = [](const std::function<void(Packer&)>& payload) {
    return PackOne([&](Packer& p) { PackExt(p, 1, PackOne(payload)); });
  };
  // Payload shapes that are not (shape, dtype, bytes).
  EXPECT_THROW(Decode(ext1([](Packer& p) { p.pack_int64(1); })), CorruptionError);
  EXPECT_THROW(Decode(ext1([](Packer& p) {
                 p.pack_array(2);
                 p.pack_array(0);
                 PackStr(p, "uint8");
               })),
               CorruptionError);
  EXPECT_THROW(Decode(ext1([](Packer& p) {
                 p.pack_array(3);
                 p.pack_array(1);
                 p.pack_int64(-1);
                 PackStr(p, "uint8");
                 PackBin(p, "");
               })),
               CorruptionError);
  EXPECT_THROW(Decode(ext1([](Packer& p) {
                 p.pack_array(3);
                 p.pack_map(0);
                 PackStr(p, "uint8");
                 PackBin(p, "");
               })),
               CorruptionError);
  EXPECT_THROW(Decode(ext1([](Packer& p) {
                 p.pack_array(3);
                 p.pack_array(0);
                 p.pack_int64(3);
                 PackBin(p, "a");
               })),
               CorruptionError);
  EXPECT_THROW(Decode(ext1([](Packer& p) {
                 p.pack_array(3);
                 p.pack_array(0);
                 PackStr(p, "uint8");
                 p.pack_nil();
               })),
               CorruptionError);
  EXPECT_THROW(Decode(ext1([](Packer& p) {
                 p.pack_array(3);
                 p.pack_array(1);
                 p.pack_array(0);
                 PackStr(p, "uint8");
                 PackBin(p, "");
               })),
               CorruptionError);
  // Trailing bytes inside the payload, and a truncated payload.
  std::string good = NdarrayPayload({1}, "uint8", "x");
  EXPECT_THROW(Decode(PackOne([&](Packer& p) { PackExt(p, 1, good + "\xc0"); })), CorruptionError);
  EXPECT_THROW(Decode(PackOne([&](Packer& p) { PackExt(p, 1, good.substr(0, good.size() - 1)); })),
               CorruptionError);
  EXPECT_THROW(Decode(PackOne([&](Packer& p) { PackExt(p, 1, ""); })), CorruptionError);
  // A huge declared array count inside the payload.
  EXPECT_THROW(Decode(PackOne([&](Packer& p) { PackExt(p, 1, std::string("\xdd\xff\xff\xff\xff", 5)); })),
               CorruptionError);
  // A complex payload that is not two floats.
  EXPECT_THROW(Decode(PackOne([&](Packer& p) {
                 PackExt(p, 2, PackOne([](Packer& q) {
                           q.pack_array(2);
                           PackStr(q, "1");
                           q.pack_double(2);
                         }));
               })),
               CorruptionError);
  EXPECT_THROW(Decode(PackOne([&](Packer& p) {
                 PackExt(p, 2, PackOne([](Packer& q) {
                           q.pack_array(3);
                           q.pack_double(1);
                           q.pack_double(2);
                           q.pack_double(3);
                         }));
               })),
               CorruptionError);
  // A tuple payload that is not an array.
  EXPECT_THROW(Decode(PackOne([&](Packer& p) { PackExt(p, 4, PackOne([](Packer& q) { q.pack_int64(1); })); })),
               CorruptionError);
  // Unknown extension types.
  EXPECT_THROW(Decode(PackOne([&](Packer& p) { PackExt(p, 5, good); })), CorruptionError);
  EXPECT_THROW(Decode(PackOne([&](Packer& p) { PackExt(p, -1, good); })), CorruptionError);
}

TEST(LegacyAggregateTest, MalformedStructure) {
  // Empty input, trailing bytes, reserved byte 0xc1.
  EXPECT_THROW(Decode(""), CorruptionError);
  EXPECT_THROW(Decode(PackOne([](Packer& p) { p.pack_map(0); }) + std::string(1, '\0')), CorruptionError);
  EXPECT_THROW(Decode("\xc1"), CorruptionError);
  EXPECT_THROW(Decode("\x81\xa1"
                      "a\xc1"),
               CorruptionError);
  // Keys that are neither strings nor integers.
  auto map_with_key = [](const std::function<void(Packer&)>& key) {
    return PackOne([&](Packer& p) {
      p.pack_map(1);
      key(p);
      p.pack_int64(1);
    });
  };
  EXPECT_THROW(Decode(map_with_key([](Packer& p) { p.pack_nil(); })), CorruptionError);
  EXPECT_THROW(Decode(map_with_key([](Packer& p) { PackFloat64(p, 1.0); })), CorruptionError);
  EXPECT_THROW(Decode(map_with_key([](Packer& p) { p.pack_true(); })), CorruptionError);
  EXPECT_THROW(Decode(map_with_key([](Packer& p) { PackBin(p, "k"); })), CorruptionError);
  EXPECT_THROW(Decode(map_with_key([](Packer& p) { p.pack_map(0); })), CorruptionError);
  EXPECT_THROW(Decode(map_with_key([](Packer& p) { p.pack_array(0); })), CorruptionError);
  EXPECT_THROW(Decode(map_with_key([](Packer& p) { PackArray(p, Array::FromScalar<int32_t>(1)); })),
               CorruptionError);
  // Duplicate keys, including an integer key colliding with its string form.
  EXPECT_THROW(Decode(PackOne([](Packer& p) {
                 p.pack_map(2);
                 PackStr(p, "a");
                 p.pack_int64(1);
                 PackStr(p, "a");
                 p.pack_int64(2);
               })),
               CorruptionError);
  EXPECT_THROW(Decode(PackOne([](Packer& p) {
                 p.pack_map(2);
                 PackStr(p, "1");
                 p.pack_int64(1);
                 p.pack_int64(1);
                 p.pack_int64(2);
               })),
               CorruptionError);
  // Invalid UTF-8 in a value and in a key (lone continuation, overlong, surrogate, past U+10FFFF).
  for (std::string bad : {"\x80", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "a\xe2\x82"}) {
    EXPECT_THROW(Decode(PackOne([&](Packer& p) { PackStr(p, bad); })), CorruptionError);
    EXPECT_THROW(Decode(map_with_key([&](Packer& p) { PackStr(p, bad); })), CorruptionError);
  }
}

TEST(LegacyAggregateTest, ValidButUnsupported) {
  // A Python int above int64 and a bytes leaf have no cairn value.
  EXPECT_THROW(Decode(PackOne([](Packer& p) { p.pack_uint64(uint64_t{1} << 63); })), UnimplementedError);
  EXPECT_THROW(Decode(PackOne([](Packer& p) { PackBin(p, "raw"); })), UnimplementedError);
}

TEST(LegacyAggregateTest, HugeDeclaredSizesDoNotAllocate) {
  // Containers and strings declaring up to 4 Gi entries or bytes, with nothing behind them.
  for (std::string header : {std::string("\xdd\xff\xff\xff\xff", 5), std::string("\xdf\xff\xff\xff\xff", 5),
                             std::string("\xdb\xff\xff\xff\xff", 5), std::string("\xc6\xff\xff\xff\xff", 5),
                             std::string("\xc9\xff\xff\xff\xff\x01", 6), std::string("\xc9\xff\xff\xff\xfe\x01", 6)}) {
    EXPECT_THROW(Decode(header), CorruptionError);
    EXPECT_THROW(Decode("\x81\xa1x" + header), CorruptionError);
    // Nested: many open containers each declaring 4 Gi elements.
    std::string nested;
    for (int i = 0; i < 100; ++i) nested += std::string("\xdd\xff\xff\xff\xff", 5);
    EXPECT_THROW(Decode(nested + header), CorruptionError);
  }
}

TEST(LegacyAggregateTest, DeepNestingIsRejectedNotOverflowed) {
  for (std::string open : {std::string("\x91"), std::string("\x81\xa1k")}) {
    std::string deep;
    for (int i = 0; i < 100000; ++i) deep += open;
    deep += '\xc0';
    EXPECT_THROW(Decode(deep), CorruptionError);
  }
  // Nesting through tuple extensions counts too.
  std::string inner = PackOne([](Packer& p) { p.pack_nil(); });
  for (int i = 0; i < 200; ++i) {
    inner = PackOne([&](Packer& p) {
      msgpack::sbuffer list;
      Packer q(list);
      q.pack_array(1);
      std::string body = Bytes(list) + inner;
      PackExt(p, 4, body);
    });
  }
  EXPECT_THROW(Decode(inner), CorruptionError);
  // Moderate nesting is fine.
  std::string ok;
  for (int i = 0; i < 50; ++i) ok += "\x81\xa1k";
  ok += '\xc0';
  EXPECT_NO_THROW(Decode(ok));
}

// --- corruption of the fixture files ---

// Every decode of damaged bytes either succeeds (the damage hit array data or kept the bytes valid) or throws a
// cairn::Error; any other exception escapes and fails the test, and a crash or hang fails it too.
bool DecodesOrThrowsCairnError(const std::string& bytes) {
  try {
    DecodeMsgpackAggregate(bytes, "damaged/checkpoint");
    return true;
  } catch (const Error&) {
    return false;
  }
}

TEST(LegacyAggregateTest, EveryTruncationIsCorruption) {
  for (const char* fixture : {kSomeFixture, kAllFixture}) {
    std::string bytes = ReadFixture(fixture);
    for (size_t length = 0; length < bytes.size(); ++length) {
      EXPECT_THROW(DecodeMsgpackAggregate(std::string_view(bytes).substr(0, length), fixture), CorruptionError)
          << fixture << " truncated to " << length << " bytes";
    }
  }
}

TEST(LegacyAggregateTest, EverySingleByteValueAtEveryPosition) {
  for (const char* fixture : {kSomeFixture, kAllFixture}) {
    std::string bytes = ReadFixture(fixture);
    size_t decoded = 0, rejected = 0;
    for (size_t position = 0; position < bytes.size(); ++position) {
      std::string damaged = bytes;
      for (int value = 0; value < 256; ++value) {
        if (value == static_cast<unsigned char>(bytes[position])) continue;
        damaged[position] = static_cast<char>(value);
        (DecodesOrThrowsCairnError(damaged) ? decoded : rejected)++;
      }
    }
    std::cout << fixture << ": single-byte changes decoded " << decoded << ", rejected " << rejected << "\n";
    EXPECT_GT(rejected, 0u);
  }
}

TEST(LegacyAggregateTest, RandomByteFlips) {
  std::mt19937 rng(20240601);
  for (const char* fixture : {kSomeFixture, kAllFixture}) {
    std::string bytes = ReadFixture(fixture);
    std::uniform_int_distribution<size_t> position(0, bytes.size() - 1);
    std::uniform_int_distribution<int> value(0, 255), count(2, 8);
    size_t rejected = 0;
    for (int trial = 0; trial < 20000; ++trial) {
      std::string damaged = bytes;
      for (int n = count(rng); n > 0; --n) damaged[position(rng)] = static_cast<char>(value(rng));
      if (!DecodesOrThrowsCairnError(damaged)) ++rejected;
    }
    EXPECT_GT(rejected, 0u);
  }
}

// A file using every feature (tuple and complex extensions, NumPy scalars, chunked arrays, integer keys),
// damaged the same ways as the fixtures.
TEST(LegacyAggregateTest, DamageToAFileUsingEveryFeature) {
  Array big = PatternArray(DType::kFloat32, {4, 6});
  std::string complex_payload = PackOne([](Packer& p) {
    p.pack_array(2);
    PackFloat64(p, 0.5);
    PackFloat64(p, -1.5);
  });
  std::string tuple_payload = PackOne([&](Packer& p) {
    p.pack_array(3);
    p.pack_int64(1);
    PackExt(p, 2, complex_payload);
    PackArray(p, PatternArray(DType::kBFloat16, {2}));
  });
  std::string bytes = PackOne([&](Packer& p) {
    p.pack_map(6);
    PackStr(p, "chunked");
    PackChunked(p, big, 5);
    PackStr(p, "tuple");
    PackExt(p, 4, tuple_payload);
    PackStr(p, "scalar");
    PackArray(p, Array::FromScalar<double>(2.5), 3);
    PackStr(p, "list");
    p.pack_array(2);
    p.pack_nil();
    PackStr(p, "PLACEHOLDER://list.1");
    p.pack_int64(3);
    p.pack_map(1);
    p.pack_int64(-1);
    p.pack_true();
    PackStr(p, "step");
    p.pack_uint64(12345678901ull);
  });
  Tree tree = Decode(bytes);
  ASSERT_EQ(tree["chunked"], Tree(big));
  ASSERT_EQ(tree["tuple"].kind(), Tree::Kind::kTuple);
  ASSERT_EQ(tree["3"]["-1"], Tree::Scalar(true));

  for (size_t length = 0; length < bytes.size(); ++length) {
    EXPECT_THROW(Decode(bytes.substr(0, length)), CorruptionError) << "truncated to " << length;
  }
  for (size_t position = 0; position < bytes.size(); ++position) {
    std::string damaged = bytes;
    for (int value = 0; value < 256; ++value) {
      damaged[position] = static_cast<char>(value);
      DecodesOrThrowsCairnError(damaged);
    }
  }
  std::mt19937 rng(7);
  std::uniform_int_distribution<size_t> position(0, bytes.size() - 1);
  std::uniform_int_distribution<int> value(0, 255), count(2, 8);
  for (int trial = 0; trial < 20000; ++trial) {
    std::string damaged = bytes;
    for (int n = count(rng); n > 0; --n) damaged[position(rng)] = static_cast<char>(value(rng));
    DecodesOrThrowsCairnError(damaged);
  }
}

TEST(LegacyAggregateTest, ErrorsNameTheFileAndPath) {
  try {
    DecodeMsgpackAggregate(Ndarray({3}, "int64", "short"), "/ckpt/0/default/checkpoint");
    FAIL() << "no error";
  } catch (const CorruptionError& e) {
    EXPECT_NE(std::string(e.what()).find("/ckpt/0/default/checkpoint"), std::string::npos) << e.what();
  }
  std::string bytes = PackOne([](Packer& p) {
    p.pack_map(1);
    PackStr(p, "params");
    p.pack_map(1);
    PackStr(p, "w");
    PackExt(p, 1, NdarrayPayload({3}, "int64", "short"));
  });
  try {
    Decode(bytes);
    FAIL() << "no error";
  } catch (const CorruptionError& e) {
    EXPECT_NE(std::string(e.what()).find("['params']['w']"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace cairn::metadata
