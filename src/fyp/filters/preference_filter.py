from __future__ import annotations

from fyp.pipeline.candidate import Candidate
from fyp.pipeline.query import Query
from fyp.pipeline.stages import FilterResult, StageBase


class PreferenceFilter(StageBase):
    """Region and language preferences, when configured strict (``ServingSettings``): videos
    from another region or in another language are removed when both sides are known."""

    def filter(self, query: Query, cands: list[Candidate]) -> FilterResult:
        if not (query.region_strict or query.language_strict):
            return FilterResult(kept=list(cands))
        res = FilterResult(kept=[])
        for c in cands:
            m = c.meta
            bad = m is not None and (
                (query.region_strict and query.region and m.region and m.region != query.region)
                or (
                    query.language_strict
                    and query.language
                    and m.language
                    and m.language != query.language
                )
            )
            (res.removed if bad else res.kept).append(c)
        return res
