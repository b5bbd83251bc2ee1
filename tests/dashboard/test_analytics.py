from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from fyp.catalog import Catalog
from fyp.config import CatalogSettings, IngestSettings
from fyp.dashboard import Analytics
from fyp.dashboard.analytics import HOUR_MS, MINUTE_MS
from fyp.events import EventIngestor
from fyp.storage.data import DataStore, open_data_store

# A fixed "now" on a round hour, so minute and hour buckets are easy to reason about.
NOW = 1_800_000_000_000 - (1_800_000_000_000 % HOUR_MS)


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


class World:
    def __init__(self, store: DataStore) -> None:
        self.store = store
        self.catalog = Catalog(store, CatalogSettings())
        self.ingestor = EventIngestor(store, IngestSettings(), clock=lambda: NOW)
        self.n = 0
        self.catalog.upsert_users(
            [
                {"id": "c1", "region": "US"},
                {"id": "c2", "region": "DE"},
                {"id": "u1", "region": "US"},
                {"id": "u2", "region": "GB"},
                {"id": "u3", "region": "GB"},
            ]
        )
        self.catalog.upsert_videos(
            [
                {"id": "v1", "creator_id": "c1", "hashtags": ["dance"], "sound_id": "s1",
                 "duration_ms": 10_000},
                {"id": "v2", "creator_id": "c1", "hashtags": ["cooking"], "sound_id": "s2",
                 "duration_ms": 10_000},
                {"id": "v3", "creator_id": "c2", "hashtags": ["pets", "dance"], "sound_id": "s1",
                 "duration_ms": 20_000},
            ]
        )  # fmt: skip

    def event(self, user: str, kind: str, video: str | None, ts: int, **more: Any) -> None:
        self.n += 1
        body = {"event_id": f"e{self.n}", "user_id": user, "type": kind, "ts": iso(ts), **more}
        if video is not None:
            body["video_id"] = video
        result = self.ingestor.ingest({"events": [body]})
        assert result.stored == 1, result.rejected

    def view(self, user: str, video: str, ts: int, watch_ms: int) -> None:
        self.event(user, "impression", video, ts)
        self.event(user, "play", video, ts, watch_ms=watch_ms)


@pytest.fixture
def world() -> World:
    return World(open_data_store("memory://"))


def analytics(world: World) -> Analytics:
    return Analytics(world.store, refresh_s=0, clock=lambda: NOW)


def test_overview_buckets_events_users_watch_completion_and_skips(world: World) -> None:
    t = NOW - 30 * MINUTE_MS
    world.view("u1", "v1", t, watch_ms=9_500)  # completes (>= 90% of 10 s)
    world.view("u2", "v1", t + 1000, watch_ms=2_000)
    world.event("u2", "skip", "v1", t + 2000)
    world.view("u1", "v2", NOW - 5 * MINUTE_MS, watch_ms=10_000)
    data = analytics(world).overview(hours=1, step_minutes=15)
    s = data["series"]
    assert len(s["t"]) == 4 and s["t"][-1] <= NOW < s["t"][-1] + 15 * MINUTE_MS
    bucket = next(i for i, b in enumerate(s["t"]) if b <= t < b + 15 * MINUTE_MS)
    assert s["events_per_minute"][bucket] == pytest.approx(5 / 15)
    assert s["active_users"][bucket] == 2
    assert s["watch_ms_per_user"][bucket] == pytest.approx((9_500 + 2_000) / 2)
    assert s["completion_rate"][bucket] == pytest.approx(0.5)
    assert s["skip_rate"][bucket] == pytest.approx(0.5)
    empty = next(i for i, b in enumerate(s["t"]) if s["events_per_minute"][i] == 0)
    assert s["completion_rate"][empty] is None  # no plays: undefined, not zero
    totals = data["totals"]
    assert totals["events"] == 7
    assert totals["active_users"] == 2
    assert totals["completion_rate"] == pytest.approx(2 / 3)
    assert totals["by_type"]["impression"] == 3


def test_events_outside_the_window_do_not_count(world: World) -> None:
    world.view("u1", "v1", NOW - 3 * HOUR_MS, watch_ms=1000)
    data = analytics(world).overview(hours=1, step_minutes=5)
    assert sum(data["series"]["events_per_minute"]) == 0
    assert data["totals"]["events_all_time"] == 2


def test_refresh_folds_in_only_new_events(world: World) -> None:
    a = analytics(world)
    world.event("u1", "like", "v1", NOW - MINUTE_MS)
    assert a.overview(1, 60)["totals"]["events"] == 1
    world.event("u2", "like", "v1", NOW - MINUTE_MS)
    assert a.overview(1, 60)["totals"]["events"] == 2
    assert a.overview(1, 60)["totals"]["events"] == 2  # re-reading adds nothing twice


def test_refresh_is_rate_limited(world: World) -> None:
    a = Analytics(world.store, refresh_s=3600, clock=lambda: NOW)
    assert a.overview(1, 60)["totals"]["events"] == 0
    world.event("u1", "like", "v1", NOW - MINUTE_MS)
    assert a.overview(1, 60)["totals"]["events"] == 0
    a.refresh(force=True)
    assert a.overview(1, 60)["totals"]["events"] == 1


def test_trending_ranks_by_recent_engagement_and_reports_growth(world: World) -> None:
    recent = NOW - HOUR_MS // 2
    earlier = NOW - 8 * HOUR_MS
    # cooking was big before the window and is quiet now; pets/dance are rising now.
    for i in range(5):
        world.event(f"u{1 + i % 3}", "share", "v2", earlier + i)
    world.event("u1", "like", "v3", recent)
    world.event("u2", "share", "v3", recent)
    world.event("u3", "like", "v1", recent)
    data = analytics(world).trending(hours=6, limit=10)
    tags = [r["name"] for r in data["hashtags"]]
    assert tags[:2] == ["dance", "pets"]  # dance: v3 (3) + v1 (1); pets: v3 (3)
    dance = data["hashtags"][0]
    assert dance["velocity"] == pytest.approx(4 / 6)
    assert dance["growth"] == pytest.approx(5.0)  # (4 + 1) / (0 + 1)
    assert data["sounds"][0]["name"] == "s1"
    rising = [r["video_id"] for r in data["rising"]]
    assert rising == ["v3", "v1"]  # v2's engagement is older than the window
    assert data["rising"][0]["creator_id"] == "c2"


def test_completed_plays_count_as_engagement(world: World) -> None:
    world.view("u1", "v3", NOW - MINUTE_MS, watch_ms=19_000)  # 95% of 20 s
    world.view("u2", "v1", NOW - MINUTE_MS, watch_ms=1_000)
    rising = analytics(world).trending(hours=1)["rising"]
    assert [r["video_id"] for r in rising] == ["v3"]


def test_creators_reach_completion_followers_and_audience(world: World) -> None:
    t = NOW - HOUR_MS
    world.view("u1", "v1", t, watch_ms=10_000)
    world.view("u1", "v2", t, watch_ms=1_000)  # same viewer: reach stays 1
    world.view("u2", "v1", t, watch_ms=9_000)
    world.view("u3", "v3", t, watch_ms=1_000)
    world.event("u2", "follow", None, t, creator_id="c1")
    world.event("u3", "follow", "v1", t)  # a follow from a video names its creator
    world.event("u3", "unfollow", None, t, creator_id="c1")
    data = analytics(world).creators()
    c1 = data["creators"][0]
    assert c1["creator_id"] == "c1"
    assert c1["reach"] == 2
    assert c1["impressions"] == 3
    assert c1["completion_rate"] == pytest.approx(2 / 3)
    assert c1["followers_gained"] == 2 and c1["followers_lost"] == 1
    assert c1["regions"] == {"US": 1, "GB": 1}
    one = analytics(world).creator("c1")
    assert one is not None
    assert {v["video_id"] for v in one["videos"]} == {"v1", "v2"}
    assert analytics(world).creator("nobody") is None


def test_max_events_starts_from_the_newest(world: World) -> None:
    for i in range(1500):
        world.event("u1", "like", "v1", NOW - MINUTE_MS + i)
    a = Analytics(world.store, refresh_s=0, max_events=1000, clock=lambda: NOW)
    assert a.overview(1, 60)["totals"]["events"] == 1000


def test_old_minutes_and_hours_are_dropped(world: World) -> None:
    now = [NOW]
    a = Analytics(world.store, refresh_s=0, window_hours=2, clock=lambda: now[0])
    world.event("u1", "like", "v1", NOW - MINUTE_MS)
    a.refresh()
    assert a.minutes and a.by_video["v1"].hourly
    now[0] = NOW + 10 * HOUR_MS
    a.refresh()
    assert not a.minutes
    assert not a.by_video["v1"].hourly
    assert a.by_video["v1"].likes == 1  # lifetime counters stay
