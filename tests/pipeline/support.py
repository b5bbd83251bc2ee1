"""Queries and candidates for stage-level tests."""

from __future__ import annotations

from typing import Any

from fyp.config import FeedSettings
from fyp.models import User
from fyp.pipeline.candidate import Candidate
from fyp.pipeline.catalog_index import VideoMeta
from fyp.pipeline.query import Query
from fyp.storage.cache import UserState

NOW = 1_780_000_000_000


def make_query(**kw: Any) -> Query:
    fields: dict[str, Any] = {
        "request_id": "r_test",
        "user": User(id="u1", region="US"),
        "count": 10,
        "offset": 0,
        "now_ms": NOW,
        "settings": FeedSettings(),
        "arms": {},
        "state": UserState(),
        "served": set(),
        "following": set(),
        "blocked": set(),
        "age": 30,
    }
    fields.update(kw)
    return Query(**fields)


def cand(i: int, creator: str | None = None, score: float | None = None, **kw: Any) -> Candidate:
    meta = VideoMeta(
        id=f"v{i}",
        creator_id=creator or f"c{i % 5}",
        hashtags=(f"t{i % 3}",),
        sound_id=f"s{i % 4}",
        duration_ms=10_000,
        language=None,
        region=None,
        created_ms=NOW - i * 1000,
        moderation="approved",
        allowed_regions=None,
    )
    c = Candidate(f"v{i}", source="test", meta=meta, **kw)
    c.sources = {"test": 0.0}
    c.score = float(100 - i) if score is None else score
    return c
