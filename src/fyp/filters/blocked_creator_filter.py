from __future__ import annotations

from fyp.pipeline.candidate import Candidate
from fyp.pipeline.query import Query
from fyp.pipeline.stages import FilterResult, StageBase


class BlockedCreatorFilter(StageBase):
    """Removes videos by creators the user blocked, and the user's own videos."""

    def filter(self, query: Query, cands: list[Candidate]) -> FilterResult:
        res = FilterResult(kept=[])
        me = query.user.id
        for c in cands:
            creator = c.creator_id
            if creator in query.blocked or creator == me:
                res.removed.append(c)
            else:
                res.kept.append(c)
        return res
