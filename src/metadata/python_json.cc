#include "metadata/python_json.h"

#include <cstdio>

#include "cairn/error.h"

namespace cairn::metadata {

std::string PythonJsonDumps(const nlohmann::ordered_json& value) {
  using value_t = nlohmann::ordered_json::value_t;
  switch (value.type()) {
    case value_t::object: {
      if (value.empty()) return "{}";
      std::string out = "{";
      bool first = true;
      for (const auto& [key, child] : value.items()) {
        if (!first) out += ", ";
        first = false;
        out += nlohmann::ordered_json(key).dump(-1, ' ', /*ensure_ascii=*/true);
        out += ": ";
        out += PythonJsonDumps(child);
      }
      return out + "}";
    }
    case value_t::array: {
      if (value.empty()) return "[]";
      std::string out = "[";
      for (size_t i = 0; i < value.size(); ++i) {
        if (i) out += ", ";
        out += PythonJsonDumps(value[i]);
      }
      return out + "]";
    }
    default: return value.dump(-1, ' ', /*ensure_ascii=*/true);
  }
}

std::string PythonStringRepr(const std::string& text) {
  // Python prefers single quotes, and switches to double quotes when the text has a ' and no ".
  const bool has_single = text.find('\'') != std::string::npos;
  const bool has_double = text.find('"') != std::string::npos;
  const char quote = has_single && !has_double ? '"' : '\'';
  std::string out(1, quote);
  for (unsigned char c : text) {
    if (c == '\\') out += "\\\\";
    else if (c == static_cast<unsigned char>(quote)) out += std::string("\\") + quote;
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c < 0x20 || c == 0x7f) {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);  // printable ASCII, and UTF-8 as Python prints printable non-ASCII
    }
  }
  return out + quote;
}

std::string PythonKeyTupleRepr(const KeyPath& path) {
  std::string out = "(";
  for (size_t i = 0; i < path.size(); ++i) {
    if (i) out += ", ";
    out += PythonStringRepr(path[i].key);
  }
  if (path.size() == 1) out += ",";
  return out + ")";
}

namespace {

// Deeper nesting is refused while parsing: nlohmann::json copies and dumps values recursively, so a few hundred KiB
// of '[' would overflow the stack. Python's json module cannot write deeper than its recursion limit (1000) either.
constexpr int kMaxJsonDepth = 1000;

template <typename Json>
Json ParseWithDepthLimit(std::string_view text, const std::string& what) {
  auto limit_depth = [&](int depth, typename Json::parse_event_t, Json&) {
    if (depth > kMaxJsonDepth) {
      throw CorruptionError(what + " nests deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    }
    return true;
  };
  auto doc = Json::parse(text, limit_depth, /*allow_exceptions=*/false);
  if (doc.is_discarded()) throw CorruptionError(what + " is not valid JSON");
  return doc;
}

}  // namespace

nlohmann::json ParseJson(std::string_view text, const std::string& what) {
  return ParseWithDepthLimit<nlohmann::json>(text, what);
}

nlohmann::ordered_json ParseOrderedJson(std::string_view text, const std::string& what) {
  return ParseWithDepthLimit<nlohmann::ordered_json>(text, what);
}

}  // namespace cairn::metadata
