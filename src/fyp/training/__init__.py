"""Training: the event log becomes versioned model artefacts the feed loads and hot-swaps.

``signals`` (events -> weighted interactions), ``content`` (content vectors), ``embeddings``
(ALS + fold-in), ``neighbours`` (co-engagement and next-item tables), ``ranker`` (per-action
LightGBM), ``artefacts`` (``Models``, ``ModelRegistry``), ``trainer`` (the job).
"""

from fyp.training.artefacts import ModelRegistry, Models, VersionInfo, models_dir
from fyp.training.ranker import ACTIONS, Ranker
from fyp.training.trainer import NothingToTrain, ScheduledTrainer, Trainer, TrainResult

__all__ = [
    "ACTIONS",
    "ModelRegistry",
    "Models",
    "NothingToTrain",
    "Ranker",
    "ScheduledTrainer",
    "TrainResult",
    "Trainer",
    "VersionInfo",
    "models_dir",
]
