"""What metadata() returns."""

from __future__ import annotations

import dataclasses
from typing import Any, Optional


class TreeMetadata(dict):
    """The metadata of a tree item: a dict of the tree (ArraySpecs for arrays), also reachable as `.tree`, as
    Orbax's tree metadata is both a mapping and has `.tree`."""

    @property
    def tree(self) -> dict:
        return dict(self)


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

    def __post_init__(self) -> None:
        if type(self.item_metadata) is dict:
            self.item_metadata = TreeMetadata(self.item_metadata)


@dataclasses.dataclass
class RootMetadata:
    """`<root>/metadata/_ROOT_METADATA` of a CheckpointManager."""

    custom_metadata: dict = dataclasses.field(default_factory=dict)
    internal_metadata: dict = dataclasses.field(default_factory=dict)
