from __future__ import annotations

import math

from fyp.pipeline.candidate import Candidate
from fyp.pipeline.query import Query
from fyp.pipeline.stages import StageBase

BOOST = 0.5
STREAK_PENALTY = 0.8


class FeedbackScorer(StageBase):
    """Makes the latest events count on the very next request whatever the ranker learnt: a
    boost for the hashtags, creators and sounds the user just engaged with, and a penalty for a
    creator the user keeps skipping (both decay with the online affinities)."""

    def score(self, query: Query, cands: list[Candidate]) -> list[Candidate]:
        if query.settings.random_scores:
            return cands
        for c in cands:
            f = c.features
            taste = (
                f.get("aff_hashtag_max", 0.0)
                + 0.5 * f.get("aff_creator", 0.0)
                + 0.3 * f.get("aff_sound", 0.0)
            )
            adj = BOOST * math.tanh(taste / 2) - STREAK_PENALTY * math.tanh(
                0.7 * f.get("skip_streak", 0.0)
            )
            c.parts = {**c.parts, "feedback": adj}
            c.score += adj
        return cands
