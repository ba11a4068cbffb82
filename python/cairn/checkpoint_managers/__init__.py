"""Orbax's `ocp.checkpoint_managers`: the save-decision and preservation policies."""

from . import preservation_policy, save_decision_policy
from .preservation_policy import (AnyPreservationPolicy, BestN, CustomSteps, EveryNSeconds, EveryNSteps,
                                  LatestDuration, LatestN, PreservationPolicy, PreserveAll)
from .save_decision_policy import (AnySavePolicy, ContinuousCheckpointingPolicy, FixedIntervalPolicy,
                                   InitialSavePolicy, PreemptionCheckpointingPolicy, SaveDecisionPolicy,
                                   SpecificStepsPolicy)
