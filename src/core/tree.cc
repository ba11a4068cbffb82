#include "cairn/tree.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <sstream>

namespace cairn {

std::string ParamName(const KeyPath& path) {
  std::string name;
  for (size_t i = 0; i < path.size(); ++i) {
    if (i) name += '.';
    name += path[i].key;
  }
  return name;
}

std::string KeyPathToString(const KeyPath& path) {
  if (path.empty()) return "<root>";
  std::string out;
  for (const auto& entry : path) {
    out += entry.type == KeyType::kSequence ? "[" + entry.key + "]" : "['" + entry.key + "']";
  }
  return out;
}

Tree::Tree() : node_(std::monostate{}) {}
Tree::Tree(Node node) : node_(std::move(node)) {}
Tree::Tree(Array array) : node_(std::move(array)) {}
Tree::Tree(ArraySpec spec) : node_(std::move(spec)) {}
Tree::Tree(ShardedArray array) : node_(std::move(array)) {}
Tree::Tree(ShardedArraySpec spec) : node_(std::move(spec)) {}
Tree::Tree(std::string text) : node_(std::move(text)) {}
Tree::Tree(const char* text) : node_(std::string(text)) {}

Tree Tree::Dict(std::initializer_list<Item> items) { return Dict(std::vector<Item>(items)); }

Tree Tree::Dict(std::vector<Item> items) {
  std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) { return a.first < b.first; });
  for (size_t i = 1; i < items.size(); ++i) {
    if (items[i].first == items[i - 1].first) {
      throw InvalidArgumentError("Tree::Dict: duplicate key '" + items[i].first + "'");
    }
  }
  return Tree(Node(DictNode{std::move(items)}));
}

Tree Tree::List(std::vector<Tree> elements) { return Tree(Node(SequenceNode{std::move(elements), false})); }
Tree Tree::Tuple(std::vector<Tree> elements) { return Tree(Node(SequenceNode{std::move(elements), true})); }
Tree Tree::Scalar(int64_t value) { return Tree(Node(ScalarValue(value))); }
Tree Tree::Scalar(double value) { return Tree(Node(ScalarValue(value))); }
Tree Tree::Scalar(bool value) { return Tree(Node(ScalarValue(value))); }
Tree Tree::Placeholder() { return Tree(Node(PlaceholderNode{})); }

Tree Tree::FromJson(const nlohmann::json& json) {
  switch (json.type()) {
    case nlohmann::json::value_t::null: return None();
    case nlohmann::json::value_t::object: {
      std::vector<Item> items;
      for (const auto& [key, value] : json.items()) items.emplace_back(key, FromJson(value));
      return Dict(std::move(items));
    }
    case nlohmann::json::value_t::array: {
      std::vector<Tree> elements;
      for (const auto& value : json) elements.push_back(FromJson(value));
      return List(std::move(elements));
    }
    case nlohmann::json::value_t::string: return Tree(json.get<std::string>());
    case nlohmann::json::value_t::boolean: return Scalar(json.get<bool>());
    case nlohmann::json::value_t::number_integer: return Scalar(json.get<int64_t>());
    case nlohmann::json::value_t::number_unsigned: {
      auto value = json.get<uint64_t>();
      if (value > static_cast<uint64_t>(INT64_MAX)) return Scalar(static_cast<double>(value));
      return Scalar(static_cast<int64_t>(value));
    }
    case nlohmann::json::value_t::number_float: return Scalar(json.get<double>());
    default: throw InvalidArgumentError("Tree::FromJson: unsupported JSON value (binary)");
  }
}

nlohmann::json Tree::ToJson() const {
  struct Visitor {
    nlohmann::json operator()(std::monostate) const { return nullptr; }
    nlohmann::json operator()(const DictNode& d) const {
      nlohmann::json out = nlohmann::json::object();
      for (const auto& [key, value] : d.items) out[key] = value.ToJson();
      return out;
    }
    nlohmann::json operator()(const SequenceNode& s) const {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& value : s.elements) out.push_back(value.ToJson());
      return out;
    }
    nlohmann::json operator()(const Array&) const {
      throw InvalidArgumentError("an array has no JSON form; save it with a PyTree or Standard handler");
    }
    nlohmann::json operator()(const ArraySpec&) const {
      throw InvalidArgumentError("an ArraySpec has no JSON form");
    }
    nlohmann::json operator()(const ScalarValue& v) const {
      return std::visit([](auto x) { return nlohmann::json(x); }, v);
    }
    nlohmann::json operator()(const std::string& s) const { return s; }
    nlohmann::json operator()(const PlaceholderNode&) const {
      throw InvalidArgumentError("a placeholder has no JSON form");
    }
    nlohmann::json operator()(const ShardedArray&) const {
      throw InvalidArgumentError("a sharded array has no JSON form");
    }
    nlohmann::json operator()(const ShardedArraySpec&) const {
      throw InvalidArgumentError("a ShardedArraySpec has no JSON form");
    }
  };
  return std::visit(Visitor{}, node_);
}

Tree::Kind Tree::kind() const {
  switch (node_.index()) {
    case 0: return Kind::kNone;
    case 1: return Kind::kDict;
    case 2: return std::get<SequenceNode>(node_).tuple ? Kind::kTuple : Kind::kList;
    case 3: return Kind::kArray;
    case 4: return Kind::kArraySpec;
    case 5: return Kind::kScalar;
    case 6: return Kind::kString;
    case 7: return Kind::kPlaceholder;
    case 8: return Kind::kShardedArray;
    default: return Kind::kShardedArraySpec;
  }
}

bool Tree::is_leaf() const { return !is_none() && !is_dict() && !is_sequence(); }
bool Tree::is_empty_node() const { return is_none() || ((is_dict() || is_sequence()) && size() == 0); }

namespace {
const char* KindName(Tree::Kind kind) {
  switch (kind) {
    case Tree::Kind::kNone: return "None";
    case Tree::Kind::kDict: return "dict";
    case Tree::Kind::kList: return "list";
    case Tree::Kind::kTuple: return "tuple";
    case Tree::Kind::kArray: return "array";
    case Tree::Kind::kArraySpec: return "ArraySpec";
    case Tree::Kind::kScalar: return "scalar";
    case Tree::Kind::kString: return "string";
    case Tree::Kind::kPlaceholder: return "placeholder";
    case Tree::Kind::kShardedArray: return "sharded array";
    case Tree::Kind::kShardedArraySpec: return "ShardedArraySpec";
  }
  return "?";
}

// The alternative T of a tree's node (const or not), or an InvalidArgumentError naming the accessor and what the
// tree holds instead.
template <typename T, typename Node>
auto& Alternative(Node& node, Tree::Kind kind, const char* accessor) {
  auto* value = std::get_if<T>(&node);
  if (!value) throw InvalidArgumentError(std::string("Tree: ") + accessor + "() of a " + KindName(kind));
  return *value;
}

}  // namespace

const Tree& Tree::operator[](std::string_view key) const {
  const auto* dict = std::get_if<DictNode>(&node_);
  if (!dict) throw InvalidArgumentError("Tree: indexing a " + std::string(KindName(kind())) + " with key '" +
                                        std::string(key) + "'");
  auto it = std::lower_bound(dict->items.begin(), dict->items.end(), key,
                             [](const Item& item, std::string_view k) { return item.first < k; });
  if (it == dict->items.end() || it->first != key) {
    throw InvalidArgumentError("Tree: no key '" + std::string(key) + "' in dict");
  }
  return it->second;
}

Tree& Tree::operator[](std::string_view key) {
  if (is_none()) node_ = DictNode{};
  auto* dict = std::get_if<DictNode>(&node_);
  if (!dict) throw InvalidArgumentError("Tree: indexing a " + std::string(KindName(kind())) + " with key '" +
                                        std::string(key) + "'");
  auto it = std::lower_bound(dict->items.begin(), dict->items.end(), key,
                             [](const Item& item, std::string_view k) { return item.first < k; });
  if (it == dict->items.end() || it->first != key) it = dict->items.insert(it, Item(std::string(key), Tree()));
  return it->second;
}

const Tree& Tree::operator[](size_t index) const {
  const auto* seq = std::get_if<SequenceNode>(&node_);
  if (!seq) throw InvalidArgumentError("Tree: indexing a " + std::string(KindName(kind())) + " with [" +
                                       std::to_string(index) + "]");
  if (index >= seq->elements.size()) {
    throw InvalidArgumentError("Tree: index " + std::to_string(index) + " out of range for a sequence of " +
                               std::to_string(seq->elements.size()));
  }
  return seq->elements[index];
}

Tree& Tree::operator[](size_t index) {
  const Tree& self = *this;
  return const_cast<Tree&>(self[index]);
}

bool Tree::contains(std::string_view key) const {
  const auto* dict = std::get_if<DictNode>(&node_);
  if (!dict) return false;
  return std::any_of(dict->items.begin(), dict->items.end(), [&](const Item& item) { return item.first == key; });
}

size_t Tree::size() const {
  if (const auto* dict = std::get_if<DictNode>(&node_)) return dict->items.size();
  if (const auto* seq = std::get_if<SequenceNode>(&node_)) return seq->elements.size();
  return 0;
}

const std::vector<Tree::Item>& Tree::items() const { return Alternative<DictNode>(node_, kind(), "items").items; }

const std::vector<Tree>& Tree::elements() const {
  return Alternative<SequenceNode>(node_, kind(), "elements").elements;
}

const Array& Tree::array() const { return Alternative<Array>(node_, kind(), "array"); }

Array& Tree::array() { return Alternative<Array>(node_, kind(), "array"); }

const ShardedArray& Tree::sharded_array() const { return Alternative<ShardedArray>(node_, kind(), "sharded_array"); }

const ShardedArraySpec& Tree::sharded_spec() const {
  return Alternative<ShardedArraySpec>(node_, kind(), "sharded_spec");
}

const ArraySpec& Tree::spec() const { return Alternative<ArraySpec>(node_, kind(), "spec"); }

ArraySpec Tree::array_spec() const { return is_array() ? array().spec() : spec(); }

const Tree::ScalarValue& Tree::scalar_value() const { return Alternative<ScalarValue>(node_, kind(), "scalar"); }

const std::string& Tree::string() const { return Alternative<std::string>(node_, kind(), "string"); }

void Tree::FlattenInto(KeyPath& path, bool include_empty_nodes,
                       std::vector<std::pair<KeyPath, Tree>>& out) const {
  if (is_empty_node()) {
    if (include_empty_nodes) out.emplace_back(path, *this);
    return;
  }
  if (const auto* dict = std::get_if<DictNode>(&node_)) {
    for (const auto& [key, child] : dict->items) {
      path.push_back({key, KeyType::kDict});
      child.FlattenInto(path, include_empty_nodes, out);
      path.pop_back();
    }
  } else if (const auto* seq = std::get_if<SequenceNode>(&node_)) {
    for (size_t i = 0; i < seq->elements.size(); ++i) {
      path.push_back({std::to_string(i), KeyType::kSequence});
      seq->elements[i].FlattenInto(path, include_empty_nodes, out);
      path.pop_back();
    }
  } else {
    out.emplace_back(path, *this);
  }
}

std::vector<std::pair<KeyPath, Tree>> Tree::Flatten(bool include_empty_nodes) const {
  std::vector<std::pair<KeyPath, Tree>> out;
  KeyPath path;
  FlattenInto(path, include_empty_nodes, out);
  return out;
}

namespace {

// An intermediate, mutable form used to rebuild a tree from paths.
struct Builder {
  bool set = false;
  Tree value;
  std::map<std::string, Builder> dict_children;
  std::map<int64_t, Builder> sequence_children;
  bool is_sequence = false;
  bool is_dict = false;

  Tree Build(const std::string& where) const {
    if (set) return value;
    if (is_dict) {
      std::vector<Tree::Item> items;
      for (const auto& [key, child] : dict_children) items.emplace_back(key, child.Build(where + "['" + key + "']"));
      return Tree::Dict(std::move(items));
    }
    std::vector<Tree> elements;
    int64_t expected = 0;
    for (const auto& [index, child] : sequence_children) {
      if (index != expected) {
        throw InvalidArgumentError("sequence at " + where + " is missing index " + std::to_string(expected));
      }
      elements.push_back(child.Build(where + "[" + std::to_string(index) + "]"));
      ++expected;
    }
    return Tree::List(std::move(elements));
  }
};

}  // namespace

Tree Tree::FromFlat(const std::vector<std::pair<KeyPath, Tree>>& leaves) {
  Builder root;
  for (const auto& [path, value] : leaves) {
    Builder* node = &root;
    for (const auto& entry : path) {
      if (node->set) throw InvalidArgumentError("key path " + KeyPathToString(path) + " passes through a leaf");
      if (entry.type == KeyType::kSequence) {
        if (node->is_dict) throw InvalidArgumentError("key path " + KeyPathToString(path) + " mixes dict and list");
        node->is_sequence = true;
        int64_t index;
        try {
          size_t used = 0;
          index = std::stoll(entry.key, &used);
          if (used != entry.key.size() || index < 0) throw std::invalid_argument("index");
        } catch (const std::exception&) {
          throw InvalidArgumentError("sequence key '" + entry.key + "' in " + KeyPathToString(path) +
                                     " is not an index");
        }
        node = &node->sequence_children[index];
      } else {
        if (node->is_sequence) throw InvalidArgumentError("key path " + KeyPathToString(path) + " mixes dict and list");
        node->is_dict = true;
        node = &node->dict_children[entry.key];
      }
    }
    if (node->set || node->is_dict || node->is_sequence) {
      throw InvalidArgumentError("key path " + KeyPathToString(path) + " given twice");
    }
    node->set = true;
    node->value = value;
  }
  if (!root.set && !root.is_dict && !root.is_sequence) return Dict({});
  return root.Build("");
}

Tree Tree::Map(const std::function<Tree(const KeyPath&, const Tree&)>& fn) const {
  std::function<Tree(const Tree&, KeyPath&)> recurse = [&](const Tree& t, KeyPath& path) -> Tree {
    if (t.is_empty_node()) return t;
    if (const auto* dict = std::get_if<DictNode>(&t.node_)) {
      std::vector<Item> items;
      for (const auto& [key, child] : dict->items) {
        path.push_back({key, KeyType::kDict});
        items.emplace_back(key, recurse(child, path));
        path.pop_back();
      }
      return Tree(Node(DictNode{std::move(items)}));
    }
    if (const auto* seq = std::get_if<SequenceNode>(&t.node_)) {
      std::vector<Tree> elements;
      for (size_t i = 0; i < seq->elements.size(); ++i) {
        path.push_back({std::to_string(i), KeyType::kSequence});
        elements.push_back(recurse(seq->elements[i], path));
        path.pop_back();
      }
      return Tree(Node(SequenceNode{std::move(elements), seq->tuple}));
    }
    return fn(path, t);
  };
  KeyPath path;
  return recurse(*this, path);
}

bool operator==(const Tree& a, const Tree& b) {
  if (a.node_.index() != b.node_.index()) return false;
  if (const auto* da = std::get_if<Tree::DictNode>(&a.node_)) {
    return da->items == std::get<Tree::DictNode>(b.node_).items;
  }
  if (const auto* sa = std::get_if<Tree::SequenceNode>(&a.node_)) {
    const auto& sb = std::get<Tree::SequenceNode>(b.node_);
    return sa->tuple == sb.tuple && sa->elements == sb.elements;
  }
  if (const auto* x = std::get_if<Array>(&a.node_)) return *x == std::get<Array>(b.node_);
  if (const auto* x = std::get_if<ArraySpec>(&a.node_)) return *x == std::get<ArraySpec>(b.node_);
  if (const auto* x = std::get_if<Tree::ScalarValue>(&a.node_)) return *x == std::get<Tree::ScalarValue>(b.node_);
  if (const auto* x = std::get_if<std::string>(&a.node_)) return *x == std::get<std::string>(b.node_);
  if (const auto* x = std::get_if<ShardedArray>(&a.node_)) return *x == std::get<ShardedArray>(b.node_);
  if (const auto* x = std::get_if<ShardedArraySpec>(&a.node_)) return *x == std::get<ShardedArraySpec>(b.node_);
  return true;  // None == None, placeholder == placeholder
}

namespace {

void DiffInto(const Tree& expected, const Tree& actual, KeyPath& path, std::vector<std::string>& out) {
  const std::string where = KeyPathToString(path);
  auto container = [](const Tree& t) { return t.is_dict() || t.is_sequence(); };
  if (expected.is_leaf() && actual.is_leaf()) return;
  // A list and a tuple are both a sequence: Orbax's tree metadata records only that, so a checkpoint saved from
  // a tuple lists it back as a list, and a restore target may use either.
  const bool same_kind = expected.kind() == actual.kind() || (expected.is_sequence() && actual.is_sequence());
  if (!same_kind && (container(expected) || container(actual) || expected.is_none() || actual.is_none())) {
    out.push_back(where + ": expected " + KindName(expected.kind()) + ", found " + KindName(actual.kind()));
    return;
  }
  if (expected.is_dict()) {
    for (const auto& [key, child] : expected.items()) {
      if (!actual.contains(key)) {
        out.push_back(where == "<root>" ? "['" + key + "']: missing" : where + "['" + key + "']: missing");
        continue;
      }
      path.push_back({key, KeyType::kDict});
      DiffInto(child, actual[key], path, out);
      path.pop_back();
    }
    for (const auto& [key, child] : actual.items()) {
      if (!expected.contains(key)) {
        out.push_back(where == "<root>" ? "['" + key + "']: unexpected" : where + "['" + key + "']: unexpected");
      }
    }
  } else if (expected.is_sequence()) {
    if (expected.size() != actual.size()) {
      out.push_back(where + ": expected " + std::to_string(expected.size()) + " elements, found " +
                    std::to_string(actual.size()));
    }
    for (size_t i = 0; i < std::min(expected.size(), actual.size()); ++i) {
      path.push_back({std::to_string(i), KeyType::kSequence});
      DiffInto(expected[i], actual[i], path, out);
      path.pop_back();
    }
  }
}

void Render(const Tree& t, std::ostringstream& os);

void RenderArrayValues(const Array& a, std::ostringstream& os) {
  const size_t n = static_cast<size_t>(a.num_elements());
  const size_t shown = std::min<size_t>(n, 8);
  std::vector<double> values(shown);
  if (!IsComplex(a.dtype())) CastElements(a.bytes().data(), a.dtype(), values.data(), DType::kFloat64, shown);
  os << " [";
  for (size_t i = 0; i < shown; ++i) {
    if (i) os << ", ";
    if (IsComplex(a.dtype())) {
      os << "?";
    } else {
      os << values[i];
    }
  }
  if (shown < n) os << ", ...";
  os << "]";
}

void Render(const Tree& t, std::ostringstream& os) {
  switch (t.kind()) {
    case Tree::Kind::kNone: os << "None"; break;
    case Tree::Kind::kDict: {
      os << "{";
      bool first = true;
      for (const auto& [key, child] : t.items()) {
        if (!first) os << ", ";
        first = false;
        os << "'" << key << "': ";
        Render(child, os);
      }
      os << "}";
      break;
    }
    case Tree::Kind::kList:
    case Tree::Kind::kTuple: {
      os << (t.kind() == Tree::Kind::kList ? "[" : "(");
      for (size_t i = 0; i < t.size(); ++i) {
        if (i) os << ", ";
        Render(t[i], os);
      }
      os << (t.kind() == Tree::Kind::kList ? "]" : ")");
      break;
    }
    case Tree::Kind::kArray:
      os << DTypeName(t.array().dtype()) << ShapeToString(t.array().shape());
      RenderArrayValues(t.array(), os);
      break;
    case Tree::Kind::kArraySpec:
      os << "ArraySpec(" << DTypeName(t.spec().dtype) << ShapeToString(t.spec().shape) << ")";
      break;
    case Tree::Kind::kScalar:
      std::visit(
          [&](auto v) {
            if constexpr (std::is_same_v<decltype(v), bool>) os << (v ? "True" : "False");
            else os << v;
          },
          t.scalar_value());
      break;
    case Tree::Kind::kString: os << "'" << t.string() << "'"; break;
    case Tree::Kind::kPlaceholder: os << "..."; break;
    case Tree::Kind::kShardedArray: {
      const auto& a = t.sharded_array();
      os << DTypeName(a.dtype()) << ShapeToString(a.global_shape()) << " sharded {";
      for (size_t i = 0; i < a.shards().size(); ++i) {
        if (i) os << ", ";
        os << a.shards()[i].box.ToString();
        RenderArrayValues(a.shards()[i].data, os);
      }
      os << "}";
      break;
    }
    case Tree::Kind::kShardedArraySpec:
      os << "ShardedArraySpec(" << DTypeName(t.sharded_spec().dtype) << ShapeToString(t.sharded_spec().global_shape)
         << ")";
      break;
  }
}

}  // namespace

std::string Tree::StructureDiff(const Tree& expected, const Tree& actual) {
  std::vector<std::string> lines;
  KeyPath path;
  DiffInto(expected, actual, path, lines);
  std::string out;
  for (const auto& line : lines) out += "  " + line + "\n";
  return out;
}

std::string Tree::ToString() const {
  std::ostringstream os;
  Render(*this, os);
  return os.str();
}

}  // namespace cairn
