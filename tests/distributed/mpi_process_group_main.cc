// MpiProcessGroup across real processes. Run under mpirun, one mode per run:
//   basic    all-gather order, broadcast, barrier, two groups used by concurrent threads, mismatched keys
//   timeout  (2+ processes) the last process sleeps past the others' timeout: they throw TimeoutError quickly,
//            the group then fails at once, and the late process fails too instead of hanging
//   kill     (2+ processes, mpirun --enable-recovery) the last process dies of SIGKILL mid-run: the survivors
//            throw TimeoutError at their own deadline
// Every process checks its own results; the verdict is the line "CAIRN-MPI-TEST PASS <mode>" (printed by
// process 0 once every process has reported, or by each survivor in `kill`) and any "CAIRN-MPI-TEST FAIL".
// After a timeout the group's communicator is unusable and the processes exit without MPI_Finalize, which
// mpirun reports as an abnormal exit: the tests check the verdict lines, not mpirun's exit status.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "cairn/error.h"
#include "cairn/process_group.h"

namespace {

using namespace std::chrono_literals;
using cairn::ErrorCode;
using cairn::ProcessGroup;
using Clock = std::chrono::steady_clock;

int rank = -1;

[[noreturn]] void Fail(const std::string& what) {
  std::printf("CAIRN-MPI-TEST FAIL on process %d: %s\n", rank, what.c_str());
  std::fflush(stdout);
  std::_Exit(1);  // mpirun then ends the other processes
}

void Expect(bool ok, const std::string& what) {
  if (!ok) Fail(what);
}

struct Outcome {
  bool threw = false;
  ErrorCode code{};
  std::string message;
  std::chrono::milliseconds elapsed{};
};

Outcome Capture(const std::function<void()>& call) {
  Outcome out;
  const auto start = Clock::now();
  try {
    call();
  } catch (const cairn::Error& e) {
    out.threw = true;
    out.code = e.code();
    out.message = e.what();
  }
  out.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  return out;
}

std::string Payload(int process) { return std::string(static_cast<size_t>(process) * 1000, char('a' + process)); }

void Basic(const std::shared_ptr<ProcessGroup>& g, const std::shared_ptr<ProcessGroup>& other) {
  const int n = g->count();
  const int me = g->index();
  Expect(other->index() == me && other->count() == n, "two groups disagree on index or count");

  auto all = g->AllGather(Payload(me), "gather", 10s);
  Expect(all.size() == static_cast<size_t>(n), "all-gather size");
  for (int i = 0; i < n; ++i) Expect(all[i] == Payload(i), "all-gather payload of process " + std::to_string(i));

  for (int root = 0; root < n; ++root) {
    std::string got = g->Broadcast("from " + std::to_string(me), root, "bcast " + std::to_string(root), 10s);
    Expect(got == "from " + std::to_string(root), "broadcast from " + std::to_string(root) + " gave " + got);
  }
  Expect(Capture([&] { g->Broadcast("x", n, "bad root", 10s); }).code == ErrorCode::kInvalidArgument,
         "a broadcast from a root out of range is InvalidArgumentError");

  // A barrier waits for the slowest process. The processes share one machine and so one steady clock (Linux's
  // CLOCK_MONOTONIC): nobody may leave before the time process 0 arrived.
  if (me == 0) std::this_thread::sleep_for(200ms);
  const auto arrived = Clock::now().time_since_epoch().count();
  g->Barrier("barrier", 10s);
  const auto left = Clock::now().time_since_epoch().count();
  const auto zero_arrived = std::stoll(g->Broadcast(std::to_string(arrived), 0, "arrival of 0", 10s));
  Expect(left >= zero_arrived, "left the barrier before process 0 arrived");

  // Two groups (two checkpointers) used at once by different threads never match each other's calls.
  std::vector<std::string> from_other;
  std::thread thread([&] {
    for (int i = 0; i < 50; ++i) from_other = other->AllGather("o" + std::to_string(me), "other", 10s);
  });
  std::vector<std::string> from_g;
  for (int i = 0; i < 50; ++i) from_g = g->AllGather("g" + std::to_string(me), "g " + std::to_string(i), 10s);
  thread.join();
  for (int i = 0; i < n; ++i) {
    Expect(from_g[i] == "g" + std::to_string(i), "concurrent groups: g");
    Expect(from_other[i] == "o" + std::to_string(i), "concurrent groups: other");
  }

  if (n > 1) {
    const std::string key = me == n - 1 ? "save/step_2" : "save/step_1";
    Outcome mismatch = Capture([&] { g->AllGather("x", key, 10s); });
    Expect(mismatch.code == ErrorCode::kInvalidArgument, "mismatched keys: want InvalidArgumentError, got '" +
                                                             mismatch.message + "'");
    Expect(mismatch.message.find("save/step_1") != std::string::npos &&
               mismatch.message.find("process " + std::to_string(n - 1) + " called 'save/step_2'") !=
                   std::string::npos,
           "the mismatch error names both keys: " + mismatch.message);
    if (me == 0) std::printf("mismatch on process 0: %s\n", mismatch.message.c_str());
    // The mismatch was agreed on by all: the group goes on working.
    Expect(g->AllGather(std::to_string(me), "after mismatch", 10s).size() == static_cast<size_t>(n),
           "the group works after a mismatch");
  }

  // Many small rounds in a row.
  for (int round = 0; round < 200; ++round) {
    auto r = g->AllGather(std::to_string(round + me), "round " + std::to_string(round), 10s);
    for (int i = 0; i < n; ++i) Expect(r[i] == std::to_string(round + i), "round " + std::to_string(round));
  }

  g->Barrier("done", 10s);
  if (me == 0) std::printf("CAIRN-MPI-TEST PASS basic on %d processes\n", n);
}

void Timeout(const std::shared_ptr<ProcessGroup>& g, const std::shared_ptr<ProcessGroup>& report) {
  const int n = g->count();
  const int me = g->index();
  Expect(n >= 2, "the timeout mode needs 2 or more processes");
  g->Barrier("start", 10s);
  std::string verdict;
  if (me == n - 1) {
    std::this_thread::sleep_for(1500ms);  // stuck past the others' timeout
    Outcome late = Capture([&] { g->AllGather("late", "commit", 500ms); });
    Expect(late.code == ErrorCode::kTimeout, "the late process: want TimeoutError, got '" + late.message + "'");
    verdict = "late process timed out after " + std::to_string(late.elapsed.count()) + " ms";
  } else {
    Outcome timed_out = Capture([&] { g->AllGather("early", "commit", 300ms); });
    Expect(timed_out.code == ErrorCode::kTimeout, "want TimeoutError, got '" + timed_out.message + "'");
    Expect(timed_out.message.find("'commit'") != std::string::npos, "the error names the key");
    Expect(timed_out.elapsed >= 300ms && timed_out.elapsed < 1300ms,
           "timed out after " + std::to_string(timed_out.elapsed.count()) + " ms, want about 300");
    Outcome after = Capture([&] { g->Barrier("next", 10s); });
    Expect(after.code == ErrorCode::kTimeout && after.elapsed < 200ms,
           "a call on the broken group fails at once: '" + after.message + "'");
    verdict = "TimeoutError after " + std::to_string(timed_out.elapsed.count()) + " ms";
    if (me == 0) std::printf("timeout on process 0: %s\n", timed_out.message.c_str());
  }
  // Verdicts travel over another group: the first one's communicator is unusable now.
  auto verdicts = report->AllGather(verdict, "report", 20s);
  if (me == 0) {
    for (int i = 0; i < n; ++i) std::printf("process %d: %s\n", i, verdicts[i].c_str());
    std::printf("CAIRN-MPI-TEST PASS timeout on %d processes\n", n);
    std::fflush(stdout);
  }
  report->Barrier("printed", 20s);  // nobody exits (and gets the job torn down) before process 0 has printed
}

void Kill(const std::shared_ptr<ProcessGroup>& g) {
  const int n = g->count();
  const int me = g->index();
  Expect(n >= 2, "the kill mode needs 2 or more processes");
  g->Barrier("start", 10s);
  if (me == n - 1) {
    std::this_thread::sleep_for(100ms);
    std::raise(SIGKILL);
  }
  Outcome outcome = Capture([&] { g->Barrier("after kill", 500ms); });
  Expect(outcome.code == ErrorCode::kTimeout, "want TimeoutError, got '" + outcome.message + "'");
  Expect(outcome.elapsed < 1500ms, "timed out after " + std::to_string(outcome.elapsed.count()) + " ms");
  std::printf("CAIRN-MPI-TEST PASS kill: process %d saw TimeoutError after %lld ms\n", me,
              static_cast<long long>(outcome.elapsed.count()));
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "basic";
  try {
    auto g = cairn::MpiProcessGroup();
    auto other = cairn::MpiProcessGroup();
    rank = g->index();
    if (mode == "basic") {
      Basic(g, other);
    } else if (mode == "timeout") {
      Timeout(g, other);
    } else if (mode == "kill") {
      Kill(g);
    } else {
      Fail("unknown mode " + mode);
    }
  } catch (const std::exception& e) {
    Fail(std::string("unexpected exception: ") + e.what());
  }
  std::fflush(stdout);
  return 0;  // MPI_Finalize at exit, unless a call timed out (see mpi_process_group.cc)
}
