from __future__ import annotations

from fyp.pipeline.candidate import Candidate
from fyp.pipeline.query import Query
from fyp.pipeline.stages import StageBase
from fyp.storage.cache import OnlineState


class StatsHydrator(StageBase):
    """Attaches each video's online counters and engagement velocity (one batched read)."""

    writes = ("stats",)

    def __init__(self, online: OnlineState) -> None:
        self.online = online

    async def hydrate(self, query: Query, cands: list[Candidate]) -> list[Candidate]:
        stats = self.online.video_stats([c.video_id for c in cands], query.now_ms)
        for c in cands:
            c.stats = stats.get(c.video_id)
        return cands
