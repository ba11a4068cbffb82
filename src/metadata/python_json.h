// JSON text as Python's json.dumps writes it (", " and ": " separators, keys in insertion order, non-ASCII
// escaped), so the metadata files cairn writes are byte-for-byte what Orbax writes.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "cairn/tree.h"

namespace cairn::metadata {

std::string PythonJsonDumps(const nlohmann::ordered_json& value);
// Python's repr() of a str: 'a', "it's", '\n' ...
std::string PythonStringRepr(const std::string& text);
// Python's repr() of the tuple of keys: "('a',)", "('b', 'c')", "('layers', '0')". Orbax keys `_METADATA`'s
// tree_metadata by it.
std::string PythonKeyTupleRepr(const KeyPath& path);
// Parses a JSON document; a CorruptionError naming `what` when it is not valid JSON.
nlohmann::json ParseJson(std::string_view text, const std::string& what);
nlohmann::ordered_json ParseOrderedJson(std::string_view text, const std::string& what);

}  // namespace cairn::metadata
