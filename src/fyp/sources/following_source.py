from __future__ import annotations

from fyp.pipeline.candidate import Candidate
from fyp.pipeline.catalog_index import CatalogIndex
from fyp.pipeline.query import Query
from fyp.pipeline.stages import StageBase


class FollowingSource(StageBase):
    """The newest unseen videos of followed creators, round-robin across creators."""

    reason = "following"

    def __init__(self, catalog: CatalogIndex) -> None:
        self.catalog = catalog

    async def get_candidates(self, query: Query) -> list[Candidate]:
        quota = query.settings.quotas.following
        if quota <= 0 or not query.following:
            return []
        snap = self.catalog.snapshot()
        queues = []
        for creator in sorted(query.following):
            vids = [v for v in snap.by_creator.get(creator, ())[:quota] if v not in query.served]
            if vids:
                queues.append(vids)
        out: list[Candidate] = []
        depth = 0
        while len(out) < quota and any(depth < len(q) for q in queues):
            for q in queues:
                if depth < len(q) and len(out) < quota:
                    meta = snap.by_id[q[depth]]
                    age_h = max(0.0, (query.now_ms - meta.created_ms) / 3_600_000)
                    out.append(Candidate(q[depth], self.reason, source_score=1.0 / (1.0 + age_h)))
            depth += 1
        return out
