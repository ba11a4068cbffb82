#include "cairn/tree.h"

#include <gtest/gtest.h>

#include <utility>

namespace cairn {
namespace {

Tree Sample() {
  return Tree::Dict({{"params", Tree::Dict({{"w", Array::FromVector<float>({2}, {1, 2})}, {"b", Tree::Scalar(1.5)}})},
                     {"step", Tree::Scalar(int64_t{3})},
                     {"layers", Tree::List({Array::FromVector<int32_t>({1}, {7}), Tree::None()})},
                     {"empty", Tree::Dict({})},
                     {"name", "run-1"}});
}

TEST(Tree, DictKeysAreSorted) {
  Tree t = Tree::Dict({{"z", Tree::Scalar(1)}, {"a", Tree::Scalar(2)}});
  EXPECT_EQ(t.items()[0].first, "a");
  EXPECT_EQ(t.items()[1].first, "z");
  EXPECT_THROW(Tree::Dict({{"a", Tree::None()}, {"a", Tree::None()}}), InvalidArgumentError);
}

TEST(Tree, Access) {
  Tree t = Sample();
  EXPECT_EQ(t["params"]["w"].array().data<float>()[1], 2.0f);
  EXPECT_EQ(t["step"].scalar<int64_t>(), 3);
  EXPECT_EQ(t["step"].scalar<double>(), 3.0);
  EXPECT_EQ(t["layers"][0].array().data<int32_t>()[0], 7);
  EXPECT_TRUE(t["layers"][1].is_none());
  EXPECT_EQ(t["name"].string(), "run-1");
  EXPECT_THROW(std::as_const(t)["missing"], InvalidArgumentError);  // the mutable one inserts, as std::map
  EXPECT_THROW(t["layers"][5], InvalidArgumentError);
  EXPECT_THROW(t["step"].array(), InvalidArgumentError);
  EXPECT_TRUE(t.contains("step"));
  EXPECT_FALSE(t.contains("nope"));
  EXPECT_EQ(Tree(Array::FromScalar<int32_t>(9)).scalar<int64_t>(), 9);
}

TEST(Tree, MutableAccessInserts) {
  Tree t;
  t["a"]["b"] = Tree::Scalar(true);
  EXPECT_TRUE(t["a"]["b"].scalar<bool>());
}

TEST(Tree, FlattenInJaxOrder) {
  auto flat = Sample().Flatten();
  std::vector<std::string> names;
  for (const auto& [path, leaf] : flat) names.push_back(ParamName(path));
  EXPECT_EQ(names, (std::vector<std::string>{"layers.0", "name", "params.b", "params.w", "step"}));
  auto with_empty = Sample().Flatten(true);
  names.clear();
  for (const auto& [path, leaf] : with_empty) names.push_back(ParamName(path));
  EXPECT_EQ(names, (std::vector<std::string>{"empty", "layers.0", "layers.1", "name", "params.b", "params.w", "step"}));
  EXPECT_EQ(with_empty[2].first[1].type, KeyType::kSequence);
  EXPECT_EQ(KeyPathToString(with_empty[2].first), "['layers'][1]");
}

TEST(Tree, FromFlatInvertsFlatten) {
  Tree t = Sample();
  EXPECT_EQ(Tree::FromFlat(t.Flatten(true)), t);
  EXPECT_THROW(Tree::FromFlat({{{{"0", KeyType::kSequence}}, Tree::None()}, {{{"2", KeyType::kSequence}}, Tree::None()}}),
               InvalidArgumentError);
}

TEST(Tree, MapKeepsStructure) {
  Tree specs = Sample().Map([](const KeyPath&, const Tree& leaf) -> Tree {
    return leaf.is_array() ? Tree(leaf.array().spec()) : leaf;
  });
  EXPECT_TRUE(specs["params"]["w"].is_spec());
  EXPECT_EQ(specs["params"]["w"].spec().shape, (Shape{2}));
  EXPECT_TRUE(specs["layers"][1].is_none());
  EXPECT_EQ(Tree::StructureDiff(Sample(), specs), "");
}

TEST(Tree, EqualityIsDeep) {
  EXPECT_EQ(Sample(), Sample());
  Tree other = Sample();
  other["params"]["b"] = Tree::Scalar(2.5);
  EXPECT_FALSE(other == Sample());
  EXPECT_FALSE(Tree::List({}) == Tree::Tuple({}));
  EXPECT_FALSE(Tree::Scalar(int64_t{1}) == Tree::Scalar(1.0));
}

TEST(Tree, StructureDiffIsReadable) {
  Tree expected = Tree::Dict({{"a", Tree::Scalar(1)}, {"b", Tree::Dict({{"c", Tree::Scalar(1)}})}});
  Tree actual = Tree::Dict({{"b", Tree::Dict({{"d", Tree::Scalar(1)}})}, {"x", Tree::List({})}});
  std::string diff = Tree::StructureDiff(expected, actual);
  EXPECT_NE(diff.find("['a']: missing"), std::string::npos) << diff;
  EXPECT_NE(diff.find("['b']['c']: missing"), std::string::npos) << diff;
  EXPECT_NE(diff.find("['b']['d']: unexpected"), std::string::npos) << diff;
  EXPECT_NE(diff.find("['x']: unexpected"), std::string::npos) << diff;
}

TEST(Tree, JsonRoundTrip) {
  nlohmann::json j = {{"a", 1}, {"b", {1.5, true, nullptr, "s"}}, {"c", {{"d", -7}}}};
  Tree t = Tree::FromJson(j);
  EXPECT_EQ(t["a"].scalar<int64_t>(), 1);
  EXPECT_TRUE(t["b"][2].is_none());
  EXPECT_EQ(t.ToJson(), j);
  EXPECT_THROW(Tree(Array::FromScalar<float>(1)).ToJson(), InvalidArgumentError);
}

TEST(Tree, ToStringShowsValues) {
  std::string s = Tree::Dict({{"w", Array::FromVector<float>({2}, {1, 2})}, {"s", Tree::Scalar(true)}}).ToString();
  EXPECT_EQ(s, "{'s': True, 'w': float32(2,) [1, 2]}");
}

}  // namespace
}  // namespace cairn
