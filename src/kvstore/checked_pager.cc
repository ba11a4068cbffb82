#include "kvstore/checked_pager.h"

#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <map>
#include <stdexcept>
#include <mutex>
#include <string_view>
#include <thread>
#include <vector>

#include "core/userfaultfd.h"
#include "core/crc32c.h"

namespace cairn::kvstore {
namespace {

constexpr size_t kBlock = kCrc32cBlockBytes;

size_t PageSize() { return static_cast<size_t>(::sysconf(_SC_PAGESIZE)); }

class Pager {
 public:
  // The process's pager, started if none runs; null when userfaultfd is not available.
  static std::shared_ptr<Pager> Get() {
    static std::mutex mu;
    static std::weak_ptr<Pager> current;
    std::lock_guard lock(mu);
    if (auto pager = current.lock()) return pager;
    const int uffd = OpenUserfaultfd();
    if (uffd < 0) return nullptr;
    uffdio_api api{};
    api.api = UFFD_API;
    if (::ioctl(uffd, UFFDIO_API, &api) != 0 || !(api.ioctls & (uint64_t{1} << _UFFDIO_REGISTER))) {
      ::close(uffd);
      return nullptr;
    }
    const int stop = ::eventfd(0, EFD_CLOEXEC);
    if (stop < 0) {
      ::close(uffd);
      return nullptr;
    }
    auto pager = std::shared_ptr<Pager>(new Pager(uffd, stop));
    current = pager;
    return pager;
  }

  ~Pager() {
    const uint64_t one = 1;
    if (::write(stop_, &one, sizeof one) < 0) std::perror("cairn: lazy restore pager: eventfd write");
    thread_.join();
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
    std::lock_guard lock(mu_);
    regions_[begin] = Region{len, size, std::move(fetch), std::move(what)};
    return true;
  }

  void Unregister(std::byte* begin, size_t len) {
    std::lock_guard lock(mu_);  // not while the pager thread fills a block of it
    uffdio_range range{reinterpret_cast<uintptr_t>(begin), len};
    ::ioctl(uffd_, UFFDIO_UNREGISTER, &range);
    regions_.erase(begin);
  }

 private:
  struct Region {
    size_t len = 0;   // whole pages
    size_t size = 0;  // the value's bytes
    BlockFetcher fetch;
    std::string what;
  };

  Pager(int uffd, int stop) : uffd_(uffd), stop_(stop), thread_([this] { Loop(); }) {}

  [[noreturn]] static void Fail(const std::string& message) {
    std::fprintf(stderr,
                 "cairn: lazy restore: %s. The bytes cannot be handed out and a page fault cannot raise an "
                 "error, so the process aborts (restore with lazy_check=up_front to get a CorruptionError "
                 "instead).\n",
                 message.c_str());
    std::fflush(stderr);
    std::abort();
  }

  void OnFault(uintptr_t address) {
    std::lock_guard lock(mu_);
    auto it = regions_.upper_bound(reinterpret_cast<std::byte*>(address));
    if (it == regions_.begin()) return;  // (not ours: cannot happen, the kernel only reports registered ranges)
    --it;
    std::byte* const begin = it->first;
    const Region& r = it->second;
    const size_t offset = static_cast<size_t>(reinterpret_cast<std::byte*>(address) - begin);
    if (offset >= r.len) return;
    const uint64_t block = offset / kBlock;
    const size_t block_begin = static_cast<size_t>(block * kBlock);
    const size_t length = std::min(kBlock, r.size - std::min(r.size, block_begin));
    const size_t pages = std::min((length + page_ - 1) / page_ * page_, r.len - block_begin);
    if (buffer_.size() < kBlock) buffer_.assign(kBlock, '\0');
    try {
      if (length == 0) throw std::runtime_error("a fault past the value's end");
      r.fetch(block, buffer_.data(), length);
    } catch (const std::exception& e) {
      Fail(r.what + ": block " + std::to_string(block) + " (bytes [" + std::to_string(block_begin) + ", +" +
           std::to_string(length) + ")): " + e.what());
    }
    std::memset(buffer_.data() + length, 0, pages - length);  // the rest of the last page
    Copy(begin + block_begin, pages, r.what);
  }

  // Copies the filled block in, which wakes the readers waiting on it. A page of the block already in place
  // (cannot happen with one pager thread and read-only regions, but costs nothing to handle) ends the copy early:
  // the rest goes page by page, and the waiters are woken explicitly.
  void Copy(std::byte* dst, size_t len, const std::string& what) {
    uffdio_copy copy{};
    copy.dst = reinterpret_cast<uintptr_t>(dst);
    copy.src = reinterpret_cast<uintptr_t>(buffer_.data());
    copy.len = len;
    if (::ioctl(uffd_, UFFDIO_COPY, &copy) == 0) return;
    if (errno != EEXIST && errno != EAGAIN) Fail(what + ": UFFDIO_COPY failed: " + std::strerror(errno));
    for (size_t at = 0; at < len; at += page_) {
      uffdio_copy one{};
      one.dst = reinterpret_cast<uintptr_t>(dst + at);
      one.src = reinterpret_cast<uintptr_t>(buffer_.data() + at);
      one.len = page_;
      one.mode = UFFDIO_COPY_MODE_DONTWAKE;
      if (::ioctl(uffd_, UFFDIO_COPY, &one) != 0 && errno != EEXIST) {
        Fail(what + ": UFFDIO_COPY failed: " + std::strerror(errno));
      }
    }
    uffdio_range range{reinterpret_cast<uintptr_t>(dst), len};
    ::ioctl(uffd_, UFFDIO_WAKE, &range);
  }

  void Loop() {
    pollfd fds[2] = {{uffd_, POLLIN, 0}, {stop_, POLLIN, 0}};
    uffd_msg messages[64];
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
      for (size_t i = 0; i < static_cast<size_t>(n) / sizeof(uffd_msg); ++i) {
        if (messages[i].event != UFFD_EVENT_PAGEFAULT) continue;
        OnFault(static_cast<uintptr_t>(messages[i].arg.pagefault.address) & ~uintptr_t{page_ - 1});
      }
    }
  }

  const int uffd_;
  const int stop_;
  const size_t page_ = PageSize();
  std::mutex mu_;
  std::map<std::byte*, Region> regions_;
  std::vector<char> buffer_;  // the pager thread's block (page-aligned enough for UFFDIO_COPY: any source works)
  std::thread thread_;        // last: starts once the rest is set
};

bool Disabled() {
  if (UnderThreadSanitizer()) return true;
  const char* mode = std::getenv("CAIRN_LAZY_CHECK");
  return mode && std::string_view(mode) == "up_front";
}

}  // namespace

bool OnAccessPagingAvailable() { return !Disabled() && Pager::Get() != nullptr; }

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
    auto* mutable_begin = const_cast<std::byte*>(b);
    pager->Unregister(mutable_begin, len);
    ::munmap(mutable_begin, len);
  });
}

}  // namespace cairn::kvstore
