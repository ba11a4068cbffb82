"""What metadata() returns."""

from __future__ import annotations

import dataclasses
from typing import Any, Optional


@dataclasses.dataclass
class StepMetadata:
    """`_CHECKPOINT_METADATA` of a checkpoint plus its item's metadata (for arrays, a tree of ArraySpecs)."""

    item_handlers: Any = None
    metrics: dict = dataclasses.field(default_factory=dict)
    performance_metrics: dict = dataclasses.field(default_factory=dict)
    init_timestamp_nsecs: Optional[int] = None
    commit_timestamp_nsecs: Optional[int] = None
    custom_metadata: dict = dataclasses.field(default_factory=dict)
    item_metadata: Any = None


@dataclasses.dataclass
class RootMetadata:
    """`<root>/metadata/_ROOT_METADATA` of a CheckpointManager."""

    custom_metadata: dict = dataclasses.field(default_factory=dict)
    internal_metadata: dict = dataclasses.field(default_factory=dict)
