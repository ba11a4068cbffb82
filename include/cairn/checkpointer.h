// The checkpointers: AbstractCheckpointer (the interface) and Checkpointer (synchronous and atomic).
#pragma once

#include <filesystem>
#include <memory>

#include "cairn/checkpoint_args.h"
#include "cairn/checkpoint_handler.h"
#include "cairn/options.h"
#include "cairn/step_metadata.h"

namespace cairn {

// Atomic save and restore of one item, with the type-specific work delegated to a CheckpointHandler.
class AbstractCheckpointer {
 public:
  virtual ~AbstractCheckpointer() = default;
  virtual void save(const std::filesystem::path& directory, const CheckpointArgs& args,
                    const SaveOptions& options = {}) = 0;
  virtual Tree restore(const std::filesystem::path& directory) = 0;
  virtual Tree restore(const std::filesystem::path& directory, const CheckpointArgs& args) = 0;
  virtual StepMetadata metadata(const std::filesystem::path& directory) = 0;
  virtual void close() {}
};

// Saves synchronously: when save() returns, the checkpoint is complete and durable, or it does not exist.
//
// A save writes into `<directory>.orbax-checkpoint-tmp`, fsyncs every file and directory, writes
// `_CHECKPOINT_METADATA` and `commit_success.txt`, renames the temporary directory to `directory` and fsyncs
// the parent. A crash at any point leaves either the old state or the new checkpoint, plus at worst a
// `*.orbax-checkpoint-tmp` directory that no reader takes for a checkpoint.
class Checkpointer : public AbstractCheckpointer {
 public:
  explicit Checkpointer(std::unique_ptr<CheckpointHandler> handler, CheckpointerOptions options = {});
  ~Checkpointer() override;

  // AlreadyExistsError when `directory` exists, unless options.force: then the existing directory is replaced
  // only after the new checkpoint is complete.
  void save(const std::filesystem::path& directory, const CheckpointArgs& args,
            const SaveOptions& options = {}) override;
  // NotFoundError for a missing directory; InvalidArgumentError for an unfinished one.
  Tree restore(const std::filesystem::path& directory) override;
  Tree restore(const std::filesystem::path& directory, const CheckpointArgs& args) override;
  // `_CHECKPOINT_METADATA` (when present) and the handler's item metadata; reads no array bytes.
  StepMetadata metadata(const std::filesystem::path& directory) override;
  void close() override;

  CheckpointHandler& handler() { return *handler_; }
  const CheckpointerOptions& options() const { return options_; }

 protected:
  const std::shared_ptr<CheckpointHandler>& shared_handler() const { return handler_; }
  // InvalidArgumentError on a process that is not among active_processes: it takes no part in saves.
  void RequireActive() const;
  Tree RestoreImpl(const std::filesystem::path& directory, const CheckpointArgs* args);
  // `directory` as the handler sees it: on this checkpointer's file system, with its options.
  HandlerDirectory HandlerDirectoryFor(const std::filesystem::path& directory) const;

 private:
  std::shared_ptr<CheckpointHandler> handler_;  // shared with an AsyncCheckpointer's background save
  CheckpointerOptions options_;
  bool active_ = true;  // among MultiprocessingOptions::active_processes (or there are none)
};

}  // namespace cairn
