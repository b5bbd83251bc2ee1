from __future__ import annotations

from fyp.pipeline.candidate import Candidate
from fyp.pipeline.catalog_index import CatalogIndex
from fyp.pipeline.query import Query
from fyp.pipeline.stages import StageBase

MIN_BACKFILL = 30


class BackfillSource(StageBase):
    """A safety net: the newest videos the user has not seen, so a page fills whenever the
    catalog still has something unseen (and "exhausted" means the catalog really ran out)."""

    reason = "backfill"

    def __init__(self, catalog: CatalogIndex) -> None:
        self.catalog = catalog

    async def get_candidates(self, query: Query) -> list[Candidate]:
        want = max(MIN_BACKFILL, 3 * query.count)
        out: list[Candidate] = []
        for m in self.catalog.snapshot().newest:
            if m.id in query.served:
                continue
            out.append(Candidate(m.id, self.reason, source_score=1.0 / (1 + len(out))))
            if len(out) >= want:
                break
        return out
