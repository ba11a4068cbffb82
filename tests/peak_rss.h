// The process's peak resident set, for tests that a read allocates no more than the real data needs (issue 13: sizes
// and shapes from the disk are not trusted).
#pragma once

#include <cstdint>
#include <fstream>
#include <string>

namespace cairn::testing {

// Peak resident set in bytes (VmHWM) since the last ResetPeakRss() (through /proc/self/clear_refs, where the kernel
// allows it; else since the process started).
inline uint64_t PeakRss() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}
inline void ResetPeakRss() { std::ofstream("/proc/self/clear_refs") << "5"; }
// How much the peak grew since `before` (a PeakRss()); 0 when it reads lower (the kernel's count of the peak may
// drift by a page where a runtime returns memory concurrently, as ThreadSanitizer's does).
inline uint64_t PeakRssGrowth(uint64_t before) {
  const uint64_t now = PeakRss();
  return now > before ? now - before : 0;
}

}  // namespace cairn::testing
