"""When a CheckpointManager saves a step (Orbax's `checkpoint_managers.save_decision_policy`)."""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence


class SaveDecisionPolicy:
    """Base class; only the policies below are understood (they run in C++)."""

    def _native(self) -> dict:
        raise NotImplementedError(f"{type(self).__name__}: cairn runs only its built-in save decision policies")


@dataclasses.dataclass
class FixedIntervalPolicy(SaveDecisionPolicy):
    interval: int

    def _native(self) -> dict:
        return {"kind": "FixedIntervalPolicy", "interval": self.interval}


@dataclasses.dataclass
class SpecificStepsPolicy(SaveDecisionPolicy):
    steps: Sequence[int]

    def _native(self) -> dict:
        return {"kind": "SpecificStepsPolicy", "steps": set(self.steps)}


@dataclasses.dataclass
class ContinuousCheckpointingPolicy(SaveDecisionPolicy):
    minimum_interval_secs: Optional[int] = None

    def _native(self) -> dict:
        return {"kind": "ContinuousCheckpointingPolicy", "minimum_interval_secs": self.minimum_interval_secs}


@dataclasses.dataclass
class PreemptionCheckpointingPolicy(SaveDecisionPolicy):
    def _native(self) -> dict:
        return {"kind": "PreemptionCheckpointingPolicy"}


@dataclasses.dataclass
class InitialSavePolicy(SaveDecisionPolicy):
    def _native(self) -> dict:
        return {"kind": "InitialSavePolicy"}


class AnySavePolicy(SaveDecisionPolicy):
    def __init__(self, policies: Sequence[SaveDecisionPolicy]):
        self.policies = list(policies)

    def _native(self) -> dict:
        return {"kind": "AnySavePolicy", "policies": [p._native() for p in self.policies]}
