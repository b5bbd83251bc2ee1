"""The fresh pool: young videos only, bounded exploratory impressions, Thompson sampling."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, cast

from fyp.config import FeedSettings, ServingSettings, Settings, SourceQuotas
from fyp.models import User, VideoIn
from fyp.pipeline.catalog_index import CatalogIndex
from fyp.sources.fresh_source import FreshSource
from fyp.storage.cache import Count, OnlineState, VideoCounters
from fyp.storage.cache.memory import MemoryOnlineState
from fyp.storage.data import open_data_store
from fyp.types import from_ms, now_ms
from tests.pipeline.support import make_query

H = 3_600_000


def test_fresh_pool_explores_new_videos_and_retires_exhausted_ones(settings: Settings) -> None:
    store = open_data_store("memory://")
    store.upsert_users([User(id="c1")])
    now = now_ms()
    store.upsert_videos(
        [
            VideoIn(id="new", creator_id="c1", created_at=from_ms(now - H)),
            VideoIn(id="good", creator_id="c1", created_at=from_ms(now - 2 * H)),
            VideoIn(id="bad", creator_id="c1", created_at=from_ms(now - 2 * H)),
            VideoIn(id="spent", creator_id="c1", created_at=from_ms(now - 2 * H)),
            VideoIn(id="old", creator_id="c1", created_at=from_ms(now - 200 * H)),
        ],
        "approved",
    )
    serving = ServingSettings(fresh_window_h=72, fresh_max_impressions=50)
    online = MemoryOnlineState(settings.online)
    online.apply(
        [
            Count("good", "impressions", 20),
            Count("good", "plays", 20),
            Count("good", "completes", 18),
            Count("bad", "impressions", 20),
            Count("bad", "skips", 20),
            Count("spent", "impressions", 50),
        ]
    )
    source = FreshSource(CatalogIndex(store, 0.0), online, serving)
    firsts: dict[str, int] = {}
    for i in range(200):
        got = asyncio.run(source.get_candidates(make_query(request_id=f"r{i}", now_ms=now)))
        ids = [c.video_id for c in got]
        assert set(ids) == {"new", "good", "bad"}  # "spent" is out of impressions, "old" too old
        assert all(c.exploration for c in got)
        firsts[ids[0]] = firsts.get(ids[0], 0) + 1
    # Thompson sampling: the proven video leads most often, the unknown one sometimes, the
    # one users skip almost never.
    assert firsts["good"] > firsts.get("new", 0) > firsts.get("bad", 0)
    assert firsts.get("new", 0) >= 10


class CountingState:
    """The in-process state, counting the videos of each counters read (a wrapper: the
    compiled build's classes cannot be subclassed here, ``fyp.ops.compiled``)."""

    def __init__(self, settings: Settings) -> None:
        self.inner = MemoryOnlineState(settings.online)
        self.reads: list[int] = []

    def video_counters(self, video_ids: Sequence[str], now_ms: int) -> VideoCounters:
        self.reads.append(len(video_ids))
        return self.inner.video_counters(video_ids, now_ms)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_large_window_is_sampled_yet_every_young_video_gets_drawn(settings: Settings) -> None:
    store = open_data_store("memory://")
    store.upsert_users([User(id="c1")])
    now = now_ms()
    young = [
        VideoIn(id=f"y{i}", creator_id="c1", created_at=from_ms(now - H - i * 1000))
        for i in range(1000)
    ]
    old = VideoIn(id="old", creator_id="c1", created_at=from_ms(now - 200 * H))
    store.upsert_videos([*young, old], "approved")
    online = CountingState(settings)
    catalog = CatalogIndex(store, 0.0)
    source = FreshSource(catalog, cast(OnlineState, online), ServingSettings(fresh_window_h=72))
    fs = FeedSettings(quotas=SourceQuotas(fresh=10))
    drawn: set[str] = set()
    for i in range(100):
        query = make_query(request_id=f"r{i}", now_ms=now, settings=fs, served={"y0"})
        got = asyncio.run(source.get_candidates(query))
        assert len(got) == 10 and {c.video_id for c in got}.isdisjoint({"y0", "old"})
        drawn.update(c.video_id for c in got)
    assert max(online.reads) <= 200  # never the whole window
    # 100 requests x 10 slots over 999 eligible videos: a uniform draw reaches most of them
    # (newest-first scanning would keep returning the same few dozen)
    assert len(drawn) > 500
