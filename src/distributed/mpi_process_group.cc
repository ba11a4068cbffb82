// The processes of an MPI job as a ProcessGroup.
//
// Blocking MPI collectives cannot time out, so every exchange is a non-blocking collective polled with
// MPI_Test until it completes or the call's deadline passes. An AllGather is two collectives on the group's own
// communicator: an MPI_Iallgather of a fixed header (hash and size of the key, size of the payload) and then an
// MPI_Iallgatherv of the payloads. Every process sees every header, so all of them take the same branch: when
// the key hashes differ, the second collective carries the keys instead of the payloads and every process
// throws InvalidArgumentError naming them; the communicator stays usable.
//
// A collective that times out cannot be cancelled (MPI has no way to), and the processes that did arrive may
// still complete it later: its buffers are deliberately leaked, the group is marked broken (every later call
// throws TimeoutError at once), and MPI_Finalize is skipped at exit: finalizing waits for every live process
// (Open MPI 4.1 fences in MPI_Finalize), so a stuck process would make it hang forever. mpirun then reports
// the exit as abnormal, which after a timeout it is.
#include "cairn/error.h"
#include "cairn/process_group.h"

#ifdef CAIRN_WITH_MPI

#define OMPI_SKIP_MPICXX 1  // the C API only, also from C++ (no libmpi_cxx)
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <atomic>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "distributed/checks.h"

namespace cairn {
namespace {

using Clock = std::chrono::steady_clock;

std::mutex init_mu;
std::atomic<int> thread_level{-1};  // MPI's thread support, once cairn has made sure MPI is initialised
std::atomic<bool> any_broken{false};

// Below MPI_THREAD_MULTIPLE (a program that initialised MPI itself with MPI_THREAD_SERIALIZED), cairn's calls
// into MPI are serialized by this lock. The program must then not call MPI concurrently with cairn itself.
std::mutex serial_mu;

class MpiLock {
 public:
  MpiLock() : lock_(serial_mu, std::defer_lock) {
    if (thread_level < MPI_THREAD_MULTIPLE) lock_.lock();
  }

 private:
  std::unique_lock<std::mutex> lock_;
};

std::string MpiErrorText(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) return "MPI error code " + std::to_string(code);
  return std::string(text, static_cast<size_t>(length));
}

void Check(int code, const std::string& what) {
  if (code != MPI_SUCCESS) throw Error(ErrorCode::kIo, "MPI process group: " + what + ": " + MpiErrorText(code));
}

void FinalizeAtExit() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) return;
  if (any_broken.load()) {
    std::fprintf(stderr,
                 "cairn: not calling MPI_Finalize: a process group call timed out, so some process is dead or "
                 "stuck and finalizing could hang\n");
    return;
  }
  MPI_Finalize();
}

void EnsureInitialized() {
  std::lock_guard lock(init_mu);
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) throw InvalidArgumentError("MpiProcessGroup: MPI has already been finalized");
  if (thread_level >= 0) return;
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    int provided = 0;
    Check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided), "MPI_Init_thread");
    // Finalized only if cairn initialised it: a program that did so itself also finalizes.
    std::atexit(FinalizeAtExit);
  }
  int level = 0;
  Check(MPI_Query_thread(&level), "MPI_Query_thread");
  if (level < MPI_THREAD_SERIALIZED) {
    throw InvalidArgumentError(
        "MpiProcessGroup: MPI was initialised with a thread level below MPI_THREAD_SERIALIZED; cairn calls MPI "
        "from its own threads (initialise with MPI_Init_thread(MPI_THREAD_MULTIPLE), or let cairn do it)");
  }
  thread_level = level;
}

// FNV-1a: the same on every process, unlike std::hash.
uint64_t KeyHash(const std::string& key) {
  uint64_t hash = 1469598103934665603ull;
  for (unsigned char c : key) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  return hash;
}

// Everything an exchange's collectives may still touch: on a timeout it is leaked, never freed under MPI.
struct Exchange {
  uint64_t header[3] = {0, 0, 0};  // key hash, key size, payload size
  std::vector<uint64_t> headers;
  std::string send;
  std::string received;
  std::vector<int> counts;
  std::vector<int> displacements;
  MPI_Request request = MPI_REQUEST_NULL;
};

class MpiGroup final : public ProcessGroup {
 public:
  MpiGroup() {
    EnsureInitialized();
    MpiLock lock;
    Check(MPI_Comm_dup(MPI_COMM_WORLD, &comm_), "MPI_Comm_dup(MPI_COMM_WORLD)");
    Adopt();
  }

  // A group over `comm`, which it now owns.
  explicit MpiGroup(MPI_Comm comm) : comm_(comm) {
    MpiLock lock;
    Adopt();
  }

  std::shared_ptr<ProcessGroup> Subgroup(const std::vector<int>& members) override {
    distributed::CheckMembers(members, count_, index_);
    std::lock_guard call(call_mu_);
    if (!broken_.empty()) throw TimeoutError("MPI process group: no subgroup of a broken group: " + broken_);
    MpiLock lock;
    MPI_Group parent = MPI_GROUP_NULL, subset = MPI_GROUP_NULL;
    Check(MPI_Comm_group(comm_, &parent), "MPI_Comm_group");
    int code = MPI_Group_incl(parent, static_cast<int>(members.size()), members.data(), &subset);
    MPI_Group_free(&parent);
    Check(code, "MPI_Group_incl");
    MPI_Comm sub = MPI_COMM_NULL;
    // Collective over the members only: the other processes are not involved.
    code = MPI_Comm_create_group(comm_, subset, /*tag=*/0, &sub);
    MPI_Group_free(&subset);
    Check(code, "MPI_Comm_create_group");
    return std::make_shared<MpiGroup>(sub);
  }

  ~MpiGroup() override {
    // A broken communicator may still have a collective in flight: leave it alone.
    if (!broken_.empty()) return;
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized) return;
    MpiLock lock;
    MPI_Comm_free(&comm_);
  }

  int index() const override { return index_; }
  int count() const override { return count_; }

  void Adopt() {
    Check(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
    Check(MPI_Comm_rank(comm_, &index_), "MPI_Comm_rank");
    Check(MPI_Comm_size(comm_, &count_), "MPI_Comm_size");
  }

  std::vector<std::string> AllGather(std::string_view data, const std::string& key,
                                     std::chrono::milliseconds timeout) override {
    distributed::CheckTimeout(timeout, key);
    const auto deadline = Clock::now() + timeout;
    // Calls on one group are one sequence of collectives: a second thread waits its turn (within its timeout).
    std::unique_lock call(call_mu_, std::defer_lock);
    if (!call.try_lock_until(deadline)) {
      throw TimeoutError(Where(key) + " did not start within " + std::to_string(timeout.count()) +
                         " ms: another call on this group was still in progress");
    }
    if (!broken_.empty()) {
      throw TimeoutError(Where(key) + " failed at once: the group is unusable since " + broken_);
    }

    auto exchange = std::make_unique<Exchange>();
    Exchange& x = *exchange;
    x.header[0] = KeyHash(key);
    x.header[1] = key.size();
    x.header[2] = data.size();
    x.headers.resize(3 * static_cast<size_t>(count_));
    {
      MpiLock lock;
      Fail(MPI_Iallgather(x.header, 3, MPI_UINT64_T, x.headers.data(), 3, MPI_UINT64_T, comm_, &x.request),
           key, "MPI_Iallgather");
    }
    Wait(exchange, key, timeout, deadline);

    bool same_keys = true;
    for (int i = 0; i < count_; ++i) {
      if (x.headers[3 * i] != x.headers[0] || x.headers[3 * i + 1] != x.headers[1]) same_keys = false;
    }
    // Every process sees the same headers, so every process takes the same branch from here.
    const size_t field = same_keys ? 2 : 1;
    uint64_t total = 0;
    x.counts.resize(count_);
    x.displacements.resize(count_);
    for (int i = 0; i < count_; ++i) {
      const uint64_t size = x.headers[3 * i + field];
      if (total + size > static_cast<uint64_t>(INT_MAX)) {
        throw InvalidArgumentError(Where(key) + ": " + (same_keys ? "payloads" : "keys") + " of " +
                                   "all processes together exceed " + std::to_string(INT_MAX) +
                                   " bytes (the group exchanges small strings)");
      }
      x.displacements[i] = static_cast<int>(total);
      x.counts[i] = static_cast<int>(size);
      total += size;
    }
    // Copied: the caller's bytes must outlive a collective that times out.
    x.send = same_keys ? std::string(data) : key;
    x.received.resize(total);
    {
      MpiLock lock;
      Fail(MPI_Iallgatherv(x.send.data(), x.counts[index_], MPI_BYTE, x.received.data(), x.counts.data(),
                           x.displacements.data(), MPI_BYTE, comm_, &x.request),
           key, "MPI_Iallgatherv");
    }
    Wait(exchange, key, timeout, deadline);

    std::vector<std::string> parts(count_);
    for (int i = 0; i < count_; ++i) parts[i] = x.received.substr(x.displacements[i], x.counts[i]);
    if (!same_keys) {
      throw InvalidArgumentError("MPI process group: processes reached different calls: " +
                                 distributed::DescribeKeys(parts));
    }
    return parts;
  }

  std::string Broadcast(std::string_view data, int root, const std::string& key,
                        std::chrono::milliseconds timeout) override {
    distributed::CheckRoot(root, count_, key);
    return ProcessGroup::Broadcast(data, root, key, timeout);
  }

 private:
  std::string Where(const std::string& key) const {
    return "MPI process group: call '" + key + "' on process " + std::to_string(index_) + " of " +
           std::to_string(count_);
  }

  // An MPI error inside a collective leaves the communicator as undefined as a timeout does.
  void Fail(int code, const std::string& key, const char* what) {
    if (code == MPI_SUCCESS) return;
    broken_ = "call '" + key + "' failed in " + what + ": " + MpiErrorText(code);
    any_broken = true;
    throw Error(ErrorCode::kIo, Where(key) + ": " + what + ": " + MpiErrorText(code));
  }

  // Polls the exchange's request until it completes or the deadline passes. Sleeps start short, so that a
  // barrier among live processes costs little, and grow to 1 ms, so that waiting for a slow one costs no CPU.
  void Wait(std::unique_ptr<Exchange>& exchange, const std::string& key, std::chrono::milliseconds timeout,
            Clock::time_point deadline) {
    auto pause = std::chrono::microseconds(20);
    while (true) {
      int done = 0;
      int code;
      {
        MpiLock lock;
        code = MPI_Test(&exchange->request, &done, MPI_STATUS_IGNORE);
      }
      if (code != MPI_SUCCESS) {
        exchange.release();  // NOLINT: MPI may still own its buffers
        Fail(code, key, "MPI_Test");
      }
      if (done) return;
      if (Clock::now() >= deadline) {
        exchange.release();  // NOLINT: deliberately leaked, see the top of this file
        broken_ = "call '" + key + "' timed out after " + std::to_string(timeout.count()) + " ms on process " +
                  std::to_string(index_);
        any_broken = true;
        throw TimeoutError(Where(key) + " timed out after " + std::to_string(timeout.count()) +
                           " ms: not every process arrived (one is slow, stuck, dead, or making other calls); "
                           "the group is now unusable");
      }
      std::this_thread::sleep_for(pause);
      pause = std::min<std::chrono::microseconds>(pause * 2, std::chrono::milliseconds(1));
    }
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  int index_ = 0;
  int count_ = 1;
  std::timed_mutex call_mu_;
  std::string broken_;  // guarded by call_mu_ (read unguarded only in the destructor)
};

}  // namespace

std::shared_ptr<ProcessGroup> MpiProcessGroup() { return std::make_shared<MpiGroup>(); }

}  // namespace cairn

#else  // !CAIRN_WITH_MPI

namespace cairn {

std::shared_ptr<ProcessGroup> MpiProcessGroup() {
  throw UnimplementedError(
      "MpiProcessGroup: cairn was built without MPI (install an MPI implementation, e.g. Debian's "
      "libopenmpi-dev, and configure with -DCAIRN_WITH_MPI=ON)");
}

}  // namespace cairn

#endif
