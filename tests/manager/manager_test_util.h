// Helpers shared by the CheckpointManager tests.
#pragma once

#include <atomic>
#include <filesystem>
#include <future>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "cairn/cairn.h"

namespace cairn::testing {

inline constexpr int64_t kSecond = 1'000'000'000;

// A clock the test moves by hand; copies share the time.
class FakeClock {
 public:
  explicit FakeClock(int64_t start_secs = 1'000'000) : now_(std::make_shared<std::atomic<int64_t>>(start_secs * kSecond)) {}
  std::function<int64_t()> fn() const {
    auto now = now_;
    return [now] { return now->load(); };
  }
  void Advance(int64_t secs) { *now_ += secs * kSecond; }
  int64_t now_nsecs() const { return now_->load(); }

 private:
  std::shared_ptr<std::atomic<int64_t>> now_;
};

// A small, step-dependent state: restoring step s gives exactly StateAt(s).
inline Tree StateAt(int64_t step) {
  const float s = static_cast<float>(step);
  return Tree::Dict({{"params", Tree::Dict({{"w", Array::FromVector<float>({2, 3}, {s, s + 0.5f, -s, s * 2, 1.0f / (s + 1), 7})},
                                            {"b", Array::FromVector<int32_t>({3}, {static_cast<int32_t>(step), 1, 2})}})},
                     {"step", Tree::Scalar(step)}});
}

// The step directories present under `root` (names), for checks on what is really on disk.
inline std::set<std::string> Entries(FileSystem& fs, const std::filesystem::path& root) {
  auto names = fs.ListDir(root);
  return std::set<std::string>(names.begin(), names.end());
}

// StandardCheckpointHandler whose save waits for a gate (to hold a save in flight) or fails on demand.
class ControlledHandler : public StandardCheckpointHandler {
 public:
  struct Control {
    std::atomic<bool> fail{false};
    std::atomic<bool> hold{false};
    std::atomic<int> started{0};
    std::promise<void> release;
    std::shared_future<void> released = release.get_future().share();
  };
  explicit ControlledHandler(std::shared_ptr<Control> control) : control_(std::move(control)) {}
  void save(const HandlerDirectory& directory, const CheckpointArgs& args) override {
    ++control_->started;
    if (control_->hold) control_->released.wait();
    if (control_->fail) throw IoError("injected failure saving " + directory.string(), 5);
    StandardCheckpointHandler::save(directory, args);
  }

 private:
  std::shared_ptr<Control> control_;
};

// What the CheckpointManager tests share (checkpoint_manager_*_test.cc): the root, the loss of a step's metrics, and
// the fixture that runs each test with the asynchronous (Orbax's default) and the synchronous checkpointer.
namespace manager_test {

namespace fs = std::filesystem;
namespace sdp = save_decision_policy;
namespace pp = preservation_policy;
using cairn::testing::ControlledHandler;
using cairn::testing::Entries;
using cairn::testing::FakeClock;
using cairn::testing::kSecond;
using cairn::testing::StateAt;
using Steps = std::vector<int64_t>;

inline const fs::path kRoot = "/run";

inline double Loss(const nlohmann::json& metrics) { return metrics.at("loss").get<double>(); }

class ManagerTest : public ::testing::TestWithParam<bool> {
 protected:
  CheckpointManagerOptions Options() const {
    CheckpointManagerOptions o;
    o.enable_async_checkpointing = GetParam();
    o.file_system = fs_;
    return o;
  }
  // Saves StateAt(step) (with `loss` as metrics when given); returns whether it saved.
  bool Save(CheckpointManager& m, int64_t step, std::optional<double> loss = std::nullopt, bool force = false) {
    CheckpointManagerSaveOptions o;
    if (loss) o.metrics = {{"loss", *loss}};
    o.force = force;
    return m.save(step, args::StandardSave{StateAt(step)}, o);
  }
  // The step directories on disk.
  std::set<std::string> OnDisk() const { return Entries(*fs_, kRoot); }

  std::shared_ptr<FileSystem> fs_ = NewInMemoryFileSystem();
};

}  // namespace manager_test

}  // namespace cairn::testing
