from __future__ import annotations

import random

import numpy as np

from fyp.pipeline.candidate import Candidate, matrix_of, rows_of
from fyp.pipeline.query import Query
from fyp.pipeline.stages import StageBase


class BlendScorer(StageBase):
    """The final value: predicted actions weighted by ``FeedSettings.blend`` (negative weights
    for skip and not_interested). ``random_scores`` replaces it with noise (a known-bad arm)."""

    writes = ("parts", "score")

    def score(self, query: Query, cands: list[Candidate]) -> list[Candidate]:
        fs = query.settings
        if fs.random_scores:
            rng = random.Random(query.request_id)
            for c in cands:
                c.score = rng.random()
                c.parts = {"random": c.score}
            return cands
        if not cands:
            return cands
        weights = fs.blend.model_dump()
        names = list(weights)
        # A missing prediction counts as 0; one column per action, summed left to right.
        x = np.nan_to_num(matrix_of([c.predictions for c in cands], names), nan=0.0)
        parts = x * np.array([weights[a] for a in names], dtype=np.float64)
        total = np.zeros(len(cands))
        for j in range(len(names)):
            total += parts[:, j]
        for c, row, score in zip(cands, rows_of(parts, names), total.tolist(), strict=True):
            c.parts = row
            c.score = score
        return cands
