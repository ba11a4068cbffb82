// CheckpointManager: the training loop's view of checkpoints (Orbax's `ocp.CheckpointManager`).
//
// A manager owns a root directory of steps (`<root>/<step>/<item>/...`), decides which steps to save
// (save-decision policies) and which to keep (preservation policies), and saves through an AsyncCheckpointer (or a
// Checkpointer) around a CompositeCheckpointHandler, in Orbax's layout: steps Orbax wrote are listed and restored.
#pragma once

#include <chrono>
#include <concepts>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cairn/checkpoint_args.h"
#include "cairn/checkpoint_handler.h"
#include "cairn/checkpoint_policies.h"
#include "cairn/checkpointer.h"
#include "cairn/options.h"
#include "cairn/step_metadata.h"
#include "cairn/tree.h"

namespace cairn {

// Orbax's CheckpointManagerOptions, with Orbax's names and defaults. The older fields (save_interval_steps,
// save_on_steps, should_save_fn; max_to_keep, keep_time_interval, keep_period, best_fn) build the default policies
// exactly as Orbax builds them; save_decision_policy / preservation_policy replace them.
struct CheckpointManagerOptions {
  // Save the steps that are multiples of this (0: none). Default policy: AnySavePolicy(FixedIntervalPolicy,
  // SpecificStepsPolicy(save_on_steps), PreemptionCheckpointingPolicy, InitialSavePolicy).
  int64_t save_interval_steps = 1;
  // Keep at most this many steps: the latest, or with best_fn the best (Orbax #526). nullopt: keep all.
  std::optional<int64_t> max_to_keep{};
  // Also keep a step at least this long after the last one kept this way (EveryNSeconds).
  std::optional<std::chrono::seconds> keep_time_interval{};
  // Also keep the steps that are multiples of this (EveryNSteps).
  std::optional<int64_t> keep_period{};
  // Ranks steps by their metrics; with max_to_keep the best max_to_keep are kept (BestN).
  std::function<double(const nlohmann::json& metrics)> best_fn{};
  // "max" or "min": whether a higher or a lower best_fn is better.
  std::string best_mode = "max";
  // With best_fn: steps saved without metrics are never deleted.
  bool keep_checkpoints_without_metrics = true;
  // Step directories are `<step_prefix>_<step>`.
  std::optional<std::string> step_prefix{};
  // Steps are zero-padded to this many digits (`0023`).
  std::optional<int> step_format_fixed_length{};
  // Create the root directory if it does not exist.
  bool create = true;
  // At start-up, remove unfinished saves (`*.orbax-checkpoint-tmp`) left by a crash.
  bool cleanup_tmp_directories = false;
  // Also save these steps.
  std::set<int64_t> save_on_steps{};
  // Move deleted steps into `<root>/<todelete_subdir>/` instead of deleting them.
  std::optional<std::string> todelete_subdir{};
  // Delete old steps on a background thread (close() or the destructor waits for it).
  bool enable_background_delete = false;
  // Never write: save() saves nothing, delete_step() deletes nothing, nothing is created or cleaned up.
  bool read_only = false;
  // Save with an AsyncCheckpointer: save() returns once the arrays are copied; the write, the commit and the
  // deletion of old steps run in the background.
  bool enable_async_checkpointing = true;
  AsyncOptions async_options{};
  MultiprocessingOptions multiprocessing_options{};
  // Replaces save_interval_steps and save_on_steps: called with (step, latest saved step).
  std::function<bool(int64_t step, std::optional<int64_t> last_step)> should_save_fn{};
  FileOptions file_options{};
  AtomicityOptions atomicity_options{};
  // Write the constructor's `metadata` to `<root>/metadata/_ROOT_METADATA` (once per root).
  bool save_root_metadata = true;
  // Decides when to save; replaces save_interval_steps, save_on_steps and should_save_fn.
  std::shared_ptr<const save_decision_policy::SaveDecisionPolicy> save_decision_policy{};
  // Decides which steps to keep; replaces max_to_keep, keep_time_interval, keep_period and best_fn (and may not
  // be combined with the first three).
  std::shared_ptr<const preservation_policy::PreservationPolicy> preservation_policy{};
  // Keep metrics in memory for the policies, but do not write the `metrics` item.
  bool prevent_write_metrics = false;
  // Do not read each step's metadata and metrics at start-up (time and metrics of existing steps are unknown).
  bool lightweight_initialize = false;

  // cairn additions.
  // Every file access goes through this.
  std::shared_ptr<FileSystem> file_system = FileSystem::Default();
  // The clock of the policies, in nanoseconds since the Unix epoch (tests pass a fake one). Default: system clock.
  std::function<int64_t()> now_nsecs{};
  // Whether a preemption has been signalled at `step` (Orbax asks JAX); the default policies then save. Default:
  // never.
  std::function<bool(int64_t step)> reached_preemption_fn{};
  // Save each step as a delta against the latest kept step (SaveOptions::delta_base, docs/manager.md): chunks
  // whose bytes did not change are shared with it through hard links (on s3:// and gs://, server-side copies), not
  // written again. Every step stays complete on its own, so retention deletes any step freely. On a file system
  // with neither (FileSystem::HowFilesAreShared) the option is ignored and every save is full.
  bool save_deltas = false;
  // With save_deltas: when more than this fraction of a step's chunk bytes changed, the step is written in full
  // (its unchanged chunks copied, not shared), so that it keeps none of the older data files alive.
  double delta_max_changed_fraction = 0.5;
};

// The keyword arguments of CheckpointManager::save.
struct CheckpointManagerSaveOptions {
  // A JSON object of metrics, saved as the `metrics` item and handed to best_fn and the policies.
  nlohmann::json metrics = nullptr;
  // Save even if the save-decision policy says no. Never replaces an existing step.
  bool force = false;
  // A JSON object stored in the step's `_CHECKPOINT_METADATA`.
  nlohmann::json custom_metadata = nlohmann::json::object();
};

// `<root>/metadata/_ROOT_METADATA`: metadata about the whole run, written once.
struct RootMetadata {
  nlohmann::json internal_metadata = nlohmann::json::object();
  nlohmann::json custom_metadata = nlohmann::json::object();
};

// A map from item name to its handler.
using CheckpointHandlerMap = std::map<std::string, std::unique_ptr<CheckpointHandler>>;

// Thread-safe: any thread may call any method, as with Orbax's manager (a training thread saving while another lists
// steps or restores). Calls are serialised by one lock, held for the whole call: a call made while another thread's
// save() waits for the previous save, or while a restore runs, waits for it. The background commit takes no part
// in that lock, so the callbacks it runs (AsyncOptions::post_finalization_callback) must not call the manager.
// Across processes (MultiprocessingOptions::
// process_group), every process makes the same calls: the primary host creates, cleans up and deletes, the
// processes agree at each synchronisation point (a failure on one fails all), and a save decision that could
// differ between them (a custom save_decision_policy or should_save_fn) is the primary's.
class CheckpointManager {
 public:
  // The name of the single unnamed item and of the metrics item.
  static constexpr const char* kDefaultItemName = "default";
  static constexpr const char* kMetricsItemName = "metrics";

  // Items named by `item_names` (Composite args), or, with none, decided by the first save(): Composite args for
  // named items, any other args for the single unnamed item in `<step>/default/`. `metadata`, when not null, is
  // written to `<root>/metadata/_ROOT_METADATA` unless a previous run wrote it.
  explicit CheckpointManager(std::filesystem::path directory, CheckpointManagerOptions options = {},
                             std::vector<std::string> item_names = {}, nlohmann::json metadata = nullptr);
  // A single unnamed item with this handler.
  template <typename Handler>
    requires std::derived_from<Handler, CheckpointHandler>
  CheckpointManager(std::filesystem::path directory, CheckpointManagerOptions options,
                    std::unique_ptr<Handler> item_handler, nlohmann::json metadata = nullptr)
      : CheckpointManager(HandlerSetup{std::move(item_handler)}, std::move(directory), std::move(options),
                          std::move(metadata)) {}
  // Named items with these handlers (other items get the handler their args call for).
  template <typename Map>
    requires std::same_as<Map, CheckpointHandlerMap>
  CheckpointManager(std::filesystem::path directory, CheckpointManagerOptions options, Map item_handlers,
                    nlohmann::json metadata = nullptr)
      : CheckpointManager(HandlerSetup{nullptr, std::move(item_handlers)}, std::move(directory), std::move(options),
                          std::move(metadata)) {}

  // Waits for the save in flight and the deletions, like close(); a failure is printed, not thrown.
  ~CheckpointManager();
  CheckpointManager(const CheckpointManager&) = delete;
  CheckpointManager& operator=(const CheckpointManager&) = delete;

  const std::filesystem::path& directory() const;
  // Where `step` is (or would be) kept: `directory()` / its name under the step-name options.
  std::filesystem::path step_directory(int64_t step) const { return StepPath(step); }

  // Saves `step` if the save-decision policy (or `force`) says so; returns whether it saved. `args`: Composite
  // args for named items, or one item's args for the unnamed item. Waits for the previous save first (rethrowing
  // its failure). AlreadyExistsError if the step exists. Once the save has committed, deletes the steps the
  // preservation policy no longer keeps (in the background with async checkpointing).
  bool save(int64_t step, const CheckpointArgs& args, const CheckpointManagerSaveOptions& options = {});
  // Restores `step` (default: the latest), with or without args. For the unnamed item, the item itself; for named
  // items, a dict by item name. NotFoundError when there is no such step.
  Tree restore(std::optional<int64_t> step = std::nullopt);
  Tree restore(std::optional<int64_t> step, const CheckpointArgs& args);

  // The steps the manager holds, in increasing order (what survives once pending deletions are done).
  std::vector<int64_t> all_steps() const;
  std::optional<int64_t> latest_step() const;
  // The best step by best_fn (the latest without best_fn); nullopt when no step has metrics.
  std::optional<int64_t> best_step() const;
  // Whether save(step) would save: never in read-only mode or for a step not after the latest; otherwise the
  // save-decision policy.
  bool should_save(int64_t step) const;
  bool reached_preemption(int64_t step) const;
  // Rescans the root directory (steps changed by someone else).
  void reload();
  // Deletes a step (Orbax's `delete`, a keyword in C++). NotFoundError if the manager does not hold it.
  void delete_step(int64_t step);

  // The metrics saved with `step`, or nullopt.
  std::optional<nlohmann::json> metrics(int64_t step) const;
  // metadata(step).item_metadata.
  Tree item_metadata(int64_t step);
  // The step's `_CHECKPOINT_METADATA`, its metrics and its item metadata (for the unnamed item, that item's).
  StepMetadata metadata(int64_t step);
  // The root metadata (empty when none was written).
  RootMetadata metadata();

  // Blocks until the save in flight has committed and its old steps are deleted; rethrows a failure once.
  void wait_until_finished();
  // Rethrows the failure of a finished background save or deletion, without waiting.
  void check_for_errors();
  // True from save() until the save has committed and its old steps are deleted.
  bool is_saving_in_progress() const;
  // Waits for everything in flight (deletions in the background too) and closes the checkpointer; rethrows a
  // failure. Idempotent.
  void close();

  const CheckpointManagerOptions& options() const;

 private:
  struct HandlerSetup {
    std::unique_ptr<CheckpointHandler> default_handler{};
    CheckpointHandlerMap handlers{};
    std::vector<std::string> item_names{};
  };
  // (HandlerSetup first, so that no public call can resolve to it.)
  CheckpointManager(HandlerSetup setup, std::filesystem::path directory, CheckpointManagerOptions options,
                    nlohmann::json metadata);

  int64_t Now() const;
  std::filesystem::path StepPath(int64_t step) const;
  void Agree(const char* name, const std::function<void()>& step = {}, bool run_here = true) const;
  bool IsPrimary() const;
  bool DecideLocally(int64_t step) const;
  std::vector<CheckpointInfo> LoadCheckpointInfos() const;
  std::optional<nlohmann::json> ReadMetrics(int64_t step) const;
  void CheckArgsMode(const CheckpointArgs& args) const;
  void DecideDefaultItemFromDisk(int64_t step);
  // Runs after `step` committed (or failed): deletes `steps`. Throws the save's failure.
  void FinishStep(int64_t step, const std::vector<int64_t>& steps);
  // Joins the finalize thread, if any, and repairs the step list when its save failed; the failure is kept in
  // pending_error_.
  void JoinFinalize();
  void RethrowPending();
  Tree RestoreImpl(std::optional<int64_t> step, const CheckpointArgs* args);

  // The state: the steps, the checkpointer, the background finalize thread and the lock that serialises calls.
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cairn
