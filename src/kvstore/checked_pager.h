// Demand paging with a check before the bytes are handed out (lazy restores with checksums, MapCheck::kOnAccess):
// an anonymous read-only region registered with userfaultfd (MISSING mode). The first read of a page makes the
// kernel wait while the pager fetches the 64 KiB block that holds it (from the value's file, with pread), checks
// the block's CRC-32C, and copies it in (UFFDIO_COPY); the reader then continues. Pages already in place cost
// nothing. Read-only, so nothing is ever written back.
//
// A reader going forward through a region (its fault is on the first block, or on one after a block already asked
// for) has the next 4 MiB queued as readahead, filled on one thread per core while it reads, so that a sequential
// scan is not one fault round trip per block. Random reads get no readahead.
//
// A block that fails its check, or cannot be read (a truncated file), cannot be reported to the reader: a page
// fault has no way to throw. When a reader touches such a block, the pager writes a message naming the value and
// the block to stderr and aborts the process, rather than hand out bytes that are not the ones saved (as
// numpy.memmap documents SIGBUS for a truncated file). A bad block met by readahead is only remembered: nothing
// aborts unless a reader touches it. Restores that must not abort ask for MapCheck::kUpFront instead.
//
// Process-wide: one fault thread and one filler thread per core serve every region; they start with the first
// region and stop when the last is released. Releasing a region waits for the fills of it under way. Regions are
// not inherited by fork() children (MADV_DONTFORK): a child that reads one gets SIGSEGV, never bytes that were not
// checked.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace cairn::kvstore {

// Fills `out` with the `length` bytes of block `block` of the value (all kCrc32cBlockBytes long but the last) and
// checks them; throws (CorruptionError, IoError) when it cannot. Called on the pager's threads, several blocks at
// once.
using BlockFetcher = std::function<void(uint64_t block, char* out, size_t length)>;

// Whether on-access checking is available: userfaultfd that also serves the kernel's own reads of the region (a
// write() from it), which needs /dev/userfaultfd access, CAP_SYS_PTRACE or vm.unprivileged_userfaultfd=1; not in
// ThreadSanitizer builds (it cannot see the kernel's ordering), nor with CAIRN_LAZY_CHECK=up_front set.
bool OnAccessPagingAvailable();

// A read-only region of `size` bytes whose blocks `fetch` provides on first access; `what` names the value in the
// message printed before aborting. The region is unmapped when the last copy of the pointer is released. Null when
// paging is not available (OnAccessPagingAvailable() is false) or the region cannot be set up.
std::shared_ptr<const std::byte> MapCheckedOnAccess(size_t size, BlockFetcher fetch, std::string what);

}  // namespace cairn::kvstore
