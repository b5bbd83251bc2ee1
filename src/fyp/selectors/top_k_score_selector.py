from __future__ import annotations

import math

from fyp.pipeline.candidate import Candidate
from fyp.pipeline.query import Query
from fyp.pipeline.stages import StageBase


def by_score(c: Candidate) -> tuple[bool, bool, float]:
    # NaN scores sink so they never take a top-k slot; repeats (exhausted catalog) come last.
    nan = math.isnan(c.score)
    return (c.repeat, nan, 0.0 if nan else -c.score)


class TopKScoreSelector(StageBase):
    """The k best by score."""

    def select(self, query: Query, cands: list[Candidate], k: int) -> list[Candidate]:
        out = sorted(cands, key=by_score)[: max(0, k)]
        for c in out:
            c.exploration = False
        return out
