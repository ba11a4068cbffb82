// Crashes: a child process (cairn_crash_helper) runs a CheckpointManager that saves step after step; the test
// kills it with SIGKILL after a random delay, again and again. After every kill:
//   - every step the manager lists restores bit for bit (CrashState(step)), with its metrics;
//   - the newest step the child reported committed is listed (or a newer one);
//   - no unfinished save (`*.orbax-checkpoint-tmp*`) is listed, and every step-named directory is listed;
// and the next child run resumes from the latest step and has removed every unfinished save before it starts.
//
// `make test` kills it 100 times with asynchronous saves and 50 times mid synchronous save (fewer under a
// sanitizer); CAIRN_CRASH_ITERATIONS sets the count (`make stress`: 1000), CAIRN_CRASH_SEED the random seed.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <random>
#include <set>
#include <string>
#include <thread>

#include "cairn/cairn.h"
#include "manager/crash_state.h"
#include "test_util.h"

extern char** environ;

namespace cairn {
namespace {

namespace fs = std::filesystem;
using cairn::testing::CrashLossAt;
using cairn::testing::CrashState;

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr int kSanitizerDivisor = 5;  // a sanitized child starts and saves several times slower
#else
constexpr int kSanitizerDivisor = 1;
#endif

int Iterations(int default_count) {
  if (const char* env = std::getenv("CAIRN_CRASH_ITERATIONS"); env && *env) return std::max(1, std::atoi(env));
  return std::max(4, default_count / kSanitizerDivisor);
}

uint64_t Seed(uint64_t default_seed) {
  if (const char* env = std::getenv("CAIRN_CRASH_SEED"); env && *env) return std::strtoull(env, nullptr, 10);
  return default_seed;
}

// A running cairn_crash_helper with pipes to its stdin and from its stdout (stderr is inherited, so whatever it
// says on the way out shows in the test log).
class Child {
 public:
  Child(const fs::path& root, const std::string& mode, bool background_delete) {
    int in[2], out[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    std::string helper = CAIRN_CRASH_HELPER, root_arg = root.string(), mode_arg = mode,
                delete_arg = background_delete ? "background-delete" : "delete";
    char* argv[] = {helper.data(), root_arg.data(), mode_arg.data(), delete_arg.data(), nullptr};
    const int rc = posix_spawn(&pid_, helper.c_str(), &actions, nullptr, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(in[0]);
    ::close(out[1]);
    stdin_ = in[1];
    stdout_ = out[0];
    if (rc != 0) {
      pid_ = -1;
      throw std::runtime_error("cannot start " + helper + ": " + std::strerror(rc));
    }
  }
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (stdin_ >= 0) ::close(stdin_);
    if (stdout_ >= 0) ::close(stdout_);
  }

  // The next line of the child's stdout; "" at EOF or after `timeout`.
  std::string ReadLine(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      if (auto nl = buffer_.find('\n'); nl != std::string::npos) {
        std::string line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return line;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return "";
      pollfd p{stdout_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char chunk[4096];
      const ssize_t n = ::read(stdout_, chunk, sizeof chunk);
      if (n <= 0) return "";
      buffer_.append(chunk, static_cast<size_t>(n));
    }
  }
  void Go() {
    const char go = 'g';
    ASSERT_EQ(::write(stdin_, &go, 1), 1);
  }
  void CloseStdin() {
    ::close(stdin_);
    stdin_ = -1;
  }
  // Kills the child (SIGKILL) and reaps it; false if it had already exited on its own (a failure of the child).
  bool Kill(int* status) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, status, 0);
    pid_ = -1;
    return WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL;
  }
  int Wait() {
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }

 private:
  pid_t pid_ = -1;
  int stdin_ = -1;
  int stdout_ = -1;
  std::string buffer_;
};

bool IsTemporaryName(const std::string& name) { return name.find(".orbax-checkpoint-tmp") != std::string::npos; }

bool IsStepName(const std::string& name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; });
}

struct Coverage {
  int mid_save = 0;    // an unfinished save of a step was left behind
  int mid_delete = 0;  // a step half deleted (renamed away, files remaining) was left behind
  int between = 0;     // nothing unfinished on disk
};

// Everything a fresh manager lists restores exactly; returns its latest step (-1: none).
int64_t CheckRoot(const fs::path& root, int64_t committed, Coverage* coverage, const std::string& context) {
  CheckpointManagerOptions options;
  options.read_only = true;  // look, do not clean up: the next child must do that
  options.enable_async_checkpointing = false;
  CheckpointManager mngr(root, options);
  const std::vector<int64_t> steps = mngr.all_steps();
  std::set<std::string> listed_names;
  for (int64_t step : steps) {
    listed_names.insert(std::to_string(step));
    EXPECT_EQ(mngr.restore(step), CrashState(step)) << context << ": step " << step << " does not restore exactly";
    EXPECT_EQ(mngr.metrics(step), (nlohmann::json{{"loss", CrashLossAt(step)}})) << context << ": step " << step;
  }
  if (committed >= 0) {
    EXPECT_TRUE(!steps.empty() && steps.back() >= committed)
        << context << ": step " << committed << " was reported committed but the latest listed step is "
        << (steps.empty() ? std::string("none") : std::to_string(steps.back()));
  }
  bool unfinished_save = false, half_deleted = false;
  for (const auto& entry : fs::directory_iterator(root)) {
    const std::string name = entry.path().filename().string();
    if (IsTemporaryName(name)) {
      // `<step>.orbax-checkpoint-tmp`: a save under way; `...-<nanoseconds>`: a step being deleted.
      (name.find(".orbax-checkpoint-tmp-") != std::string::npos ? half_deleted : unfinished_save) = true;
      EXPECT_FALSE(listed_names.count(name)) << context;
    } else if (IsStepName(name)) {
      EXPECT_TRUE(listed_names.count(name)) << context << ": step directory " << name << " is not listed";
    }
  }
  if (unfinished_save) ++coverage->mid_save;
  if (half_deleted) ++coverage->mid_delete;
  if (!unfinished_save && !half_deleted) ++coverage->between;
  return steps.empty() ? -1 : steps.back();
}

void RunCrashLoop(const std::string& mode, int iterations, uint64_t seed) {
  std::printf("crash loop (%s): %d kills, seed %llu (CAIRN_CRASH_SEED to repeat)\n", mode.c_str(), iterations,
              static_cast<unsigned long long>(seed));
  cairn::testing::ScratchDir tmp;  // (tmpfs when there is one: a SIGKILL leaves the kernel's state, not the disk's)
  const fs::path root = tmp / "run";
  std::mt19937_64 rng(seed);
  // Delays long enough to land anywhere in a save (a few to a few tens of milliseconds), short enough that a kill
  // comes every ~100 ms; one in eight is longer, so that the loop also gets through several saves and deletions.
  // On a loaded machine saves slow down: when kills keep landing before any step commits, the delays grow.
  int max_delay_ms = 60;
  int64_t committed_before = -1;
  int stalled = 0;
  Coverage coverage;
  int64_t latest = -1;     // what the last check saw
  int64_t committed = -1;  // the newest step a child reported committed
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < iterations; ++i) {
    const std::string context = mode + " kill " + std::to_string(i) + " (seed " + std::to_string(seed) + ")";
    Child child(root, mode, /*background_delete=*/i % 2 == 1);
    const std::string ready = child.ReadLine(std::chrono::seconds(120));
    ASSERT_EQ(ready, "READY " + std::to_string(latest)) << context << ": the child did not resume from the latest step";
    // The child has cleaned up before its first save: no unfinished save of an earlier run remains.
    for (const auto& entry : fs::directory_iterator(root)) {
      EXPECT_FALSE(IsTemporaryName(entry.path().filename().string()))
          << context << ": " << entry.path() << " survived the restart";
    }
    child.Go();
    const int delay_ms = static_cast<int>(rng() % static_cast<uint64_t>(rng() % 8 == 0 ? 7 * max_delay_ms : max_delay_ms));
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    int status = 0;
    ASSERT_TRUE(child.Kill(&status)) << context << ": the child exited on its own (status " << status << ")";
    for (std::string line; !(line = child.ReadLine(std::chrono::milliseconds(0))).empty();) {
      ASSERT_EQ(line.rfind("C ", 0), 0u) << context << ": unexpected output " << line;
      committed = std::max<int64_t>(committed, std::stoll(line.substr(2)));
    }
    latest = CheckRoot(root, committed, &coverage, context);
    if (latest > committed_before) {
      stalled = 0;
      max_delay_ms = std::max(60, max_delay_ms * 4 / 5);
    } else if (++stalled >= 3) {
      stalled = 0;
      max_delay_ms = std::min(2000, max_delay_ms * 2);
    }
    committed_before = std::max(committed_before, latest);
    if (::testing::Test::HasFatalFailure() || ::testing::Test::HasNonfatalFailure()) return;
  }
  // A last run, not killed: it resumes, cleans up and exits without saving.
  Child last(root, mode, false);
  ASSERT_EQ(last.ReadLine(std::chrono::seconds(120)), "READY " + std::to_string(latest));
  last.CloseStdin();
  const int status = last.Wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  for (const auto& entry : fs::directory_iterator(root)) EXPECT_FALSE(IsTemporaryName(entry.path().filename().string()));
  Coverage ignored;
  CheckRoot(root, committed, &ignored, mode + " final");

  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("crash loop (%s): %d kills in %.1f s; killed mid-save %d, mid-delete %d, between %d; reached step %lld\n",
              mode.c_str(), iterations, secs, coverage.mid_save, coverage.mid_delete, coverage.between,
              static_cast<long long>(latest));
  ::testing::Test::RecordProperty("kills", iterations);
  ::testing::Test::RecordProperty("killed_mid_save", coverage.mid_save);
  // The delays must really land inside saves, or the test proves little.
  EXPECT_GT(coverage.mid_save, iterations / 4) << "too few kills landed inside a save";
  EXPECT_GE(latest, iterations / 10) << "the loop made too little progress";
}

TEST(CrashLoop, AsyncManagerKilledAtRandomMoments) { RunCrashLoop("async", Iterations(100), Seed(20240801)); }

TEST(CrashLoop, SyncManagerKilledMidSave) { RunCrashLoop("sync", Iterations(50), Seed(20240802)); }

}  // namespace
}  // namespace cairn
