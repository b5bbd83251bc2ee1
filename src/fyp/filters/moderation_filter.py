from __future__ import annotations

from fyp.pipeline.candidate import Candidate
from fyp.pipeline.catalog_index import VideoMeta
from fyp.pipeline.query import Query
from fyp.pipeline.stages import FilterResult, StageBase


def servable(
    moderation: str, allowed_regions: tuple[str, ...] | list[str] | None, q: Query
) -> bool:
    """Approved videos go to anyone; limited ones only to known adults inside allowed regions
    (an unknown age or region counts as not allowed)."""
    if moderation == "approved":
        return True
    if moderation != "limited":
        return False
    if q.age is None or q.age < q.adult_age:
        return False
    return allowed_regions is None or (q.region is not None and q.region in allowed_regions)


class ModerationFilter(StageBase):
    """Keeps only videos the user may see: approved, or limited under the rules above."""

    def filter(self, query: Query, cands: list[Candidate]) -> FilterResult:
        res = FilterResult(kept=[])
        for c in cands:
            m: VideoMeta | None = c.meta
            if m is not None and servable(m.moderation, m.allowed_regions, query):
                res.kept.append(c)
            else:
                res.removed.append(c)
        return res
