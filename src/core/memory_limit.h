// A bound on what one allocation sized from disk may ask for: this machine's physical memory. Shapes and lengths
// in a checkpoint's metadata decide how much a restore allocates; a damaged or hostile file must get a clear
// error there, not an attempt at terabytes (or, with overcommit, a process killed later when the pages are
// touched).
#pragma once

#include <cstdint>
#include <string>

namespace cairn {

// Physical memory in bytes (sysconf); a large constant where the system does not say.
uint64_t PhysicalMemoryBytes();

// InvalidArgumentError naming `what` when `bytes` exceed PhysicalMemoryBytes().
void CheckFitsInMemory(uint64_t bytes, const std::string& what);

}  // namespace cairn
