from __future__ import annotations

from fyp.pipeline.candidate import Candidate
from fyp.pipeline.query import Query
from fyp.pipeline.stages import FilterResult, StageBase


class PreviouslyServedFilter(StageBase):
    """Never repeat: removes videos served to the user within ``never_repeat_days``. Relaxable:
    when the eligible catalog runs out, the runner gives these back (and the response says
    ``exhausted``)."""

    relaxable = True

    def filter(self, query: Query, cands: list[Candidate]) -> FilterResult:
        res = FilterResult(kept=[])
        for c in cands:
            (res.removed if c.video_id in query.served else res.kept).append(c)
        return res
