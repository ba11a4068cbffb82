#include "kvstore/checked_pager.h"

#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <vector>

#include "core/crc32c.h"
#include "core/userfaultfd.h"

namespace cairn::kvstore {
namespace {

constexpr size_t kBlock = kCrc32cBlockBytes;

// Blocks a sequential reader's fault queues ahead of it (4 MiB): far enough that the fillers stay ahead of a
// reader that only touches the pages, short enough that a reader stopping early has cost little.
constexpr uint64_t kReadaheadBlocks = 64;

// Blocks filled by one job (256 KiB): one UFFDIO_COPY and, for a reader that caught up, one wake-up for all of
// them. Measured on 2 cores: 64 KiB jobs fill ~20% slower.
constexpr uint64_t kRunBlocks = 4;

size_t PageSize() { return static_cast<size_t>(::sysconf(_SC_PAGESIZE)); }

// What has become of one block. A block is filled once: whoever moves it to kFilling (a filler taking it from the
// queue, or the fault thread for a reader waiting on it) fetches, checks and copies it in.
enum BlockState : uint8_t {
  kEmpty,          // nothing asked for it yet
  kQueued,         // waiting in the readahead queue
  kFilling,        // being fetched by a filler (readahead: a failure is remembered, not fatal)
  kFillingWaited,  // being fetched by a filler while a reader waits on it (a failure aborts)
  kPresent,        // in place
  kFailed,         // readahead could not fetch or check it; a reader touching it gets the abort
};

struct Region {
  std::byte* begin = nullptr;
  size_t len = 0;   // whole pages
  size_t size = 0;  // the value's bytes
  uint64_t blocks = 0;
  BlockFetcher fetch;
  std::string what;
  std::unique_ptr<std::atomic<uint8_t>[]> state;  // a BlockState per block
  // Guarded by the pager's mutex:
  size_t in_flight = 0;  // blocks of it being filled right now
  bool closing = false;  // being released: nothing more is queued or started
};

// A fill to do: up to kRunBlocks blocks of a region from `block` on. A demand job is for a reader waiting on its
// first block (claimed for it already, as are the rest of the run, and counted in the region's in_flight): a
// failure of that block aborts. A readahead job's blocks are kQueued until a filler claims them.
struct Job {
  std::shared_ptr<Region> region;
  uint64_t block = 0;
  uint64_t count = 1;
  bool demand = false;
};

// A userfaultfd that can register ranges for missing-page faults, or -1 where the kernel or its settings refuse.
int OpenPagingUserfaultfd() {
  const int uffd = OpenUserfaultfd();
  if (uffd < 0) return -1;
  uffdio_api api{};
  api.api = UFFD_API;
  if (::ioctl(uffd, UFFDIO_API, &api) != 0 || !(api.ioctls & (uint64_t{1} << _UFFDIO_REGISTER))) {
    ::close(uffd);
    return -1;
  }
  return uffd;
}

class Pager {
 public:
  // The process's pager, started if none runs; null when userfaultfd is not available.
  static std::shared_ptr<Pager> Get() {
    static std::mutex mu;
    static std::weak_ptr<Pager> current;
    std::lock_guard lock(mu);
    if (auto pager = current.lock()) {
      if (!pager->Inherited()) return pager;
      KeepForever(std::move(pager));  // a fork child: the parent's pager is not ours to use or to stop
    }
    const int uffd = OpenPagingUserfaultfd();
    if (uffd < 0) return nullptr;
    const int stop = ::eventfd(0, EFD_CLOEXEC);
    if (stop < 0) {
      ::close(uffd);
      return nullptr;
    }
    auto pager = std::shared_ptr<Pager>(new Pager(uffd, stop));
    current = pager;
    return pager;
  }

  // Whether this is a fork child's copy of its parent's pager. Such a copy must do nothing: its userfaultfd acts on
  // the parent's memory (an unregister would make the parent's unfilled pages read as zeros), its threads are the
  // parent's (the child has none), and its regions were not inherited (MADV_DONTFORK).
  bool Inherited() const { return ::getpid() != owner_; }

  // Keeps an inherited pager referenced for good: destroying it would join threads the child does not have.
  static void KeepForever(std::shared_ptr<Pager> pager) {
    static std::mutex kept_mu;
    static auto* kept = new std::vector<std::shared_ptr<Pager>>();  // reachable: not a leak to LeakSanitizer
    std::lock_guard lock(kept_mu);
    kept->push_back(std::move(pager));
  }

  ~Pager() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    work_.notify_all();
    const uint64_t one = 1;
    if (::write(stop_, &one, sizeof one) < 0) std::perror("cairn: lazy restore pager: eventfd write");
    fault_thread_.join();
    for (auto& t : fillers_) t.join();
    ::close(uffd_);
    ::close(stop_);
  }

  // Registers [begin, begin + len) (whole pages) as a region of a `size`-byte value.
  bool Register(std::byte* begin, size_t len, size_t size, BlockFetcher fetch, std::string what) {
    uffdio_register reg{};
    reg.range.start = reinterpret_cast<uintptr_t>(begin);
    reg.range.len = len;
    reg.mode = UFFDIO_REGISTER_MODE_MISSING;
    if (::ioctl(uffd_, UFFDIO_REGISTER, &reg) != 0 || !(reg.ioctls & (uint64_t{1} << _UFFDIO_COPY))) return false;
    auto region = std::make_shared<Region>();
    region->begin = begin;
    region->len = len;
    region->size = size;
    region->blocks = (size + kBlock - 1) / kBlock;
    region->fetch = std::move(fetch);
    region->what = std::move(what);
    region->state = std::make_unique<std::atomic<uint8_t>[]>(region->blocks);  // all kEmpty
    std::lock_guard lock(mu_);
    regions_[begin] = std::move(region);
    return true;
  }

  // Waits for the fills under way in the region (nothing new starts), then forgets it.
  void Unregister(std::byte* begin, size_t len) {
    std::unique_lock lock(mu_);
    auto it = regions_.find(begin);
    if (it != regions_.end()) {
      Region* region = it->second.get();
      region->closing = true;
      // Readahead not started is dropped; a reader's fill still runs (it counts in in_flight already).
      std::erase_if(queue_, [&](const Job& job) { return !job.demand && job.region.get() == region; });
      idle_.wait(lock, [&] { return region->in_flight == 0; });
    }
    uffdio_range range{reinterpret_cast<uintptr_t>(begin), len};
    ::ioctl(uffd_, UFFDIO_UNREGISTER, &range);
    if (it != regions_.end()) regions_.erase(it);
  }

 private:
  Pager(int uffd, int stop) : owner_(::getpid()), uffd_(uffd), stop_(stop) {
    const unsigned fillers = std::clamp(std::thread::hardware_concurrency(), 1u, 8u);
    for (unsigned i = 0; i < fillers; ++i) fillers_.emplace_back([this] { FillerLoop(); });
    fault_thread_ = std::thread([this] { FaultLoop(); });
  }

  [[noreturn]] static void Fail(const std::string& message) {
    std::fprintf(stderr,
                 "cairn: lazy restore: %s. The bytes cannot be handed out and a page fault cannot raise an "
                 "error, so the process aborts (restore with lazy_check=up_front to get a CorruptionError "
                 "instead).\n",
                 message.c_str());
    std::fflush(stderr);
    std::abort();
  }

  // The fault thread: reads the kernel's fault messages. A fault on a block nobody fills yet is filled right here
  // (the reader waits on it); further faults of the same batch go to the front of the fillers' queue, so that
  // readers faulting at once are served in parallel. A fault on a block being filled needs nothing: the fill's
  // copy wakes the reader.
  void FaultLoop() {
    pollfd fds[2] = {{uffd_, POLLIN, 0}, {stop_, POLLIN, 0}};
    uffd_msg messages[64];
    std::vector<char> buffer(kRunBlocks * kBlock);
    for (;;) {
      if (::poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        Fail(std::string("pager thread: poll failed: ") + std::strerror(errno));
      }
      if (fds[1].revents) return;  // every region was released before the pager
      const ssize_t n = ::read(uffd_, messages, sizeof messages);
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) continue;
        Fail(std::string("pager thread: read failed: ") + std::strerror(errno));
      }
      std::optional<Job> here;
      for (size_t i = 0; i < static_cast<size_t>(n) / sizeof(uffd_msg); ++i) {
        if (messages[i].event != UFFD_EVENT_PAGEFAULT) continue;
        std::optional<Job> job = OnFault(static_cast<uintptr_t>(messages[i].arg.pagefault.address));
        if (!job) continue;
        if (!here) {
          here = std::move(job);
        } else {
          std::lock_guard lock(mu_);
          queue_.push_front(std::move(*job));
          work_.notify_one();
        }
      }
      if (here) Fill(*here->region, here->block, here->count, true, buffer);
      if (here) Done(*here->region);
    }
  }

  // A reader faulted at `address`: queues readahead when the reader goes forward (the block before is asked for
  // already, or this is the first), and returns the fill the reader waits on, if one must start.
  std::optional<Job> OnFault(uintptr_t address) {
    std::lock_guard lock(mu_);
    auto it = regions_.upper_bound(reinterpret_cast<std::byte*>(address));
    if (it == regions_.begin()) return std::nullopt;  // (not ours: the kernel only reports registered ranges)
    --it;
    const std::shared_ptr<Region>& r = it->second;
    const size_t offset = static_cast<size_t>(reinterpret_cast<std::byte*>(address) - r->begin);
    if (offset >= r->len || r->closing) return std::nullopt;
    const uint64_t block = offset / kBlock;
    if (block >= r->blocks) Fail(r->what + ": a fault past the value's end (byte " + std::to_string(offset) + ")");
    if (block == 0 || r->state[block - 1].load() != kEmpty) {
      bool queued = false;
      for (uint64_t b = block + 1; b < std::min(r->blocks, block + 1 + kReadaheadBlocks); ++b) {
        uint8_t empty = kEmpty;
        if (!r->state[b].compare_exchange_strong(empty, kQueued)) continue;
        Job* last = queue_.empty() ? nullptr : &queue_.back();
        if (last && !last->demand && last->region == r && last->block + last->count == b && last->count < kRunBlocks) {
          ++last->count;
        } else {
          queue_.push_back(Job{r, b, 1, false});
        }
        queued = true;
      }
      if (queued) work_.notify_all();
    }
    std::atomic<uint8_t>& state = r->state[block];
    for (uint8_t s = state.load();;) {
      if (s == kPresent) {  // filled after the fault was raised: wake the reader if the copy's wake missed it
        Wake(*r, block);
        return std::nullopt;
      }
      if (s == kFillingWaited) return std::nullopt;
      if (s == kFilling) {  // a filler has it: a failure must now abort, not be remembered
        if (state.compare_exchange_weak(s, kFillingWaited)) return std::nullopt;
        continue;
      }
      // kEmpty, kQueued or kFailed: filled for this reader (a queued entry then finds it taken and skips it),
      // with the queued blocks right after it.
      if (state.compare_exchange_weak(s, kFilling)) {
        uint64_t count = 1;
        for (uint8_t queued = kQueued; block + count < r->blocks && count < kRunBlocks &&
                                       r->state[block + count].compare_exchange_strong(queued, kFilling);) {
          ++count;
        }
        ++r->in_flight;
        return Job{r, block, count, true};
      }
    }
  }

  void FillerLoop() {
    std::vector<char> buffer(kRunBlocks * kBlock);
    std::unique_lock lock(mu_);
    for (;;) {
      work_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      Job job = std::move(queue_.front());
      queue_.pop_front();
      Region& r = *job.region;
      if (job.demand) {  // claimed and counted by the fault thread
        lock.unlock();
        Fill(r, job.block, job.count, true, buffer);
      } else {
        if (r.closing) continue;
        // Readahead: the blocks a reader's fault has not taken meanwhile, in runs of consecutive ones.
        std::vector<bool> mine(job.count);
        bool any = false;
        for (uint64_t i = 0; i < job.count; ++i) {
          uint8_t queued = kQueued;
          mine[i] = r.state[job.block + i].compare_exchange_strong(queued, kFilling);
          any = any || mine[i];
        }
        if (!any) continue;
        ++r.in_flight;
        lock.unlock();
        for (uint64_t i = 0; i < job.count;) {
          if (!mine[i]) {
            ++i;
            continue;
          }
          uint64_t n = 1;
          while (i + n < job.count && mine[i + n]) ++n;
          Fill(r, job.block + i, n, false, buffer);
          i += n;
        }
      }
      Done(r);
      lock.lock();
    }
  }

  // A job of the region has finished: one fewer in flight.
  void Done(Region& r) {
    std::lock_guard lock(mu_);
    if (--r.in_flight == 0 && r.closing) idle_.notify_all();
  }

  // Fetches, checks and copies in the blocks [first, first + count) (all claimed: kFilling, or kFillingWaited
  // where a reader waits), then marks them present. A block that cannot be fetched or fails its check aborts the
  // process if a reader waits on it (the first block of a demand job, or one marked kFillingWaited); otherwise it
  // is marked kFailed for a reader's fault to try again. The good blocks around it are still copied in.
  void Fill(Region& r, uint64_t first, uint64_t count, bool demand, std::vector<char>& buffer) {
    uint64_t run = first;  // the first block fetched and not yet copied in
    auto copy_run = [&](uint64_t end) {
      if (end == run) return;
      const size_t begin = static_cast<size_t>(run * kBlock);
      const size_t bytes = std::min(static_cast<size_t>((end - run) * kBlock), r.size - begin);
      const size_t pages = std::min((bytes + page_ - 1) / page_ * page_, r.len - begin);
      char* src = buffer.data() + (run - first) * kBlock;
      std::memset(src + bytes, 0, pages - bytes);  // the rest of the value's last page
      Copy(r.begin + begin, src, pages, r.what);
      for (uint64_t b = run; b < end; ++b) r.state[b].store(kPresent);
    };
    for (uint64_t b = first; b < first + count; ++b) {
      const size_t begin = static_cast<size_t>(b * kBlock);
      const size_t length = std::min(kBlock, r.size - begin);
      std::string error;
      try {
        r.fetch(b, buffer.data() + (b - first) * kBlock, length);
      } catch (const std::exception& e) {
        error = e.what();
      }
      if (error.empty()) continue;
      uint8_t filling = kFilling;
      if ((demand && b == first) || !r.state[b].compare_exchange_strong(filling, kFailed)) {  // a reader waits
        Fail(r.what + ": block " + std::to_string(b) + " (bytes [" + std::to_string(begin) + ", +" +
             std::to_string(length) + ")): " + error);
      }
      copy_run(b);
      run = b + 1;
    }
    copy_run(first + count);
  }

  // Copies a filled block in, which wakes the readers waiting on it. A page already in place (cannot happen: a
  // block is filled once, and the regions are read-only) ends the copy early; the rest then goes page by page and
  // the waiters are woken explicitly.
  void Copy(std::byte* dst, const char* src, size_t len, const std::string& what) {
    uffdio_copy copy{};
    copy.dst = reinterpret_cast<uintptr_t>(dst);
    copy.src = reinterpret_cast<uintptr_t>(src);
    copy.len = len;
    if (::ioctl(uffd_, UFFDIO_COPY, &copy) == 0) return;
    if (errno != EEXIST && errno != EAGAIN) Fail(what + ": UFFDIO_COPY failed: " + std::strerror(errno));
    for (size_t at = 0; at < len; at += page_) {
      uffdio_copy one{};
      one.dst = reinterpret_cast<uintptr_t>(dst + at);
      one.src = reinterpret_cast<uintptr_t>(src + at);
      one.len = page_;
      one.mode = UFFDIO_COPY_MODE_DONTWAKE;
      if (::ioctl(uffd_, UFFDIO_COPY, &one) != 0 && errno != EEXIST) {
        Fail(what + ": UFFDIO_COPY failed: " + std::strerror(errno));
      }
    }
    uffdio_range range{reinterpret_cast<uintptr_t>(dst), len};
    ::ioctl(uffd_, UFFDIO_WAKE, &range);
  }

  void Wake(const Region& r, uint64_t block) {
    const size_t begin = static_cast<size_t>(block * kBlock);
    uffdio_range range{reinterpret_cast<uintptr_t>(r.begin + begin), std::min(kBlock, r.len - begin)};
    ::ioctl(uffd_, UFFDIO_WAKE, &range);
  }

  const pid_t owner_;
  const int uffd_;
  const int stop_;
  const size_t page_ = PageSize();
  std::mutex mu_;
  std::condition_variable work_;  // a job queued, or stopping_
  std::condition_variable idle_;  // a closing region's last fill finished
  std::map<std::byte*, std::shared_ptr<Region>> regions_;
  std::deque<Job> queue_;
  bool stopping_ = false;
  std::vector<std::thread> fillers_;
  std::thread fault_thread_;
};

bool Disabled() {
  if (UnderThreadSanitizer()) return true;
  const char* mode = std::getenv("CAIRN_LAZY_CHECK");
  return mode && std::string_view(mode) == "up_front";
}

}  // namespace

bool OnAccessPagingAvailable() {
  if (Disabled()) return false;
  // Asked once: whether the process may open one does not change (and asking starts no pager threads).
  static const bool available = [] {
    const int uffd = OpenPagingUserfaultfd();
    if (uffd >= 0) ::close(uffd);
    return uffd >= 0;
  }();
  return available;
}

std::shared_ptr<const std::byte> MapCheckedOnAccess(size_t size, BlockFetcher fetch, std::string what) {
  if (size == 0 || Disabled()) return nullptr;
  std::shared_ptr<Pager> pager = Pager::Get();
  if (!pager) return nullptr;
  const size_t page = PageSize();
  const size_t len = (size + page - 1) / page * page;
  void* p = ::mmap(nullptr, len, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  auto* begin = static_cast<std::byte*>(p);
  ::madvise(p, len, MADV_DONTFORK);  // a fork child has no pager: it must not see unfilled pages as zeros
  if (!pager->Register(begin, len, size, std::move(fetch), std::move(what))) {
    ::munmap(p, len);
    return nullptr;
  }
  return std::shared_ptr<const std::byte>(begin, [pager, len](const std::byte* b) {
    if (pager->Inherited()) {  // a fork child's copy of the parent's region: not mapped here, nothing to undo
      Pager::KeepForever(pager);
      return;
    }
    auto* mutable_begin = const_cast<std::byte*>(b);
    pager->Unregister(mutable_begin, len);
    ::munmap(mutable_begin, len);
  });
}

}  // namespace cairn::kvstore
