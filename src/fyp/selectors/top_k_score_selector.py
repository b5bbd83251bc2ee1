from __future__ import annotations

import math

import numpy as np

from fyp.pipeline.candidate import Candidate
from fyp.pipeline.query import Query
from fyp.pipeline.stages import StageBase


def by_score(c: Candidate) -> tuple[bool, bool, float]:
    # NaN scores sink so they never take a top-k slot; repeats (exhausted catalog) come last.
    nan = math.isnan(c.score)
    return (c.repeat, nan, 0.0 if nan else -c.score)


def ranked(cands: list[Candidate]) -> list[Candidate]:
    """``sorted(cands, key=by_score)``, by one stable numpy sort instead of a key per item."""
    n = len(cands)
    score = np.fromiter((c.score for c in cands), np.float64, n)
    nan = np.isnan(score)
    repeat = np.fromiter((c.repeat for c in cands), bool, n)
    order = np.lexsort((np.where(nan, 0.0, -score), nan, repeat))  # the last key sorts first
    return [cands[i] for i in order.tolist()]


class TopKScoreSelector(StageBase):
    """The k best by score."""

    def select(self, query: Query, cands: list[Candidate], k: int) -> list[Candidate]:
        out = ranked(cands)[: max(0, k)]
        for c in out:
            c.exploration = False
        return out
