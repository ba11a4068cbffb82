// Helpers shared by cairn's tests.
#pragma once

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "cairn/array.h"
#include "cairn/tree.h"

namespace cairn::testing {

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it when the object dies.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/cairn_test_XXXXXX";
    if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// A TempDir on tmpfs (/dev/shm) when there is one: for tests that run thousands of saves or restores to break
// them (fault sweeps, corruption), where the disk's speed is not what is tested.
class ScratchDir {
 public:
  ScratchDir() {
    std::string base;
    if (std::filesystem::is_directory("/dev/shm") && ::access("/dev/shm", W_OK) == 0) {
      base = "/dev/shm";
    } else {
      const char* tmp = std::getenv("TMPDIR");
      base = tmp && *tmp ? tmp : "/tmp";
    }
    std::string pattern = base + "/cairn_scratch_XXXXXX";
    if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

inline std::filesystem::path FixturesDir() { return CAIRN_FIXTURES_DIR; }

// A file's bytes, and a file replaced by bytes (tests that damage checkpoints).
inline std::string Slurp(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
inline void Spit(const std::filesystem::path& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

// A uint32 array of pseudo-random values: they do not compress, so the array stays out of line in an OCDBT data
// file (larger than its 1 KiB inline limit).
inline Array Noise(Shape shape) {
  Array a = Array::Allocate(DType::kUInt32, std::move(shape));
  uint32_t x = 12345;
  for (auto& v : a.mutable_data<uint32_t>()) v = x = x * 1664525u + 1013904223u;
  return a;
}

// A float32 array of `shape` holding 0, 1, 2, ...
inline Array Iota(Shape shape, DType dtype = DType::kFloat32) {
  Array f = Array::Allocate(DType::kFloat64, shape);
  auto values = f.mutable_data<double>();
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<double>(i);
  return dtype == DType::kFloat64 ? f : f.Cast(dtype);
}

}  // namespace cairn::testing
