// The policies a CheckpointManager consults: when to save a step (save_decision_policy) and which saved steps to
// keep (preservation_policy). The names and semantics are Orbax's
// (`_src/checkpoint_managers/save_decision_policy.py`, `preservation_policy.py`).
#pragma once

#include <concepts>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <vector>

#include <nlohmann/json.hpp>

namespace cairn {

// What a policy knows about one checkpoint (Orbax's CheckpointInfo / PolicyCheckpointInfo).
struct CheckpointInfo {
  int64_t step = 0;
  // When the step was saved, in nanoseconds since the Unix epoch: the manager's clock at save() for steps saved by
  // this manager, `commit_timestamp_nsecs` from `_CHECKPOINT_METADATA` for steps found on disk.
  int64_t time_nsecs = 0;
  // The metrics saved with the step (a JSON object), or nullopt when it has none.
  std::optional<nlohmann::json> metrics{};

  friend bool operator==(const CheckpointInfo&, const CheckpointInfo&) = default;
};

namespace save_decision_policy {

// What a save decision may depend on besides the steps.
struct DecisionContext {
  bool is_saving_in_progress = false;
  bool reached_preemption = false;
  // The manager's clock, in nanoseconds since the Unix epoch.
  int64_t now_nsecs = 0;
};

// Decides whether `step` is saved. `previous_steps` are the steps the manager holds, in increasing order.
class SaveDecisionPolicy {
 public:
  virtual ~SaveDecisionPolicy() = default;
  virtual bool should_save(const CheckpointInfo& step, std::span<const CheckpointInfo> previous_steps,
                           const DecisionContext& context) const = 0;
};

// Saves every step that is a multiple of `interval` (> 0).
class FixedIntervalPolicy : public SaveDecisionPolicy {
 public:
  explicit FixedIntervalPolicy(int64_t interval);
  bool should_save(const CheckpointInfo& step, std::span<const CheckpointInfo> previous_steps,
                   const DecisionContext& context) const override;
  int64_t interval() const { return interval_; }

 private:
  int64_t interval_;
};

// Saves exactly the given steps.
class SpecificStepsPolicy : public SaveDecisionPolicy {
 public:
  explicit SpecificStepsPolicy(std::set<int64_t> steps) : steps_(std::move(steps)) {}
  bool should_save(const CheckpointInfo& step, std::span<const CheckpointInfo> previous_steps,
                   const DecisionContext& context) const override;

 private:
  std::set<int64_t> steps_;
};

// Saves as often as possible: whenever no save is in progress and, if set, at least `minimum_interval_secs` have
// passed since the previous checkpoint.
class ContinuousCheckpointingPolicy : public SaveDecisionPolicy {
 public:
  explicit ContinuousCheckpointingPolicy(std::optional<int64_t> minimum_interval_secs = std::nullopt)
      : minimum_interval_secs_(minimum_interval_secs) {}
  bool should_save(const CheckpointInfo& step, std::span<const CheckpointInfo> previous_steps,
                   const DecisionContext& context) const override;

 private:
  std::optional<int64_t> minimum_interval_secs_;
};

// Saves when a preemption has been signalled (CheckpointManagerOptions::reached_preemption_fn).
class PreemptionCheckpointingPolicy : public SaveDecisionPolicy {
 public:
  bool should_save(const CheckpointInfo& step, std::span<const CheckpointInfo> previous_steps,
                   const DecisionContext& context) const override;
};

// Saves when there is no checkpoint yet (a fresh run), whatever the step.
class InitialSavePolicy : public SaveDecisionPolicy {
 public:
  bool should_save(const CheckpointInfo& step, std::span<const CheckpointInfo> previous_steps,
                   const DecisionContext& context) const override;
};

// Saves when any of its policies says so (evaluated in order, stopping at the first yes).
class AnySavePolicy : public SaveDecisionPolicy {
 public:
  explicit AnySavePolicy(std::vector<std::shared_ptr<const SaveDecisionPolicy>> policies);
  // AnySavePolicy(FixedIntervalPolicy(100), InitialSavePolicy()): policies by value.
  template <typename... Policies>
    requires(sizeof...(Policies) > 0 && (std::derived_from<Policies, SaveDecisionPolicy> && ...))
  explicit AnySavePolicy(Policies... policies)
      : AnySavePolicy(std::vector<std::shared_ptr<const SaveDecisionPolicy>>{
            std::make_shared<const Policies>(std::move(policies))...}) {}
  bool should_save(const CheckpointInfo& step, std::span<const CheckpointInfo> previous_steps,
                   const DecisionContext& context) const override;

 private:
  std::vector<std::shared_ptr<const SaveDecisionPolicy>> policies_;
};

}  // namespace save_decision_policy

namespace preservation_policy {

struct PreservationContext {
  // The manager's clock, in nanoseconds since the Unix epoch.
  int64_t now_nsecs = 0;
};

// Decides which of `checkpoints` (in increasing step order) to keep: one flag per checkpoint. The manager deletes
// the others once the save that triggered the decision has committed.
class PreservationPolicy {
 public:
  virtual ~PreservationPolicy() = default;
  virtual std::vector<bool> should_preserve(std::span<const CheckpointInfo> checkpoints,
                                            const PreservationContext& context) const = 0;
};

// Keeps everything.
class PreserveAll : public PreservationPolicy {
 public:
  std::vector<bool> should_preserve(std::span<const CheckpointInfo> checkpoints,
                                    const PreservationContext& context) const override;
};

// Keeps the `n` most recent steps (all of them when n is nullopt).
class LatestN : public PreservationPolicy {
 public:
  explicit LatestN(std::optional<int64_t> n = std::nullopt);
  std::vector<bool> should_preserve(std::span<const CheckpointInfo> checkpoints,
                                    const PreservationContext& context) const override;

 private:
  std::optional<int64_t> n_;
};

// Keeps the first checkpoint and then each one at least `interval_secs` after the last one kept.
class EveryNSeconds : public PreservationPolicy {
 public:
  explicit EveryNSeconds(int64_t interval_secs) : interval_secs_(interval_secs) {}
  std::vector<bool> should_preserve(std::span<const CheckpointInfo> checkpoints,
                                    const PreservationContext& context) const override;

 private:
  int64_t interval_secs_;
};

// With `exact_interval`, keeps the steps that are multiples of `interval_steps`; otherwise the first step and then
// each one at least `interval_steps` after the last one kept. With `max_to_keep`, only the latest that many of
// those.
class EveryNSteps : public PreservationPolicy {
 public:
  explicit EveryNSteps(int64_t interval_steps, bool exact_interval = true,
                       std::optional<int64_t> max_to_keep = std::nullopt);
  std::vector<bool> should_preserve(std::span<const CheckpointInfo> checkpoints,
                                    const PreservationContext& context) const override;

 private:
  int64_t interval_steps_;
  bool exact_interval_;
  std::optional<int64_t> max_to_keep_;
};

// Keeps exactly the given steps.
class CustomSteps : public PreservationPolicy {
 public:
  explicit CustomSteps(std::set<int64_t> steps) : steps_(std::move(steps)) {}
  std::vector<bool> should_preserve(std::span<const CheckpointInfo> checkpoints,
                                    const PreservationContext& context) const override;

 private:
  std::set<int64_t> steps_;
};

// Keeps the checkpoints no older than `duration_secs` at the time of the decision (and every one after the first
// such).
class LatestDuration : public PreservationPolicy {
 public:
  explicit LatestDuration(int64_t duration_secs) : duration_secs_(duration_secs) {}
  std::vector<bool> should_preserve(std::span<const CheckpointInfo> checkpoints,
                                    const PreservationContext& context) const override;

 private:
  int64_t duration_secs_;
};

// Keeps the `n` best checkpoints by `get_metric_fn(metrics)`: the highest values, or the lowest with `reverse`
// (Orbax's sorted(..., reverse=...) then the last n). Checkpoints without metrics are kept when
// `keep_checkpoints_without_metrics`, never counted among the n. A NaN metric ranks below every number. Ties go to
// the later step. n = nullopt keeps everything; n = 0 keeps nothing.
class BestN : public PreservationPolicy {
 public:
  BestN(std::function<double(const nlohmann::json&)> get_metric_fn, std::optional<int64_t> n, bool reverse = false,
        bool keep_checkpoints_without_metrics = true);
  std::vector<bool> should_preserve(std::span<const CheckpointInfo> checkpoints,
                                    const PreservationContext& context) const override;

 private:
  std::function<double(const nlohmann::json&)> get_metric_fn_;
  std::optional<int64_t> n_;
  bool reverse_;
  bool keep_checkpoints_without_metrics_;
};

// Keeps a checkpoint when any of its policies keeps it: e.g. AnyPreservationPolicy(BestN(loss, 3, true),
// LatestN(2)) keeps the 3 lowest-loss steps and the 2 latest.
class AnyPreservationPolicy : public PreservationPolicy {
 public:
  explicit AnyPreservationPolicy(std::vector<std::shared_ptr<const PreservationPolicy>> policies);
  template <typename... Policies>
    requires(sizeof...(Policies) > 0 && (std::derived_from<Policies, PreservationPolicy> && ...))
  explicit AnyPreservationPolicy(Policies... policies)
      : AnyPreservationPolicy(std::vector<std::shared_ptr<const PreservationPolicy>>{
            std::make_shared<const Policies>(std::move(policies))...}) {}
  std::vector<bool> should_preserve(std::span<const CheckpointInfo> checkpoints,
                                    const PreservationContext& context) const override;

 private:
  std::vector<std::shared_ptr<const PreservationPolicy>> policies_;
};

// Sorts `checkpoints` with metrics by `get_metric_fn`, from worst to best (best last), as BestN and
// CheckpointManager::best_step() rank them: ascending values, or descending with `reverse`; NaN first; ties keep
// step order, so that the later of two equal steps counts as better.
std::vector<CheckpointInfo> SortByMetric(std::span<const CheckpointInfo> checkpoints,
                                         const std::function<double(const nlohmann::json&)>& get_metric_fn,
                                         bool reverse);

}  // namespace preservation_policy
}  // namespace cairn
