from __future__ import annotations

from fyp.pipeline.candidate import Candidate
from fyp.pipeline.query import Query
from fyp.pipeline.stages import StageBase

SEEDS = 5


class ItemNeighboursSource(StageBase):
    """Videos co-engaged with the user's newest positives, plus what users watch next after the
    recent sequence (order matters). Nothing without models or history."""

    reason = "item_neighbours"

    async def get_candidates(self, query: Query) -> list[Candidate]:
        quota = query.settings.quotas.item_neighbours
        models = query.models
        if quota <= 0 or models is None:
            return []
        seeds = query.positives(SEEDS)
        if not seeds:
            return []
        scores: dict[str, float] = {}
        per = max(10, quota // len(seeds))
        for rank, seed in enumerate(seeds):
            for vid, s in models.neighbours(seed, per):
                scores[vid] = scores.get(vid, 0.0) + s / (1 + rank)
        for vid, s in models.next_items(list(reversed(seeds)), per):
            scores[vid] = scores.get(vid, 0.0) + s
        best = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
        out = [
            Candidate(v, self.reason, source_score=s)
            for v, s in best
            if v not in query.served and v not in seeds
        ]
        return out[:quota]
