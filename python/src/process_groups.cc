// A ProcessGroup over a key-value store that Python provides: JAX's coordination service (the one
// `jax.distributed.initialize` starts, which Orbax itself synchronises through) or torch.distributed's store. So a
// JAX or PyTorch job coordinates cairn's processes on the runtime it already runs, with no MPI.
//
// AllGather(data, key): every process stores its contribution under "<prefix>/<n>/<key>/<index>", where n counts
// this group's calls (the same on every process, since all make the same calls in the same order), then reads every
// process's. A process that never arrives makes the reads time out: a TimeoutError naming the key, never a hang.
#include <algorithm>
#include <atomic>

#include "common.h"

namespace cairn::python {
namespace {

class KeyValueProcessGroup : public ProcessGroup {
 public:
  // set(key: str, value: bytes); get(key: str, timeout_ms: int) -> bytes, raising when the key does not appear in
  // time. Both are called from cairn's threads, with the GIL taken for the call.
  KeyValueProcessGroup(int index, int count, py::object set, py::object get, std::string prefix)
      : index_(index), count_(count), set_(std::move(set)), get_(std::move(get)), prefix_(std::move(prefix)) {
    if (count < 1 || index < 0 || index >= count) {
      throw InvalidArgumentError("KeyValueProcessGroup: process " + std::to_string(index) + " of " +
                                 std::to_string(count));
    }
  }

  // The callables are Python objects: dropped with the GIL held, or leaked once the interpreter is gone (a
  // checkpointer's background thread can hold the last reference at exit).
  ~KeyValueProcessGroup() override {
    if (!Py_IsInitialized()) {
      set_.release();
      get_.release();
      return;
    }
    py::gil_scoped_acquire gil;
    set_ = py::object();
    get_ = py::object();
  }

  int index() const override { return index_; }
  int count() const override { return count_; }

  std::vector<std::string> AllGather(std::string_view data, const std::string& key,
                                     std::chrono::milliseconds timeout) override {
    const std::string base = prefix_ + "/" + std::to_string(calls_++) + "/" + key + "/";
    py::gil_scoped_acquire gil;
    Call(set_, key, base + std::to_string(index_), py::bytes(data.data(), data.size()));
    std::vector<std::string> out(static_cast<size_t>(count_));
    for (int i = 0; i < count_; ++i) {
      out[static_cast<size_t>(i)] =
          i == index_ ? std::string(data)
                      : Call(get_, key, base + std::to_string(i), py::int_(std::max<int64_t>(timeout.count(), 1)))
                            .cast<std::string>();
    }
    return out;
  }

  std::shared_ptr<ProcessGroup> Subgroup(const std::vector<int>& members) override {
    auto it = std::find(members.begin(), members.end(), index_);
    if (it == members.end()) {
      throw InvalidArgumentError("KeyValueProcessGroup::Subgroup: process " + std::to_string(index_) +
                                 " is not a member");
    }
    std::string name = prefix_ + "/" + std::to_string(calls_++) + "/sub";
    for (int m : members) name += "." + std::to_string(m);
    py::gil_scoped_acquire gil;
    return std::make_shared<KeyValueProcessGroup>(static_cast<int>(it - members.begin()),
                                                  static_cast<int>(members.size()), set_, get_, name);
  }

 private:
  // Runs a store call; its failure becomes cairn's: a deadline (JAX's DEADLINE_EXCEEDED, a TimeoutError) is a
  // TimeoutError naming the key, anything else an AbortedError.
  py::object Call(const py::object& fn, const std::string& key, const std::string& store_key, py::object arg) {
    try {
      return fn(store_key, std::move(arg));
    } catch (py::error_already_set& e) {
      std::string what = e.what();
      if (e.matches(PyExc_TimeoutError) || what.find("DEADLINE_EXCEEDED") != std::string::npos ||
          what.find("imed out") != std::string::npos) {
        throw TimeoutError("process " + std::to_string(index_) + " waited too long at \"" + key +
                           "\" for the other processes (" + store_key + ")");
      }
      throw AbortedError("process " + std::to_string(index_) + " at \"" + key + "\": the key-value store failed: " +
                         what);
    }
  }

  const int index_;
  const int count_;
  py::object set_;
  py::object get_;
  const std::string prefix_;
  std::atomic<int64_t> calls_{0};
};

}  // namespace

void InitProcessGroups(py::module_& m) {
  py::class_<ProcessGroup, std::shared_ptr<ProcessGroup>>(m, "ProcessGroup",
                                                          "The processes saving and restoring together.")
      .def_property_readonly("index", &ProcessGroup::index)
      .def_property_readonly("count", &ProcessGroup::count)
      .def(
          "barrier",
          [](ProcessGroup& group, const std::string& key, double timeout_secs) {
            py::gil_scoped_release release;
            group.Barrier(key, std::chrono::milliseconds(static_cast<int64_t>(timeout_secs * 1000)));
          },
          py::arg("key"), py::arg("timeout_secs") = 300.0,
          "Returns once every process of the group has reached the barrier `key`; TimeoutError otherwise.")
      .def(
          "all_gather",
          [](ProcessGroup& group, py::bytes data, const std::string& key, double timeout_secs) {
            std::string payload = data;
            std::vector<std::string> out;
            {
              py::gil_scoped_release release;
              out = group.AllGather(payload, key, std::chrono::milliseconds(static_cast<int64_t>(timeout_secs * 1000)));
            }
            py::list result;
            for (const auto& item : out) result.append(py::bytes(item));
            return result;
          },
          py::arg("data"), py::arg("key"), py::arg("timeout_secs") = 300.0,
          "Every process's `data`, in process order.");
  m.def(
      "KeyValueProcessGroup",
      [](int index, int count, py::object set, py::object get, std::string prefix) -> std::shared_ptr<ProcessGroup> {
        return std::make_shared<KeyValueProcessGroup>(index, count, std::move(set), std::move(get),
                                                      std::move(prefix));
      },
      py::arg("index"), py::arg("count"), py::arg("set"), py::arg("get"), py::arg("prefix"),
      "A process group over a key-value store: set(key, value: bytes), get(key, timeout_ms) -> bytes (blocking). "
      "`prefix` must be the same on every process and unique to this group.");
}

}  // namespace cairn::python
