"""A feed candidate as it moves through the stages."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from fyp.pipeline.catalog_index import VideoMeta
from fyp.storage.cache import VideoStats


@dataclass(slots=True)
class Candidate:
    """One video under consideration for one request.

    Attributes:
        source: the source that found it best (its reason code); ``sources`` holds every
            source's score for it.
        exploration: served on an exploration slot (the fresh pool's bandit).
        features: named ranker features, logged with the served item.
        predictions: predicted probability per action (ranker or heuristic).
        parts: the additive parts of ``score`` (for explanations).
        repeat: already served within the horizon; only used when the catalog is exhausted.
    """

    video_id: str
    source: str
    source_score: float = 0.0
    sources: dict[str, float] = field(default_factory=dict)
    rank_frac: float = 1.0
    exploration: bool = False
    meta: VideoMeta | None = None
    stats: VideoStats | None = None
    features: dict[str, float] = field(default_factory=dict)
    predictions: dict[str, float] = field(default_factory=dict)
    parts: dict[str, float] = field(default_factory=dict)
    score: float = math.nan
    repeat: bool = False

    @property
    def creator_id(self) -> str | None:
        return self.meta.creator_id if self.meta else None
