from __future__ import annotations

import numpy as np

from fyp.pipeline.candidate import Candidate, add_part, feature_matrix
from fyp.pipeline.query import Query
from fyp.pipeline.stages import StageBase

BOOST = 0.5
STREAK_PENALTY = 0.8
_COLUMNS = ("aff_hashtag_max", "aff_creator", "aff_sound", "skip_streak")


class FeedbackScorer(StageBase):
    """Makes the latest events count on the very next request whatever the ranker learnt: a
    boost for the hashtags, creators and sounds the user just engaged with, and a penalty for a
    creator the user keeps skipping (both decay with the online affinities)."""

    writes = ("parts", "score")

    def score(self, query: Query, cands: list[Candidate]) -> list[Candidate]:
        if query.settings.random_scores:
            return cands
        if not cands:
            return cands
        x = np.nan_to_num(feature_matrix(cands, _COLUMNS), nan=0.0)  # missing counts as 0
        taste = x[:, 0] + 0.5 * x[:, 1] + 0.3 * x[:, 2]
        adj = BOOST * np.tanh(taste / 2) - STREAK_PENALTY * np.tanh(0.7 * x[:, 3])
        add_part(cands, "feedback", adj)
        return cands
