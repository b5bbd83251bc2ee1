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
        # one numpy pass over the ages (NaN, no part, for a candidate without catalog data)
        created = np.fromiter(
            (math.nan if (m := c.meta) is None else m.created_ms for c in cands),
            np.float64,
            len(cands),
        )
        age = np.maximum(0.0, query.now_ms - created)
        add_part(cands, "freshness", WEIGHT * np.exp2(-age / hl))
        return cands
