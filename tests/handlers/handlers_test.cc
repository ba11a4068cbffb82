#include <gtest/gtest.h>

#include "cairn/cairn.h"
#include "test_util.h"

namespace cairn {
namespace {

using cairn::testing::Iota;
using cairn::testing::TempDir;

PyTreeCheckpointHandlerOptions Layout(bool zarr3 = false, bool compression = true) {
  PyTreeCheckpointHandlerOptions options;
  options.use_ocdbt = false;
  options.use_zarr3 = zarr3;
  options.use_compression = compression;
  return options;
}

Tree State() {
  return Tree::Dict({{"params", Tree::Dict({{"w", Iota({4, 3})}, {"b", Iota({3}, DType::kBFloat16)}})},
                     {"step", Tree::Scalar(int64_t{42})},
                     {"lr", Tree::Scalar(0.5)},
                     {"done", Tree::Scalar(false)},
                     {"layers", Tree::List({Iota({4}, DType::kInt32), Tree::None(), Tree::Tuple({})})},
                     {"opt", Tree::Dict({})}});
}

const DType kAllDTypes[] = {DType::kBool,      DType::kInt8,     DType::kInt16,    DType::kInt32,
                            DType::kInt64,     DType::kUInt8,    DType::kUInt16,   DType::kUInt32,
                            DType::kUInt64,    DType::kFloat16,  DType::kBFloat16, DType::kFloat32,
                            DType::kFloat64,   DType::kComplex64, DType::kComplex128, DType::kFloat8E4M3FN,
                            DType::kFloat8E5M2};

// (use_ocdbt, use_zarr3, use_compression): every layout Orbax writes.
class LayoutTest : public ::testing::TestWithParam<std::tuple<bool, bool, bool>> {
 protected:
  PyTreeCheckpointHandlerOptions Options() {
    PyTreeCheckpointHandlerOptions options = Layout(std::get<1>(GetParam()), std::get<2>(GetParam()));
    options.use_ocdbt = std::get<0>(GetParam());
    return options;
  }
};

TEST_P(LayoutTest, EveryDTypeRoundTrips) {
  TempDir dir;
  std::vector<Tree::Item> items;
  for (DType dtype : kAllDTypes) items.emplace_back(std::string(DTypeName(dtype)), Iota({3, 5}, dtype));
  Tree state = Tree::Dict(std::move(items));
  Checkpointer ckptr(std::make_unique<PyTreeCheckpointHandler>(Options()));
  ckptr.save(dir / "1", args::PyTreeSave{state});
  EXPECT_EQ(ckptr.restore(dir / "1"), state);
}

TEST_P(LayoutTest, ChunkedArraysAndLargeOnes) {
  TempDir dir;
  Tree state = Tree::Dict({{"big", Iota({512, 1024})}, {"odd", Iota({7, 13, 5}, DType::kInt16)}});
  Checkpointer ckptr(std::make_unique<PyTreeCheckpointHandler>(Options()));
  ckptr.save(dir / "1", args::PyTreeSave{state, {{"", SaveArgs{std::nullopt, 64 * 1024, std::nullopt}}}});
  EXPECT_EQ(ckptr.restore(dir / "1"), state);
}

TEST_P(LayoutTest, OutOfLineValuesScalarsStringsAndEmptyContainers) {
  TempDir dir;
  Tree state = Tree::Dict({{"big", Iota({1024, 1024})},  // 4 MiB: out of line in OCDBT
                           {"name", "cairn"},
                           {"n", Tree::Scalar(int64_t{-3})},
                           {"x", Tree::Scalar(2.25)},
                           {"flag", Tree::Scalar(true)},
                           {"none", Tree::None()},
                           {"empty", Tree::List({Tree::Dict({}), Tree::Tuple({})})}});
  Checkpointer ckptr(std::make_unique<PyTreeCheckpointHandler>(Options()));
  ckptr.save(dir / "1", args::PyTreeSave{state});
  EXPECT_EQ(ckptr.restore(dir / "1"), state);
  // Whatever layout wrote it, a handler with other options reads it.
  PyTreeCheckpointHandlerOptions other = Options();
  other.use_ocdbt = !other.use_ocdbt;
  other.use_zarr3 = !other.use_zarr3;
  Checkpointer reader(std::make_unique<PyTreeCheckpointHandler>(other));
  EXPECT_EQ(reader.restore(dir / "1"), state);
}

// Deep B+trees only exist with OCDBT (the per-parameter layout would only spend its time on 20,000 fsyncs).
class OcdbtLayoutTest : public LayoutTest {};

TEST_P(OcdbtLayoutTest, TenThousandParameters) {
  TempDir dir;
  std::vector<Tree::Item> layers;
  for (int i = 0; i < 10000; ++i) layers.emplace_back("layer_" + std::to_string(i), Array::FromScalar<int32_t>(i));
  Tree state = Tree::Dict({{"params", Tree::Dict(std::move(layers))}});
  PyTreeCheckpointHandlerOptions options = Options();
  options.ocdbt_max_decoded_node_bytes = 4096;  // deep B+trees: interior nodes at several heights
  Checkpointer ckptr(std::make_unique<PyTreeCheckpointHandler>(options));
  ckptr.save(dir / "1", args::PyTreeSave{state});
  EXPECT_EQ(ckptr.restore(dir / "1"), state);
  Tree target = Tree::Dict({{"params", Tree::Dict({{"layer_7777", ArraySpec{DType::kInt64, {}}}})}});
  Tree one = ckptr.restore(dir / "1", args::PyTreeRestore{target, {}, /*partial_restore=*/true});
  EXPECT_EQ(one["params"]["layer_7777"].array(), Array::FromScalar<int64_t>(7777));
}

INSTANTIATE_TEST_SUITE_P(Layouts, OcdbtLayoutTest,
                         ::testing::Combine(::testing::Values(true), ::testing::Bool(), ::testing::Bool()),
                         [](const auto& info) {
                           return std::string(std::get<1>(info.param) ? "Zarr3" : "ZarrV2") +
                                  (std::get<2>(info.param) ? "Zstd" : "Raw");
                         });

INSTANTIATE_TEST_SUITE_P(Layouts, LayoutTest,
                         ::testing::Combine(::testing::Bool(), ::testing::Bool(), ::testing::Bool()),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param) ? "Ocdbt" : "Directories") +
                                  (std::get<1>(info.param) ? "Zarr3" : "ZarrV2") +
                                  (std::get<2>(info.param) ? "Zstd" : "Raw");
                         });

TEST(StandardCheckpointHandler, RoundTripAndLayout) {
  TempDir dir;
  Checkpointer ckptr(std::make_unique<StandardCheckpointHandler>(Layout()));
  ckptr.save(dir / "1", args::StandardSave{State()});
  EXPECT_EQ(ckptr.restore(dir / "1"), State());
  EXPECT_TRUE(std::filesystem::exists(dir / "1/params.w/.zarray"));
  EXPECT_TRUE(std::filesystem::exists(dir / "1/params.w/0.0"));
  EXPECT_TRUE(std::filesystem::exists(dir / "1/step/0"));
  EXPECT_TRUE(std::filesystem::exists(dir / "1/_METADATA"));
  EXPECT_TRUE(std::filesystem::exists(dir / "1/_sharding"));
  EXPECT_TRUE(std::filesystem::exists(dir / "1/array_metadatas/process_0"));
}

// SaveArgs::sharding (the Python module's jax.Array shardings) goes into `_sharding` as given, and `cairn info`
// (DescribeCheckpoint) reports it; anything but an Orbax sharding object is refused before the save commits.
TEST(StandardCheckpointHandler, RecordsTheShardingItIsGiven) {
  TempDir dir;
  const std::string named = R"({"sharding_type": "NamedSharding", "shape": [2], "axis_names": ["x"], )"
                            R"("partition_spec": ["x"], "device_mesh": {"mesh": [{"id": 0}, {"id": 1}]}})";
  Checkpointer ckptr(std::make_unique<StandardCheckpointHandler>(Layout()));
  SaveArgs with_sharding;
  with_sharding.sharding = named;
  ckptr.save(dir / "1", args::StandardSave{State(), {{"params.w", with_sharding}}});
  EXPECT_EQ(ckptr.restore(dir / "1"), State());
  const nlohmann::json sharding = nlohmann::json::parse(cairn::testing::Slurp(dir / "1/_sharding"));
  EXPECT_EQ(sharding.at("cGFyYW1zLnc="), named);  // base64url("params.w")
  EXPECT_NE(sharding.at("cGFyYW1zLmI=").get<std::string>().find("SingleDeviceSharding"), std::string::npos);
  bool reported = false;
  const auto description = DescribeCheckpoint(dir / "1");
  for (const auto& leaf : description["items"][0]["tree"]) {
    if (leaf["name"] == "params.w") reported = leaf.at("sharding").dump() == nlohmann::json::parse(named).dump();
  }
  EXPECT_TRUE(reported);

  SaveArgs bad;
  bad.sharding = "[1, 2]";
  EXPECT_THROW(ckptr.save(dir / "2", args::StandardSave{State(), {{"params.w", bad}}}), InvalidArgumentError);
  EXPECT_FALSE(std::filesystem::exists(dir / "2"));
}

TEST(StandardCheckpointHandler, RejectsWhatOrbaxRejects) {
  TempDir dir;
  Checkpointer ckptr(std::make_unique<StandardCheckpointHandler>(Layout()));
  EXPECT_THROW(ckptr.save(dir / "1", args::StandardSave{Tree(Iota({2}))}), InvalidArgumentError);
  EXPECT_THROW(ckptr.save(dir / "2", args::StandardSave{Tree::Dict({{"s", "text"}})}), InvalidArgumentError);
  EXPECT_THROW(ckptr.save(dir / "3", args::StandardSave{Tree::Dict({{"s", ArraySpec{DType::kFloat32, {2}}}})}),
               InvalidArgumentError);
  EXPECT_THROW(ckptr.save(dir / "4", args::PyTreeSave{State()}), InvalidArgumentError);  // wrong args type
  EXPECT_FALSE(std::filesystem::exists(dir / "1"));
  EXPECT_FALSE(std::filesystem::exists(dir / "1.orbax-checkpoint-tmp"));
}

TEST(StandardCheckpointHandler, TargetCastsAndChecksShapes) {
  TempDir dir;
  Checkpointer ckptr(std::make_unique<StandardCheckpointHandler>(Layout()));
  ckptr.save(dir / "1", args::StandardSave{State()});
  Tree target = State().Map([](const KeyPath&, const Tree& leaf) -> Tree {
    if (leaf.is_array()) return ArraySpec{DType::kFloat64, leaf.array().shape()};
    return leaf;
  });
  Tree restored = ckptr.restore(dir / "1", args::StandardRestore{target});
  EXPECT_EQ(restored["params"]["w"].array(), Iota({4, 3}, DType::kFloat64));
  EXPECT_EQ(restored["params"]["b"].array().dtype(), DType::kFloat64);
  EXPECT_EQ(restored["step"], Tree::Scalar(int64_t{42}));

  // strict: another shape is an error naming the parameter; non-strict pads and truncates.
  Tree other = target;
  other["params"]["w"] = ArraySpec{DType::kFloat32, {2, 5}};
  try {
    ckptr.restore(dir / "1", args::StandardRestore{other});
    FAIL();
  } catch (const InvalidArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("params.w"), std::string::npos) << e.what();
  }
  Tree loose = ckptr.restore(dir / "1", args::StandardRestore{other, /*strict=*/false});
  EXPECT_EQ(loose["params"]["w"].array(), Array::FromVector<float>({2, 5}, {0, 1, 2, 0, 0, 3, 4, 5, 0, 0}));
  // A rank change is impossible even without strict.
  other["params"]["w"] = ArraySpec{DType::kFloat32, {12}};
  EXPECT_THROW(ckptr.restore(dir / "1", args::StandardRestore{other, false}), InvalidArgumentError);
  // A scalar target keeps its C++ type; an array target for a scalar gives a 0-d array.
  other = target;
  other["step"] = Tree::Scalar(0.0);
  EXPECT_EQ(ckptr.restore(dir / "1", args::StandardRestore{other})["step"], Tree::Scalar(42.0));
  other["step"] = ArraySpec{DType::kInt32, {}};
  EXPECT_EQ(ckptr.restore(dir / "1", args::StandardRestore{other})["step"].array(), Array::FromScalar<int32_t>(42));
}

TEST(StandardCheckpointHandler, MismatchedTargetShowsTheDiff) {
  TempDir dir;
  Checkpointer ckptr(std::make_unique<StandardCheckpointHandler>(Layout()));
  ckptr.save(dir / "1", args::StandardSave{State()});
  Tree target = Tree::Dict({{"params", Tree::Dict({{"w", ArraySpec{DType::kFloat32, {4, 3}}}})},
                            {"extra", ArraySpec{DType::kFloat32, {1}}}});
  try {
    ckptr.restore(dir / "1", args::StandardRestore{target});
    FAIL() << "a partial target must not silently restore part of the tree";
  } catch (const InvalidArgumentError& e) {
    std::string message = e.what();
    EXPECT_NE(message.find("['params']['b']: missing"), std::string::npos) << message;
    EXPECT_NE(message.find("['extra']: unexpected"), std::string::npos) << message;
  }
}

// Orbax's metadata records lists and tuples alike as a "sequence": a checkpoint saved from tuples lists them back
// as lists, and a target may ask for either; the restored tree takes the target's.
TEST(StandardCheckpointHandler, TuplesAndListsAreBothSequences) {
  TempDir dir;
  Checkpointer ckptr(std::make_unique<StandardCheckpointHandler>(Layout()));
  Tree state = Tree::Dict({{"layers", Tree::Tuple({Iota({2}), Iota({3})})}});
  ckptr.save(dir / "1", args::StandardSave{state});
  Tree untargeted = ckptr.restore(dir / "1");
  EXPECT_EQ(untargeted["layers"].kind(), Tree::Kind::kList);
  Tree target = Tree::Dict({{"layers", Tree::Tuple({ArraySpec{DType::kFloat32, {2}}, ArraySpec{DType::kFloat32, {3}}})}});
  Tree restored = ckptr.restore(dir / "1", args::StandardRestore{target});
  EXPECT_EQ(restored, state);
  Tree as_list = Tree::Dict({{"layers", Tree::List({ArraySpec{DType::kFloat32, {2}}, ArraySpec{DType::kFloat32, {3}}})}});
  EXPECT_EQ(ckptr.restore(dir / "1", args::StandardRestore{as_list})["layers"].kind(), Tree::Kind::kList);
}

TEST(PyTreeCheckpointHandler, StringsPlaceholdersAndPartialRestore) {
  TempDir dir;
  Tree state = Tree::Dict({{"name", "run-7 ünïcode"}, {"w", Iota({3})}, {"skip", Tree::Placeholder()}});
  Checkpointer ckptr(std::make_unique<PyTreeCheckpointHandler>(Layout()));
  ckptr.save(dir / "1", args::PyTreeSave{state});
  EXPECT_EQ(ckptr.restore(dir / "1"), state);
  EXPECT_TRUE(std::filesystem::exists(dir / "1/_strings.json"));

  // Partial restore reads only what the target names; placeholders are skipped.
  Tree target = Tree::Dict({{"w", ArraySpec{DType::kFloat64, {3}}}, {"name", Tree::Placeholder()}});
  Tree partial = ckptr.restore(dir / "1", args::PyTreeRestore{target, {}, /*partial_restore=*/true});
  EXPECT_EQ(partial["w"].array(), Iota({3}, DType::kFloat64));
  EXPECT_TRUE(partial["name"].is_placeholder());
  EXPECT_FALSE(partial.contains("skip"));
  EXPECT_THROW(ckptr.restore(dir / "1", args::PyTreeRestore{target}), InvalidArgumentError);
  Tree missing = Tree::Dict({{"nope", ArraySpec{DType::kFloat32, {3}}}});
  EXPECT_THROW(ckptr.restore(dir / "1", args::PyTreeRestore{missing, {}, true}), NotFoundError);
}

TEST(PyTreeCheckpointHandler, SaveAndRestoreArgs) {
  TempDir dir;
  Tree state = Tree::Dict({{"a", Iota({4})}, {"b", Iota({4})}});
  Checkpointer ckptr(std::make_unique<PyTreeCheckpointHandler>(Layout()));
  ckptr.save(dir / "1", args::PyTreeSave{state, {{"a", SaveArgs{DType::kBFloat16, std::nullopt, std::nullopt}}}});
  EXPECT_EQ(ckptr.metadata(dir / "1").item_metadata["a"].spec().dtype, DType::kBFloat16);
  Tree restored = ckptr.restore(dir / "1", args::PyTreeRestore{Tree::None(), {{"", RestoreArgs{DType::kFloat64}}}});
  EXPECT_EQ(restored["a"].array(), Iota({4}, DType::kFloat64));
  EXPECT_EQ(restored["b"].array(), Iota({4}, DType::kFloat64));
}

TEST(PyTreeCheckpointHandler, HostileKeysAreRejected) {
  TempDir dir;
  Checkpointer ckptr(std::make_unique<PyTreeCheckpointHandler>(Layout()));
  for (std::string key : {std::string("a/b"), std::string(".."), std::string(""), std::string("x\0y", 3)}) {
    EXPECT_THROW(ckptr.save(dir / "1", args::PyTreeSave{Tree::Dict({{key, Iota({1})}})}), InvalidArgumentError)
        << key;
  }
  // Two paths that map to one parameter name.
  Tree clash = Tree::Dict({{"a.b", Iota({1})}, {"a", Tree::Dict({{"b", Iota({1})}})}});
  EXPECT_THROW(ckptr.save(dir / "1", args::PyTreeSave{clash}), InvalidArgumentError);
  EXPECT_FALSE(std::filesystem::exists(dir / "1"));
}

TEST(ArrayCheckpointHandler, OneArray) {
  TempDir dir;
  Checkpointer ckptr(std::make_unique<ArrayCheckpointHandler>());
  Array a = Iota({2, 2}, DType::kInt64);
  ckptr.save(dir / "1", args::ArraySave{a});
  EXPECT_TRUE(std::filesystem::exists(dir / "1/checkpoint/.zarray"));
  EXPECT_EQ(ckptr.restore(dir / "1").array(), a);
  EXPECT_EQ(ckptr.restore(dir / "1", args::ArrayRestore{ArraySpec{DType::kFloat32, {2, 2}}}).array(),
            Iota({2, 2}, DType::kFloat32));
  EXPECT_EQ(ckptr.metadata(dir / "1").item_metadata.spec(), (ArraySpec{DType::kInt64, {2, 2}}));
}

TEST(JsonCheckpointHandler, Document) {
  TempDir dir;
  Checkpointer ckptr(std::make_unique<JsonCheckpointHandler>());
  nlohmann::json doc = {{"lr", 0.1}, {"layers", {1, 2}}, {"name", "x"}};
  ckptr.save(dir / "1", args::JsonSave{doc});
  EXPECT_EQ(FileSystem::Default()->ReadFile(dir / "1/metadata"), R"({"layers": [1, 2], "lr": 0.1, "name": "x"})");
  EXPECT_EQ(ckptr.restore(dir / "1").ToJson(), doc);
  EXPECT_EQ(ckptr.metadata(dir / "1").item_handlers,
            "orbax.checkpoint._src.handlers.json_checkpoint_handler.JsonCheckpointHandler");
}

TEST(CompositeCheckpointHandler, ItemsInTheirOwnDirectories) {
  TempDir dir;
  Checkpointer ckptr(std::make_unique<CompositeCheckpointHandler>());
  args::Composite save;
  save.add("state", args::StandardSave{State()}).add("extra", args::JsonSave{{{"epoch", 3}}});
  ckptr.save(dir / "1", save);
  EXPECT_TRUE(std::filesystem::exists(dir / "1/state/_METADATA"));
  EXPECT_TRUE(std::filesystem::exists(dir / "1/extra/metadata"));
  StepMetadata m = ckptr.metadata(dir / "1");
  EXPECT_EQ(m.item_handlers["state"],
            "orbax.checkpoint._src.handlers.standard_checkpoint_handler.StandardCheckpointHandler");
  EXPECT_EQ(m.item_handlers["extra"], "orbax.checkpoint._src.handlers.json_checkpoint_handler.JsonCheckpointHandler");

  Checkpointer reader(std::make_unique<CompositeCheckpointHandler>());
  Tree restored = reader.restore(dir / "1", args::Composite({{"state", args::Item(args::StandardRestore{})},
                                                             {"extra", args::Item(args::JsonRestore{})}}));
  EXPECT_EQ(restored["state"], State());
  EXPECT_EQ(restored["extra"]["epoch"].scalar<int64_t>(), 3);
  // Only the items asked for; a missing item is NotFound.
  Tree only = reader.restore(dir / "1", args::Composite({{"extra", args::Item(args::JsonRestore{})}}));
  EXPECT_EQ(only.size(), 1u);
  EXPECT_THROW(reader.restore(dir / "1", args::Composite({{"nope", args::Item(args::JsonRestore{})}})),
               NotFoundError);
  EXPECT_THROW(CompositeCheckpointHandler({"../escape"}), InvalidArgumentError);
}

}  // namespace
}  // namespace cairn

namespace cairn {
namespace {

TEST(CompositeCheckpointHandler, RestoresWithoutArgsFromStepMetadata) {
  cairn::testing::TempDir dir;
  PyTreeCheckpointHandlerOptions layout;
  layout.use_ocdbt = false;
  std::map<std::string, std::unique_ptr<CheckpointHandler>> handlers;
  handlers["state"] = std::make_unique<StandardCheckpointHandler>(layout);
  handlers["extra"] = std::make_unique<JsonCheckpointHandler>();
  Checkpointer writer(std::make_unique<CompositeCheckpointHandler>(std::move(handlers)));
  Tree state = Tree::Dict({{"w", cairn::testing::Iota({3})}});
  writer.save(dir / "1", args::Composite({{"state", args::Item(args::StandardSave{state})},
                                          {"extra", args::Item(args::JsonSave{{{"k", "v"}}})}}));
  Checkpointer reader(std::make_unique<CompositeCheckpointHandler>());
  Tree restored = reader.restore(dir / "1");
  EXPECT_EQ(restored["state"], state);
  EXPECT_EQ(restored["extra"]["k"].string(), "v");
  EXPECT_EQ(reader.metadata(dir / "1").item_metadata["state"]["w"].spec(), (ArraySpec{DType::kFloat32, {3}}));
}

TEST(CompositeCheckpointHandler, ArgsGivenLaterReplaceAHandlerInferredFromAStep) {
  cairn::testing::TempDir dir;
  Tree state = Tree::Dict({{"w", cairn::testing::Iota({3})}});
  Checkpointer writer(std::make_unique<CompositeCheckpointHandler>());
  writer.save(dir / "1", args::Composite({{"state", args::Item(args::PyTreeSave{state})}}));
  Checkpointer ckptr(std::make_unique<CompositeCheckpointHandler>());
  EXPECT_EQ(ckptr.restore(dir / "1")["state"], state);  // infers PyTreeCheckpointHandler for `state`
  ckptr.save(dir / "2", args::Composite({{"state", args::Item(args::StandardSave{state})}}));
  EXPECT_EQ(ckptr.metadata(dir / "2").item_handlers["state"],
            "orbax.checkpoint._src.handlers.standard_checkpoint_handler.StandardCheckpointHandler");
  EXPECT_EQ(ckptr.restore(dir / "2", args::Composite({{"state", args::Item(args::StandardRestore{})}}))["state"],
            state);
}

}  // namespace
}  // namespace cairn

namespace cairn {
namespace {

TEST(PyTreeCheckpointHandler, ShardingAndArrayMetadatasAreReadWhenPresent) {
  cairn::testing::TempDir dir;
  Checkpointer ckptr(std::make_unique<StandardCheckpointHandler>());
  Tree state = Tree::Dict({{"w", cairn::testing::Iota({4, 4})}});
  ckptr.save(dir / "1", args::StandardSave{state});
  auto fs = FileSystem::Default();
  const std::string sharding = fs->ReadFile(dir / "1/_sharding");
  fs->WriteFile(dir / "1/_sharding", R"({"dw==": 7})");
  EXPECT_THROW(ckptr.restore(dir / "1"), CorruptionError);
  fs->WriteFile(dir / "1/_sharding", sharding);
  fs->WriteFile(dir / "1/array_metadatas/process_0",
                R"({"array_metadatas": [{"array_metadata": {"param_name": "w", "write_shape": [16], "chunk_shape": [16]}}]})");
  EXPECT_THROW(ckptr.restore(dir / "1"), CorruptionError);
  // Absent, they are not needed (as in Orbax's own checkpoints without them)...
  fs->RemoveAll(dir / "1/array_metadatas");
  fs->RemoveFile(dir / "1/_sharding");
  // ... unless cairn's checksums record that they were saved: then their absence is damage.
  EXPECT_THROW(ckptr.restore(dir / "1"), CorruptionError);
  fs->RemoveAll(dir / "1/cairn_checksums");
  EXPECT_EQ(ckptr.restore(dir / "1"), state);
}

}  // namespace
}  // namespace cairn
