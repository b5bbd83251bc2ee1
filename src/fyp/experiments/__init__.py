"""The lab: A/B experiments on the feed's settings, their assignment, metrics and statistics."""

from fyp.experiments.assignment import Assigner, Assignment, NoExperiments, StoreAssigner
from fyp.experiments.spec import Arm, ExperimentRecord, ExperimentSpec

__all__ = [
    "Arm",
    "Assigner",
    "Assignment",
    "ExperimentRecord",
    "ExperimentSpec",
    "NoExperiments",
    "StoreAssigner",
]
