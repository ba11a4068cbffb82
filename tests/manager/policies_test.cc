// The save-decision and preservation policies, one by one, against Orbax's semantics.
#include "cairn/checkpoint_policies.h"

#include <gtest/gtest.h>

#include <cmath>

#include "cairn/error.h"

namespace cairn {
namespace {

namespace sdp = save_decision_policy;
namespace pp = preservation_policy;

constexpr int64_t kSec = 1'000'000'000;

CheckpointInfo At(int64_t step, int64_t secs = 0) { return CheckpointInfo{.step = step, .time_nsecs = secs * kSec}; }
CheckpointInfo WithLoss(int64_t step, double loss) {
  return CheckpointInfo{.step = step, .time_nsecs = 0, .metrics = nlohmann::json{{"loss", loss}}};
}
std::vector<CheckpointInfo> Steps(std::initializer_list<int64_t> steps) {
  std::vector<CheckpointInfo> out;
  for (int64_t s : steps) out.push_back(At(s));
  return out;
}
double Loss(const nlohmann::json& m) { return m.at("loss").get<double>(); }

// The steps whose flag is set.
std::vector<int64_t> Kept(const pp::PreservationPolicy& policy, const std::vector<CheckpointInfo>& checkpoints,
                          int64_t now_secs = 0) {
  const auto flags = policy.should_preserve(checkpoints, pp::PreservationContext{.now_nsecs = now_secs * kSec});
  EXPECT_EQ(flags.size(), checkpoints.size());
  std::vector<int64_t> out;
  for (size_t i = 0; i < flags.size(); ++i) {
    if (flags[i]) out.push_back(checkpoints[i].step);
  }
  return out;
}

bool Saves(const sdp::SaveDecisionPolicy& policy, CheckpointInfo step, const std::vector<CheckpointInfo>& previous,
           sdp::DecisionContext context = {}) {
  return policy.should_save(step, previous, context);
}

TEST(SaveDecisionPolicy, FixedInterval) {
  sdp::FixedIntervalPolicy every5(5);
  EXPECT_TRUE(Saves(every5, At(0), {}));
  EXPECT_FALSE(Saves(every5, At(3), {}));
  EXPECT_TRUE(Saves(every5, At(10), Steps({5})));
  EXPECT_THROW(sdp::FixedIntervalPolicy(0), InvalidArgumentError);
  EXPECT_THROW(sdp::FixedIntervalPolicy(-2), InvalidArgumentError);
}

TEST(SaveDecisionPolicy, SpecificSteps) {
  sdp::SpecificStepsPolicy policy({3, 17});
  EXPECT_TRUE(Saves(policy, At(3), {}));
  EXPECT_TRUE(Saves(policy, At(17), Steps({3})));
  EXPECT_FALSE(Saves(policy, At(4), {}));
}

TEST(SaveDecisionPolicy, ContinuousSavesWheneverNoSaveIsInProgress) {
  sdp::ContinuousCheckpointingPolicy any_time;
  EXPECT_TRUE(Saves(any_time, At(1), {}));
  EXPECT_TRUE(Saves(any_time, At(2, 0), {At(1, 0)}));
  EXPECT_FALSE(Saves(any_time, At(2), {}, {.is_saving_in_progress = true}));

  sdp::ContinuousCheckpointingPolicy at_most_every_10s(10);
  EXPECT_TRUE(Saves(at_most_every_10s, At(1, 100), {}));
  EXPECT_FALSE(Saves(at_most_every_10s, At(2, 109), {At(1, 100)}));
  EXPECT_TRUE(Saves(at_most_every_10s, At(3, 110), {At(1, 100)}));
  EXPECT_FALSE(Saves(at_most_every_10s, At(3, 200), {At(1, 100)}, {.is_saving_in_progress = true}));
}

TEST(SaveDecisionPolicy, PreemptionAndInitialSave) {
  EXPECT_TRUE(Saves(sdp::PreemptionCheckpointingPolicy(), At(7), Steps({5}), {.reached_preemption = true}));
  EXPECT_FALSE(Saves(sdp::PreemptionCheckpointingPolicy(), At(7), Steps({5})));
  EXPECT_TRUE(Saves(sdp::InitialSavePolicy(), At(123), {}));
  EXPECT_FALSE(Saves(sdp::InitialSavePolicy(), At(124), Steps({123})));
}

TEST(SaveDecisionPolicy, AnySaveIsTheUnionOfItsPolicies) {
  sdp::AnySavePolicy policy(sdp::FixedIntervalPolicy(10), sdp::SpecificStepsPolicy({3}), sdp::InitialSavePolicy());
  EXPECT_TRUE(Saves(policy, At(7), {}));  // initial
  EXPECT_TRUE(Saves(policy, At(3), Steps({0})));
  EXPECT_TRUE(Saves(policy, At(20), Steps({0})));
  EXPECT_FALSE(Saves(policy, At(21), Steps({20})));
  // Nested, and by pointer.
  sdp::AnySavePolicy nested({std::make_shared<sdp::AnySavePolicy>(policy),
                             std::make_shared<sdp::SpecificStepsPolicy>(std::set<int64_t>{21})});
  EXPECT_TRUE(Saves(nested, At(21), Steps({20})));
  EXPECT_THROW(sdp::AnySavePolicy(std::vector<std::shared_ptr<const sdp::SaveDecisionPolicy>>{}), InvalidArgumentError);
}

TEST(PreservationPolicy, PreserveAllAndLatestN) {
  const auto ckpts = Steps({1, 2, 3, 4, 5});
  EXPECT_EQ(Kept(pp::PreserveAll(), ckpts), (std::vector<int64_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(Kept(pp::LatestN(2), ckpts), (std::vector<int64_t>{4, 5}));
  EXPECT_EQ(Kept(pp::LatestN(9), ckpts), (std::vector<int64_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(Kept(pp::LatestN(0), ckpts), (std::vector<int64_t>{}));
  EXPECT_EQ(Kept(pp::LatestN(), ckpts), (std::vector<int64_t>{1, 2, 3, 4, 5}));
  EXPECT_THROW(pp::LatestN(-1), InvalidArgumentError);
}

TEST(PreservationPolicy, EveryNSecondsKeepsTheFirstAndThenOnePerInterval) {
  const std::vector<CheckpointInfo> ckpts = {At(1, 0), At(2, 4), At(3, 10), At(4, 15), At(5, 19), At(6, 20)};
  EXPECT_EQ(Kept(pp::EveryNSeconds(10), ckpts), (std::vector<int64_t>{1, 3, 6}));
  EXPECT_EQ(Kept(pp::EveryNSeconds(0), ckpts), (std::vector<int64_t>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(Kept(pp::EveryNSeconds(10), {}), (std::vector<int64_t>{}));
}

TEST(PreservationPolicy, EveryNSteps) {
  const auto ckpts = Steps({0, 3, 5, 6, 10, 12, 15, 20});
  EXPECT_EQ(Kept(pp::EveryNSteps(5), ckpts), (std::vector<int64_t>{0, 5, 10, 15, 20}));
  EXPECT_EQ(Kept(pp::EveryNSteps(5, true, 2), ckpts), (std::vector<int64_t>{15, 20}));
  // Not exact: the first, then each at least 5 steps after the last kept.
  EXPECT_EQ(Kept(pp::EveryNSteps(5, false), Steps({1, 3, 6, 7, 11, 12, 17})), (std::vector<int64_t>{1, 6, 11, 17}));
  EXPECT_THROW(pp::EveryNSteps(0), InvalidArgumentError);
}

TEST(PreservationPolicy, CustomSteps) {
  EXPECT_EQ(Kept(pp::CustomSteps({2, 4, 9}), Steps({1, 2, 3, 4, 5})), (std::vector<int64_t>{2, 4}));
}

TEST(PreservationPolicy, LatestDurationUsesTheContextClock) {
  const std::vector<CheckpointInfo> ckpts = {At(1, 0), At(2, 50), At(3, 90), At(4, 95)};
  EXPECT_EQ(Kept(pp::LatestDuration(10), ckpts, /*now_secs=*/100), (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(Kept(pp::LatestDuration(1000), ckpts, 100), (std::vector<int64_t>{1, 2, 3, 4}));
  EXPECT_EQ(Kept(pp::LatestDuration(1), ckpts, 100), (std::vector<int64_t>{}));
}

TEST(PreservationPolicy, BestNKeepsTheHighestOrWithReverseTheLowest) {
  const std::vector<CheckpointInfo> ckpts = {WithLoss(1, 0.5), WithLoss(2, 0.1), WithLoss(3, 0.9), WithLoss(4, 0.3),
                                             WithLoss(5, 0.7)};
  EXPECT_EQ(Kept(pp::BestN(Loss, 2), ckpts), (std::vector<int64_t>{3, 5}));
  EXPECT_EQ(Kept(pp::BestN(Loss, 2, /*reverse=*/true), ckpts), (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(Kept(pp::BestN(Loss, 0), ckpts), (std::vector<int64_t>{}));
  EXPECT_EQ(Kept(pp::BestN(Loss, std::nullopt), ckpts), (std::vector<int64_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(Kept(pp::BestN(Loss, 5), ckpts), (std::vector<int64_t>{1, 2, 3, 4, 5}));
}

TEST(PreservationPolicy, BestNAndCheckpointsWithoutMetrics) {
  const std::vector<CheckpointInfo> ckpts = {WithLoss(1, 0.5), At(2), WithLoss(3, 0.2), At(4), WithLoss(5, 0.4)};
  EXPECT_EQ(Kept(pp::BestN(Loss, 1, true), ckpts), (std::vector<int64_t>{2, 3, 4}));
  EXPECT_EQ(Kept(pp::BestN(Loss, 1, true, /*keep_checkpoints_without_metrics=*/false), ckpts),
            (std::vector<int64_t>{3}));
  // n counts only steps with metrics; with more than n checkpoints overall the rule applies.
  EXPECT_EQ(Kept(pp::BestN(Loss, 2, true, false), ckpts), (std::vector<int64_t>{3, 5}));
}

TEST(PreservationPolicy, BestNTiesGoToTheLaterStepAndNaNIsWorst) {
  const std::vector<CheckpointInfo> ties = {WithLoss(1, 0.5), WithLoss(2, 0.5), WithLoss(3, 0.5)};
  EXPECT_EQ(Kept(pp::BestN(Loss, 1), ties), (std::vector<int64_t>{3}));
  EXPECT_EQ(Kept(pp::BestN(Loss, 1, true), ties), (std::vector<int64_t>{3}));
  const std::vector<CheckpointInfo> nan = {WithLoss(1, 0.5), WithLoss(2, std::nan("")), WithLoss(3, 0.7)};
  EXPECT_EQ(Kept(pp::BestN(Loss, 2), nan), (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(Kept(pp::BestN(Loss, 2, true), nan), (std::vector<int64_t>{1, 3}));
}

TEST(PreservationPolicy, AnyPreservationPolicyBest3PlusLatest2) {
  std::vector<CheckpointInfo> ckpts;
  const double losses[] = {0.9, 0.2, 0.8, 0.1, 0.7, 0.3, 0.6, 0.5, 0.4};
  for (int i = 0; i < 9; ++i) ckpts.push_back(WithLoss(i * 10, losses[i]));
  pp::AnyPreservationPolicy policy(pp::BestN(Loss, 3, /*reverse=*/true), pp::LatestN(2));
  EXPECT_EQ(Kept(policy, ckpts), (std::vector<int64_t>{10, 30, 50, 70, 80}));
  EXPECT_THROW(pp::AnyPreservationPolicy(std::vector<std::shared_ptr<const pp::PreservationPolicy>>{}),
               InvalidArgumentError);
}

TEST(PreservationPolicy, SortByMetric) {
  const std::vector<CheckpointInfo> ckpts = {WithLoss(1, 0.5), At(2), WithLoss(3, 0.1), WithLoss(4, 0.9)};
  std::vector<int64_t> order;
  for (const auto& c : pp::SortByMetric(ckpts, Loss, false)) order.push_back(c.step);
  EXPECT_EQ(order, (std::vector<int64_t>{3, 1, 4}));
  order.clear();
  for (const auto& c : pp::SortByMetric(ckpts, Loss, true)) order.push_back(c.step);
  EXPECT_EQ(order, (std::vector<int64_t>{4, 1, 3}));
}

}  // namespace
}  // namespace cairn
