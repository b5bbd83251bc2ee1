from __future__ import annotations

from fyp.pipeline.candidate import Candidate
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
        for c in cands:
            if c.meta is None:
                continue
            age = max(0, query.now_ms - c.meta.created_ms)
            bonus = WEIGHT * 2.0 ** (-age / hl)
            c.parts = {**c.parts, "freshness": bonus}
            c.score += bonus
        return cands
