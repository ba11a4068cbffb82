// The arguments of each handler's save and restore (`ocp.args`): StandardSave, PyTreeRestore, JsonSave, ...
#pragma once

#include <concepts>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cairn/tree.h"

namespace cairn {

class CheckpointHandler;
class StandardCheckpointHandler;
class PyTreeCheckpointHandler;
class ArrayCheckpointHandler;
class JsonCheckpointHandler;
class CompositeCheckpointHandler;

// Per-parameter save options (Orbax's SaveArgs).
struct SaveArgs {
  // Cast to this dtype before writing; the stored dtype is then this one.
  std::optional<DType> dtype{};
  // Split the array into chunks of at most this many bytes (Orbax's chunk-shape choice).
  std::optional<int64_t> chunk_byte_size{};
  // The array's sharding as Orbax records it in `_sharding` (the JSON text of NamedSharding, SingleDeviceSharding,
  // ...), in place of the one cairn derives; the Python module passes a jax.Array's own sharding here, so that
  // Orbax (and cairn) restore it onto the same devices without a target. Must be a JSON object.
  std::optional<std::string> sharding{};
  // cairn addition, for delta saves (SaveOptions::delta_base): the caller declares this parameter unchanged since
  // the base step (a frozen layer), so its chunks are taken from the base without being encoded or hashed. The base
  // must hold the parameter with the same dtype, shape and chunking (else InvalidArgumentError). Ignored by full
  // saves.
  bool frozen = false;
};

// Per-parameter restore options (Orbax's RestoreArgs).
struct RestoreArgs {
  // Cast to this dtype after reading.
  std::optional<DType> dtype;
  // cairn addition: when the target leaf is an Array (or a ShardedArray) with writable bytes (one cairn owns, or
  // Array::FromBorrowedWritable over the caller's memory), the stored data is read straight into those bytes and
  // the restored tree's array shares them: no allocation, no copy. The target's shape must be the stored one
  // exactly (strict, whatever the restore's `strict`); its dtype is the one filled (the stored data is cast in
  // place), and `dtype` above, when set, must be the same. A target leaf that is an Array but not writable, or
  // has another shape, is an InvalidArgumentError before any array is read. Leaves that are not arrays (specs,
  // scalars, None) restore as usual.
  bool fill_target = false;
  // cairn addition: a lazy restore. An array stored uncompressed as one chunk of its whole shape, in a file that
  // can be mapped (a per-parameter file or an OCDBT data file on a local file system), comes back read-only over a
  // shared mapping of that file: nothing is read until a page is touched, and the Array keeps the mapping alive
  // (after the checkpointer is gone too). Arrays that cannot be mapped (compressed, several chunks, cast to
  // another dtype, cut to a box, on an object store, or at an offset not aligned to the dtype) are read eagerly:
  // not an error. Applies when the target leaf is None or an ArraySpec of the stored shape and dtype.
  bool lazy = false;
  // How a lazy array whose checksum cairn recorded is checked (checkpoints without recorded checksums, such as
  // Orbax's, map unchecked):
  enum class LazyCheck {
    // Each 64 KiB block is read and checked when a page of it is first touched (userfaultfd). A block that fails
    // cannot raise an error from a page fault: the process prints which value and block and aborts. Where
    // userfaultfd is not available (no /dev/userfaultfd access, ThreadSanitizer builds), as kUpFront.
    kOnAccess,
    // Every block is checked (on all cores) before restore returns: a CorruptionError then names the bad block.
    // Reads the whole array once, leaving it in the page cache.
    kUpFront,
  };
  LazyCheck lazy_check = LazyCheck::kOnAccess;
};

// Per-parameter options keyed by parameter name ("params.w"); the entry "" applies to every parameter that has
// no entry of its own. (Orbax takes a pytree of them; a map by name says the same thing in C++.)
using SaveArgsMap = std::map<std::string, SaveArgs>;
using RestoreArgsMap = std::map<std::string, RestoreArgs>;

// Base of every handler's arguments.
class CheckpointArgs {
 public:
  virtual ~CheckpointArgs() = default;
  virtual std::unique_ptr<CheckpointArgs> Clone() const = 0;
  // A new handler of the type Orbax's registry pairs with these args (`Handler` below; used by
  // CompositeCheckpointHandler for items without an explicit handler); null when that handler cannot be made
  // without arguments, so the item needs a registered one.
  virtual std::unique_ptr<CheckpointHandler> DefaultHandler() const = 0;
  virtual std::string name() const = 0;  // "StandardSave", for error messages
};

// Args types name their handler (`using Handler = StandardCheckpointHandler;`), as Orbax's registry pairs each args
// class with one handler class. What takes args by their type (ArgsBase, Composite::add, args::Item) requires it,
// so args without a handler do not compile, rather than being saved by some other handler.
template <typename A>
concept HasHandler = std::derived_from<A, CheckpointArgs> && requires { typename A::Handler; };

namespace args {

// Base of the args types: Clone and DefaultHandler from the derived type and its `Handler` (defined in
// cairn/handlers.h, where the handlers are complete).
template <typename Derived>
class ArgsBase : public CheckpointArgs {
 public:
  std::unique_ptr<CheckpointArgs> Clone() const override {
    return std::make_unique<Derived>(static_cast<const Derived&>(*this));
  }
  std::unique_ptr<CheckpointHandler> DefaultHandler() const override;

 protected:
  ArgsBase() {
    static_assert(HasHandler<Derived>, "an args type names the handler that saves and restores it: add "
                                       "`using Handler = <its CheckpointHandler class>;`");
  }
};

struct StandardSave : ArgsBase<StandardSave> {
  using Handler = StandardCheckpointHandler;
  StandardSave(Tree item, SaveArgsMap save_args = {}, nlohmann::json custom_metadata = nullptr)
      : item(std::move(item)), save_args(std::move(save_args)), custom_metadata(std::move(custom_metadata)) {}
  std::string name() const override { return "StandardSave"; }
  Tree item;
  SaveArgsMap save_args;
  nlohmann::json custom_metadata;
};

struct StandardRestore : ArgsBase<StandardRestore> {
  using Handler = StandardCheckpointHandler;
  // `item`: a target tree of ArraySpecs, Arrays or scalars, or None to restore the tree as saved.
  // `strict=false` zero-pads or truncates each dimension at its high end to the target shape.
  StandardRestore(Tree item = Tree::None(), bool strict = true) : item(std::move(item)), strict(strict) {}
  std::string name() const override { return "StandardRestore"; }
  Tree item;
  bool strict;
};

struct PyTreeSave : ArgsBase<PyTreeSave> {
  using Handler = PyTreeCheckpointHandler;
  PyTreeSave(Tree item, SaveArgsMap save_args = {}, std::optional<int64_t> ocdbt_target_data_file_size = std::nullopt,
             nlohmann::json custom_metadata = nullptr)
      : item(std::move(item)),
        save_args(std::move(save_args)),
        ocdbt_target_data_file_size(ocdbt_target_data_file_size),
        custom_metadata(std::move(custom_metadata)) {}
  std::string name() const override { return "PyTreeSave"; }
  Tree item;
  SaveArgsMap save_args;
  std::optional<int64_t> ocdbt_target_data_file_size;
  nlohmann::json custom_metadata;
};

struct PyTreeRestore : ArgsBase<PyTreeRestore> {
  using Handler = PyTreeCheckpointHandler;
  // `partial_restore`: read only the leaves the target names (Placeholder leaves are skipped) instead of
  // requiring the target to match the saved tree.
  PyTreeRestore(Tree item = Tree::None(), RestoreArgsMap restore_args = {}, bool partial_restore = false,
                bool strict = true)
      : item(std::move(item)), restore_args(std::move(restore_args)), partial_restore(partial_restore), strict(strict) {}
  std::string name() const override { return "PyTreeRestore"; }
  Tree item;
  RestoreArgsMap restore_args;
  bool partial_restore;
  bool strict;
};

struct ArraySave : ArgsBase<ArraySave> {
  using Handler = ArrayCheckpointHandler;
  ArraySave(Array item, SaveArgs save_args = {}) : item(std::move(item)), save_args(save_args) {}
  std::string name() const override { return "ArraySave"; }
  Array item;
  SaveArgs save_args;
};

struct ArrayRestore : ArgsBase<ArrayRestore> {
  using Handler = ArrayCheckpointHandler;
  ArrayRestore(std::optional<ArraySpec> item = std::nullopt, bool strict = true) : item(std::move(item)), strict(strict) {}
  std::string name() const override { return "ArrayRestore"; }
  std::optional<ArraySpec> item;
  bool strict;
};

struct JsonSave : ArgsBase<JsonSave> {
  using Handler = JsonCheckpointHandler;
  JsonSave(nlohmann::json item) : item(std::move(item)) {}
  std::string name() const override { return "JsonSave"; }
  nlohmann::json item;
};

struct JsonRestore : ArgsBase<JsonRestore> {
  using Handler = JsonCheckpointHandler;
  JsonRestore() = default;
  std::string name() const override { return "JsonRestore"; }
};

// Arguments for each item of a CompositeCheckpointHandler, by item name.
class Composite : public CheckpointArgs {
 public:
  using Handler = CompositeCheckpointHandler;
  Composite() = default;
  Composite(std::initializer_list<std::pair<std::string, std::shared_ptr<const CheckpointArgs>>> items) {
    for (auto& [item_name, item_args] : items) items_[item_name] = item_args;
  }
  // Adds (or replaces) the args of one item.
  template <HasHandler Args>
  Composite& add(const std::string& item_name, Args item_args) {
    items_[item_name] = std::make_shared<Args>(std::move(item_args));
    return *this;
  }
  Composite& set(const std::string& item_name, std::shared_ptr<const CheckpointArgs> item_args) {
    items_[item_name] = std::move(item_args);
    return *this;
  }
  const std::map<std::string, std::shared_ptr<const CheckpointArgs>>& items() const { return items_; }
  const CheckpointArgs* get(const std::string& item_name) const {
    auto it = items_.find(item_name);
    return it == items_.end() ? nullptr : it->second.get();
  }

  std::unique_ptr<CheckpointArgs> Clone() const override { return std::make_unique<Composite>(*this); }
  std::unique_ptr<CheckpointHandler> DefaultHandler() const override;
  std::string name() const override { return "Composite"; }

 private:
  std::map<std::string, std::shared_ptr<const CheckpointArgs>> items_;
};

// Shorthand for building Composite items: `args::Item(args::StandardSave{state})`.
template <HasHandler Args>
std::shared_ptr<const CheckpointArgs> Item(Args item_args) {
  return std::make_shared<Args>(std::move(item_args));
}

}  // namespace args
}  // namespace cairn
