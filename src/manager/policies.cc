// The save-decision and preservation policies, as Orbax defines them.
#include <algorithm>
#include <cmath>
#include <string>
#include <unordered_set>

#include "cairn/checkpoint_policies.h"
#include "cairn/error.h"

namespace cairn {
namespace {

constexpr int64_t kNanosPerSecond = 1'000'000'000;

// `seconds` as nanoseconds, saturating instead of overflowing for absurd intervals.
int64_t SecondsToNanos(int64_t seconds) {
  constexpr int64_t kMax = INT64_MAX / kNanosPerSecond;
  if (seconds > kMax) return INT64_MAX;
  if (seconds < -kMax) return INT64_MIN;
  return seconds * kNanosPerSecond;
}

}  // namespace

namespace save_decision_policy {

FixedIntervalPolicy::FixedIntervalPolicy(int64_t interval) : interval_(interval) {
  if (interval <= 0) {
    throw InvalidArgumentError("FixedIntervalPolicy: interval must be positive, got " + std::to_string(interval));
  }
}

bool FixedIntervalPolicy::should_save(const CheckpointInfo& step, std::span<const CheckpointInfo>,
                                      const DecisionContext&) const {
  return step.step % interval_ == 0;
}

bool SpecificStepsPolicy::should_save(const CheckpointInfo& step, std::span<const CheckpointInfo>,
                                      const DecisionContext&) const {
  return steps_.count(step.step) > 0;
}

bool ContinuousCheckpointingPolicy::should_save(const CheckpointInfo& step,
                                                std::span<const CheckpointInfo> previous_steps,
                                                const DecisionContext& context) const {
  if (context.is_saving_in_progress) return false;
  if (previous_steps.empty() || !minimum_interval_secs_) return true;
  return step.time_nsecs - previous_steps.back().time_nsecs >= SecondsToNanos(*minimum_interval_secs_);
}

bool PreemptionCheckpointingPolicy::should_save(const CheckpointInfo&, std::span<const CheckpointInfo>,
                                                const DecisionContext& context) const {
  return context.reached_preemption;
}

bool InitialSavePolicy::should_save(const CheckpointInfo&, std::span<const CheckpointInfo> previous_steps,
                                    const DecisionContext&) const {
  return previous_steps.empty();
}

AnySavePolicy::AnySavePolicy(std::vector<std::shared_ptr<const SaveDecisionPolicy>> policies)
    : policies_(std::move(policies)) {
  if (policies_.empty()) throw InvalidArgumentError("AnySavePolicy needs at least one policy");
  for (const auto& policy : policies_) {
    if (!policy) throw InvalidArgumentError("AnySavePolicy: a policy is null");
  }
}

bool AnySavePolicy::should_save(const CheckpointInfo& step, std::span<const CheckpointInfo> previous_steps,
                                const DecisionContext& context) const {
  return std::any_of(policies_.begin(), policies_.end(),
                     [&](const auto& policy) { return policy->should_save(step, previous_steps, context); });
}

}  // namespace save_decision_policy

namespace preservation_policy {

std::vector<bool> PreserveAll::should_preserve(std::span<const CheckpointInfo> checkpoints,
                                               const PreservationContext&) const {
  return std::vector<bool>(checkpoints.size(), true);
}

LatestN::LatestN(std::optional<int64_t> n) : n_(n) {
  if (n_ && *n_ < 0) throw InvalidArgumentError("LatestN: n must be non-negative, got " + std::to_string(*n_));
}

std::vector<bool> LatestN::should_preserve(std::span<const CheckpointInfo> checkpoints,
                                           const PreservationContext&) const {
  std::vector<bool> keep(checkpoints.size(), true);
  if (!n_ || checkpoints.size() <= static_cast<size_t>(*n_)) return keep;
  std::fill(keep.begin(), keep.end() - *n_, false);
  return keep;
}

std::vector<bool> EveryNSeconds::should_preserve(std::span<const CheckpointInfo> checkpoints,
                                                 const PreservationContext&) const {
  std::vector<bool> keep;
  if (checkpoints.empty()) return keep;
  keep.reserve(checkpoints.size());
  int64_t last_kept = checkpoints[0].time_nsecs;
  keep.push_back(true);
  const int64_t interval = SecondsToNanos(interval_secs_);
  for (size_t i = 1; i < checkpoints.size(); ++i) {
    const bool k = checkpoints[i].time_nsecs - last_kept >= interval;
    if (k) last_kept = checkpoints[i].time_nsecs;
    keep.push_back(k);
  }
  return keep;
}

EveryNSteps::EveryNSteps(int64_t interval_steps, bool exact_interval, std::optional<int64_t> max_to_keep)
    : interval_steps_(interval_steps), exact_interval_(exact_interval), max_to_keep_(max_to_keep) {
  if (interval_steps_ == 0) throw InvalidArgumentError("EveryNSteps: interval_steps must not be 0");
  if (max_to_keep_ && *max_to_keep_ < 0) {
    throw InvalidArgumentError("EveryNSteps: max_to_keep must be non-negative, got " + std::to_string(*max_to_keep_));
  }
}

std::vector<bool> EveryNSteps::should_preserve(std::span<const CheckpointInfo> checkpoints,
                                               const PreservationContext&) const {
  std::vector<bool> keep;
  keep.reserve(checkpoints.size());
  if (exact_interval_) {
    for (const auto& c : checkpoints) keep.push_back(c.step % interval_steps_ == 0);
  } else {
    int64_t previous = 0;
    for (size_t i = 0; i < checkpoints.size(); ++i) {
      const bool k = i == 0 || checkpoints[i].step - previous >= interval_steps_;
      if (k) previous = checkpoints[i].step;
      keep.push_back(k);
    }
  }
  if (max_to_keep_) {
    // Only the latest max_to_keep of the kept ones.
    int64_t kept = 0;
    for (size_t i = keep.size(); i-- > 0;) {
      if (keep[i] && ++kept > *max_to_keep_) keep[i] = false;
    }
  }
  return keep;
}

std::vector<bool> CustomSteps::should_preserve(std::span<const CheckpointInfo> checkpoints,
                                               const PreservationContext&) const {
  std::vector<bool> keep;
  keep.reserve(checkpoints.size());
  for (const auto& c : checkpoints) keep.push_back(steps_.count(c.step) > 0);
  return keep;
}

std::vector<bool> LatestDuration::should_preserve(std::span<const CheckpointInfo> checkpoints,
                                                  const PreservationContext& context) const {
  std::vector<bool> keep(checkpoints.size(), false);
  const int64_t duration = SecondsToNanos(duration_secs_);
  for (size_t i = 0; i < checkpoints.size(); ++i) {
    if (context.now_nsecs - checkpoints[i].time_nsecs <= duration) {
      std::fill(keep.begin() + static_cast<std::ptrdiff_t>(i), keep.end(), true);
      break;
    }
  }
  return keep;
}

std::vector<CheckpointInfo> SortByMetric(std::span<const CheckpointInfo> checkpoints,
                                         const std::function<double(const nlohmann::json&)>& get_metric_fn,
                                         bool reverse) {
  std::vector<std::pair<double, const CheckpointInfo*>> ranked;
  for (const auto& c : checkpoints) {
    if (c.metrics) ranked.emplace_back(get_metric_fn(*c.metrics), &c);
  }
  // A strict weak order even with NaN (which would make std::sort undefined): NaN sorts first, i.e. worst.
  std::stable_sort(ranked.begin(), ranked.end(), [reverse](const auto& a, const auto& b) {
    const bool a_nan = std::isnan(a.first), b_nan = std::isnan(b.first);
    if (a_nan || b_nan) return a_nan && !b_nan;
    return reverse ? a.first > b.first : a.first < b.first;
  });
  std::vector<CheckpointInfo> out;
  out.reserve(ranked.size());
  for (const auto& [value, info] : ranked) out.push_back(*info);
  return out;
}

BestN::BestN(std::function<double(const nlohmann::json&)> get_metric_fn, std::optional<int64_t> n, bool reverse,
             bool keep_checkpoints_without_metrics)
    : get_metric_fn_(std::move(get_metric_fn)),
      n_(n),
      reverse_(reverse),
      keep_checkpoints_without_metrics_(keep_checkpoints_without_metrics) {
  if (!get_metric_fn_) throw InvalidArgumentError("BestN: get_metric_fn is empty");
  if (n_ && *n_ < 0) throw InvalidArgumentError("BestN: n must be non-negative, got " + std::to_string(*n_));
}

std::vector<bool> BestN::should_preserve(std::span<const CheckpointInfo> checkpoints,
                                         const PreservationContext&) const {
  if (!n_ || checkpoints.size() <= static_cast<size_t>(*n_)) return std::vector<bool>(checkpoints.size(), true);
  if (*n_ == 0) return std::vector<bool>(checkpoints.size(), false);
  const auto sorted = SortByMetric(checkpoints, get_metric_fn_, reverse_);
  std::unordered_set<int64_t> keep_steps;
  const size_t first = sorted.size() > static_cast<size_t>(*n_) ? sorted.size() - static_cast<size_t>(*n_) : 0;
  for (size_t i = first; i < sorted.size(); ++i) keep_steps.insert(sorted[i].step);
  std::vector<bool> keep;
  keep.reserve(checkpoints.size());
  for (const auto& c : checkpoints) {
    keep.push_back(c.metrics ? keep_steps.count(c.step) > 0 : keep_checkpoints_without_metrics_);
  }
  return keep;
}

AnyPreservationPolicy::AnyPreservationPolicy(std::vector<std::shared_ptr<const PreservationPolicy>> policies)
    : policies_(std::move(policies)) {
  // An empty list would keep nothing, i.e. delete every checkpoint: surely not what was meant.
  if (policies_.empty()) throw InvalidArgumentError("AnyPreservationPolicy needs at least one policy");
  for (const auto& policy : policies_) {
    if (!policy) throw InvalidArgumentError("AnyPreservationPolicy: a policy is null");
  }
}

std::vector<bool> AnyPreservationPolicy::should_preserve(std::span<const CheckpointInfo> checkpoints,
                                                         const PreservationContext& context) const {
  std::vector<bool> keep(checkpoints.size(), false);
  for (const auto& policy : policies_) {
    const auto flags = policy->should_preserve(checkpoints, context);
    if (flags.size() != checkpoints.size()) {
      throw InvalidArgumentError("a preservation policy returned " + std::to_string(flags.size()) + " flags for " +
                                 std::to_string(checkpoints.size()) + " checkpoints");
    }
    for (size_t i = 0; i < keep.size(); ++i) keep[i] = keep[i] || flags[i];
  }
  return keep;
}

}  // namespace preservation_policy
}  // namespace cairn
