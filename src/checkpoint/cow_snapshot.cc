// Copy-on-write snapshots for asynchronous saves.
//
// WHY. An asynchronous save must give the background writer the arrays as they were when save() returned, while the
// caller goes on training. Copying them (staging) costs the whole state again in memory and a memcpy of it in the
// blocking part. Here the caller's pages are write-protected instead (userfaultfd, UFFDIO_REGISTER_MODE_WP), which
// takes a few page-table walks, and a page is copied only when the caller writes it before the writer is done.
//
// THE PROTOCOL. Each protected array is a region with a state, all guarded by one mutex `mu`:
//   kPending  the writer has not begun reading it. A write fault on one of its pages: the fault thread copies the
//             page (or a block of pages from it on, for writes in order) into the region's shadows, skipping pages
//             that already have one, then un-protects them.
//   kReading  the writer is reading the caller's pages in place (it found no shadow page at BeginRead). A write
//             fault is left pending: the faulting thread sleeps in the kernel until EndRead.
//   kDone     read (or released). Every page un-protected; a late fault event is answered by un-protecting again.
// BeginRead (the writer, under `mu`): kPending without shadows -> kReading, read in place; kPending with shadows ->
// assemble a copy (each page from its shadow, else in place) -> kDone, un-protect, hand out the copy. EndRead:
// kReading -> kDone, un-protect the region (which wakes the pending faults).
// Why the writer reads the values of the moment save() returned: only the fault thread and BeginRead/EndRead
// un-protect, always under `mu`; in kPending a page is un-protected only after its old content was saved in a
// shadow, so a page without a shadow still holds its old content (nobody could write it); in kReading nothing is
// un-protected until the writer says it is done. A page is therefore read either from its shadow (copied while
// protected) or in place while protected. A region is read once; a second BeginRead is a logic error, refused.
//
// WHAT QUALIFIES. Owned arrays of at least 1 MiB: Array::Allocate gives those a page-aligned block rounded up to
// whole pages (2 MiB-aligned from 2 MiB on, huge pages where the kernel gives them), so the array's pages are its own: no other object shares a page with them,
// and neither the writer nor the fault thread ever writes into them, so neither can fault into its own protocol
// (a writer that did, inside kReading, would wait for itself). Smaller arrays, arrays that happen not to be on
// their own pages, borrowed arrays (the caller may free or reuse them as soon as save() returns, by contract),
// and memory userfaultfd cannot protect (file mappings; UFFDIO_REGISTER fails) are staged as before. Shared
// immutable arrays (Array::FromShared) are never copied either way.
//
// WHICH USERFAULTFD. One that also serves faults taken by the kernel: a caller that read(2)s or recv(2)s into its
// array during the save must see the call succeed, as it would without a snapshot. UFFD_USER_MODE_ONLY, which is
// what an unprivileged process gets by default (vm.unprivileged_userfaultfd=0), makes such calls fail with EFAULT,
// so it is not used: without /dev/userfaultfd access (or CAP_SYS_PTRACE, or vm.unprivileged_userfaultfd=1) saves
// stage. The kernel must know UFFD_FEATURE_WP_UNPOPULATED (Linux 6.4): without it a page the caller never touched
// would not be protected and its first write would go unseen. mprotect with a SIGSEGV handler was rejected: the
// handler would be process-wide, would race with Python's and JAX's own handlers, and a fault in a system call
// would again be EFAULT.
//
// SANITIZERS. ThreadSanitizer cannot see the ordering the kernel gives (the fault thread's copy before the caller's
// write), so it would report races that are not there: TSan builds stage. AddressSanitizer builds use this path.
//
// LIFETIME. Release() (the save's end, whatever it was, or the destructor) un-protects and unregisters every region
// before it stops the fault thread, so no caller thread is ever left asleep on a fault or with protected memory.
#include "checkpoint/cow_snapshot.h"

#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string_view>
#include <thread>

#include "core/userfaultfd.h"
#include "core/snapshot_read.h"

#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)  // Linux 6.4; older uapi headers lack the name
#endif
namespace cairn::checkpoint {
namespace {

constexpr size_t kPage = 4096;
constexpr size_t kMinBytes = size_t{1} << 20;  // from here on Array::Allocate gives whole pages of their own
constexpr size_t kMaxBlock = size_t{2} << 20;  // the most a fault un-protects at once

}  // namespace

struct CowSnapshot::Impl {
  enum class State { kPending, kReading, kDone };

  struct Region final : SnapshotRegion {
    Impl* owner = nullptr;
    std::byte* begin = nullptr;
    size_t len = 0;  // whole pages
    Array keep;      // the caller's array: its bytes stay alive while protected
    State state = State::kPending;
    // Content as of save() of the pages un-protected while kPending: runs of whole pages, by offset, disjoint.
    struct Shadow {
      size_t len;
      std::unique_ptr<std::byte[]> bytes;
    };
    std::map<size_t, Shadow> shadows;
    size_t next_fault = SIZE_MAX;  // where the last block un-protected here ended: a fault there is sequential
    size_t block = kPage;          // pages un-protected per fault: doubles while the caller writes sequentially
    std::optional<Array> BeginRead() override { return owner->BeginRead(*this); }
    void EndRead() override { owner->EndRead(*this); }
  };

  int uffd = -1;
  int stop = -1;
  std::thread thread;
  mutable std::mutex mu;
  std::map<std::byte*, std::unique_ptr<Region>> regions;  // by first byte
  bool released = false;
  size_t protected_bytes = 0;
  size_t shadow_pages = 0;

  ~Impl() {
    if (uffd >= 0) ::close(uffd);
    if (stop >= 0) ::close(stop);
  }

  bool WriteProtect(std::byte* p, size_t len, bool on) const {
    uffdio_writeprotect wp{};
    wp.range.start = reinterpret_cast<uintptr_t>(p);
    wp.range.len = len;
    wp.mode = on ? UFFDIO_WRITEPROTECT_MODE_WP : 0;  // clearing also wakes the threads waiting on the range
    for (int attempt = 0; attempt < 1000; ++attempt) {
      if (::ioctl(uffd, UFFDIO_WRITEPROTECT, &wp) == 0) return true;
      if (errno != EAGAIN && errno != EINTR) break;
    }
    if (!on) std::fprintf(stderr, "cairn: could not un-protect snapshot pages: %s\n", std::strerror(errno));
    return false;
  }

  void Unregister(std::byte* p, size_t len) const {
    uffdio_range range{reinterpret_cast<uintptr_t>(p), len};
    ::ioctl(uffd, UFFDIO_UNREGISTER, &range);
  }

  Region* Find(std::byte* address) {
    auto it = regions.upper_bound(address);
    if (it == regions.begin()) return nullptr;
    Region* r = std::prev(it)->second.get();
    return address < r->begin + r->len ? r : nullptr;
  }

  // Whether the page at `offset` of `r` has a shadow (was un-protected while kPending).
  static bool Shadowed(const Region& r, size_t offset) {
    auto it = r.shadows.upper_bound(offset);
    return it != r.shadows.begin() && offset < std::prev(it)->first + std::prev(it)->second.len;
  }

  // Saves the pages of [begin, end) of `r` that have no shadow yet (they are still protected, so they hold the
  // content of the moment save() returned), in runs.
  void ShadowRange(Region& r, size_t begin, size_t end) {
    size_t offset = begin;
    while (offset < end) {
      if (Shadowed(r, offset)) {
        offset += kPage;
        continue;
      }
      size_t run_end = offset + kPage;
      while (run_end < end && !Shadowed(r, run_end)) run_end += kPage;
      std::unique_ptr<std::byte[]> bytes(new std::byte[run_end - offset]);  // not zeroed: overwritten at once
      std::memcpy(bytes.get(), r.begin + offset, run_end - offset);
      r.shadows.emplace(offset, Region::Shadow{run_end - offset, std::move(bytes)});
      shadow_pages += (run_end - offset) / kPage;
      offset = run_end;
    }
  }

  void OnFault(std::byte* page) {
    std::lock_guard lock(mu);
    Region* r = Find(page);
    if (r && r->state == State::kReading) return;  // EndRead un-protects and wakes it
    if (!r || r->state == State::kDone) {
      WriteProtect(page, kPage, false);  // a late event: already un-protected
      return;
    }
    // kPending. A caller that writes its pages in order (an optimizer step) would take a fault per 4 KiB; one
    // that follows the previous block un-protects a block twice as large, up to 2 MiB. A write elsewhere starts
    // again at one page, so sparse writes copy only the pages they touch.
    const size_t offset = static_cast<size_t>(page - r->begin);
    r->block = offset == r->next_fault ? std::min(r->block * 2, kMaxBlock) : kPage;
    const size_t end = std::min(offset + r->block, r->len);
    ShadowRange(*r, offset, end);
    r->next_fault = end;
    WriteProtect(page, end - offset, false);
  }

  void Loop() {
    pollfd fds[2] = {{uffd, POLLIN, 0}, {stop, POLLIN, 0}};
    uffd_msg messages[64];
    for (;;) {
      if (::poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        std::fprintf(stderr, "cairn: snapshot fault thread: poll failed: %s\n", std::strerror(errno));
        return;
      }
      if (fds[1].revents) return;  // Release() un-protected and unregistered everything first
      const ssize_t n = ::read(uffd, messages, sizeof messages);
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) continue;
        std::fprintf(stderr, "cairn: snapshot fault thread: read failed: %s\n", std::strerror(errno));
        return;
      }
      for (size_t i = 0; i < static_cast<size_t>(n) / sizeof(uffd_msg); ++i) {
        if (messages[i].event != UFFD_EVENT_PAGEFAULT) continue;
        const uintptr_t address = messages[i].arg.pagefault.address & ~uintptr_t{kPage - 1};
        OnFault(reinterpret_cast<std::byte*>(address));
      }
    }
  }

  std::optional<Array> BeginRead(Region& r) {
    std::lock_guard lock(mu);
    if (r.state != State::kPending) {
      throw std::logic_error("cairn: an array of an asynchronous save's snapshot was read twice");
    }
    if (r.shadows.empty()) {
      r.state = State::kReading;
      return std::nullopt;
    }
    // The pages between shadows are still protected: their content in place is the snapshot's.
    Array copy = Array::Allocate(r.keep.dtype(), r.keep.shape());
    std::byte* out = copy.mutable_bytes().data();
    const size_t n = r.keep.num_bytes();
    size_t cursor = 0;
    for (const auto& [offset, shadow] : r.shadows) {
      if (offset >= n) break;
      std::memcpy(out + cursor, r.begin + cursor, offset - cursor);
      const size_t len = std::min(shadow.len, n - offset);
      std::memcpy(out + offset, shadow.bytes.get(), len);
      cursor = offset + len;
    }
    if (cursor < n) std::memcpy(out + cursor, r.begin + cursor, n - cursor);
    r.state = State::kDone;
    r.shadows.clear();
    WriteProtect(r.begin, r.len, false);
    return copy;
  }

  void EndRead(Region& r) {
    std::lock_guard lock(mu);
    r.state = State::kDone;
    WriteProtect(r.begin, r.len, false);
  }
};

std::unique_ptr<CowSnapshot> CowSnapshot::Create() {
  if (UnderThreadSanitizer()) return nullptr;
  if (const char* mode = std::getenv("CAIRN_ASYNC_SNAPSHOT"); mode && std::string_view(mode) == "staging") {
    return nullptr;
  }
  const int fd = OpenUserfaultfd();
  if (fd < 0) return nullptr;
  uffdio_api api{};
  api.api = UFFD_API;
  api.features = UFFD_FEATURE_PAGEFAULT_FLAG_WP | UFFD_FEATURE_WP_UNPOPULATED;
  if (::ioctl(fd, UFFDIO_API, &api) != 0 || !(api.ioctls & (uint64_t{1} << _UFFDIO_REGISTER))) {
    ::close(fd);
    return nullptr;
  }
  std::unique_ptr<CowSnapshot> snapshot(new CowSnapshot);
  snapshot->impl_ = std::make_unique<Impl>();
  snapshot->impl_->uffd = fd;
  snapshot->impl_->stop = ::eventfd(0, EFD_CLOEXEC);
  if (snapshot->impl_->stop < 0) return nullptr;
  return snapshot;
}

CowSnapshot::~CowSnapshot() { Release(); }

std::optional<Array> CowSnapshot::Protect(const Array& array) {
  if (array.ownership() != Ownership::kOwned || array.num_bytes() < kMinBytes) return std::nullopt;
  auto* begin = const_cast<std::byte*>(array.bytes().data());  // only protected, never written
  if (reinterpret_cast<uintptr_t>(begin) % kPage != 0) return std::nullopt;  // not Array::Allocate's: stage it
  const size_t len = (array.num_bytes() + kPage - 1) / kPage * kPage;
  Impl& s = *impl_;
  std::lock_guard lock(s.mu);
  if (s.released) return std::nullopt;
  // The same buffer twice in one tree (tied weights): a region is read once, so the second one is staged.
  if (s.Find(begin) || s.Find(begin + len - 1)) return std::nullopt;
  if (auto next = s.regions.lower_bound(begin); next != s.regions.end() && next->first < begin + len) {
    return std::nullopt;
  }
  uffdio_register reg{};
  reg.range.start = reinterpret_cast<uintptr_t>(begin);
  reg.range.len = len;
  reg.mode = UFFDIO_REGISTER_MODE_WP;
  if (::ioctl(s.uffd, UFFDIO_REGISTER, &reg) != 0) return std::nullopt;  // not anonymous memory, or no WP here
  if (!(reg.ioctls & (uint64_t{1} << _UFFDIO_WRITEPROTECT)) || !s.WriteProtect(begin, len, true)) {
    s.WriteProtect(begin, len, false);
    s.Unregister(begin, len);
    return std::nullopt;
  }
  if (!s.thread.joinable()) s.thread = std::thread([&s] { s.Loop(); });
  auto region = std::make_unique<Impl::Region>();
  region->owner = &s;
  region->begin = begin;
  region->len = len;
  region->keep = array;
  RegisterSnapshotRegion(begin, region.get());
  s.regions.emplace(begin, std::move(region));
  s.protected_bytes += len;
  auto keep = std::make_shared<Array>(array);
  return Array::FromShared(std::shared_ptr<const void>(keep, keep->bytes().data()), array.dtype(), array.shape());
}

void CowSnapshot::Release() {
  if (!impl_) return;
  Impl& s = *impl_;
  {
    std::lock_guard lock(s.mu);
    if (s.released) return;
    s.released = true;
    for (auto& [begin, region] : s.regions) {
      UnregisterSnapshotRegion(begin);
      s.WriteProtect(begin, region->len, false);
      s.Unregister(begin, region->len);
      region->state = Impl::State::kDone;
      region->shadows.clear();
    }
  }
  if (s.thread.joinable()) {
    const uint64_t one = 1;
    if (::write(s.stop, &one, sizeof one) != sizeof one) std::perror("cairn: stopping the snapshot fault thread");
    s.thread.join();
  }
  std::lock_guard lock(s.mu);
  s.regions.clear();  // drops the references to the caller's arrays
}

size_t CowSnapshot::protected_bytes() const {
  std::lock_guard lock(impl_->mu);
  return impl_->protected_bytes;
}

size_t CowSnapshot::shadow_pages() const {
  std::lock_guard lock(impl_->mu);
  return impl_->shadow_pages;
}

}  // namespace cairn::checkpoint
