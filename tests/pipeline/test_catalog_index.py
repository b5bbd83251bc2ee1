"""The catalog index: servable videos only, refreshed in the background once loaded."""

from __future__ import annotations

import time

from fyp.models import User, VideoIn
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
