from __future__ import annotations

from typing import Any

import pytest

from fyp.catalog import Catalog
from fyp.config import CatalogSettings, IngestSettings
from fyp.dashboard import Analytics, decide, moderation_queue
from fyp.events import EventIngestor
from fyp.storage.data import DataStore, open_data_store


@pytest.fixture
def store() -> DataStore:
    s = open_data_store("memory://")
    catalog = Catalog(s, CatalogSettings())
    catalog.upsert_users([{"id": "c1"}, {"id": "u1"}, {"id": "u2"}])
    catalog.upsert_videos(
        [
            {"id": "v1", "creator_id": "c1"},
            {"id": "v2", "creator_id": "c1"},
            {"id": "v3", "creator_id": "c1", "moderation": "pending"},
            {"id": "v4", "creator_id": "c1"},
        ]
    )
    ingest = EventIngestor(s, IngestSettings())
    events = [
        {"event_id": "r1", "user_id": "u1", "type": "report", "video_id": "v1"},
        {"event_id": "r2", "user_id": "u2", "type": "report", "video_id": "v1"},
        {"event_id": "r3", "user_id": "u1", "type": "report", "video_id": "v2"},
        {"event_id": "l1", "user_id": "u1", "type": "like", "video_id": "v4"},
    ]
    ts = "2026-01-01T00:00:00+00:00"
    assert ingest.ingest({"events": [{**e, "ts": ts} for e in events]}).stored == 4
    return s


def ids(queue: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
    return [(q["video"]["id"], q["why"], q["reports"]) for q in queue]


def test_queue_holds_pending_then_reported_by_report_count(store: DataStore) -> None:
    a = Analytics(store, refresh_s=0)
    assert ids(moderation_queue(store, a)) == [
        ("v3", "pending", 0),
        ("v1", "reported", 2),
        ("v2", "reported", 1),
    ]
    assert ids(moderation_queue(store, a, limit=2)) == [("v3", "pending", 0), ("v1", "reported", 2)]


def test_a_decision_takes_a_video_out_of_the_queue(store: DataStore) -> None:
    a = Analytics(store, refresh_s=0)
    video = decide(store, a, "v1", "approve", "satire, fine")
    assert video is not None and video.moderation == "approved"
    assert video.moderation_reason == "reviewed: approve: satire, fine"
    limited = decide(store, a, "v2", "limit", allowed_regions=["DE"])
    assert limited is not None and limited.moderation == "limited"
    assert limited.allowed_regions == ["DE"]
    removed = decide(store, a, "v3", "remove")
    assert removed is not None and removed.moderation == "removed"
    assert moderation_queue(store, a) == []


def test_unknown_decisions_and_videos(store: DataStore) -> None:
    a = Analytics(store, refresh_s=0)
    with pytest.raises(ValueError, match="approve, limit, remove"):
        decide(store, a, "v1", "delete")
    assert decide(store, a, "nope", "approve") is None
