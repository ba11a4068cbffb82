// StepMetadata: what `_CHECKPOINT_METADATA` holds, plus the item's own metadata, as Checkpointer::metadata()
// returns it.
#pragma once

#include <cstdint>
#include <optional>

#include <nlohmann/json.hpp>

#include "cairn/tree.h"

namespace cairn {

struct StepMetadata {
  // The handler type string, or an object from item name to type string (composite checkpoints); null when
  // unknown.
  nlohmann::json item_handlers;
  nlohmann::json metrics = nlohmann::json::object();
  nlohmann::json performance_metrics = nlohmann::json::object();
  std::optional<int64_t> init_timestamp_nsecs;
  std::optional<int64_t> commit_timestamp_nsecs;
  nlohmann::json custom_metadata = nlohmann::json::object();
  // The item's metadata from its handler: for arrays a tree of ArraySpecs. None when the handler has none.
  Tree item_metadata;
};

}  // namespace cairn
