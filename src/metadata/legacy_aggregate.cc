#include "metadata/legacy_aggregate.h"

#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#ifndef MSGPACK_NO_BOOST
#define MSGPACK_NO_BOOST
#endif
#include <msgpack.hpp>

#include "cairn/array.h"
#include "cairn/dtype.h"
#include "cairn/error.h"

namespace cairn::metadata {
namespace {

// Maps, arrays and tuple extensions nested inside each other, all together. Real trees are a few levels deep;
// the bound keeps the Tree (whose destructor recurses) and the error paths small on hostile input.
constexpr size_t kMaxDepth = 128;
// NumPy's NPY_MAXDIMS is 64 (32 before NumPy 2).
constexpr size_t kMaxRank = 64;
constexpr size_t kMaxDTypeNameLength = 64;

constexpr std::string_view kChunkedMarker = "__msgpack_chunked_array__";

// Flax's ext type codes (`_MsgpackExtType`); 4 is Orbax's own addition for tuples.
enum ExtType : int8_t { kExtNdarray = 1, kExtNativeComplex = 2, kExtNpScalar = 3, kExtTuple = 4 };

std::string Context(const std::string& what, const std::string& where) {
  std::string out = what + ": msgpack aggregate";
  if (!where.empty()) out += " at " + where;
  return out + ": ";
}

// Strict UTF-8 as Python's bytes.decode('utf-8') checks it: no overlong forms, surrogates or code points past
// U+10FFFF.
bool IsValidUtf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t length;
    uint32_t code;
    if (c >= 0xc2 && c <= 0xdf) {
      length = 2;
      code = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      length = 3;
      code = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      length = 4;
      code = c & 0x07;
    } else {
      return false;
    }
    if (text.size() - i < length) return false;
    for (size_t k = 1; k < length; ++k) {
      auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xc0) != 0x80) return false;
      code = (code << 6) | (next & 0x3f);
    }
    if ((length == 3 && code < 0x800) || (length == 4 && code < 0x10000) || code > 0x10ffff ||
        (code >= 0xd800 && code <= 0xdfff)) {
      return false;
    }
    i += length;
  }
  return true;
}

// A NumPy dtype name cairn has no DType for: valid in a file, so UnimplementedError; anything else that is not
// a dtype name at all is corruption.
bool LooksLikeNumpyDTypeName(std::string_view name) {
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '[' || c == ']';
    if (!ok) return false;
  }
  static constexpr std::string_view kFamilies[] = {"bool",   "int",  "uint",       "float",       "complex",
                                                   "str",    "bytes", "void",      "object",      "datetime64",
                                                   "timedelta64", "longdouble", "clongdouble", "StringDType"};
  for (std::string_view family : kFamilies) {
    if (name.starts_with(family)) return true;
  }
  return false;
}

// For error messages: the text with anything unprintable replaced by '?'.
std::string Printable(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c < 0x20 || c > 0x7e) c = '?';
  }
  return out;
}

std::string_view ObjectText(const msgpack::object& object) {
  if (object.type == msgpack::type::STR) return {object.via.str.ptr, object.via.str.size};
  return {object.via.bin.ptr, object.via.bin.size};
}

// Unpacks the small nested msgpack value inside an ext payload (ndarray tuple or complex pair). Strings and
// bytes are referenced in `payload`, not copied; only arrays of up to kMaxRank elements and two levels deep
// are accepted, so nothing is allocated from an unchecked count.
msgpack::object_handle UnpackPayload(std::string_view payload, const std::string& context) {
  msgpack::unpack_limit limit(/*array=*/kMaxRank, /*map=*/0, /*str=*/payload.size(), /*bin=*/payload.size(),
                              /*ext=*/0, /*depth=*/2);
  auto reference = [](msgpack::type::object_type, std::size_t, void*) { return true; };
  std::size_t offset = 0;
  bool referenced = false;
  msgpack::object_handle handle;
  try {
    handle = msgpack::unpack(payload.data(), payload.size(), offset, referenced, reference, nullptr, limit);
  } catch (const msgpack::insufficient_bytes&) {
    throw CorruptionError(context + "extension payload is truncated");
  } catch (const msgpack::size_overflow&) {
    throw CorruptionError(context + "extension payload nests too deep or holds too many elements");
  } catch (const msgpack::unpack_error& e) {
    throw CorruptionError(context + "extension payload is not valid msgpack (" + e.what() + ")");
  }
  if (offset != payload.size()) {
    throw CorruptionError(context + "extension payload has " + std::to_string(payload.size() - offset) +
                          " trailing bytes");
  }
  return handle;
}

// Flax's `_ndarray_from_bytes`: (shape tuple, dtype name, C-order bytes). NumPy's dtype.name carries no byte
// order and tobytes('C') is always row-major, so there is neither a big-endian nor a Fortran-order form to
// reject: the bytes are little-endian C order as every Orbax and Flax host writes them.
Array DecodeNdarray(std::string_view payload, const std::string& context) {
  msgpack::object_handle handle = UnpackPayload(payload, context);
  const msgpack::object& root = handle.get();
  if (root.type != msgpack::type::ARRAY || root.via.array.size != 3) {
    throw CorruptionError(context + "ndarray payload is not a (shape, dtype, bytes) triple");
  }
  const msgpack::object& shape_object = root.via.array.ptr[0];
  const msgpack::object& dtype_object = root.via.array.ptr[1];
  const msgpack::object& data_object = root.via.array.ptr[2];

  if (shape_object.type != msgpack::type::ARRAY) throw CorruptionError(context + "ndarray shape is not a tuple");
  Shape shape;
  shape.reserve(shape_object.via.array.size);  // at most kMaxRank, by the unpack limit
  for (uint32_t i = 0; i < shape_object.via.array.size; ++i) {
    const msgpack::object& dim = shape_object.via.array.ptr[i];
    if (dim.type != msgpack::type::POSITIVE_INTEGER ||
        dim.via.u64 > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      throw CorruptionError(context + "ndarray shape holds something other than a non-negative integer");
    }
    shape.push_back(static_cast<int64_t>(dim.via.u64));
  }

  // Flax unpacks with raw=True, so both the name and the bytes may be msgpack str or bin.
  auto is_text = [](const msgpack::object& o) {
    return o.type == msgpack::type::STR || o.type == msgpack::type::BIN;
  };
  if (!is_text(dtype_object)) throw CorruptionError(context + "ndarray dtype name is not a string");
  if (!is_text(data_object)) throw CorruptionError(context + "ndarray data is not a byte string");
  std::string_view name = ObjectText(dtype_object);
  if (name.size() > kMaxDTypeNameLength) throw CorruptionError(context + "ndarray dtype name is too long");
  std::string name_text = Printable(name);
  DType dtype;
  try {
    dtype = DTypeFromName(name);
  } catch (const InvalidArgumentError&) {
    if (LooksLikeNumpyDTypeName(name)) {
      throw UnimplementedError(context + "NumPy dtype \"" + name_text + "\" is not supported");
    }
    throw CorruptionError(context + "\"" + name_text + "\" is not a NumPy dtype name");
  }

  std::string_view data = ObjectText(data_object);
  size_t expected;
  try {
    expected = NumBytes(dtype, shape);
  } catch (const InvalidArgumentError&) {
    throw CorruptionError(context + "ndarray shape " + ShapeToString(shape) + " of " + name_text +
                          " is absurdly large");
  }
  if (expected != data.size()) {
    throw CorruptionError(context + "ndarray " + name_text + ShapeToString(shape) + " needs " +
                          std::to_string(expected) + " bytes but holds " + std::to_string(data.size()));
  }
  return Array::FromBytes(dtype, std::move(shape), data.data(), data.size());
}

// Flax packs a Python complex as msgpack (real, imag); it comes back as a 0-d complex128 array.
Array DecodeNativeComplex(std::string_view payload, const std::string& context) {
  msgpack::object_handle handle = UnpackPayload(payload, context);
  const msgpack::object& root = handle.get();
  if (root.type != msgpack::type::ARRAY || root.via.array.size != 2) {
    throw CorruptionError(context + "complex payload is not a (real, imag) pair");
  }
  double parts[2];
  for (int i = 0; i < 2; ++i) {
    // Python writes float64; integers are accepted too, since some msgpack writers (msgpack-cxx among them)
    // store an integral float as an integer.
    const msgpack::object& part = root.via.array.ptr[i];
    if (part.type == msgpack::type::FLOAT64 || part.type == msgpack::type::FLOAT32) {
      parts[i] = part.via.f64;
    } else if (part.type == msgpack::type::POSITIVE_INTEGER) {
      parts[i] = static_cast<double>(part.via.u64);
    } else if (part.type == msgpack::type::NEGATIVE_INTEGER) {
      parts[i] = static_cast<double>(part.via.i64);
    } else {
      throw CorruptionError(context + "complex payload part is not a number");
    }
  }
  return Array::FromBytes(DType::kComplex128, {}, parts, sizeof(parts));
}

// Builds a Tree while msgpack-cxx's parser walks the bytes (its SAX-style visitor interface). Nothing is sized
// from a declared count: containers grow as their elements actually arrive.
class TreeBuilder {
 public:
  TreeBuilder(const std::string& what, std::string where_prefix, size_t depth)
      : what_(what), where_prefix_(std::move(where_prefix)), depth_(depth) {}

  // Parses all of `bytes` as one msgpack value.
  Tree Run(std::string_view bytes) {
    std::size_t offset = 0;
    bool ok;
    try {
      ok = msgpack::parse(bytes.data(), bytes.size(), offset, *this);
    } catch (const msgpack::unpack_error& e) {
      throw CorruptionError(Context(what_, where_prefix_) + "not valid msgpack (" + e.what() + ")");
    }
    if (!ok) {
      if (truncated_) {
        throw CorruptionError(Context(what_, where_prefix_) + "truncated after " + std::to_string(bytes.size()) +
                              " bytes");
      }
      throw CorruptionError(Context(what_, where_prefix_) + "not valid msgpack at byte offset " +
                            std::to_string(error_offset_));
    }
    if (!root_ || !frames_.empty()) throw CorruptionError(Context(what_, where_prefix_) + "incomplete value");
    if (offset != bytes.size()) {
      throw CorruptionError(Context(what_, where_prefix_) + std::to_string(bytes.size() - offset) +
                            " trailing bytes after the value at offset " + std::to_string(offset));
    }
    return std::move(*root_);
  }

  // --- msgpack-cxx visitor interface ---
  bool visit_nil() {
    RejectKey("nil");
    Emit(Tree::None());
    return true;
  }
  bool visit_boolean(bool value) {
    RejectKey("a bool");
    Emit(Tree::Scalar(value));
    return true;
  }
  bool visit_positive_integer(uint64_t value) {
    if (InKey()) return SetKey(std::to_string(value));
    if (value > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      throw UnimplementedError(Context(what_, Where()) + "integer " + std::to_string(value) +
                               " does not fit in int64");
    }
    Emit(Tree::Scalar(static_cast<int64_t>(value)));
    return true;
  }
  bool visit_negative_integer(int64_t value) {
    if (InKey()) return SetKey(std::to_string(value));
    Emit(Tree::Scalar(value));
    return true;
  }
  bool visit_float32(float value) {
    RejectKey("a float");
    Emit(Tree::Scalar(static_cast<double>(value)));
    return true;
  }
  bool visit_float64(double value) {
    RejectKey("a float");
    Emit(Tree::Scalar(value));
    return true;
  }
  bool visit_str(const char* data, uint32_t size) {
    std::string_view text(data, size);
    if (!IsValidUtf8(text)) throw CorruptionError(Context(what_, Where()) + "string is not valid UTF-8");
    if (InKey()) return SetKey(std::string(text));
    Emit(Tree(std::string(text)));
    return true;
  }
  bool visit_bin(const char*, uint32_t) {
    RejectKey("a byte string");
    throw UnimplementedError(Context(what_, Where()) + "a bytes leaf has no cairn value");
  }
  bool visit_ext(const char* data, uint32_t size) {
    RejectKey("an extension value");
    // msgpack-cxx counts the type byte in `size`; an ext32 length of 2**32-1 wraps that count to 0.
    if (size == 0) throw CorruptionError(Context(what_, Where()) + "extension value without a type");
    auto type = static_cast<int8_t>(data[0]);
    std::string_view payload(data + 1, size - 1);
    std::string context = Context(what_, Where());
    switch (type) {
      case kExtNdarray:
        Emit(Tree(DecodeNdarray(payload, context)));
        break;
      case kExtNpScalar: {
        Array scalar = DecodeNdarray(payload, context);
        if (scalar.rank() != 0) {
          throw CorruptionError(context + "NumPy scalar has shape " + ShapeToString(scalar.shape()));
        }
        Emit(Tree(std::move(scalar)));
        break;
      }
      case kExtNativeComplex:
        Emit(Tree(DecodeNativeComplex(payload, context)));
        break;
      case kExtTuple: {
        TreeBuilder nested(what_, Where(), depth_ + frames_.size() + 1);
        CheckDepth(frames_.size() + 1);
        Tree list = nested.Run(payload);
        if (list.kind() != Tree::Kind::kList) {
          throw CorruptionError(context + "tuple extension does not hold a msgpack array");
        }
        Emit(Tree::Tuple(list.elements()));
        break;
      }
      default:
        throw CorruptionError(context + "unknown msgpack extension type " + std::to_string(type));
    }
    return true;
  }
  bool start_array(uint32_t) {
    RejectKey("an array");
    CheckDepth(frames_.size() + 1);
    frames_.emplace_back();
    return true;
  }
  bool start_array_item() { return true; }
  bool end_array_item() { return true; }
  bool end_array() {
    Frame frame = std::move(frames_.back());
    frames_.pop_back();
    Emit(Tree::List(std::move(frame.elements)));
    return true;
  }
  bool start_map(uint32_t) {
    RejectKey("a map");
    CheckDepth(frames_.size() + 1);
    frames_.emplace_back();
    frames_.back().is_map = true;
    return true;
  }
  bool start_map_key() {
    frames_.back().in_key = true;
    frames_.back().key.reset();
    return true;
  }
  bool end_map_key() {
    frames_.back().in_key = false;
    return true;
  }
  bool start_map_value() { return true; }
  bool end_map_value() { return true; }
  bool end_map() {
    Frame frame = std::move(frames_.back());
    std::string where = Where();
    frames_.pop_back();
    Emit(FinishMap(std::move(frame.items), where));
    return true;
  }
  void parse_error(size_t, size_t error_offset) { error_offset_ = error_offset; }
  void insufficient_bytes(size_t, size_t) { truncated_ = true; }
  bool referenced() const { return false; }
  void set_referenced(bool) {}

 private:
  struct Frame {
    bool is_map = false;
    bool in_key = false;
    std::optional<std::string> key;  // the key whose value comes next
    std::vector<Tree> elements;      // array
    std::vector<Tree::Item> items;   // map
  };

  bool InKey() const { return !frames_.empty() && frames_.back().in_key; }
  bool SetKey(std::string key) {
    frames_.back().key = std::move(key);
    return true;
  }
  void RejectKey(const char* kind) {
    if (InKey()) throw CorruptionError(Context(what_, Where()) + "map key is " + kind + ", not a string");
  }
  void CheckDepth(size_t frames) {
    if (depth_ + frames > kMaxDepth) {
      throw CorruptionError(Context(what_, Where()) + "nested deeper than " + std::to_string(kMaxDepth) +
                            " levels");
    }
  }

  void Emit(Tree value) {
    if (frames_.empty()) {
      root_ = std::move(value);
      return;
    }
    Frame& top = frames_.back();
    if (!top.is_map) {
      top.elements.push_back(std::move(value));
      return;
    }
    // msgpack-cxx calls end_map_key only after the key's visit, so a missing key here cannot happen; guard anyway.
    if (!top.key) throw CorruptionError(Context(what_, Where()) + "map value without a key");
    top.items.emplace_back(std::move(*top.key), std::move(value));
    top.key.reset();
  }

  // "['c'][0]": where the parser is now, for error messages.
  std::string Where() const {
    std::string out = where_prefix_;
    for (const Frame& frame : frames_) {
      if (frame.is_map) {
        if (frame.key && !frame.in_key) out += "['" + *frame.key + "']";
      } else {
        out += "[" + std::to_string(frame.elements.size()) + "]";
      }
    }
    return out;
  }

  Tree FinishMap(std::vector<Tree::Item> items, const std::string& where) {
    bool chunked = false;
    for (const auto& item : items) chunked = chunked || item.first == kChunkedMarker;
    if (chunked) return Tree(Unchunk(items, where));
    try {
      return Tree::Dict(std::move(items));
    } catch (const InvalidArgumentError&) {
      throw CorruptionError(Context(what_, where) + "map has a duplicate key");
    }
  }

  // Flax's `_unchunk`: {'__msgpack_chunked_array__': True, 'shape': {'0': d0, ...}, 'chunks': {'0': a0, ...}}
  // where the chunks are 1-d pieces of the flattened array, in order.
  Array Unchunk(const std::vector<Tree::Item>& items, const std::string& where) {
    const std::string context = Context(what_, where) + "chunked array: ";
    if (items.size() != 3) {
      throw CorruptionError(context + "has " + std::to_string(items.size()) + " keys, not the marker, 'shape' and "
                            "'chunks'");
    }
    const Tree* shape_tree = nullptr;
    const Tree* chunks_tree = nullptr;
    for (const auto& [key, value] : items) {
      if (key == "shape" && !shape_tree) {
        shape_tree = &value;
      } else if (key == "chunks" && !chunks_tree) {
        chunks_tree = &value;
      } else if (key != kChunkedMarker) {
        throw CorruptionError(context + "unexpected or duplicate key '" + key + "'");
      }
    }
    if (!shape_tree || !shape_tree->is_dict()) throw CorruptionError(context + "no 'shape' map");
    if (!chunks_tree || !chunks_tree->is_dict()) throw CorruptionError(context + "no 'chunks' map");
    if (shape_tree->size() > kMaxRank) throw CorruptionError(context + "rank above " + std::to_string(kMaxRank));

    Shape shape;
    for (size_t i = 0; i < shape_tree->size(); ++i) {
      std::string key = std::to_string(i);
      if (!shape_tree->contains(key)) throw CorruptionError(context + "shape has no entry '" + key + "'");
      const Tree& dim = (*shape_tree)[key];
      if (!dim.is_scalar() || !std::holds_alternative<int64_t>(dim.scalar_value()) ||
          std::get<int64_t>(dim.scalar_value()) < 0) {
        throw CorruptionError(context + "shape entry '" + key + "' is not a non-negative integer");
      }
      shape.push_back(std::get<int64_t>(dim.scalar_value()));
    }

    if (chunks_tree->size() == 0) throw CorruptionError(context + "no chunks");
    std::vector<const Array*> chunks;
    uint64_t total_elements = 0;
    for (size_t i = 0; i < chunks_tree->size(); ++i) {
      std::string key = std::to_string(i);
      if (!chunks_tree->contains(key)) throw CorruptionError(context + "chunks has no entry '" + key + "'");
      const Tree& chunk = (*chunks_tree)[key];
      if (!chunk.is_array() || chunk.array().rank() != 1) {
        throw CorruptionError(context + "chunk '" + key + "' is not a 1-d array");
      }
      if (!chunks.empty() && chunk.array().dtype() != chunks.front()->dtype()) {
        throw CorruptionError(context + "chunk '" + key + "' has dtype " +
                              std::string(DTypeName(chunk.array().dtype())) + ", not " +
                              std::string(DTypeName(chunks.front()->dtype())));
      }
      chunks.push_back(&chunk.array());
      // Each chunk's bytes were in the file, so this sum cannot overflow.
      total_elements += static_cast<uint64_t>(chunk.array().num_elements());
    }

    DType dtype = chunks.front()->dtype();
    int64_t expected;
    try {
      expected = NumElements(shape);
      (void)NumBytes(dtype, shape);
    } catch (const InvalidArgumentError&) {
      throw CorruptionError(context + "shape " + ShapeToString(shape) + " is absurdly large");
    }
    if (static_cast<uint64_t>(expected) != total_elements) {
      throw CorruptionError(context + "shape " + ShapeToString(shape) + " needs " + std::to_string(expected) +
                            " elements but the chunks hold " + std::to_string(total_elements));
    }
    // The size is now the chunks' own, all of which were read from the file.
    Array out = Array::Allocate(dtype, std::move(shape));
    std::byte* cursor = out.mutable_bytes().data();
    for (const Array* chunk : chunks) {
      if (chunk->num_bytes()) std::memcpy(cursor, chunk->bytes().data(), chunk->num_bytes());
      cursor += chunk->num_bytes();
    }
    return out;
  }

  const std::string& what_;
  std::string where_prefix_;
  size_t depth_;  // levels already open outside this builder (tuple extensions nest builders)
  std::vector<Frame> frames_;
  std::optional<Tree> root_;
  bool truncated_ = false;
  size_t error_offset_ = 0;
};

}  // namespace

Tree DecodeMsgpackAggregate(std::string_view bytes, const std::string& what) {
  TreeBuilder builder(what, "", 0);
  return builder.Run(bytes);
}

bool IsAggregatePlaceholder(const Tree& leaf) {
  return leaf.is_string() && leaf.string().starts_with(kAggregatePlaceholderPrefix);
}

}  // namespace cairn::metadata
