from __future__ import annotations

from fyp.pipeline.candidate import Candidate
from fyp.pipeline.catalog_index import CatalogIndex
from fyp.pipeline.query import Query
from fyp.pipeline.stages import StageBase


class CatalogHydrator(StageBase):
    """Attaches each candidate's catalog data (None when the video is not servable; the
    moderation filter removes those). Required: without it nothing could be served."""

    required = True
    writes = ("meta",)

    def __init__(self, catalog: CatalogIndex) -> None:
        self.catalog = catalog

    async def hydrate(self, query: Query, cands: list[Candidate]) -> list[Candidate]:
        by_id = self.catalog.snapshot().by_id
        metas = [by_id.get(c.video_id) for c in cands]
        for c, m in zip(cands, metas, strict=True):
            c.meta = m
        return cands
