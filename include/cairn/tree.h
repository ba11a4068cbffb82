// Tree: the pytree. Nested dicts (string keys, kept sorted as JAX does), lists, tuples and None, with arrays,
// array specs, scalars, strings and placeholders as leaves. A Tree can also hold any JSON value, so every
// handler restores a Tree.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "cairn/array.h"
#include "cairn/sharding.h"

namespace cairn {

// Orbax's key types in `_METADATA` key_metadata: 1 = sequence index, 2 = dict key (or attribute).
enum class KeyType : int { kSequence = 1, kDict = 2 };

struct KeyEntry {
  std::string key;  // sequence indices are kept as their decimal string, as Orbax writes them
  KeyType type = KeyType::kDict;
  friend bool operator==(const KeyEntry&, const KeyEntry&) = default;
};
using KeyPath = std::vector<KeyEntry>;

// "params.w", Orbax's parameter name: keys joined with '.' (used for storage keys).
std::string ParamName(const KeyPath& path);
// "['params']['w']" / "['layers'][0]": how the path reads in an error message.
std::string KeyPathToString(const KeyPath& path);

class Tree {
 public:
  enum class Kind {
    kNone, kDict, kList, kTuple, kArray, kArraySpec, kScalar, kString, kPlaceholder, kShardedArray, kShardedArraySpec
  };
  using ScalarValue = std::variant<int64_t, double, bool>;
  using Item = std::pair<std::string, Tree>;

  Tree();  // None
  Tree(Array array);
  Tree(ArraySpec spec);
  Tree(ShardedArray array);
  Tree(ShardedArraySpec spec);
  Tree(std::string text);
  Tree(const char* text);

  static Tree None() { return Tree(); }
  // Keys are sorted; a duplicate key is an InvalidArgumentError.
  static Tree Dict(std::initializer_list<Item> items);
  static Tree Dict(std::vector<Item> items);
  static Tree List(std::vector<Tree> elements);
  static Tree Tuple(std::vector<Tree> elements);
  static Tree Scalar(int64_t value);
  static Tree Scalar(double value);
  static Tree Scalar(bool value);
  static Tree Scalar(int value) { return Scalar(int64_t{value}); }
  static Tree String(std::string text) { return Tree(std::move(text)); }
  // Orbax's PLACEHOLDER (`...`): a leaf that a partial restore skips.
  static Tree Placeholder();

  // JSON: objects become dicts, arrays lists, numbers and booleans scalars, null None.
  static Tree FromJson(const nlohmann::json& json);
  // The inverse; arrays and specs have no JSON form (InvalidArgumentError naming the path).
  nlohmann::json ToJson() const;

  Kind kind() const;
  bool is_none() const { return kind() == Kind::kNone; }
  bool is_dict() const { return kind() == Kind::kDict; }
  bool is_sequence() const { return kind() == Kind::kList || kind() == Kind::kTuple; }
  bool is_array() const { return kind() == Kind::kArray; }
  bool is_spec() const { return kind() == Kind::kArraySpec; }
  bool is_scalar() const { return kind() == Kind::kScalar; }
  bool is_string() const { return kind() == Kind::kString; }
  bool is_placeholder() const { return kind() == Kind::kPlaceholder; }
  bool is_sharded_array() const { return kind() == Kind::kShardedArray; }
  bool is_sharded_spec() const { return kind() == Kind::kShardedArraySpec; }
  // A leaf is anything but a container or None.
  bool is_leaf() const;
  // An empty dict, list or tuple, or None: what Orbax records as an "empty node" value type.
  bool is_empty_node() const;

  // Container access; a missing key or index, or the wrong kind, is an InvalidArgumentError naming it.
  const Tree& operator[](std::string_view key) const;
  Tree& operator[](std::string_view key);  // inserts None when the key is missing from a dict
  const Tree& operator[](size_t index) const;
  Tree& operator[](size_t index);
  const Tree& operator[](int index) const { return (*this)[static_cast<size_t>(index)]; }
  Tree& operator[](int index) { return (*this)[static_cast<size_t>(index)]; }
  bool contains(std::string_view key) const;
  size_t size() const;  // number of children of a container, 0 for anything else
  const std::vector<Item>& items() const;     // dict
  const std::vector<Tree>& elements() const;  // list or tuple

  const Array& array() const;
  Array& array();  // to change an array in place (its bytes, through Array::mutable_data)
  const ArraySpec& spec() const;
  const ShardedArray& sharded_array() const;
  const ShardedArraySpec& sharded_spec() const;
  // The spec of an array leaf or of a spec leaf.
  ArraySpec array_spec() const;
  const ScalarValue& scalar_value() const;
  // The scalar converted to T (also accepted: a 0-d array).
  template <typename T>
  T scalar() const;
  const std::string& string() const;

  // Leaves in JAX order (dict keys sorted, sequences in order) with their key paths. With
  // `include_empty_nodes`, empty containers and None are listed too, as Orbax's metadata does.
  std::vector<std::pair<KeyPath, Tree>> Flatten(bool include_empty_nodes = false) const;
  // Builds a tree from (path, value) pairs: sequence keys make lists (indices must be 0..n-1), dict keys dicts.
  static Tree FromFlat(const std::vector<std::pair<KeyPath, Tree>>& leaves);
  // A tree of the same structure with every leaf replaced by fn(path, leaf). Empty nodes are kept.
  Tree Map(const std::function<Tree(const KeyPath&, const Tree&)>& fn) const;

  friend bool operator==(const Tree& a, const Tree& b);
  // Readable multi-line description of the structural differences, empty when the structures match. Leaves
  // of any kind match each other, and so do lists and tuples (Orbax's metadata records both as a sequence);
  // only containers, keys and lengths are compared.
  static std::string StructureDiff(const Tree& expected, const Tree& actual);

  // A readable rendering: {'params': {'w': float32(2, 3) [1, 2, 3, ...]}, 'step': 42}.
  std::string ToString() const;

 private:
  struct DictNode {
    std::vector<Item> items;
  };
  struct SequenceNode {
    std::vector<Tree> elements;
    bool tuple = false;
  };
  struct PlaceholderNode {};
  using Node = std::variant<std::monostate, DictNode, SequenceNode, Array, ArraySpec, ScalarValue, std::string,
                            PlaceholderNode, ShardedArray, ShardedArraySpec>;

  explicit Tree(Node node);
  void FlattenInto(KeyPath& path, bool include_empty_nodes, std::vector<std::pair<KeyPath, Tree>>& out) const;

  Node node_;
};

template <typename T>
T Tree::scalar() const {
  if (is_array() && array().rank() == 0) {
    const Array& a = array();
    T out{};
    if constexpr (std::is_same_v<T, bool>) {
      uint8_t b;
      CastElements(a.bytes().data(), a.dtype(), &b, DType::kBool, 1);
      out = b != 0;
    } else {
      CastElements(a.bytes().data(), a.dtype(), &out, DTypeOf<T>::value, 1);
    }
    return out;
  }
  return std::visit([](auto v) { return static_cast<T>(v); }, scalar_value());
}

}  // namespace cairn
