// safetensors reading and writing: round trips, and every malformed header a reader must refuse.
#include "cairn/safetensors.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>

#include "cairn/error.h"
#include "test_util.h"

namespace cairn {
namespace {

using ::testing::HasSubstr;
using testing::Iota;
using testing::TempDir;

// A file built by hand: the 8-byte length, the header text, then `data`.
std::string File(const std::string& header, const std::string& data = "") {
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + data;
}

template <typename E = CorruptionError>
void ExpectRefused(const std::string& bytes, const std::string& message) {
  try {
    safetensors::LoadFromBytes(bytes, "test.safetensors");
    FAIL() << "accepted: " << message;
  } catch (const E& e) {
    EXPECT_THAT(e.what(), HasSubstr(message));
    EXPECT_THAT(e.what(), HasSubstr("test.safetensors"));
  }
}

Tree Sample() {
  return Tree::Dict({{"params", Tree::Dict({{"w", Iota({2, 3})}, {"b", Iota({3}, DType::kBFloat16)}})},
                     {"layers", Tree::List({Tree::Dict({{"k", Iota({2}, DType::kInt8)}})})},
                     {"mask", Array::FromVector<bool>({2}, {true, false})},
                     {"f8", Iota({4}, DType::kFloat8E4M3FN)},
                     {"e52", Iota({4}, DType::kFloat8E5M2)},
                     {"step", Tree::Scalar(int64_t{7})}});
}

TEST(Safetensors, RoundTripThroughAFile) {
  TempDir dir;
  const auto path = dir / "model.safetensors";
  safetensors::SaveOptions options;
  options.metadata = {{"format", "pt"}};
  auto result = safetensors::Save(path, Sample(), options);
  EXPECT_TRUE(result.skipped.empty());
  EXPECT_FALSE(std::filesystem::exists(path.string() + ".cairn-tmp"));
  auto loaded = safetensors::Load(path);
  EXPECT_EQ(loaded.metadata, (std::map<std::string, std::string>{{"format", "pt"}}));
  const Tree& t = loaded.tree;
  EXPECT_EQ(t["params"]["w"].array(), Iota({2, 3}));
  EXPECT_EQ(t["params"]["b"].array(), Iota({3}, DType::kBFloat16));
  EXPECT_EQ(t["layers"]["0"]["k"].array(), Iota({2}, DType::kInt8));  // list indices come back as dict keys
  EXPECT_EQ(t["mask"].array(), Array::FromVector<bool>({2}, {true, false}));
  EXPECT_EQ(t["f8"].array(), Iota({4}, DType::kFloat8E4M3FN));
  EXPECT_EQ(t["step"].array(), Array::FromScalar(int64_t{7}));
  auto header = safetensors::ReadHeader(path);
  EXPECT_EQ(header.data_offset() % 8, 0u);  // padded with spaces, as the reference writer does
  ASSERT_EQ(header.tensors.size(), 7u);
}

TEST(Safetensors, FlatNamesAreTheParameterNames) {
  safetensors::LoadOptions flat;
  flat.nest = false;
  auto loaded = safetensors::LoadFromBytes(safetensors::SaveToBytes(Sample()), "x", flat);
  std::vector<std::string> names;
  for (const auto& [k, v] : loaded.tree.items()) names.push_back(k);
  EXPECT_EQ(names, (std::vector<std::string>{"e52", "f8", "layers.0.k", "mask", "params.b", "params.w", "step"}));
}

TEST(Safetensors, BytesAreTheFormatsLayout) {
  Tree t = Tree::Dict({{"a", Array::FromVector<float>({2}, {1.5f, -2.0f})}});
  std::string bytes = safetensors::SaveToBytes(t);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  std::string header = bytes.substr(8, n);
  EXPECT_EQ(header.substr(0, header.find_last_not_of(' ') + 1),
            R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})");
  float values[2];
  std::memcpy(values, bytes.data() + 8 + n, 8);
  EXPECT_EQ(values[0], 1.5f);
  EXPECT_EQ(values[1], -2.0f);
}

TEST(Safetensors, ReadsHeadersWrittenByOthers) {
  // Unsorted names, offsets in another order than the names, padding, __metadata__, a 0-d and an empty tensor.
  std::string data(4 + 2 + 0, '\0');
  int32_t v = 42;
  std::memcpy(data.data(), &v, 4);
  data[4] = 1;
  data[5] = 2;
  std::string header = R"({"z": {"dtype": "I32", "shape": [], "data_offsets": [0, 4]}, )"
                       R"("__metadata__": {"k": "v"}, "e": {"dtype": "F64", "shape": [0, 3], "data_offsets": [6, 6]}, )"
                       R"("a.b": {"dtype": "U8", "shape": [2], "data_offsets": [4, 6]}}     )";
  auto loaded = safetensors::LoadFromBytes(File(header, data), "x");
  EXPECT_EQ(loaded.tree["z"].array(), Array::FromScalar(int32_t{42}));
  EXPECT_EQ(loaded.tree["a"]["b"].array(), Array::FromVector<uint8_t>({2}, {1, 2}));
  EXPECT_EQ(loaded.tree["e"].array().shape(), (Shape{0, 3}));
  EXPECT_EQ(loaded.metadata.at("k"), "v");
}

TEST(Safetensors, RefusesMalformedFiles) {
  const std::string ok_entry = R"("a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]})";
  ExpectRefused(std::string(5, '\0'), "too short");
  ExpectRefused(File("{" + ok_entry + "}", std::string(7, '\0')), "cover 8 bytes of data but the file holds 7");
  // A header length past the end of the file, and a huge one: refused before anything is allocated.
  std::string huge = File("{}");
  for (int i = 0; i < 8; ++i) huge[i] = static_cast<char>(0xff);
  ExpectRefused(huge, "runs past the end");
  std::string big(8, '\0');
  const uint64_t n = safetensors::kMaxHeaderBytes + 1;
  for (int i = 0; i < 8; ++i) big[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  big.resize(8 + n + 8, ' ');
  ExpectRefused(big, "over the limit");
  ExpectRefused(File("{\"a\": "), "is not valid JSON");
  ExpectRefused(File("[1, 2]"), "does not start with '{'");
  ExpectRefused(File(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}})", std::string(4, '\0')),
                "needs 8 bytes but data_offsets [0, 4] hold 4");
  ExpectRefused(File(R"({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})", std::string(8, '\0')),
                "needs 12 bytes");
  ExpectRefused(File(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, )"
                     R"("b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
                     std::string(12, '\0')),
                "they overlap");
  ExpectRefused(File(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})", std::string(8, '\0')),
                "a gap");
  ExpectRefused(File(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}})", std::string(8, '\0')),
                "end before they begin");
  ExpectRefused(File(R"({"a": {"dtype": "F32", "shape": [4611686018427387904, 4], "data_offsets": [0, 0]}})"),
                "overflows");
  ExpectRefused(File(R"({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 0]}})"), "not a non-negative integer");
  ExpectRefused(File(R"({"a": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 0]}})"), "not a non-negative integer");
  ExpectRefused(File(R"({"a": {"shape": [2], "data_offsets": [0, 8]}})", std::string(8, '\0')), "no \"dtype\"");
  ExpectRefused(File(R"({"a": {"dtype": "F32", "data_offsets": [0, 8]}})", std::string(8, '\0')), "no \"shape\"");
  ExpectRefused(File(R"({"a": {"dtype": "F32", "shape": [2]}})", std::string(8, '\0')), "no \"data_offsets\"");
  ExpectRefused(File(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0]}})", std::string(8, '\0')),
                "no \"data_offsets\"");
  ExpectRefused(File(R"({"a": 3})"), "is not a JSON object");
  ExpectRefused(File(R"({"__metadata__": {"k": 1}})"), "is not a string");
  ExpectRefused(File("{\"a\xff\": 1}"), "is not valid JSON");  // not UTF-8
  ExpectRefused(File(std::string(5000, '[')), "does not start with '{'");
  ExpectRefused(File("{\"a\":" + std::string(5000, '[')), "nests deeper");
  ExpectRefused<UnimplementedError>(File(R"({"a": {"dtype": "C64", "shape": [1], "data_offsets": [0, 8]}})",
                                         std::string(8, '\0')),
                                    "\"C64\" is not one cairn supports");
}

TEST(Safetensors, NamesThatCannotNest) {
  std::string header = R"({"a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}, )"
                       R"("a.b": {"dtype": "U8", "shape": [1], "data_offsets": [1, 2]}})";
  const std::string file = File(header, "xy");
  ExpectRefused<InvalidArgumentError>(file, "do not nest into a tree");
  safetensors::LoadOptions options;
  options.nest = false;
  auto flat = safetensors::LoadFromBytes(file, "x", options);
  EXPECT_EQ(flat.tree["a.b"].array(), Array::FromVector<uint8_t>({1}, {'y'}));
  ExpectRefused<InvalidArgumentError>(File(R"({"a..b": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}})", "x"),
                                      "empty part");
}

TEST(Safetensors, WhatCannotBeWritten) {
  EXPECT_THROW(safetensors::SaveToBytes(Tree::Dict({{"a.b", Iota({1})}})), InvalidArgumentError);
  EXPECT_THROW(safetensors::SaveToBytes(Tree::Dict({{"c", Iota({1}, DType::kComplex64)}})), InvalidArgumentError);
  EXPECT_THROW(safetensors::SaveToBytes(Tree::Dict({{"__metadata__", Iota({1})}})), InvalidArgumentError);
  EXPECT_THROW(safetensors::SaveToBytes(Tree(Iota({1}))), InvalidArgumentError);
  Tree with_string = Tree::Dict({{"s", Tree("text")}, {"a", Iota({1})}, {"n", Tree::None()}});
  try {
    safetensors::SaveToBytes(with_string);
    FAIL();
  } catch (const InvalidArgumentError& e) {
    EXPECT_THAT(e.what(), HasSubstr("s is a string"));
  }
  safetensors::SaveResult result;
  safetensors::SaveOptions skip;
  skip.skip_unsupported = true;
  auto bytes = safetensors::SaveToBytes(with_string, skip, &result);
  EXPECT_EQ(result.skipped, (std::vector<std::string>{"n (an empty node: no data)", "s (a string)"}));
  EXPECT_EQ(safetensors::LoadFromBytes(bytes, "x").tree, Tree::Dict({{"a", Iota({1})}}));
}

TEST(Safetensors, SaveIsAtomic) {
  TempDir dir;
  const auto path = dir / "m.safetensors";
  safetensors::Save(path, Tree::Dict({{"a", Iota({2})}}));
  // A save that fails (a complex array) leaves the old file as it was and no temporary file.
  EXPECT_THROW(safetensors::Save(path, Tree::Dict({{"a", Iota({2}, DType::kComplex64)}})), InvalidArgumentError);
  EXPECT_EQ(safetensors::Load(path).tree["a"].array(), Iota({2}));
  EXPECT_FALSE(std::filesystem::exists(path.string() + ".cairn-tmp"));
  // In memory through the FileSystem seam.
  auto fs = NewInMemoryFileSystem();
  fs->CreateDirs("/m");
  safetensors::SaveOptions save;
  save.file_system = fs;
  safetensors::Save("/m/x.safetensors", Tree::Dict({{"a", Iota({3})}}), save);
  safetensors::LoadOptions load;
  load.file_system = fs;
  EXPECT_EQ(safetensors::Load("/m/x.safetensors", load).tree["a"].array(), Iota({3}));
  EXPECT_THROW(safetensors::Load(dir / "missing.safetensors"), NotFoundError);
}

}  // namespace
}  // namespace cairn
