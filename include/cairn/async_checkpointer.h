// AsyncCheckpointer: saves in the background so that training does not wait for the disk.
#pragma once

#include <memory>

#include "cairn/checkpointer.h"
#include "cairn/handlers.h"

namespace cairn {

// save() blocks only for what must happen before the caller may touch its arrays again: arrays it owns or
// lends are copied into staging buffers (in parallel, reusing buffers from earlier saves); arrays handed over
// as shared immutable buffers (Array::FromShared) are not copied at all. The write, finalize and commit then
// run on a background thread, with the same atomicity as Checkpointer: the checkpoint appears whole at
// `directory`, or not at all.
//
// A second save() first waits for the one in flight; restore() and metadata() wait for a pending save. A
// background failure is kept and rethrown by wait_until_finished() or check_for_errors() (and the next save()),
// never lost. The destructor waits for the save in flight.
//
// Thread-safe: save(), restore() and metadata() from several threads are serialised (each restore waits for the
// save in flight and no save starts during it, so the handler never serves two calls at once);
// wait_until_finished() from several threads waits for the same save, and its failure is rethrown to one of them.
class AsyncCheckpointer : public Checkpointer {
 public:
  explicit AsyncCheckpointer(std::unique_ptr<CheckpointHandler> handler, AsyncOptions async_options = {},
                             CheckpointerOptions options = {});
  ~AsyncCheckpointer() override;

  void save(const std::filesystem::path& directory, const CheckpointArgs& args,
            const SaveOptions& options = {}) override;
  Tree restore(const std::filesystem::path& directory) override;
  Tree restore(const std::filesystem::path& directory, const CheckpointArgs& args) override;
  StepMetadata metadata(const std::filesystem::path& directory) override;

  // Blocks until the save in flight (if any) has committed or failed; rethrows its failure once.
  void wait_until_finished();
  // Rethrows the failure of a finished background save, if any, without waiting.
  void check_for_errors();
  // True while a background save has not finished.
  bool is_saving_in_progress() const;
  // Waits for the save in flight, then closes the handler.
  void close() override;

  const AsyncOptions& async_options() const;

 private:
  struct Impl;  // the background thread, its locks and the staging buffers
  std::unique_ptr<Impl> impl_;
};

// The keyword arguments of StandardCheckpointer::save and restore.
struct StandardSaveOptions {
  SaveArgsMap save_args = {};  // (an initializer, so designated initializers may omit it without a warning)
  bool force = false;
  nlohmann::json custom_metadata = nlohmann::json::object();
};
struct StandardRestoreOptions {
  bool strict = true;
};

// Orbax's StandardCheckpointer: an AsyncCheckpointer around a StandardCheckpointHandler, taking the tree
// directly instead of args.
class StandardCheckpointer : public AsyncCheckpointer {
 public:
  using SaveOptions = StandardSaveOptions;
  using RestoreOptions = StandardRestoreOptions;

  explicit StandardCheckpointer(AsyncOptions async_options = {}, CheckpointerOptions options = {},
                                PyTreeCheckpointHandlerOptions handler_options = {});

  using AsyncCheckpointer::restore;
  using AsyncCheckpointer::save;
  // Saves `state` asynchronously (returns once the arrays are snapshotted).
  void save(const std::filesystem::path& directory, const Tree& state, const StandardSaveOptions& options = {});
  // Restores into `target` (None: as saved); waits for a pending save first.
  Tree restore(const std::filesystem::path& directory, const Tree& target, const StandardRestoreOptions& options = {});
};

}  // namespace cairn
