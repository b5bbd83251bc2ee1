from __future__ import annotations

from fyp.pipeline.candidate import Candidate
from fyp.pipeline.query import Query
from fyp.pipeline.stages import StageBase
from fyp.storage.cache import GLOBAL, OnlineState


class TrendingSource(StageBase):
    """The hottest videos by decayed engagement velocity, in the user's region then everywhere."""

    reason = "trending"

    def __init__(self, online: OnlineState) -> None:
        self.online = online

    async def get_candidates(self, query: Query) -> list[Candidate]:
        quota = query.settings.quotas.trending
        if quota <= 0:
            return []
        # Ask for more than the quota: the served ones are skipped here, not by a later filter,
        # so the quota is spent on videos the user has not seen.
        want = min(quota + len(query.served), 5000)
        regions = [query.region, GLOBAL] if query.region else [GLOBAL]
        out: list[Candidate] = []
        seen: set[str] = set()
        for region in regions:
            for vid, score in self.online.trending(region, want, query.now_ms):
                if vid in query.served or vid in seen:
                    continue
                seen.add(vid)
                out.append(Candidate(vid, self.reason, source_score=score))
                if len(out) >= quota:
                    return out
        return out
