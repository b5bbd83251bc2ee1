from __future__ import annotations

import random

from fyp.pipeline.candidate import Candidate
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
        weights = fs.blend.model_dump()
        for c in cands:
            parts = {a: w * c.predictions.get(a, 0.0) for a, w in weights.items()}
            c.parts = parts
            c.score = sum(parts.values())
        return cands
