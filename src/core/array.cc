#include "cairn/array.h"

#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>

namespace cairn {

int64_t NumElements(const Shape& shape) {
  int64_t count = 1;
  for (int64_t dim : shape) {
    if (dim < 0) throw InvalidArgumentError("negative dimension in shape " + ShapeToString(shape));
    if (dim != 0 && count > std::numeric_limits<int64_t>::max() / dim) {
      throw InvalidArgumentError("shape " + ShapeToString(shape) + " has more elements than fit in 64 bits");
    }
    count *= dim;
  }
  return count;
}

size_t NumBytes(DType dtype, const Shape& shape) {
  auto count = static_cast<uint64_t>(NumElements(shape));
  uint64_t item = ItemSize(dtype);
  if (count > std::numeric_limits<uint64_t>::max() / item ||
      count * item > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    throw InvalidArgumentError("shape " + ShapeToString(shape) + " of " + std::string(DTypeName(dtype)) +
                               " has a byte size that overflows");
  }
  return static_cast<size_t>(count * item);
}

std::string ShapeToString(const Shape& shape) {
  std::string out = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(shape[i]);
  }
  if (shape.size() == 1) out += ",";
  return out + ")";
}

Array::Array() : Array(DType::kFloat32, Shape{0}, nullptr, nullptr, Ownership::kOwned, true) {}

Array::Array(DType dtype, Shape shape, std::shared_ptr<const void> holder, const std::byte* data,
             Ownership ownership, bool writable)
    : dtype_(dtype),
      shape_(std::move(shape)),
      num_bytes_(NumBytes(dtype_, shape_)),
      holder_(std::move(holder)),
      data_(data),
      ownership_(ownership),
      writable_(writable) {}

namespace {

constexpr size_t kPage = 4096;
constexpr size_t kHugePage = size_t{2} << 20;

constexpr bool UnderAddressSanitizer() {
#if defined(__SANITIZE_ADDRESS__)
  return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
  return true;
#endif
#endif
  return false;
}

// `bytes` (a multiple of the page) of fresh anonymous memory at an address aligned to `alignment` (a multiple of the
// page), held until the last copy of the pointer goes, then unmapped: the memory goes back to the kernel
// at once, where the allocator keeps freed blocks below its mmap threshold (which grows to 32 MiB as blocks are
// freed) for reuse, so that a restore after a restore peaks above the bytes it restores. Under AddressSanitizer
// the allocator's posix_memalign instead, so that its redzones guard large arrays too.
std::shared_ptr<std::byte[]> MapAnonymous(size_t bytes, size_t alignment) {
  if (UnderAddressSanitizer()) {
    void* p = nullptr;  // (posix_memalign: aligned_alloc wants the size a multiple of the alignment)
    if (::posix_memalign(&p, alignment, bytes) != 0) throw std::bad_alloc();
    return std::shared_ptr<std::byte[]>(static_cast<std::byte*>(p), [](std::byte* b) { std::free(b); });
  }
  const size_t extra = alignment > kPage ? alignment : 0;  // mmap aligns to a page; trim to `alignment`
  void* mapped = ::mmap(nullptr, bytes + extra, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mapped == MAP_FAILED) throw std::bad_alloc();
  auto* begin = static_cast<std::byte*>(mapped);
  if (extra) {
    const size_t head = (alignment - reinterpret_cast<uintptr_t>(begin) % alignment) % alignment;
    if (head) ::munmap(begin, head);
    if (extra - head) ::munmap(begin + head + bytes, extra - head);
    begin += head;
  }
  return std::shared_ptr<std::byte[]>(begin, [bytes](std::byte* b) { ::munmap(b, bytes); });
}

// Memory for `n` bytes, and whether it comes zeroed (fresh mappings do; the allocator's blocks do not).
std::shared_ptr<std::byte[]> AllocateBytes(size_t n, bool& zeroed) {
  zeroed = !UnderAddressSanitizer();
  // A large array is filled right after it is allocated (a restore reads into it): with 4 KiB pages the kernel then
  // takes a fault and zeroes a page per 4 KiB, which costs more than the read itself (on the bench's 2-core machine
  // memcpy into fresh pages runs at ~1.7 GiB/s, into pre-faulted ones at ~15). Asking for transparent huge pages
  // (2 MiB-aligned, MADV_HUGEPAGE; THP is "madvise" on Debian) brings that to ~9 GiB/s. Huge pages also make an
  // async save's copy-on-write snapshot cheap: write-protecting 2 GiB takes ~0.7 ms in huge pages, ~19 ms in 4 KiB
  // ones. The mapping ends at the array's last 4 KiB page: the kernel backs only the whole 2 MiB-aligned ranges
  // inside it with huge pages and the tail with small ones, so no memory is spent on rounding. Best effort: where
  // THP is off, madvise fails and the pages stay small.
  if (n >= kHugePage) {
    const size_t len = (n + kPage - 1) / kPage * kPage;
    std::shared_ptr<std::byte[]> buffer = MapAnonymous(len, kHugePage);
    ::madvise(buffer.get(), len, MADV_HUGEPAGE);
    return buffer;
  }
  // From 1 MiB on, whole pages of its own (page-aligned, size rounded up to a page): an asynchronous save can then
  // write-protect the array's pages without touching any other object's (checkpoint/cow_snapshot.cc relies on it
  // for every owned array of 1 MiB or more).
  if (n >= (size_t{1} << 20)) return MapAnonymous((n + kPage - 1) / kPage * kPage, kPage);
  // make_shared_for_overwrite would be C++20's ideal, but libstdc++ 12 lacks it for arrays; new[] without
  // value-initialisation leaves the bytes for the caller to fill.
  zeroed = false;
  return std::shared_ptr<std::byte[]>(new std::byte[n == 0 ? 1 : n]);
}

}  // namespace

Array Array::Allocate(DType dtype, Shape shape) {
  bool zeroed = false;
  std::shared_ptr<std::byte[]> buffer = AllocateBytes(NumBytes(dtype, shape), zeroed);
  const std::byte* data = buffer.get();
  return Array(dtype, std::move(shape), std::shared_ptr<const void>(buffer, data), data, Ownership::kOwned, true);
}

Array Array::Zeros(DType dtype, Shape shape) {
  const size_t n = NumBytes(dtype, shape);
  bool zeroed = false;
  std::shared_ptr<std::byte[]> buffer = AllocateBytes(n, zeroed);
  if (!zeroed) std::memset(buffer.get(), 0, n);  // (a fresh mapping is zero already, and untouched stays unpaged)
  const std::byte* data = buffer.get();
  return Array(dtype, std::move(shape), std::shared_ptr<const void>(buffer, data), data, Ownership::kOwned, true);
}

Array Array::FromBytes(DType dtype, Shape shape, const void* data, size_t num_bytes) {
  Array array = Allocate(dtype, std::move(shape));
  if (num_bytes != array.num_bytes()) {
    throw InvalidArgumentError("Array::FromBytes: " + std::to_string(num_bytes) + " bytes given for " +
                               std::string(DTypeName(dtype)) + ShapeToString(array.shape()) + " which needs " +
                               std::to_string(array.num_bytes()));
  }
  if (num_bytes) std::memcpy(array.mutable_bytes().data(), data, num_bytes);
  return array;
}

Array Array::FromShared(std::shared_ptr<const void> bytes, DType dtype, Shape shape) {
  if (!bytes && NumBytes(dtype, shape) != 0) throw InvalidArgumentError("Array::FromShared: null bytes");
  auto data = static_cast<const std::byte*>(bytes.get());
  return Array(dtype, std::move(shape), std::move(bytes), data, Ownership::kShared, false);
}

Array Array::FromBorrowed(const void* data, DType dtype, Shape shape) {
  if (!data && NumBytes(dtype, shape) != 0) throw InvalidArgumentError("Array::FromBorrowed: null pointer");
  return Array(dtype, std::move(shape), nullptr, static_cast<const std::byte*>(data), Ownership::kBorrowed, false);
}

Array Array::FromBorrowedWritable(void* data, DType dtype, Shape shape) {
  if (!data && NumBytes(dtype, shape) != 0) throw InvalidArgumentError("Array::FromBorrowedWritable: null pointer");
  return Array(dtype, std::move(shape), nullptr, static_cast<const std::byte*>(data), Ownership::kBorrowed, true);
}

std::span<std::byte> Array::mutable_bytes() {
  if (!writable_) {
    throw InvalidArgumentError("only arrays cairn owns, or borrowed through Array::FromBorrowedWritable, are "
                               "writable; this one is shared or borrowed read-only");
  }
  return {const_cast<std::byte*>(data_), num_bytes_};
}

void Array::CheckType(DType requested) const {
  if (requested != dtype_) {
    throw InvalidArgumentError("array of " + std::string(DTypeName(dtype_)) + " viewed as " +
                               std::string(DTypeName(requested)));
  }
}

Array Array::Cast(DType dtype) const {
  Array out = Allocate(dtype, shape_);
  CastElements(data_, dtype_, out.mutable_bytes().data(), dtype, static_cast<size_t>(num_elements()));
  return out;
}

Array Array::Copy() const { return FromBytes(dtype_, shape_, data_, num_bytes_); }

bool operator==(const Array& a, const Array& b) {
  if (a.dtype_ != b.dtype_ || a.shape_ != b.shape_) return false;
  return a.num_bytes_ == 0 || a.data_ == b.data_ || std::memcmp(a.data_, b.data_, a.num_bytes_) == 0;
}

}  // namespace cairn
