// "Nothing is ever silently partial" (issue 13): a restore without args never leaves out an item it has no handler
// for, and a legacy aggregate checkpoint without `_METADATA` restores the values its msgpack file holds, as Orbax
// does.
#include <gtest/gtest.h>

#include "cairn/cairn.h"
#include "cairn/verify.h"
#include "test_util.h"

namespace cairn {
namespace {

namespace fs = std::filesystem;

// The `state` item of Orbax's composite fixtures, as restored from the intact one.
Tree Expected() {
  const fs::path intact = cairn::testing::FixturesDir() /
                          "v0_checkpoints/composite_checkpoint/checkpoint_metadata_present/pytree_checkpointable_has_metadata";
  Checkpointer ckptr(std::make_unique<CompositeCheckpointHandler>());
  return ckptr.restore(intact, args::Composite({{"state", args::Item(args::StandardRestore{})}}))["state"];
}

// Orbax's composite checkpoints whose `_CHECKPOINT_METADATA`, or its `item_handlers`, is missing: nothing records
// the handlers of `state` and `metadata`.
const char* kWithoutHandlers[] = {
    "v0_checkpoints/composite_checkpoint/checkpoint_metadata_missing/pytree_checkpointable_has_metadata",
    "v0_checkpoints/composite_checkpoint/checkpoint_metadata_missing/pytree_checkpointable_missing_metadata",
    "v0_checkpoints/composite_checkpoint/non_critical_metadata_alterations/missing_item_handlers_metadata",
};

TEST(NothingSilentlyPartial, CompositeRestoreWithoutArgsRefusesItemsItHasNoHandlerFor) {
  for (const char* relative : kWithoutHandlers) {
    const fs::path dir = cairn::testing::FixturesDir() / relative;
    SCOPED_TRACE(dir.string());
    Checkpointer ckptr(std::make_unique<CompositeCheckpointHandler>());
    try {
      const Tree restored = ckptr.restore(dir);
      ADD_FAILURE() << "restored " << restored.ToString() << " without the items it has no handler for";
    } catch (const InvalidArgumentError& e) {
      EXPECT_NE(std::string(e.what()).find("'metadata', 'state'"), std::string::npos) << e.what();
    }
    // With one handler registered, the other item is still refused, not dropped.
    std::map<std::string, std::unique_ptr<CheckpointHandler>> one;
    one["state"] = std::make_unique<StandardCheckpointHandler>();
    Checkpointer partly(std::make_unique<CompositeCheckpointHandler>(std::move(one)));
    try {
      partly.restore(dir);
      ADD_FAILURE() << "restored 'state' and silently left out 'metadata'";
    } catch (const InvalidArgumentError& e) {
      EXPECT_NE(std::string(e.what()).find("'metadata'"), std::string::npos) << e.what();
      EXPECT_EQ(std::string(e.what()).find("'state'"), std::string::npos) << e.what();
    }
    // Handlers for every item, or args naming them: all of it.
    std::map<std::string, std::unique_ptr<CheckpointHandler>> both;
    both["state"] = std::make_unique<StandardCheckpointHandler>();
    both["metadata"] = std::make_unique<JsonCheckpointHandler>();
    Checkpointer full(std::make_unique<CompositeCheckpointHandler>(std::move(both)));
    const Tree restored = full.restore(dir);
    EXPECT_EQ(restored["state"], Expected());
    EXPECT_EQ(restored["metadata"]["metadata"].string(), "json_data");
    EXPECT_EQ(ckptr.restore(dir, args::Composite({{"state", args::Item(args::StandardRestore{})}}))["state"],
              Expected());
  }
}

TEST(NothingSilentlyPartial, VerifySaysWhichItemsARestoreWithoutArgsCannotRestore) {
  for (const char* relative : kWithoutHandlers) {
    const fs::path dir = cairn::testing::FixturesDir() / relative;
    SCOPED_TRACE(dir.string());
    const VerifyReport report = VerifyCheckpoint(dir);
    EXPECT_FALSE(report.ok());
    std::set<std::string> named;
    for (const auto& problem : report.problems) {
      if (problem.message.find("no handler") != std::string::npos) named.insert(problem.where);
    }
    EXPECT_EQ(named, (std::set<std::string>{"metadata", "state"}));
  }
  // Where `_CHECKPOINT_METADATA` names them, all is well.
  EXPECT_TRUE(VerifyCheckpoint(cairn::testing::FixturesDir() /
                               "v0_checkpoints/composite_checkpoint/checkpoint_metadata_present/"
                               "pytree_checkpointable_has_metadata")
                  .ok());
}

// Orbax's legacy checkpoints keep values in the msgpack `checkpoint` file (aggregate_all: every value;
// aggregate_some: some, the others in zarr arrays beside it). Without `_METADATA` they restore as with it.
TEST(NothingSilentlyPartial, LegacyAggregateWithoutMetadataRestoresEveryValue) {
  for (const char* name : {"aggregate_some.checkpoint", "aggregate_all.checkpoint"}) {
    SCOPED_TRACE(name);
    cairn::testing::TempDir tmp;
    const fs::path dir = tmp / name;
    fs::copy(cairn::testing::FixturesDir() / "zarr_v2" / name, dir, fs::copy_options::recursive);
    Checkpointer ckptr(std::make_unique<PyTreeCheckpointHandler>());
    const Tree with_metadata = ckptr.restore(dir);
    ASSERT_FALSE(with_metadata.Flatten().empty());
    fs::remove(dir / "_METADATA");
    const Tree without = ckptr.restore(dir);
    // The same leaves with the same values (the containers may differ: without `_METADATA` nothing says whether a
    // level of the msgpack file was a list or a tuple).
    std::map<std::string, std::string> expected, actual;
    for (const auto& [path, leaf] : with_metadata.Flatten()) expected[ParamName(path)] = leaf.ToString();
    for (const auto& [path, leaf] : without.Flatten()) actual[ParamName(path)] = leaf.ToString();
    EXPECT_EQ(actual, expected);
  }
}

}  // namespace
}  // namespace cairn
