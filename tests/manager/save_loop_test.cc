// A training loop of 200 steps: asynchronous saves every 5 steps with metrics, "best 3 plus latest 2" retention,
// and restarts in between (with the leftovers of a crash). At the end the manager holds exactly the steps the
// policy keeps, computed here independently, and each restores bit for bit.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "cairn/cairn.h"
#include "manager_test_util.h"
#include "test_util.h"

namespace cairn {
namespace {

namespace fs = std::filesystem;
using cairn::testing::StateAt;

constexpr int64_t kSteps = 200;
constexpr int64_t kInterval = 5;

// A distinct, irregular loss per step.
double LossAt(int64_t step) { return static_cast<double>((step * 7919 + 13) % 1009) / 1009.0; }

// What "best 3 by lowest loss, plus the latest 2" keeps of `saved`. Deleted steps never come back, yet this is
// also what the policy keeps step by step: a step among the best 3 of all steps so far was among the best 3 at
// every earlier decision too (losses are distinct), and the latest 2 are always kept.
std::vector<int64_t> ExpectedKept(const std::vector<int64_t>& saved) {
  std::set<int64_t> kept;
  std::vector<int64_t> by_loss = saved;
  std::sort(by_loss.begin(), by_loss.end(), [](int64_t a, int64_t b) { return LossAt(a) < LossAt(b); });
  for (size_t i = 0; i < std::min<size_t>(3, by_loss.size()); ++i) kept.insert(by_loss[i]);
  for (size_t i = saved.size() >= 2 ? saved.size() - 2 : 0; i < saved.size(); ++i) kept.insert(saved[i]);
  return std::vector<int64_t>(kept.begin(), kept.end());
}

class SaveLoop : public ::testing::TestWithParam<bool> {};

INSTANTIATE_TEST_SUITE_P(InMemoryAndPosix, SaveLoop, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Posix" : "InMemory"; });

TEST_P(SaveLoop, TwoHundredStepsWithAsyncSavesRetentionAndRestarts) {
  // Distinct losses, so that "the best 3" is well defined.
  std::set<double> losses;
  for (int64_t step = 0; step < kSteps; step += kInterval) losses.insert(LossAt(step));
  ASSERT_EQ(losses.size(), static_cast<size_t>(kSteps / kInterval));

  cairn::testing::TempDir tmp;
  const bool posix = GetParam();
  std::shared_ptr<FileSystem> files = posix ? FileSystem::Default() : NewInMemoryFileSystem();
  const fs::path root = posix ? tmp / "run" : fs::path("/run");

  auto make_manager = [&](int segment) {
    CheckpointManagerOptions o;
    o.save_interval_steps = kInterval;
    o.cleanup_tmp_directories = true;
    o.enable_background_delete = segment % 2 == 1;  // both ways of deleting
    o.enable_async_checkpointing = true;
    o.preservation_policy = std::make_shared<preservation_policy::AnyPreservationPolicy>(
        preservation_policy::BestN([](const nlohmann::json& m) { return m.at("loss").get<double>(); }, 3,
                                   /*reverse=*/true),
        preservation_policy::LatestN(2));
    o.file_system = files;
    return std::make_unique<CheckpointManager>(root, o);
  };

  // Where the job "dies": mid-interval, right after a save, and at a save step itself.
  const std::vector<int64_t> restarts = {37, 81, 120, 163, kSteps - 1};
  std::vector<int64_t> saved;  // what the test saw being saved, in order
  int64_t step = 0;
  for (size_t segment = 0; segment < restarts.size(); ++segment) {
    auto mngr = make_manager(static_cast<int>(segment));
    // Resume: exactly the policy's steps are there, and the latest restores exactly.
    ASSERT_EQ(mngr->all_steps(), ExpectedKept(saved)) << "after restart " << segment;
    if (auto latest = mngr->latest_step()) {
      EXPECT_EQ(*latest, saved.back());
      EXPECT_EQ(mngr->restore(), StateAt(*latest));
      step = *latest + 1;
    }
    for (; step <= restarts[segment]; ++step) {
      Tree state = StateAt(step);  // "training"
      if (mngr->save(step, args::StandardSave{state}, {.metrics = {{"loss", LossAt(step)}}})) saved.push_back(step);
    }
    // The job is killed with a save of the next step under way: what it leaves is a temporary directory.
    files->CreateDirs(root / (std::to_string(step + kInterval) + ".orbax-checkpoint-tmp/default"));
    mngr.reset();  // waits for the save in flight (a real crash might lose it; the policy would not notice)
  }

  std::vector<int64_t> expected_saved;
  for (int64_t s = 0; s < kSteps; s += kInterval) expected_saved.push_back(s);
  ASSERT_EQ(saved, expected_saved);

  auto mngr = make_manager(0);
  const std::vector<int64_t> expected = ExpectedKept(saved);
  EXPECT_EQ(mngr->all_steps(), expected);
  EXPECT_EQ(mngr->latest_step(), kSteps - kInterval);
  EXPECT_EQ(mngr->best_step(), mngr->latest_step());  // no best_fn in the options: best_step is the latest
  std::set<std::string> names;
  for (int64_t s : expected) {
    names.insert(std::to_string(s));
    EXPECT_EQ(mngr->restore(s), StateAt(s)) << "step " << s;
    EXPECT_EQ(mngr->metrics(s), (nlohmann::json{{"loss", LossAt(s)}})) << "step " << s;
  }
  // Nothing else on disk: no old step, no temporary directory.
  const auto listing = files->ListDir(root);
  EXPECT_EQ(std::set<std::string>(listing.begin(), listing.end()), names);
}

}  // namespace
}  // namespace cairn
