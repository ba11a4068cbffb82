#include "zarr/zarr_metadata.h"

#include <nlohmann/json.hpp>

#include <algorithm>

#include "cairn/error.h"
#include "zarr/blosc_codec.h"
#include "zarr/zarr_dtype.h"

namespace cairn::zarr {

using json = nlohmann::json;

std::string ZarrMetadata::CompressionName() const {
  if (zstd_level) return "zstd(" + std::to_string(*zstd_level) + ")";
  if (blosc) {
    static const char* const kShuffle[] = {"auto shuffle", "no shuffle", "byte shuffle", "bit shuffle"};
    return "blosc(" + blosc->cname + ", " + std::to_string(blosc->clevel) + ", " +
           kShuffle[std::clamp(blosc->shuffle, -1, 2) + 1] + ")";
  }
  return "none";
}

std::string ZarrMetadata::ChunkKey(const std::vector<int64_t>& grid_index) const {
  if (format == ZarrFormat::kV3 && zarr3_default_keys) {
    std::string key = "c";
    for (int64_t i : grid_index) key += zarr3_separator + std::to_string(i);
    return key;
  }
  if (grid_index.empty()) return "0";
  char separator = format == ZarrFormat::kV2 ? dimension_separator : zarr3_separator;
  std::string key;
  for (size_t d = 0; d < grid_index.size(); ++d) {
    if (d) key += separator;
    key += std::to_string(grid_index[d]);
  }
  return key;
}

namespace {

// nlohmann::json keeps object keys sorted, which is exactly TensorStore's output order.
json Zarr3Codecs(const ZarrMetadata& m) {
  json inner = json::array({{{"name", "bytes"}, {"configuration", {{"endian", "little"}}}}});
  if (m.zstd_level) {
    inner.push_back({{"name", "zstd"}, {"configuration", {{"level", *m.zstd_level}, {"checksum", false}}}});
  } else if (m.blosc) {
    static const char* const kShuffle[] = {"noshuffle", "shuffle", "bitshuffle"};
    const BloscConfig& b = *m.blosc;
    inner.push_back({{"name", "blosc"},
                     {"configuration",
                      {{"blocksize", b.blocksize},
                       {"clevel", b.clevel},
                       {"cname", b.cname},
                       {"shuffle", kShuffle[b.shuffle >= 0 && b.shuffle <= 2 ? b.shuffle : 1]},
                       {"typesize", b.typesize > 0 ? b.typesize : static_cast<int>(ItemSize(m.dtype))}}}});
  }
  if (!m.zarr3_sharded) return inner;
  json index_codecs = json::array({{{"name", "bytes"}, {"configuration", {{"endian", "little"}}}},
                                   {{"name", "crc32c"}}});
  return json::array({{{"name", "sharding_indexed"},
                       {"configuration",
                        {{"chunk_shape", m.chunks},
                         {"codecs", inner},
                         {"index_codecs", index_codecs}}}}});  // index_location "end" is the default, which TensorStore omits
}

Shape ReadShape(const json& value, const char* field, const std::string& what) {
  if (!value.is_array()) throw CorruptionError(what + ": \"" + field + "\" is not a list");
  Shape shape;
  for (const auto& dim : value) {
    if (!dim.is_number_integer() || dim.get<int64_t>() < 0) {
      throw CorruptionError(what + ": \"" + field + "\" holds something other than a non-negative integer");
    }
    shape.push_back(dim.get<int64_t>());
  }
  return shape;
}

// A zstd level from a codec's configuration. Numbers are compared and converted as JSON: value<int>() of a
// float such as 1e300 would be undefined behaviour.
int ZstdLevel(const json& configuration, int default_level, const std::string& what) {
  const json level = configuration.value("level", json(default_level));
  if (!level.is_number_integer()) throw CorruptionError(what + ": zstd level " + level.dump() + " is not an integer");
  return level.get<int>();
}

int JsonInt(const json& configuration, const char* field, int default_value, int lo, int hi, const std::string& what) {
  const json value = configuration.value(field, json(default_value));
  if (!value.is_number_integer() || value.get<int64_t>() < lo || value.get<int64_t>() > hi) {
    throw CorruptionError(what + ": blosc \"" + field + "\" " + value.dump() + " is not an integer in [" +
                          std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
  return static_cast<int>(value.get<int64_t>());
}

// The fields both formats share; the compressor name must be one blosc has.
BloscConfig ReadBlosc(const json& configuration, const std::string& what) {
  BloscConfig b;
  const json cname = configuration.value("cname", json("lz4"));
  if (!cname.is_string()) throw CorruptionError(what + ": blosc \"cname\" is not a string");
  b.cname = cname.get<std::string>();
  if (!BloscKnowsCompressor(b.cname)) {
    throw UnimplementedError(what + ": blosc compressor \"" + b.cname + "\" is not one this blosc library has");
  }
  b.clevel = JsonInt(configuration, "clevel", 5, 0, 9, what);
  b.blocksize = JsonInt(configuration, "blocksize", 0, 0, 1 << 30, what);
  return b;
}

// Deeper nesting is refused while parsing: nlohmann::json copies and dumps values recursively (the error messages
// below dump what they reject), so a few hundred KiB of '[' would overflow the stack.
constexpr int kMaxJsonDepth = 1000;

json Parse(std::string_view text, const std::string& what) {
  auto limit_depth = [&](int depth, json::parse_event_t, json&) {
    if (depth > kMaxJsonDepth) {
      throw CorruptionError(what + ": nests deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    }
    return true;
  };
  json doc = json::parse(text, limit_depth, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) throw CorruptionError(what + ": not a JSON object");
  return doc;
}

void CheckChunks(const ZarrMetadata& m, const std::string& what) {
  if (m.chunks.size() != m.shape.size()) {
    throw CorruptionError(what + ": chunk shape " + ShapeToString(m.chunks) + " does not match rank of shape " +
                          ShapeToString(m.shape));
  }
  for (int64_t c : m.chunks) {
    if (c <= 0) throw CorruptionError(what + ": chunk shape " + ShapeToString(m.chunks) + " has a zero dimension");
  }
  NumBytes(m.dtype, m.shape);   // throws on overflow
  NumBytes(m.dtype, m.chunks);
}

// Zero as TensorStore writes it (and the zarr v3 spec wants it): false, 0, 0.0, and [0.0, 0.0] for complex types.
json Zarr3FillValue(DType dtype) {
  if (dtype == DType::kBool) return false;
  if (IsComplex(dtype)) return json::array({0.0, 0.0});
  if (IsFloatingPoint(dtype)) return 0.0;
  return 0;
}

}  // namespace

std::string EncodeZarrMetadata(const ZarrMetadata& m) {
  json doc;
  if (m.format == ZarrFormat::kV2) {
    doc["chunks"] = m.chunks;
    if (m.zstd_level) {
      doc["compressor"] = json{{"id", "zstd"}, {"level", *m.zstd_level}};
    } else if (m.blosc) {
      doc["compressor"] = json{{"blocksize", m.blosc->blocksize}, {"clevel", m.blosc->clevel},
                               {"cname", m.blosc->cname},   {"id", "blosc"},
                               {"shuffle", m.blosc->shuffle}};
    } else {
      doc["compressor"] = nullptr;
    }
    doc["dimension_separator"] = std::string(1, m.dimension_separator);
    doc["dtype"] = ZarrV2DTypeString(m.dtype);
    doc["fill_value"] = nullptr;
    doc["filters"] = nullptr;
    doc["order"] = "C";
    doc["shape"] = m.shape;
    doc["zarr_format"] = 2;
  } else {
    doc["chunk_grid"] = {{"name", "regular"}, {"configuration", {{"chunk_shape", m.chunks}}}};
    doc["chunk_key_encoding"] = m.zarr3_default_keys ? json{{"name", "default"}}
                                                     : json{{"name", "v2"}, {"configuration", {{"separator", "."}}}};
    doc["codecs"] = Zarr3Codecs(m);
    doc["data_type"] = std::string(DTypeName(m.dtype));
    doc["fill_value"] = Zarr3FillValue(m.dtype);
    doc["node_type"] = "array";
    doc["shape"] = m.shape;
    doc["zarr_format"] = 3;
  }
  return doc.dump();
}

// Both decoders are function-try-blocks: nlohmann::json's accessors throw its own exceptions (type_error) when a
// field has an unexpected type, which is corrupt metadata like any other.
ZarrMetadata DecodeZarrV2Metadata(std::string_view text, const std::string& what) try {
  json doc = Parse(text, what);
  ZarrMetadata m;
  m.format = ZarrFormat::kV2;
  if (doc.value("zarr_format", json(0)) != 2) throw CorruptionError(what + ": \"zarr_format\" is not 2");
  if (!doc.contains("dtype") || !doc["dtype"].is_string()) throw CorruptionError(what + ": no string \"dtype\"");
  m.dtype = DTypeFromZarrV2(doc["dtype"].get<std::string>());
  m.shape = ReadShape(doc.value("shape", json()), "shape", what);
  m.chunks = ReadShape(doc.value("chunks", json()), "chunks", what);
  if (doc.contains("order") && doc["order"] != "C") {
    throw UnimplementedError(what + ": only C order is supported, found " + doc["order"].dump());
  }
  if (doc.contains("filters") && !doc["filters"].is_null()) {
    throw UnimplementedError(what + ": zarr filters are not supported");
  }
  const json& compressor = doc.contains("compressor") ? doc["compressor"] : json(nullptr);
  if (!compressor.is_null()) {
    const std::string id = compressor.is_object() ? compressor.value("id", "") : "";
    if (id == "zstd") {
      m.zstd_level = ZstdLevel(compressor, 1, what);
    } else if (id == "blosc") {
      m.blosc = ReadBlosc(compressor, what);
      m.blosc->shuffle = JsonInt(compressor, "shuffle", -1, -1, 2, what);
    } else {
      throw UnimplementedError(what + ": compressor " + compressor.dump() + " is not supported (only zstd and blosc)");
    }
  }
  std::string separator = doc.value("dimension_separator", ".");
  if (separator != "." && separator != "/") throw CorruptionError(what + ": bad dimension_separator");
  m.dimension_separator = separator[0];
  CheckChunks(m, what);
  return m;
} catch (const json::exception& e) {
  throw CorruptionError(what + ": " + e.what());
}

ZarrMetadata DecodeZarr3Metadata(std::string_view text, const std::string& what) try {
  json doc = Parse(text, what);
  ZarrMetadata m;
  m.format = ZarrFormat::kV3;
  if (doc.value("zarr_format", json(0)) != 3) throw CorruptionError(what + ": \"zarr_format\" is not 3");
  if (doc.value("node_type", "") != "array") throw CorruptionError(what + ": \"node_type\" is not \"array\"");
  if (!doc.contains("data_type") || !doc["data_type"].is_string()) {
    throw CorruptionError(what + ": no string \"data_type\"");
  }
  m.dtype = DTypeFromName(doc["data_type"].get<std::string>());
  m.shape = ReadShape(doc.value("shape", json()), "shape", what);
  const json grid = doc.value("chunk_grid", json());
  if (!grid.is_object() || grid.value("name", "") != "regular") {
    throw UnimplementedError(what + ": only a regular chunk_grid is supported");
  }
  // Not grid["configuration"]: on a const json without that key, operator[] reads past the map.
  m.chunks = ReadShape(grid.value("configuration", json::object()).value("chunk_shape", json()), "chunk_shape", what);
  const json keys = doc.value("chunk_key_encoding", json{{"name", "default"}});
  m.zarr3_default_keys = keys.value("name", "default") == "default";
  std::string separator = keys.contains("configuration") ? keys["configuration"].value(
                                                                "separator", m.zarr3_default_keys ? "/" : ".")
                                                          : (m.zarr3_default_keys ? "/" : ".");
  if (separator != "." && separator != "/") throw CorruptionError(what + ": bad chunk key separator");
  m.zarr3_separator = separator[0];

  // Codecs: [sharding_indexed{chunk_shape = the shard, codecs: bytes[, zstd], index: bytes, crc32c}] as Orbax
  // writes, or plain [bytes[, zstd]].
  json codecs = doc.value("codecs", json::array());
  if (!codecs.is_array() || codecs.empty()) throw CorruptionError(what + ": no \"codecs\"");
  json inner = codecs;
  m.zarr3_sharded = false;
  if (codecs.size() == 1 && codecs[0].value("name", "") == "sharding_indexed") {
    const json config = codecs[0].value("configuration", json::object());
    Shape inner_chunks = ReadShape(config.value("chunk_shape", json()), "sharding chunk_shape", what);
    if (inner_chunks != m.chunks) {
      throw UnimplementedError(what + ": shards with more than one inner chunk are not supported");
    }
    if (config.value("index_location", "end") != "end") {
      throw UnimplementedError(what + ": shard index at the start is not supported");
    }
    const json index_codecs = config.value("index_codecs", json::array());
    bool has_bytes = false, has_crc = false;
    for (const auto& codec : index_codecs) {
      if (codec.value("name", "") == "bytes") has_bytes = true;
      else if (codec.value("name", "") == "crc32c") has_crc = true;
      else throw UnimplementedError(what + ": shard index codec " + codec.dump() + " is not supported");
    }
    if (!has_bytes || !has_crc) throw UnimplementedError(what + ": shard index must be bytes + crc32c");
    inner = config.value("codecs", json::array());
    m.zarr3_sharded = true;
  }
  bool saw_bytes = false;
  for (const auto& codec : inner) {
    const std::string name = codec.value("name", "");
    if (name == "bytes") {
      if (codec.contains("configuration") && codec["configuration"].value("endian", "little") != "little") {
        throw UnimplementedError(what + ": big-endian zarr3 data is not supported");
      }
      saw_bytes = true;
    } else if (name == "zstd" && saw_bytes && !m.compressed()) {
      m.zstd_level = codec.contains("configuration") ? ZstdLevel(codec["configuration"], 3, what) : 3;
    } else if (name == "blosc" && saw_bytes && !m.compressed()) {
      const json config = codec.value("configuration", json::object());
      if (!config.is_object()) throw CorruptionError(what + ": blosc \"configuration\" is not an object");
      m.blosc = ReadBlosc(config, what);
      const json shuffle = config.value("shuffle", json("noshuffle"));
      if (shuffle == "noshuffle") m.blosc->shuffle = 0;
      else if (shuffle == "shuffle") m.blosc->shuffle = 1;
      else if (shuffle == "bitshuffle") m.blosc->shuffle = 2;
      else throw CorruptionError(what + ": blosc \"shuffle\" " + shuffle.dump() + " is not one of zarr3's");
      m.blosc->typesize = JsonInt(config, "typesize", 0, 0, 255, what);
    } else {
      throw UnimplementedError(what + ": zarr3 codec " + codec.dump() + " is not supported");
    }
  }
  if (!saw_bytes) throw CorruptionError(what + ": no \"bytes\" codec");
  CheckChunks(m, what);
  return m;
} catch (const json::exception& e) {
  throw CorruptionError(what + ": " + e.what());
}

}  // namespace cairn::zarr
