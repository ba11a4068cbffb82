// CheckpointManager: steps under one root, saved through a (possibly asynchronous) composite checkpointer, kept
// or deleted by policy once each save has committed.
#include "cairn/checkpoint_manager.h"
#include "core/plain_name.h"

#include <algorithm>
#include <cstdio>
#include <mutex>
#include <numeric>
#include <thread>

#include "cairn/async_checkpointer.h"
#include "cairn/error.h"
#include "cairn/handlers.h"
#include "checkpoint/save_pipeline.h"
#include "io/no_symlinks.h"
#include "io/permission_mode_file_system.h"
#include "io/temporary_path.h"
#include "distributed/agreement.h"
#include "manager/step_deleter.h"
#include "manager/step_name.h"
#include "metadata/checkpoint_metadata.h"
#include "metadata/checksums.h"
#include "metadata/python_json.h"

namespace cairn {
namespace {

constexpr const char* kRootMetadataDir = "metadata";
constexpr const char* kRootMetadataFile = "_ROOT_METADATA";
constexpr const char* kLegacyRootMetadataFile = "metadata";

// Orbax's _ShouldSaveFnPolicy: the user's predicate, given the latest saved step.
class ShouldSaveFnPolicy : public save_decision_policy::SaveDecisionPolicy {
 public:
  explicit ShouldSaveFnPolicy(std::function<bool(int64_t, std::optional<int64_t>)> fn) : fn_(std::move(fn)) {}
  bool should_save(const CheckpointInfo& step, std::span<const CheckpointInfo> previous_steps,
                   const save_decision_policy::DecisionContext&) const override {
    return fn_(step.step, previous_steps.empty() ? std::nullopt : std::optional<int64_t>(previous_steps.back().step));
  }

 private:
  std::function<bool(int64_t, std::optional<int64_t>)> fn_;
};

std::shared_ptr<const save_decision_policy::SaveDecisionPolicy> DefaultSavePolicy(
    const CheckpointManagerOptions& options) {
  namespace sdp = save_decision_policy;
  std::vector<std::shared_ptr<const sdp::SaveDecisionPolicy>> policies;
  if (options.should_save_fn) {
    policies.push_back(std::make_shared<ShouldSaveFnPolicy>(options.should_save_fn));
    policies.push_back(std::make_shared<sdp::PreemptionCheckpointingPolicy>());
  } else {
    if (options.save_interval_steps > 0) {
      policies.push_back(std::make_shared<sdp::FixedIntervalPolicy>(options.save_interval_steps));
    }
    if (!options.save_on_steps.empty()) {
      policies.push_back(std::make_shared<sdp::SpecificStepsPolicy>(options.save_on_steps));
    }
    policies.push_back(std::make_shared<sdp::PreemptionCheckpointingPolicy>());
    policies.push_back(std::make_shared<sdp::InitialSavePolicy>());
  }
  return std::make_shared<sdp::AnySavePolicy>(std::move(policies));
}

std::shared_ptr<const preservation_policy::PreservationPolicy> DefaultPreservationPolicy(
    const CheckpointManagerOptions& options) {
  namespace pp = preservation_policy;
  std::vector<std::shared_ptr<const pp::PreservationPolicy>> policies;
  if (options.keep_period) policies.push_back(std::make_shared<pp::EveryNSteps>(*options.keep_period));
  if (options.keep_time_interval) {
    policies.push_back(std::make_shared<pp::EveryNSeconds>(options.keep_time_interval->count()));
  }
  if (options.best_fn) {
    policies.push_back(std::make_shared<pp::BestN>(options.best_fn, options.max_to_keep,
                                                   /*reverse=*/options.best_mode == "min",
                                                   options.keep_checkpoints_without_metrics));
  } else {
    policies.push_back(std::make_shared<pp::LatestN>(options.max_to_keep));
  }
  return std::make_shared<pp::AnyPreservationPolicy>(std::move(policies));
}

void ValidateOptions(const CheckpointManagerOptions& options) {
  if (options.best_mode != "max" && options.best_mode != "min") {
    throw InvalidArgumentError("CheckpointManagerOptions.best_mode must be \"min\" or \"max\", got \"" +
                               options.best_mode + "\"");
  }
  if (options.max_to_keep && *options.max_to_keep < 0) {
    throw InvalidArgumentError("CheckpointManagerOptions.max_to_keep must be non-negative, got " +
                               std::to_string(*options.max_to_keep));
  }
  if (options.preservation_policy && (options.max_to_keep || options.keep_time_interval || options.keep_period)) {
    throw InvalidArgumentError(
        "CheckpointManagerOptions.preservation_policy and max_to_keep / keep_time_interval / keep_period are "
        "mutually exclusive");
  }
  if (options.save_interval_steps < 0) {
    throw InvalidArgumentError("CheckpointManagerOptions.save_interval_steps must be non-negative, got " +
                               std::to_string(options.save_interval_steps));
  }
  if (options.keep_period && *options.keep_period <= 0) {
    throw InvalidArgumentError("CheckpointManagerOptions.keep_period must be positive, got " +
                               std::to_string(*options.keep_period));
  }
  if (options.keep_time_interval && options.keep_time_interval->count() < 0) {
    throw InvalidArgumentError("CheckpointManagerOptions.keep_time_interval must not be negative");
  }
  if (options.todelete_subdir) {
    const std::filesystem::path sub(*options.todelete_subdir);
    bool bad = sub.empty() || sub.is_absolute();
    for (const auto& part : sub) bad = bad || part == ".." || part == ".";
    if (bad) {
      throw InvalidArgumentError("CheckpointManagerOptions.todelete_subdir \"" + *options.todelete_subdir +
                                 "\" must be a relative path inside the root directory");
    }
  }
  if (options.async_options.post_finalization_callback && !options.enable_async_checkpointing) {
    throw InvalidArgumentError(
        "AsyncOptions.post_finalization_callback needs enable_async_checkpointing (an AsyncCheckpointer)");
  }
}

void CheckItemName(const std::string& item) {
  if (!IsPlainName(item)) {
    throw InvalidArgumentError("bad checkpoint item name \"" + item + "\": " + kPlainNameRule);
  }
  if (item == CheckpointManager::kMetricsItemName) {
    throw InvalidArgumentError(std::string("the item name \"") + CheckpointManager::kMetricsItemName +
                               "\" is reserved for the metrics given to save()");
  }
}

// A CheckpointArgs pointer that does not own `args`: the composite args built for one call live no longer than
// the caller's.
std::shared_ptr<const CheckpointArgs> Borrow(const CheckpointArgs& args) {
  return std::shared_ptr<const CheckpointArgs>(&args, [](const CheckpointArgs*) {});
}

void InsertSorted(std::vector<CheckpointInfo>& infos, CheckpointInfo info) {
  auto it = std::lower_bound(infos.begin(), infos.end(), info.step,
                             [](const CheckpointInfo& c, int64_t step) { return c.step < step; });
  if (it != infos.end() && it->step == info.step) {
    *it = std::move(info);
  } else {
    infos.insert(it, std::move(info));
  }
}

}  // namespace

namespace {

// Runs a call of the step deleter that rethrows a failed background deletion. The steps that deletion left behind
// are still on disk, so the manager rescans first and holds them again.
void ReloadIfItFails(CheckpointManager& manager, const std::function<void()>& call) {
  try {
    call();
  } catch (...) {
    try {
      manager.reload();
    } catch (...) {
    }
    throw;
  }
}

}  // namespace

struct CheckpointManager::Impl {
  // One save whose commit (and the deletion of `removed`) runs in the background.
  struct Finalize {
    int64_t step = 0;
    std::vector<CheckpointInfo> removed;  // dropped from checkpoints_ when the save began
    std::thread thread;
    std::mutex mu;
    bool done = false;
    bool committed = false;
    std::exception_ptr error;
  };

  std::filesystem::path directory_;
  CheckpointManagerOptions options_;
  std::shared_ptr<FileSystem> fs_;
  MultiprocessingOptions mp_;  // active processes resolved; the manager's own group for its barriers
  bool active_ = true;         // among active_processes (or there are none)
  std::unique_ptr<manager::StepNameFormat> name_format_;
  std::shared_ptr<const save_decision_policy::SaveDecisionPolicy> save_policy_;
  std::shared_ptr<const preservation_policy::PreservationPolicy> preservation_policy_;
  std::unique_ptr<Checkpointer> checkpointer_;
  std::unique_ptr<manager::StepDeleter> deleter_;
  std::optional<bool> default_item_;  // decided by the handlers given, or by the first save/restore
  nlohmann::json root_custom_metadata_;  // read-only root without metadata: the constructor's
  std::vector<CheckpointInfo> checkpoints_;  // sorted by step
  // Guards everything below and the calls above: public calls take it for their whole duration. Recursive, because
  // public calls make other public calls (save() asks should_save(), close() waits) and a policy's callback (best_fn,
  // should_save_fn) may ask the manager for its steps from inside a call.
  mutable std::recursive_mutex mu_;
  std::unique_ptr<Finalize> finalize_;
  std::exception_ptr pending_error_;
  bool saving_ = false;  // synchronous save in progress
  bool closed_ = false;
};

CheckpointManager::CheckpointManager(std::filesystem::path directory, CheckpointManagerOptions options,
                                     std::vector<std::string> item_names, nlohmann::json metadata)
    : CheckpointManager(HandlerSetup{nullptr, {}, std::move(item_names)}, std::move(directory), std::move(options),
                        std::move(metadata)) {}

CheckpointManager::CheckpointManager(HandlerSetup setup, std::filesystem::path directory,
                                     CheckpointManagerOptions options, nlohmann::json metadata)
    : impl_(std::make_unique<Impl>()) {
  impl_->options_ = std::move(options);
  ValidateOptions(impl_->options_);
  if (!metadata.is_null() && !metadata.is_object()) {
    throw InvalidArgumentError("CheckpointManager metadata must be a JSON object, got " + metadata.dump());
  }
  impl_->directory_ = checkpoint::NormalizeCheckpointPath(directory);
  const std::shared_ptr<FileSystem> base_fs =
      impl_->options_.file_system ? impl_->options_.file_system : FileSystem::Default();
  // The root, the root metadata and the todelete directory get path_permission_mode like the steps (whose
  // checkpointer wraps the same base file system itself).
  impl_->fs_ = impl_->options_.file_options.path_permission_mode
            ? io::WithPermissionMode(base_fs, *impl_->options_.file_options.path_permission_mode)
            : base_fs;
  // On an object store a step counts once its commit file exists (kAuto resolves to kCommitFile there), and steps
  // are deleted in place: todelete_subdir would be a copy of every object, so it is ignored, as Orbax ignores it
  // for gs://.
  impl_->options_.atomicity_options =
      checkpoint::ResolveAtomicity(*impl_->fs_, impl_->directory_, impl_->options_.atomicity_options);
  if (!impl_->fs_->HasAtomicRename(impl_->directory_)) impl_->options_.todelete_subdir.reset();
  impl_->name_format_ =
      std::make_unique<manager::StepNameFormat>(impl_->options_.step_prefix, impl_->options_.step_format_fixed_length);
  if (impl_->options_.todelete_subdir && impl_->name_format_->Parse(*impl_->options_.todelete_subdir)) {
    throw InvalidArgumentError("CheckpointManagerOptions.todelete_subdir \"" + *impl_->options_.todelete_subdir +
                               "\" would be taken for a step");
  }
  impl_->save_policy_ =
      impl_->options_.save_decision_policy ? impl_->options_.save_decision_policy : DefaultSavePolicy(impl_->options_);
  impl_->preservation_policy_ = impl_->options_.preservation_policy ? impl_->options_.preservation_policy
                                                                    : DefaultPreservationPolicy(impl_->options_);

  // The composite handler: the items' handlers (if given) and the metrics item, a JSON file named `metrics`.
  CheckpointHandlerMap handlers;
  if (setup.default_handler) {
    handlers[kDefaultItemName] = std::move(setup.default_handler);
    impl_->default_item_ = true;
  } else if (!setup.handlers.empty()) {
    for (auto& [item, handler] : setup.handlers) {
      CheckItemName(item);
      if (!handler) throw InvalidArgumentError("CheckpointManager: item '" + item + "' has a null handler");
      handlers[item] = std::move(handler);
    }
    impl_->default_item_ = false;
  } else if (!setup.item_names.empty()) {
    for (const auto& item : setup.item_names) CheckItemName(item);
    impl_->default_item_ = false;
  }
  handlers[kMetricsItemName] = std::make_unique<JsonCheckpointHandler>(kMetricsItemName);
  auto composite = std::make_unique<CompositeCheckpointHandler>(std::move(handlers));
  // The processes: with active_processes, those form a subgroup (the others only read). The manager's own
  // barriers get a group of their own, so that they never interleave with the collectives of a save running in
  // the background on the checkpointer's group.
  bool active = true;
  const MultiprocessingOptions resolved =
      distributed::ResolveActiveProcesses(impl_->options_.multiprocessing_options, &active);
  impl_->active_ = active;
  impl_->mp_ = resolved;
  if (impl_->active_) {
    ProcessGroup& group = distributed::GroupOf(resolved);
    if (group.count() > 1) {
      std::vector<int> everyone(static_cast<size_t>(group.count()));
      std::iota(everyone.begin(), everyone.end(), 0);
      impl_->mp_.process_group = group.Subgroup(everyone);
    }
  }
  CheckpointerOptions checkpointer_options;
  // An active process hands its subgroup on; an inactive one the options as they were (its checkpointer refuses
  // to save).
  checkpointer_options.multiprocessing_options = impl_->active_ ? resolved : impl_->options_.multiprocessing_options;
  checkpointer_options.file_options = impl_->options_.file_options;
  checkpointer_options.atomicity_options = impl_->options_.atomicity_options;
  checkpointer_options.file_system = base_fs;
  if (impl_->options_.enable_async_checkpointing) {
    impl_->checkpointer_ =
        std::make_unique<AsyncCheckpointer>(std::move(composite), impl_->options_.async_options, checkpointer_options);
  } else {
    impl_->checkpointer_ = std::make_unique<Checkpointer>(std::move(composite), checkpointer_options);
  }

  const bool write = !impl_->options_.read_only;
  if (impl_->options_.create && write) {
    Agree("CheckpointManager:create_directory", [&] {
      if (impl_->fs_->IsDirectory(impl_->directory_)) return;
      impl_->fs_->CreateDirs(impl_->directory_, impl_->options_.file_options.path_permission_mode);
    }, /*run_here=*/IsPrimary());
  }
  if (impl_->options_.cleanup_tmp_directories && write) {
    Agree("CheckpointManager:cleanup_tmp_directories", [&] {
      if (!impl_->fs_->IsDirectory(impl_->directory_)) return;
      for (const auto& name : impl_->fs_->ListDir(impl_->directory_)) {
        if (manager::IsUnfinishedStep(*impl_->fs_, impl_->directory_, name, *impl_->name_format_,
                                      impl_->options_.atomicity_options)) {
          impl_->fs_->RemoveAll(impl_->directory_ / name);
        }
      }
    }, /*run_here=*/IsPrimary());
  }

  impl_->deleter_ = std::make_unique<manager::StepDeleter>(manager::StepDeleterOptions{
      .fs = impl_->fs_,
      .root = impl_->directory_,
      .name_format = *impl_->name_format_,
      .atomicity = impl_->options_.atomicity_options,
      .todelete_subdir = impl_->options_.todelete_subdir,
      .background = impl_->options_.enable_background_delete,
      .primary = IsPrimary(),
      .mode = impl_->options_.file_options.path_permission_mode,
  });
  impl_->checkpoints_ = LoadCheckpointInfos();

  // Root metadata: written once per root; a later manager with other metadata leaves it alone.
  const auto metadata_dir = impl_->directory_ / kRootMetadataDir;
  if (impl_->options_.read_only && !impl_->fs_->IsDirectory(metadata_dir)) {
    impl_->root_custom_metadata_ = metadata.is_null() ? nlohmann::json::object() : metadata;
  }
  if (impl_->options_.save_root_metadata) {
    Agree("CheckpointManager:save_root_metadata", [&] {
      if (metadata.is_null() || !write) return;
      const auto file = metadata_dir / kRootMetadataFile;
      if (!impl_->fs_->Exists(file)) {
        impl_->fs_->CreateDirs(metadata_dir, impl_->options_.file_options.path_permission_mode);
        nlohmann::ordered_json doc;
        doc["internal_metadata"] = nlohmann::ordered_json::object();
        doc["custom_metadata"] = nlohmann::ordered_json(metadata);
        // Never torn by a crash, since it is never rewritten.
        io::WriteFileAtomically(*impl_->fs_, file, metadata_dir / (std::string(kRootMetadataFile) + ".tmp"),
                                metadata::PythonJsonDumps(doc));
      }
    }, /*run_here=*/IsPrimary());
  }
}

CheckpointManager::~CheckpointManager() {
  try {
    close();
  } catch (const std::exception& e) {
    // A destructor cannot throw; the failure must still not pass silently.
    std::fprintf(stderr, "cairn: CheckpointManager for %s: a background save or deletion failed: %s\n",
                 impl_->directory_.c_str(), e.what());
  }
}

const std::filesystem::path& CheckpointManager::directory() const { return impl_->directory_; }

const CheckpointManagerOptions& CheckpointManager::options() const { return impl_->options_; }

int64_t CheckpointManager::Now() const {
  return impl_->options_.now_nsecs ? impl_->options_.now_nsecs() : metadata::NowNanoseconds();
}

std::filesystem::path CheckpointManager::StepPath(int64_t step) const {
  return impl_->directory_ / impl_->name_format_->Build(step);
}

bool CheckpointManager::IsPrimary() const { return impl_->active_ && distributed::IsPrimary(impl_->mp_); }

// Orbax's sync_global_processes at the manager's synchronisation points, as an agreement: `step` runs (where
// `run_here`), then the processes exchange their outcomes, so that a failure anywhere fails every process here.
// AsyncOptions::barrier_sync_fn, when given, is called too. An inactive process takes no part.
void CheckpointManager::Agree(const char* name, const std::function<void()>& step, bool run_here) const {
  if (impl_->active_) {
    distributed::Agree(impl_->mp_, name, step ? step : [] {}, run_here);
  } else if (step && run_here) {
    step();
  }
  if (const auto& sync = impl_->options_.async_options.barrier_sync_fn) {
    sync(impl_->mp_.barrier_sync_key_prefix.value_or("") + name, impl_->mp_.barrier_timeout_secs * 1000);
  }
}

std::optional<nlohmann::json> CheckpointManager::ReadMetrics(int64_t step) const {
  const auto path = StepPath(step) / kMetricsItemName / kMetricsItemName;
  try {
    io::RequireNoSymlinksOnPath(*impl_->fs_, StepPath(step),
                                std::filesystem::path(kMetricsItemName) / kMetricsItemName);
    auto text = metadata::ReadFileWithChecksum(*impl_->fs_, path, metadata::ChecksumFileFor(path));
    if (!text) return std::nullopt;
    return metadata::ParseJson(*text, path.string());
  } catch (const NotFoundError&) {
    return std::nullopt;  // deleted meanwhile
  } catch (const CorruptionError& e) {
    // A step whose metrics cannot be read counts as one without metrics (kept with
    // keep_checkpoints_without_metrics), rather than making the whole root unusable.
    std::fprintf(stderr, "cairn: ignoring unreadable metrics of step %lld: %s\n", static_cast<long long>(step),
                 e.what());
    return std::nullopt;
  }
}

std::vector<CheckpointInfo> CheckpointManager::LoadCheckpointInfos() const {
  std::vector<CheckpointInfo> infos;
  if (!impl_->fs_->IsDirectory(impl_->directory_)) return infos;
  // Steps on their way out are no longer the manager's, even while their files remain.
  std::set<int64_t> leaving = impl_->deleter_->Pending();
  if (impl_->finalize_) {
    for (const auto& info : impl_->finalize_->removed) leaving.insert(info.step);
  }
  for (const auto& name : impl_->fs_->ListDir(impl_->directory_)) {
    const auto step = impl_->name_format_->Parse(name);
    if (!step || leaving.count(*step)) continue;
    const auto path = impl_->directory_ / name;
    if (!manager::IsFinalizedStep(*impl_->fs_, path, impl_->options_.atomicity_options)) continue;
    CheckpointInfo info{.step = *step, .time_nsecs = 0, .metrics = std::nullopt};
    if (!impl_->options_.lightweight_initialize) {
      try {
        io::RequireNoSymlinksOnPath(*impl_->fs_, path, "_CHECKPOINT_METADATA");
        if (auto meta = metadata::ReadCheckpointMetadata(*impl_->fs_, path)) {
          // Orbax falls back to the directory's mtime, which the FileSystem seam does not expose; the start of
          // the save is the closest thing recorded.
          info.time_nsecs = meta->commit_timestamp_nsecs.value_or(meta->init_timestamp_nsecs.value_or(0));
        }
      } catch (const CorruptionError& e) {
        std::fprintf(stderr, "cairn: ignoring unreadable metadata of step %lld: %s\n", static_cast<long long>(*step),
                     e.what());
      }
      info.metrics = ReadMetrics(*step);
    }
    infos.push_back(std::move(info));
  }
  std::sort(infos.begin(), infos.end(), [](const auto& a, const auto& b) { return a.step < b.step; });
  return infos;
}

void CheckpointManager::CheckArgsMode(const CheckpointArgs& args) const {
  if (!impl_->default_item_) return;
  const bool composite = dynamic_cast<const args::Composite*>(&args) != nullptr;
  if (*impl_->default_item_ && composite) {
    throw InvalidArgumentError("cannot give Composite args to a CheckpointManager that holds a single, unnamed "
                               "(default) item");
  }
  if (!*impl_->default_item_ && !composite) {
    throw InvalidArgumentError("must give Composite args to a CheckpointManager that holds named items; got " +
                               args.name());
  }
}

void CheckpointManager::DecideDefaultItemFromDisk(int64_t step) {
  if (impl_->default_item_) return;
  const auto path = StepPath(step);
  if (impl_->fs_->IsDirectory(path)) impl_->default_item_ = impl_->fs_->IsDirectory(path / kDefaultItemName);
}

std::vector<int64_t> CheckpointManager::all_steps() const {
  std::lock_guard calls_lock(impl_->mu_);
  std::vector<int64_t> steps;
  steps.reserve(impl_->checkpoints_.size());
  for (const auto& info : impl_->checkpoints_) steps.push_back(info.step);
  return steps;
}

std::optional<int64_t> CheckpointManager::latest_step() const {
  std::lock_guard calls_lock(impl_->mu_);
  if (impl_->checkpoints_.empty()) return std::nullopt;
  return impl_->checkpoints_.back().step;
}

std::optional<int64_t> CheckpointManager::best_step() const {
  std::lock_guard calls_lock(impl_->mu_);
  if (!impl_->options_.best_fn) return latest_step();
  const auto sorted = preservation_policy::SortByMetric(impl_->checkpoints_, impl_->options_.best_fn,
                                                        impl_->options_.best_mode == "min");
  if (sorted.empty()) return std::nullopt;
  return sorted.back().step;
}

bool CheckpointManager::reached_preemption(int64_t step) const {
  return impl_->options_.reached_preemption_fn && impl_->options_.reached_preemption_fn(step);
}

bool CheckpointManager::should_save(int64_t step) const {
  std::lock_guard calls_lock(impl_->mu_);
  bool decision = DecideLocally(step);
  // A decision that may hang on this process's clock, or on when its background save finished, can differ
  // between processes: the primary's counts (Orbax does this for continuous checkpointing). The default
  // policies depend only on the step and the steps held, which every process agrees on.
  ProcessGroup& group = distributed::GroupOf(impl_->mp_);
  if (impl_->active_ && group.count() > 1 && !impl_->options_.read_only &&
      (impl_->options_.save_decision_policy || impl_->options_.should_save_fn ||
       impl_->options_.reached_preemption_fn)) {
    decision = group.Broadcast(decision ? "1" : "0", impl_->mp_.primary_host,
                               impl_->mp_.barrier_sync_key_prefix.value_or("") + "CheckpointManager:should_save",
                               std::chrono::seconds(impl_->mp_.barrier_timeout_secs)) == "1";
  }
  return decision;
}

bool CheckpointManager::DecideLocally(int64_t step) const {
  if (impl_->options_.read_only) return false;
  const auto latest = latest_step();
  if (latest && *latest >= step) return false;
  const int64_t now = Now();
  const save_decision_policy::DecisionContext context{
      .is_saving_in_progress = is_saving_in_progress(),
      .reached_preemption = reached_preemption(step),
      .now_nsecs = now,
  };
  return impl_->save_policy_->should_save(CheckpointInfo{.step = step, .time_nsecs = now, .metrics = std::nullopt},
                                   impl_->checkpoints_, context);
}

bool CheckpointManager::save(int64_t step, const CheckpointArgs& args, const CheckpointManagerSaveOptions& options) {
  std::lock_guard calls_lock(impl_->mu_);
  if (impl_->closed_) {
    throw InvalidArgumentError("the CheckpointManager for " + impl_->directory_.string() + " is closed");
  }
  if (step < 0) throw InvalidArgumentError("steps are non-negative, got " + std::to_string(step));
  if (!impl_->active_) {
    throw InvalidArgumentError("process " +
                               std::to_string(distributed::GroupOf(impl_->options_.multiprocessing_options).index()) +
                               " is not among MultiprocessingOptions::active_processes: it takes no part in saves");
  }
  if (!impl_->default_item_) impl_->default_item_ = dynamic_cast<const args::Composite*>(&args) == nullptr;
  CheckArgsMode(args);
  if (!*impl_->default_item_) {
    const auto& items = static_cast<const args::Composite&>(args).items();
    if (items.empty()) throw InvalidArgumentError("Composite args for a save need at least one item");
    for (const auto& [item, item_args] : items) {
      CheckItemName(item);
      if (!item_args) throw InvalidArgumentError("Composite args: item '" + item + "' has no args");
    }
  }
  if (!options.metrics.is_null() && !options.metrics.is_object()) {
    throw InvalidArgumentError("metrics must be a JSON object, got " + options.metrics.dump());
  }
  if (impl_->options_.read_only) return false;
  if (!options.force && !should_save(step)) return false;
  wait_until_finished();  // one save at a time; the previous one's failure surfaces here

  const auto path = StepPath(step);
  Agree("CheckpointManager:save_start", [&] {
    if (std::any_of(impl_->checkpoints_.begin(), impl_->checkpoints_.end(),
                    [&](const auto& c) { return c.step == step; })) {
      throw AlreadyExistsError("Checkpoint for step " + std::to_string(step) + " already exists in " +
                               impl_->directory_.string());
    }
    if (manager::IsFinalizedStep(*impl_->fs_, path, impl_->options_.atomicity_options)) {
      // Written by someone else since the last scan: never replace it.
      throw AlreadyExistsError("Checkpoint for step " + std::to_string(step) + " already exists at " +
                               path.string() + " (reload() to see it)");
    }
    // An earlier step of that number is still leaving.
    if (impl_->deleter_->Pending().count(step)) impl_->deleter_->WaitIdle();
  });

  args::Composite composite;
  if (*impl_->default_item_) {
    composite.set(kDefaultItemName, Borrow(args));
  } else {
    for (const auto& [item, item_args] : static_cast<const args::Composite&>(args).items()) {
      composite.set(item, item_args);
    }
  }
  if (!options.metrics.is_null() && !impl_->options_.prevent_write_metrics) {
    composite.add(kMetricsItemName, args::JsonSave{options.metrics});
  }

  // force: replace only what does not count as a step (a commit-file directory without its commit file).
  SaveOptions save_options{.force = true, .custom_metadata = options.custom_metadata};
  if (impl_->options_.save_deltas &&
      impl_->fs_->HowFilesAreShared(impl_->directory_) != FileSystem::FileSharing::kNone) {
    // Every step records its chunks' hashes, and shares what did not change with the latest step kept (which
    // retention cannot delete before this save commits: old steps go only after it).
    save_options.record_delta_hashes = true;
    save_options.delta_max_changed_fraction = impl_->options_.delta_max_changed_fraction;
    for (auto it = impl_->checkpoints_.rbegin(); it != impl_->checkpoints_.rend(); ++it) {
      const auto base = StepPath(it->step);
      if (it->step < step && impl_->fs_->Exists(base / io::kCommitSuccessFile)) {
        save_options.delta_base = base;
        break;
      }
    }
  }
  impl_->saving_ = true;
  try {
    impl_->checkpointer_->save(path, composite, save_options);
  } catch (...) {
    impl_->saving_ = false;
    throw;
  }

  const int64_t now = Now();
  InsertSorted(impl_->checkpoints_, CheckpointInfo{.step = step,
                                            .time_nsecs = now,
                                            .metrics = options.metrics.is_null()
                                                           ? std::nullopt
                                                           : std::optional<nlohmann::json>(options.metrics)});
  std::vector<bool> keep;
  try {
    keep = impl_->preservation_policy_->should_preserve(impl_->checkpoints_,
                                                 preservation_policy::PreservationContext{.now_nsecs = now});
    if (keep.size() != impl_->checkpoints_.size()) {
      throw InvalidArgumentError("the preservation policy returned " + std::to_string(keep.size()) +
                                 " flags for " + std::to_string(impl_->checkpoints_.size()) + " checkpoints");
    }
  } catch (...) {
    // The save goes on; nothing is deleted. The failure is reported as the save's.
    keep.assign(impl_->checkpoints_.size(), true);
    impl_->pending_error_ = impl_->pending_error_ ? impl_->pending_error_ : std::current_exception();
  }
  std::vector<CheckpointInfo> removed;
  std::vector<CheckpointInfo> kept;
  for (size_t i = 0; i < impl_->checkpoints_.size(); ++i) (keep[i] ? kept : removed).push_back(impl_->checkpoints_[i]);
  impl_->checkpoints_ = std::move(kept);
  Agree("CheckpointManager:old_steps_to_remove");
  std::vector<int64_t> doomed;
  for (const auto& info : removed) doomed.push_back(info.step);

  if (impl_->options_.enable_async_checkpointing) {
    auto finalize = std::make_unique<Impl::Finalize>();
    finalize->step = step;
    finalize->removed = std::move(removed);
    Impl::Finalize* f = finalize.get();
    impl_->finalize_ = std::move(finalize);
    impl_->saving_ = false;
    f->thread = std::thread([this, f, doomed] {
      bool committed = false;
      std::exception_ptr error;
      try {
        // Old steps go only once the new one has committed.
        static_cast<AsyncCheckpointer&>(*impl_->checkpointer_).wait_until_finished();
        committed = true;
        impl_->deleter_->Delete(doomed);
      } catch (...) {
        error = std::current_exception();
      }
      std::lock_guard lock(f->mu);
      f->committed = committed;
      f->error = error;
      f->done = true;
    });
  } else {
    try {
      impl_->deleter_->Delete(doomed);
    } catch (...) {
      // Steps whose deletion failed are still there: the manager still holds them.
      for (auto& info : removed) {
        if (manager::IsFinalizedStep(*impl_->fs_, StepPath(info.step), impl_->options_.atomicity_options)) {
          InsertSorted(impl_->checkpoints_, std::move(info));
        }
      }
      impl_->saving_ = false;
      throw;
    }
    impl_->saving_ = false;
  }
  return true;
}

void CheckpointManager::JoinFinalize() {
  if (!impl_->finalize_) return;
  impl_->finalize_->thread.join();
  std::unique_ptr<Impl::Finalize> f = std::move(impl_->finalize_);
  if (!f->error) return;
  if (!f->committed) {
    std::erase_if(impl_->checkpoints_, [&](const CheckpointInfo& c) { return c.step == f->step; });
  }
  // Old steps are deleted only after a commit, and a deletion may fail half-way: whatever is still there, the
  // manager still holds.
  for (auto& info : f->removed) {
    if (manager::IsFinalizedStep(*impl_->fs_, StepPath(info.step), impl_->options_.atomicity_options)) {
      InsertSorted(impl_->checkpoints_, std::move(info));
    }
  }
  if (!impl_->pending_error_) impl_->pending_error_ = f->error;
}

void CheckpointManager::RethrowPending() {
  if (impl_->pending_error_) {
    std::exception_ptr error;
    std::swap(error, impl_->pending_error_);
    std::rethrow_exception(error);
  }
  ReloadIfItFails(*this, [&] { impl_->deleter_->CheckForErrors(); });
}

void CheckpointManager::wait_until_finished() {
  std::lock_guard calls_lock(impl_->mu_);
  JoinFinalize();
  RethrowPending();
}

void CheckpointManager::check_for_errors() {
  std::lock_guard calls_lock(impl_->mu_);
  bool finished = false;
  if (impl_->finalize_) {
    std::lock_guard lock(impl_->finalize_->mu);
    finished = impl_->finalize_->done;
  }
  if (finished) JoinFinalize();  // joins at once; a save still running is left alone
  RethrowPending();
}

bool CheckpointManager::is_saving_in_progress() const {
  std::lock_guard calls_lock(impl_->mu_);
  if (impl_->saving_) return true;
  if (!impl_->finalize_) return false;
  std::lock_guard lock(impl_->finalize_->mu);
  return !impl_->finalize_->done;
}

void CheckpointManager::reload() {
  std::lock_guard calls_lock(impl_->mu_);
  std::optional<CheckpointInfo> in_flight;
  if (impl_->finalize_) {
    for (const auto& info : impl_->checkpoints_) {
      if (info.step == impl_->finalize_->step) in_flight = info;
    }
  }
  auto infos = LoadCheckpointInfos();
  // The step being saved is not on disk under its name until it commits; it stays held unless it failed.
  if (in_flight) {
    bool failed;
    {
      std::lock_guard lock(impl_->finalize_->mu);
      failed = impl_->finalize_->done && !impl_->finalize_->committed;
    }
    if (!failed && std::none_of(infos.begin(), infos.end(), [&](const auto& c) { return c.step == in_flight->step; })) {
      InsertSorted(infos, *in_flight);
    }
  }
  impl_->checkpoints_ = std::move(infos);
}

void CheckpointManager::delete_step(int64_t step) {
  std::lock_guard calls_lock(impl_->mu_);
  if (impl_->options_.read_only) return;
  if (impl_->finalize_ && impl_->finalize_->step == step) JoinFinalize();  // let its commit land before removing it
  if (std::none_of(impl_->checkpoints_.begin(), impl_->checkpoints_.end(),
                   [&](const auto& c) { return c.step == step; })) {
    throw NotFoundError("Requested deleting a non-existent step: " + std::to_string(step) + " in " +
                        impl_->directory_.string());
  }
  // Only the primary deletes (the deleter does nothing elsewhere); every process learns whether it worked.
  Agree("CheckpointManager:deleted_step", [&] { impl_->deleter_->Delete({step}); });
  std::erase_if(impl_->checkpoints_, [&](const CheckpointInfo& c) { return c.step == step; });
}

std::optional<nlohmann::json> CheckpointManager::metrics(int64_t step) const { return ReadMetrics(step); }

Tree CheckpointManager::restore(std::optional<int64_t> step) { return RestoreImpl(step, nullptr); }

Tree CheckpointManager::restore(std::optional<int64_t> step, const CheckpointArgs& args) {
  return RestoreImpl(step, &args);
}

Tree CheckpointManager::RestoreImpl(std::optional<int64_t> step, const CheckpointArgs* args) {
  std::lock_guard calls_lock(impl_->mu_);
  // The checkpointer serves one caller at a time: let the save in flight finish (its failure stays pending for
  // wait_until_finished / check_for_errors).
  JoinFinalize();
  if (!step) step = latest_step();
  if (!step) throw NotFoundError("No steps found in " + impl_->directory_.string());
  const auto path = StepPath(*step);
  DecideDefaultItemFromDisk(*step);
  if (args) CheckArgsMode(*args);
  if (impl_->default_item_.value_or(false)) {
    Tree restored;
    if (args) {
      args::Composite composite;
      composite.set(kDefaultItemName, Borrow(*args));
      restored = impl_->checkpointer_->restore(path, composite);
    } else {
      restored = impl_->checkpointer_->restore(path);
    }
    if (!restored.contains(kDefaultItemName)) {
      throw NotFoundError("step " + std::to_string(*step) + " at " + path.string() +
                          " has no restorable default item (no handler for it is registered or recorded)");
    }
    return restored[kDefaultItemName];
  }
  return args ? impl_->checkpointer_->restore(path, *args) : impl_->checkpointer_->restore(path);
}

StepMetadata CheckpointManager::metadata(int64_t step) {
  std::lock_guard calls_lock(impl_->mu_);
  JoinFinalize();
  const auto path = StepPath(step);
  DecideDefaultItemFromDisk(step);
  StepMetadata meta = impl_->checkpointer_->metadata(path);
  if (impl_->default_item_.value_or(false)) {
    meta.item_metadata = meta.item_metadata.is_dict() && meta.item_metadata.contains(kDefaultItemName)
                             ? Tree(meta.item_metadata[kDefaultItemName])
                             : Tree::None();
  }
  if (auto m = ReadMetrics(step)) meta.metrics = *m;
  return meta;
}

Tree CheckpointManager::item_metadata(int64_t step) { return metadata(step).item_metadata; }

RootMetadata CheckpointManager::metadata() {
  std::lock_guard calls_lock(impl_->mu_);
  RootMetadata root;
  if (!impl_->root_custom_metadata_.is_null()) {
    root.custom_metadata = impl_->root_custom_metadata_;
    return root;
  }
  const auto dir = impl_->directory_ / kRootMetadataDir;
  auto file = dir / kRootMetadataFile;
  if (!impl_->fs_->Exists(file)) file = dir / kLegacyRootMetadataFile;
  if (!impl_->fs_->Exists(file) || impl_->fs_->IsDirectory(file)) return root;
  const nlohmann::json doc = metadata::ParseJson(
      impl_->fs_->ReadFileBelow(impl_->directory_, file.lexically_relative(impl_->directory_)), file.string());
  if (!doc.is_object()) throw CorruptionError(file.string() + " is not a JSON object");
  for (const auto& [key, value] : doc.items()) {
    if (key == "internal_metadata") {
      if (!value.is_null()) root.internal_metadata = value;
    } else if (key == "custom_metadata") {
      if (value.is_object()) root.custom_metadata.update(value);
    } else {
      root.custom_metadata[key] = value;  // Orbax keeps unknown keys as custom metadata
    }
  }
  return root;
}

void CheckpointManager::close() {
  std::lock_guard calls_lock(impl_->mu_);
  if (impl_->closed_) return;
  impl_->closed_ = true;
  std::exception_ptr first;
  auto attempt = [&](auto&& fn) {
    try {
      fn();
    } catch (...) {
      if (!first) first = std::current_exception();
    }
  };
  attempt([&] { wait_until_finished(); });
  attempt([&] { ReloadIfItFails(*this, [&] { impl_->deleter_->Close(); }); });
  attempt([&] { impl_->checkpointer_->close(); });
  if (first) std::rethrow_exception(first);
}

}  // namespace cairn
