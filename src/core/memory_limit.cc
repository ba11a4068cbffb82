#include "core/memory_limit.h"

#include <unistd.h>

#include "cairn/error.h"

namespace cairn {

uint64_t PhysicalMemoryBytes() {
  static const uint64_t bytes = [] {
    const long pages = ::sysconf(_SC_PHYS_PAGES), page_size = ::sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page_size <= 0) return uint64_t{1} << 50;
    return static_cast<uint64_t>(pages) * static_cast<uint64_t>(page_size);
  }();
  return bytes;
}

void CheckFitsInMemory(uint64_t bytes, const std::string& what) {
  const uint64_t limit = PhysicalMemoryBytes();
  if (bytes > limit) {
    throw InvalidArgumentError(what + " needs " + std::to_string(bytes) + " bytes in memory, more than this machine's " +
                               std::to_string(limit) + ": the metadata is wrong, or restore a part of it "
                               "(ShardedArraySpec boxes) on each of several processes");
  }
}

}  // namespace cairn
