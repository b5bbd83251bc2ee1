from __future__ import annotations

from fyp.pipeline.candidate import Candidate
from fyp.pipeline.query import Query
from fyp.pipeline.stages import StageBase

SEEDS = 3


class ContentSource(StageBase):
    """Videos whose content (caption, hashtags, sound) is nearest to the user's newest
    positives; works for videos without history. Nothing without models."""

    reason = "content"

    async def get_candidates(self, query: Query) -> list[Candidate]:
        quota = query.settings.quotas.content
        models = query.models
        if quota <= 0 or models is None:
            return []
        seeds = query.positives(SEEDS)
        scores: dict[str, float] = {}
        for seed in seeds:
            for vid, s in models.similar_content(seed, quota):
                scores[vid] = max(scores.get(vid, 0.0), s)
        best = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
        out = [
            Candidate(v, self.reason, source_score=s)
            for v, s in best
            if v not in query.served and v not in seeds
        ]
        return out[:quota]
