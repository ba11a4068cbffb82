"""Which saved steps a CheckpointManager keeps (Orbax's `checkpoint_managers.preservation_policy`)."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional, Sequence


class PreservationPolicy:
    """Base class; only the policies below are understood (they run in C++)."""

    def _native(self) -> dict:
        raise NotImplementedError(f"{type(self).__name__}: cairn runs only its built-in preservation policies")


@dataclasses.dataclass
class PreserveAll(PreservationPolicy):
    def _native(self) -> dict:
        return {"kind": "PreserveAll"}


@dataclasses.dataclass
class LatestN(PreservationPolicy):
    n: Optional[int] = None

    def _native(self) -> dict:
        return {"kind": "LatestN", "n": self.n}


@dataclasses.dataclass
class EveryNSeconds(PreservationPolicy):
    interval_secs: int

    def _native(self) -> dict:
        return {"kind": "EveryNSeconds", "interval_secs": self.interval_secs}


@dataclasses.dataclass
class EveryNSteps(PreservationPolicy):
    interval_steps: int
    exact_interval: bool = True
    max_to_keep: Optional[int] = None

    def _native(self) -> dict:
        return {"kind": "EveryNSteps", "interval_steps": self.interval_steps, "exact_interval": self.exact_interval,
                "max_to_keep": self.max_to_keep}


@dataclasses.dataclass
class CustomSteps(PreservationPolicy):
    steps: Sequence[int]

    def _native(self) -> dict:
        return {"kind": "CustomSteps", "steps": set(self.steps)}


@dataclasses.dataclass
class LatestDuration(PreservationPolicy):
    duration_secs: int

    def _native(self) -> dict:
        return {"kind": "LatestDuration", "duration_secs": self.duration_secs}


@dataclasses.dataclass
class BestN(PreservationPolicy):
    """Keeps the n best steps by get_metric_fn(metrics): the highest, or the lowest with reverse=True."""

    get_metric_fn: Callable[[Any], float]
    n: Optional[int] = None
    reverse: bool = False
    keep_checkpoints_without_metrics: bool = True

    def _native(self) -> dict:
        return {"kind": "BestN", "get_metric_fn": self.get_metric_fn, "n": self.n, "reverse": self.reverse,
                "keep_checkpoints_without_metrics": self.keep_checkpoints_without_metrics}


class AnyPreservationPolicy(PreservationPolicy):
    def __init__(self, policies: Sequence[PreservationPolicy]):
        self.policies = list(policies)

    def _native(self) -> dict:
        return {"kind": "AnyPreservationPolicy", "policies": [p._native() for p in self.policies]}
