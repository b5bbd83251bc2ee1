from __future__ import annotations

import math

import numpy as np

from fyp.pipeline.candidate import Candidate, add_part
from fyp.pipeline.query import Query
from fyp.pipeline.stages import StageBase

WEIGHT = 0.2


class FreshnessScorer(StageBase):
    """A bonus that halves every ``freshness_half_life_h`` of a video's age."""

    writes = ("parts", "score")

    def score(self, query: Query, cands: list[Candidate]) -> list[Candidate]:
        if query.settings.random_scores:
            return cands
        hl = query.settings.freshness_half_life_h * 3_600_000
        now = query.now_ms
        bonus = [
            math.nan if c.meta is None else WEIGHT * 2.0 ** (-max(0, now - c.meta.created_ms) / hl)
            for c in cands
        ]
        add_part(cands, "freshness", np.array(bonus, dtype=np.float64))
        return cands
