"""The catalog index: servable videos only, refreshed in the background once loaded."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta

import pytest

from fyp.models import User, VideoIn
from fyp.pipeline import catalog_index
from fyp.pipeline.catalog_index import CatalogIndex
from fyp.storage.data import open_data_store


def test_index_holds_servable_videos_and_refreshes_in_the_background() -> None:
    store = open_data_store("memory://")
    store.upsert_users([User(id="c1")])
    store.upsert_videos(
        [
            VideoIn(id="a", creator_id="c1", hashtags=["x"], sound_id="s"),
            VideoIn(id="p", creator_id="c1", moderation="pending"),
            VideoIn(id="l", creator_id="c1", moderation="limited"),
        ],
        "approved",
    )
    now = [0.0]
    index = CatalogIndex(store, refresh_s=10.0, clock=lambda: now[0])
    snap = index.snapshot()
    assert set(snap.by_id) == {"a", "l"}
    assert snap.by_hashtag == {"x": ["a"]} and snap.by_sound == {"s": ["a"]}
    store.upsert_videos([VideoIn(id="b", creator_id="c1")], "approved")
    assert index.get("b") is None  # not stale yet
    now[0] = 11.0
    index.snapshot()  # stale: starts a refresh and answers with what it has
    for _ in range(100):
        if index.get("b") is not None:
            break
        time.sleep(0.01)
    assert index.get("b") is not None


def _shape(index: CatalogIndex) -> tuple[object, ...]:
    snap = index.snapshot()
    lists = (snap.by_hashtag, snap.by_sound, snap.by_creator)
    return (
        snap.by_id,
        snap.newest,
        *({k: v for k, v in d.items() if v} for d in lists),  # emptied lists may linger
    )


def test_incremental_updates_match_a_rebuild(monkeypatch: pytest.MonkeyPatch) -> None:
    """Uploads, re-uploads with new tags, and moderation changes applied in place leave the
    index exactly as a fresh load of the same store would build it."""
    rng = random.Random(3)
    store = open_data_store("memory://")
    store.upsert_users([User(id=f"c{i}") for i in range(5)])
    index = CatalogIndex(store, refresh_s=0.0)
    states = ["approved", "limited", "pending", "removed"]
    for step in range(300):
        vid = f"v{rng.randrange(60)}"
        if rng.random() < 0.3 and store.get_video(vid) is not None:
            store.set_moderation(vid, rng.choice(states), None, None)  # type: ignore[arg-type]
        else:
            store.upsert_videos(
                [
                    VideoIn(
                        id=vid,
                        creator_id=f"c{rng.randrange(5)}",
                        hashtags=rng.sample(["a", "b", "c", "d"], rng.randrange(3)),
                        sound_id=rng.choice([None, "s1", "s2"]),
                        created_at=datetime(2026, 1, 1, tzinfo=UTC)
                        + timedelta(minutes=rng.randrange(50)),
                    )
                ],
                "approved",
            )
        if step % 7 == 0:
            assert _shape(index) == _shape(CatalogIndex(store, refresh_s=0.0)), step
    assert _shape(index) == _shape(CatalogIndex(store, refresh_s=0.0))
    snap = index.snapshot()
    assert snap.by_id and all(m.moderation in ("approved", "limited") for m in snap.by_id.values())
    assert [m.id for m in snap.newest] == sorted(
        snap.by_id, key=lambda v: (-snap.by_id[v].created_ms, v)
    )
    assert all(m is snap.by_id[m.id] for m in snap.newest)  # the current record, not a stale one


def test_a_bulk_change_rebuilds_and_a_removed_video_leaves_every_list(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(catalog_index, "REBUILD_ABOVE", 3)
    store = open_data_store("memory://")
    store.upsert_users([User(id="c1")])
    store.upsert_videos(
        [VideoIn(id="a", creator_id="c1", hashtags=["x"], sound_id="s")], "approved"
    )
    index = CatalogIndex(store, refresh_s=0.0)
    first = index.snapshot()
    store.set_moderation("a", "removed", None, None)
    snap = index.snapshot()
    assert snap is first  # a small change is applied in place
    assert "a" not in snap.by_id and all(m.id != "a" for m in snap.newest)
    assert not any(
        "a" in lst for d in (snap.by_hashtag, snap.by_sound, snap.by_creator) for lst in d.values()
    )
    time.sleep(0.002)  # newer than anything read
    store.upsert_videos([VideoIn(id=f"n{i}", creator_id="c1") for i in range(10)], "approved")
    rebuilt = index.snapshot()
    assert rebuilt is not first and len(rebuilt.by_id) == 10


def test_a_bulk_load_inside_the_overlap_window_does_not_rebuild_on_every_refresh(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(catalog_index, "REBUILD_ABOVE", 3)
    store = open_data_store("memory://")
    store.upsert_users([User(id="c1")])
    store.upsert_videos([VideoIn(id=f"n{i}", creator_id="c1") for i in range(10)], "approved")
    index = CatalogIndex(store, refresh_s=0.0)
    first = index.snapshot()
    assert len(first.by_id) == 10
    assert index.snapshot() is first  # the 10 re-read rows are not new: applied in place
    store.upsert_videos([VideoIn(id="late", creator_id="c1")], "approved")
    snap = index.snapshot()
    assert snap is first and "late" in snap.by_id
