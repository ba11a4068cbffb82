// Array: a dtype, a shape and contiguous C-order host bytes. ArraySpec: the same without the bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "cairn/dtype.h"
#include "cairn/error.h"

namespace cairn {

using Shape = std::vector<int64_t>;

// Number of elements of `shape` (1 for a 0-d shape). Throws InvalidArgumentError on a negative dimension or
// when the count or its byte size would overflow.
int64_t NumElements(const Shape& shape);
size_t NumBytes(DType dtype, const Shape& shape);
std::string ShapeToString(const Shape& shape);  // "(2, 3)"

// Orbax's ShapeDtypeStruct: what an array is, without its bytes. Used as a restore target and as metadata.
struct ArraySpec {
  DType dtype = DType::kFloat32;
  Shape shape;
  friend bool operator==(const ArraySpec&, const ArraySpec&) = default;
};

// Who is responsible for an array's bytes. It decides what an asynchronous save must copy before it returns.
enum class Ownership {
  kOwned,     // cairn allocated the bytes; copies of the Array share them.
  kShared,    // the caller handed over immutable bytes (std::shared_ptr<const void>); never copied.
  kBorrowed,  // the caller's pointer; it must outlive every use, and may change once save() returns.
};

class Array {
 public:
  // An empty float32 0-d array with no bytes; mostly useful as a placeholder before assignment.
  Array();

  // Uninitialised owned storage of the given dtype and shape. Fill through mutable_bytes().
  static Array Allocate(DType dtype, Shape shape);
  static Array Zeros(DType dtype, Shape shape);
  // Copies `values` (C order); their count must equal the shape's element count.
  template <typename T>
  static Array FromVector(Shape shape, const std::vector<T>& values);
  // Copies `num_bytes` raw bytes.
  static Array FromBytes(DType dtype, Shape shape, const void* data, size_t num_bytes);
  // Shares immutable bytes without copying: the array keeps `bytes` alive.
  static Array FromShared(std::shared_ptr<const void> bytes, DType dtype, Shape shape);
  // Refers to the caller's bytes without copying or owning them.
  static Array FromBorrowed(const void* data, DType dtype, Shape shape);
  // The same over bytes the caller lets cairn write: a restore target with RestoreArgs::fill_target is filled in
  // place through it (mutable_bytes() works on it). The caller keeps the bytes alive and does not touch them while
  // a restore writes them.
  static Array FromBorrowedWritable(void* data, DType dtype, Shape shape);
  // A 0-d array holding one value.
  template <typename T>
  static Array FromScalar(T value) {
    return FromVector<T>({}, std::vector<T>{value});
  }

  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int64_t rank() const { return static_cast<int64_t>(shape_.size()); }
  int64_t num_elements() const { return NumElements(shape_); }
  size_t num_bytes() const { return num_bytes_; }
  Ownership ownership() const { return ownership_; }
  ArraySpec spec() const { return ArraySpec{dtype_, shape_}; }

  std::span<const std::byte> bytes() const { return {data_, num_bytes_}; }
  // For arrays made by FromShared, the owner of the caller's immutable bytes (a delta save recognises a buffer it
  // saved before by it); empty for owned and borrowed arrays.
  std::weak_ptr<const void> shared_owner() const {
    return ownership_ == Ownership::kShared ? std::weak_ptr<const void>(holder_) : std::weak_ptr<const void>();
  }
  // Writable bytes; only owned arrays and FromBorrowedWritable ones have them (InvalidArgumentError otherwise).
  // Copies of an Array share its bytes, so a write shows through every copy.
  std::span<std::byte> mutable_bytes();
  bool writable() const { return writable_; }

  // Typed view; throws InvalidArgumentError when T does not match dtype().
  template <typename T>
  std::span<const T> data() const {
    CheckType(DTypeOf<T>::value);
    return {reinterpret_cast<const T*>(data_), static_cast<size_t>(num_elements())};
  }
  template <typename T>
  std::span<T> mutable_data() {
    CheckType(DTypeOf<T>::value);
    auto raw = mutable_bytes();
    return {reinterpret_cast<T*>(raw.data()), static_cast<size_t>(num_elements())};
  }

  // A new owned array with the elements converted to `dtype` (NumPy astype semantics).
  Array Cast(DType dtype) const;
  // A new owned array with the same bytes (for snapshots of borrowed or owned arrays).
  Array Copy() const;

  // Equal dtype, shape and bytes (bitwise, so NaNs with equal bits compare equal).
  friend bool operator==(const Array& a, const Array& b);

 private:
  Array(DType dtype, Shape shape, std::shared_ptr<const void> holder, const std::byte* data, Ownership ownership,
        bool writable);
  void CheckType(DType requested) const;

  DType dtype_;
  Shape shape_;
  size_t num_bytes_;
  std::shared_ptr<const void> holder_;  // keeps owned or shared bytes alive; null for borrowed ones
  const std::byte* data_;
  Ownership ownership_;
  bool writable_;  // owned, or borrowed through FromBorrowedWritable
};

template <typename T>
Array Array::FromVector(Shape shape, const std::vector<T>& values) {
  if (static_cast<int64_t>(values.size()) != NumElements(shape)) {
    throw InvalidArgumentError("Array::FromVector: " + std::to_string(values.size()) +
                               " values do not fill shape " + ShapeToString(shape));
  }
  Array array = Allocate(DTypeOf<T>::value, std::move(shape));
  auto out = array.mutable_data<T>();
  for (size_t i = 0; i < values.size(); ++i) out[i] = values[i];  // vector<bool> has no data()
  return array;
}

}  // namespace cairn
