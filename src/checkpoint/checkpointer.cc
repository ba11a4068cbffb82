#include "cairn/checkpointer.h"

#include "cairn/error.h"
#include "checkpoint/save_pipeline.h"
#include "distributed/agreement.h"
#include "io/no_symlinks.h"
#include "io/permission_mode_file_system.h"
#include "io/temporary_path.h"
#include "metadata/checkpoint_metadata.h"

namespace cairn {

Checkpointer::Checkpointer(std::unique_ptr<CheckpointHandler> handler, CheckpointerOptions options)
    : handler_(std::move(handler)), options_(std::move(options)) {
  if (!handler_) throw InvalidArgumentError("Checkpointer needs a handler");
  if (!options_.file_system) options_.file_system = FileSystem::Default();
  // Every directory and file a save creates gets path_permission_mode, whichever code creates it.
  if (const auto mode = options_.file_options.path_permission_mode) {
    options_.file_system = io::WithPermissionMode(options_.file_system, *mode);
  }
  // A subset of the processes saves together: they get a group of their own (collective over them only).
  options_.multiprocessing_options = distributed::ResolveActiveProcesses(options_.multiprocessing_options, &active_);
}

Checkpointer::~Checkpointer() = default;

HandlerDirectory Checkpointer::HandlerDirectoryFor(const std::filesystem::path& directory) const {
  return HandlerDirectory(directory, options_.file_system, options_.multiprocessing_options, options_.file_options);
}

void Checkpointer::RequireActive() const {
  if (!active_) {
    throw InvalidArgumentError("process " + std::to_string(distributed::GroupOf(options_.multiprocessing_options).index()) +
                               " is not among MultiprocessingOptions::active_processes: it takes no part in saves");
  }
}

void Checkpointer::save(const std::filesystem::path& directory, const CheckpointArgs& args,
                        const SaveOptions& options) {
  RequireActive();
  FileSystem& fs = *options_.file_system;
  checkpoint::SavePlan plan;
  distributed::Agree(options_.multiprocessing_options, "Checkpointer:save_start",
                     [&] { plan = checkpoint::PlanSave(fs, options_, directory, options); });
  checkpoint::StartSave(fs, plan);
  checkpoint::FinishSave(fs, *handler_, plan, args);
}

Tree Checkpointer::restore(const std::filesystem::path& directory) { return RestoreImpl(directory, nullptr); }

Tree Checkpointer::restore(const std::filesystem::path& directory, const CheckpointArgs& args) {
  return RestoreImpl(directory, &args);
}

namespace {

void RequireFinalized(FileSystem& fs, const std::filesystem::path& directory, const AtomicityOptions& atomicity) {
  if (io::IsTemporaryPath(directory)) {
    throw InvalidArgumentError("Found incomplete checkpoint at " + directory.string() +
                               ": its save did not finish (temporary directory)");
  }
  if (!fs.IsDirectory(directory)) {
    if (fs.Exists(io::TemporaryPathFor(directory))) {
      throw InvalidArgumentError("Found incomplete checkpoint at " + directory.string() + ": only " +
                                 io::TemporaryPathFor(directory).string() + " exists, whose save did not finish");
    }
    if (fs.Exists(directory)) throw InvalidArgumentError(directory.string() + " is a file, not a checkpoint directory");
    throw NotFoundError("No checkpoint at " + directory.string() + ": no such directory");
  }
  if (checkpoint::ResolveAtomicity(fs, directory, atomicity).mode == AtomicityMode::kCommitFile &&
      !atomicity.allow_legacy_atomic_rename &&
      !fs.Exists(directory / io::kCommitSuccessFile)) {
    throw InvalidArgumentError("Found incomplete checkpoint at " + directory.string() + ": no " +
                               io::kCommitSuccessFile);
  }
}

}  // namespace

Tree Checkpointer::RestoreImpl(const std::filesystem::path& directory_in, const CheckpointArgs* args) {
  const auto directory = checkpoint::NormalizeCheckpointPath(directory_in);
  RequireFinalized(*options_.file_system, directory, options_.atomicity_options);
  io::RequireNoSymlinksBelow(*options_.file_system, directory);
  return handler_->restore(HandlerDirectoryFor(directory), args);
}

StepMetadata Checkpointer::metadata(const std::filesystem::path& directory_in) {
  const auto directory = checkpoint::NormalizeCheckpointPath(directory_in);
  FileSystem& fs = *options_.file_system;
  RequireFinalized(fs, directory, options_.atomicity_options);
  io::RequireNoSymlinksBelow(fs, directory);
  StepMetadata step = metadata::ReadCheckpointMetadata(fs, directory).value_or(StepMetadata{});
  step.item_metadata = handler_->metadata(HandlerDirectoryFor(directory));
  return step;
}

void Checkpointer::close() { handler_->close(); }

}  // namespace cairn
