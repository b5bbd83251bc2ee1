"""Ingest → online state: the post-commit hook sees stored events only, and a cold user or a
restarted in-process state is rebuilt from the durable log."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from fyp.config import Settings
from fyp.events import EventIngestor
from fyp.events.online import OnlineUpdater
from fyp.models import VideoIn
from fyp.pipeline.catalog_index import CatalogIndex
from fyp.storage.cache import GLOBAL
from fyp.storage.cache.memory import MemoryOnlineState
from fyp.storage.data import DataStore, EventRow, LogEvent, open_data_store
from tests.pipeline.world import seed_world, video

NOW = datetime.now(UTC).isoformat()


def ev(eid: str, **kw: object) -> dict[str, object]:
    return {"event_id": eid, "user_id": "u1", "type": "like", "video_id": "v000", "ts": NOW, **kw}


@pytest.fixture
def world(settings: Settings) -> DataStore:
    store = open_data_store("memory://")
    seed_world(store)
    return store


def updater(store: DataStore, settings: Settings) -> OnlineUpdater:
    online = MemoryOnlineState(settings.online)
    return OnlineUpdater(online, CatalogIndex(store, 0.0), store, settings)


def test_the_hook_sees_each_stored_event_once_and_never_duplicates(
    world: DataStore, settings: Settings
) -> None:
    seen: list[list[str]] = []

    def hook(rows: Sequence[EventRow]) -> None:
        seen.append([r["event_id"] for r in rows])

    ing = EventIngestor(world, settings.ingest, on_stored=hook)
    ing.ingest([ev("a"), ev("b"), ev("a"), {"bad": 1}])
    ing.ingest([ev("a"), ev("c")])
    ing.ingest([ev("b")])  # all duplicates: no call
    assert seen == [["a", "b"], ["c"]]


def test_a_failing_hook_does_not_fail_the_ingest(world: DataStore, settings: Settings) -> None:
    def hook(rows: Sequence[EventRow]) -> None:
        raise RuntimeError("online state down")

    result = EventIngestor(world, settings.ingest, on_stored=hook).ingest([ev("a")])
    assert result.stored == 1
    assert world.get_event("a") is not None


BATCH = [
    ev("p", type="play", watch_ms=10_000),  # v000: cooking, c0, s0; complete
    ev("l"),
    ev("s", type="skip", video_id="v011"),  # c3
    ev("n", type="not_interested", video_id="v005"),
    ev("r", type="report", video_id="v006"),
]


def test_events_update_user_and_video_state(world: DataStore, settings: Settings) -> None:
    up = updater(world, settings)
    assert up.warm_user("u1") is True  # the user's feed request: warm from here on
    ing = EventIngestor(world, settings.ingest, on_stored=up.on_stored)
    ing.ingest(BATCH)
    st = up.online.user_state("u1", up.clock())
    assert st.warm
    assert [v for v, _ in st.recent] == ["v000", "v000"]
    assert st.affinity("hashtag", "cooking") > 2
    assert st.affinity("skip", "c3") == pytest.approx(1.0, rel=1e-3)
    assert set(st.mutes["creator"]) == {"c5"} and set(st.mutes["sound"]) == {"s5"}
    assert set(st.mutes["video"]) == {"v005"} and set(st.mutes["report"]) == {"v006"}
    stats = up.online.video_counters(["v000"], up.clock()).of(0)
    assert (stats.get("plays"), stats.get("completes"), stats.get("likes")) == (1, 1, 1)
    assert up.online.trending(GLOBAL, 1, up.clock())[0][0] == "v000"


def test_a_cold_users_part_waits_for_their_next_request(
    world: DataStore, settings: Settings
) -> None:
    """Ingestion never reads a cold user's history: the video side takes the events at once,
    the user stays cold, and the rebuild on their next request holds exactly what a warm user
    would have had."""
    live = updater(world, settings)
    live.warm_user("u1")
    EventIngestor(world, settings.ingest, on_stored=live.on_stored).ingest(BATCH)
    expected = live.online.user_state("u1", live.clock())

    other = open_data_store("memory://")
    seed_world(other)
    up = updater(other, settings)
    reads: list[str] = []
    user_events = other.user_events

    def spy(user_id: str, *a: object, **kw: object) -> list[LogEvent]:
        reads.append(user_id)
        return user_events(user_id, *a, **kw)  # type: ignore[arg-type]

    other.user_events = spy  # type: ignore[method-assign]
    EventIngestor(other, settings.ingest, on_stored=up.on_stored).ingest(BATCH)
    assert reads == []
    assert up.online.warm_users({"u1"}) == set()
    stats = up.online.video_counters(["v000"], up.clock()).of(0)
    assert (stats.get("plays"), stats.get("completes"), stats.get("likes")) == (1, 1, 1)
    assert up.warm_user("u1") is True and reads == ["u1"]
    st = up.online.user_state("u1", up.clock())
    assert st.warm and st.recent == expected.recent and st.mutes == expected.mutes
    for kind, scores in expected.affinities.items():
        assert st.affinities[kind] == pytest.approx(scores, rel=1e-6)
    assert set(st.affinities) == set(expected.affinities)


def test_a_cold_user_is_rebuilt_from_the_log(world: DataStore, settings: Settings) -> None:
    EventIngestor(world, settings.ingest).ingest([ev("l1"), ev("n1", type="not_interested")])
    up = updater(world, settings)  # a restarted process: nothing in memory
    assert up.warm_user("u1") is True
    st = up.online.user_state("u1", up.clock())
    assert st.affinity("hashtag", "cooking") > 0
    assert "c0" in st.mutes["creator"]
    now = up.clock()
    before = up.online.user_state("u1", now)
    up.warm_user("u1")  # a second request that found them cold: no second replay lands
    assert up.online.user_state("u1", now) == before
    # The next live event adds to the rebuilt state instead of starting from nothing.
    EventIngestor(world, settings.ingest, on_stored=up.on_stored).ingest([ev("l2")])
    assert len(up.online.user_state("u1", up.clock()).recent) == 2


def test_a_rebuild_leaves_what_each_event_applied_in_turn_leaves(
    world: DataStore, settings: Settings
) -> None:
    """A cold user's rebuild folds their log as it translates it (no op for each update): the
    state it leaves is the one every event's own ops, applied one by one, leave: taste over
    several hashtags, sounds and creators, skip streaks reset by positives, mutes, unlikes,
    unfollows, and more engagements than the recent list keeps."""
    world.upsert_videos(
        [
            VideoIn.model_validate(
                video(i) | {"id": f"m{i}", "hashtags": ["cooking", f"x{i % 5}", f"y{i % 3}"]}
            )
            for i in range(20)
        ],
        "approved",
    )
    videos = [f"v{i:03d}" for i in range(0, 96, 5)] + [f"m{i}" for i in range(20)]
    kinds = ["play", "play", "play", "like", "share", "comment", "unlike", "follow"]
    kinds += ["unfollow", "profile_visit", "skip", "skip", "not_interested", "report"]
    kinds += ["impression"]
    rng = random.Random(7)
    start = datetime.now(UTC) - timedelta(days=6)
    events = []
    for i in range(400):
        kind = rng.choice(kinds)
        ts = (start + timedelta(minutes=20 * i + rng.randrange(20))).isoformat()
        e = ev(f"h{i}", type=kind, video_id=rng.choice(videos), ts=ts)
        if kind == "play":
            e["watch_ms"] = rng.randrange(0, 20_000)
        events.append(e)
    assert EventIngestor(world, settings.ingest).ingest(events).stored == 400

    rebuilt, one_by_one = updater(world, settings), updater(world, settings)
    now = rebuilt.clock()
    assert rebuilt.warm_user("u1", now) is True
    metas = one_by_one.catalog.snapshot().by_id
    for logged in world.user_events("u1", 0, 10_000):
        one_by_one.online.apply(one_by_one.ops(logged, now, metas, video=False))
    got = rebuilt.online.user_state("u1", now)
    want = one_by_one.online.user_state("u1", now)
    assert got.warm
    assert len(want.recent) == settings.online.recent_size  # the bound was reached
    assert got.recent == want.recent and got.mutes == want.mutes
    assert set(want.mutes) == {"video", "creator", "sound", "report"}
    assert (
        got.affinities.keys() == want.affinities.keys() == {"hashtag", "sound", "creator", "skip"}
    )
    assert len(want.affinities["hashtag"]) > 5
    for kind, scores in want.affinities.items():
        assert got.affinities[kind] == pytest.approx(scores, rel=1e-9), kind


def test_a_cold_users_rebuild_is_not_crowded_out_by_impressions(
    world: DataStore, settings: Settings
) -> None:
    # Three events a rebuild; the like is older than the five impressions after it.
    online = settings.online.model_copy(update={"warm_user_events": 3})
    settings = settings.model_copy(update={"online": online})
    EventIngestor(world, settings.ingest).ingest(
        [ev("l1")] + [ev(f"i{i}", type="impression") for i in range(5)]
    )
    up = updater(world, settings)
    assert up.warm_user("u1") is True
    st = up.online.user_state("u1", up.clock())
    [(video, weight)] = st.recent  # the like, though five impressions came after it
    assert video == "v000" and weight == pytest.approx(settings.training.weights.like)
    assert st.affinity("hashtag", "cooking") > 0


def test_video_counters_are_rebuilt_from_the_log_tail(world: DataStore, settings: Settings) -> None:
    EventIngestor(world, settings.ingest).ingest(
        [ev(f"i{i}", type="impression", user_id="u2") for i in range(3)] + [ev("x")]
    )
    up = updater(world, settings)
    assert up.warm_videos(limit=2) == 2  # only the newest two
    assert up.online.video_counters(["v000"], up.clock()).of(0) == {"impressions": 1, "likes": 1}
