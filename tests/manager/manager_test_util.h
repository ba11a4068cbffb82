// Helpers shared by the CheckpointManager tests.
#pragma once

#include <atomic>
#include <future>
#include <memory>
#include <set>
#include <string>
#include <vector>

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
  void save(const std::filesystem::path& directory, const CheckpointArgs& args) override {
    ++control_->started;
    if (control_->hold) control_->released.wait();
    if (control_->fail) throw IoError("injected failure saving " + directory.string(), 5);
    StandardCheckpointHandler::save(directory, args);
  }

 private:
  std::shared_ptr<Control> control_;
};

}  // namespace cairn::testing
