from __future__ import annotations

import numpy as np

from fyp.pipeline.candidate import Candidate
from fyp.pipeline.query import Query
from fyp.pipeline.stages import StageBase


def ranked(cands: list[Candidate]) -> list[Candidate]:
    """Best score first, NaN scores after every real one (so they never take a top-k slot)
    and repeats (an exhausted catalog) last; ties keep their order. One stable numpy sort
    instead of a Python key per candidate."""
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
