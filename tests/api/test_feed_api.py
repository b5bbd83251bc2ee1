"""GET /v1/users/{id}/feed: every behaviour of the For You feed, driven through the HTTP API."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fyp.config import Settings
from fyp.experiments.assignment import Assignment
from fyp.models import VideoIn
from fyp.pipeline.candidate import Candidate
from fyp.pipeline.query import Query
from fyp.pipeline.stages import StageBase
from fyp.side_effects.served_log_side_effect import ServedLogSideEffect
from fyp.storage.data import open_data_store
from tests.api.support import assert_error, serve, with_settings
from tests.conftest import Api
from tests.pipeline.world import N_VIDEOS, TAGS, seed_world, tag_of

ITEM_KEYS = {"position", "video", "reasons"}
BODY_KEYS = {"request_id", "user_id", "items", "cursor", "exhausted", "fallback", "arms"}
_ids = itertools.count()


def feed_settings(settings: Settings, **feed: Any) -> Settings:
    # The index re-reads the catalog on every request and the served log is written with each
    # request, so tests see their own writes at once.
    # A generous stage budget: a busy test machine must not turn into skipped stages here
    # (tests/pipeline/test_runner.py covers budgets).
    serving = {"catalog_refresh_s": 0.0, "served_log_flush_ms": 0.0}
    return with_settings(settings, serving=serving, feed={"stage_budget_ms": 5000.0, **feed})


@pytest.fixture
def fapi(settings: Settings) -> Iterator[Api]:
    with serve(feed_settings(settings)) as api:
        seed_world(api.store)
        yield api


def page(api: Api, user: str = "u1", count: int = 10, **params: Any) -> dict[str, Any]:
    r = api.client.get(f"/v1/users/{user}/feed", params={"count": count, **params}, headers=api.app)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def ids(body: dict[str, Any]) -> list[str]:
    return [it["video"]["id"] for it in body["items"]]


def send(api: Api, *events: dict[str, Any]) -> None:
    now = datetime.now(UTC).isoformat()
    batch = [{"event_id": f"fe{next(_ids)}", "ts": now, **e} for e in events]
    r = api.client.post("/v1/events", json={"events": batch}, headers=api.app)
    assert r.status_code == 200, r.text
    assert r.json()["stored"] == len(batch), r.text


def explain(api: Api, video_id: str, user: str = "u1") -> dict[str, Any]:
    r = api.client.get(
        f"/v1/users/{user}/feed/explain", params={"video_id": video_id}, headers=api.admin
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def drain(api: Api, user: str = "u1", count: int = 50) -> list[dict[str, Any]]:
    """Pages until the catalog is exhausted (the exhausted page included)."""
    pages = []
    for _ in range(10):
        body = page(api, user, count)
        pages.append(body)
        if body["exhausted"]:
            return pages
    raise AssertionError("the catalog never ran out")


# -- shape ---------------------------------------------------------------------------------------


def test_feed_response_shape_and_served_log(fapi: Api) -> None:
    body = page(fapi, count=5)
    assert set(body) == BODY_KEYS
    assert body["user_id"] == "u1"
    assert body["request_id"].startswith("r_")
    assert body["fallback"] is None
    assert body["exhausted"] is False
    assert body["arms"] == {}
    assert [it["position"] for it in body["items"]] == list(range(5))
    for it in body["items"]:
        assert set(it) == ITEM_KEYS
        reasons = it["reasons"]
        assert {"source", "sources", "exploration", "score", "signals"} <= set(reasons)
        assert reasons["sources"][0] == reasons["source"]
        assert isinstance(reasons["score"], float)
        assert all(set(s) == {"name", "value"} for s in reasons["signals"])
        # The video is exactly what GET /v1/videos/{id} returns.
        vid = it["video"]["id"]
        assert fapi.client.get(f"/v1/videos/{vid}", headers=fapi.app).json() == it["video"]
    second = page(fapi, count=5, cursor=body["cursor"])
    assert second["request_id"] != body["request_id"]

    rows = [r for _, r in fapi.store.read_served()]
    assert [r.video_id for r in rows[:5]] == ids(body)
    assert {r.request_id for r in rows[:5]} == {body["request_id"]}
    assert [r.position for r in rows] == list(range(10))  # the cursor continues positions
    first = rows[0]
    assert first.source == body["items"][0]["reasons"]["source"]
    assert first.features["v_complete_rate"] > 0
    assert "aff_hashtag_max" in first.features


def test_bad_count_and_cursor_are_refused(fapi: Api) -> None:
    r = fapi.client.get("/v1/users/u1/feed", params={"count": 0}, headers=fapi.app)
    assert_error(r, 422, "invalid_request")
    r = fapi.client.get("/v1/users/u1/feed", params={"cursor": "nope"}, headers=fapi.app)
    assert_error(r, 422, "invalid_cursor")
    r = fapi.client.get("/v1/users/u1/feed")
    assert_error(r, 401, "unauthorized")


def test_unknown_user_is_404_or_created_per_settings(fapi: Api, settings: Settings) -> None:
    r = fapi.client.get("/v1/users/ghost/feed", headers=fapi.app)
    assert_error(r, 404, "not_found")
    auto = with_settings(feed_settings(settings), ingest={"auto_create_users": True})
    with serve(auto) as api:
        seed_world(api.store)
        body = page(api, "newcomer", 5)
        assert len(body["items"]) == 5
        assert api.store.get_user("newcomer") is not None


# -- never repeat --------------------------------------------------------------------------------


def test_never_repeats_across_pages_until_the_catalog_is_exhausted(fapi: Api) -> None:
    pages = drain(fapi, count=40)
    fresh = [
        vid
        for body in pages
        for it in body["items"]
        if not it["reasons"]["repeat"]
        for vid in [it["video"]["id"]]
    ]
    assert len(fresh) == len(set(fresh)) == N_VIDEOS
    assert [b["exhausted"] for b in pages] == [False, False, True]
    last = pages[-1]
    assert len(last["items"]) == 40  # topped up with earlier videos, marked as repeats
    assert sum(it["reasons"]["repeat"] for it in last["items"]) == 40 - (N_VIDEOS - 80)


def test_never_repeats_across_a_server_restart(settings: Settings, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fyp.db'}"
    # Batched served-log writes, as in production: shutting down must flush them.
    s = with_settings(feed_settings(settings), serving={"served_log_flush_ms": 200.0})
    s = s.model_copy(update={"database_url": url})
    store = open_data_store(url)
    store.migrate()
    with serve(s, store) as api:
        seed_world(api.store)
        before = ids(page(api, count=30)) + ids(page(api, count=30))
    with serve(s, open_data_store(url)) as api:  # a new process: cold online state
        after = ids(page(api, count=30))
    assert len(set(before)) == 60
    assert len(after) == 30
    assert not set(after) & set(before)


@pytest.mark.parametrize(("flush_ms", "on_a_worker_thread"), [(0.0, True), (200.0, False)])
def test_the_served_log_waits_on_a_worker_thread_only_when_it_writes_there(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, flush_ms: float, on_a_worker_thread: bool
) -> None:
    # Unbatched, the served log commits in run(): that must not block the event loop. Batched,
    # run() only queues the rows, and a thread hand-off per request would cost more than that.
    ran_on: list[str] = []
    run = ServedLogSideEffect.run

    def spy(self: ServedLogSideEffect, query: Query, served: list[Candidate]) -> None:
        ran_on.append(threading.current_thread().name)
        run(self, query, served)

    monkeypatch.setattr(ServedLogSideEffect, "run", spy)
    s = with_settings(feed_settings(settings), serving={"served_log_flush_ms": flush_ms})
    with serve(s) as api:
        seed_world(api.store)
        first = ids(page(api, count=10))
    with serve(s, api.store) as api:  # the rows reached the store either way (a restart reads them)
        again = ids(page(api, count=10))
    assert len(ran_on) == 2
    assert all(name.startswith("AnyIO worker thread") == on_a_worker_thread for name in ran_on)
    assert len(first) == len(again) == 10 and not set(first) & set(again)


def test_never_repeat_horizon_zero_allows_repeats(settings: Settings) -> None:
    with serve(feed_settings(settings, never_repeat_days=0)) as api:
        seed_world(api.store)
        first = ids(page(api, count=20))
        again = ids(page(api, count=20))
    assert set(first) & set(again)


# -- learns at once ------------------------------------------------------------------------------


def test_engaging_with_a_hashtag_brings_more_of_it_on_the_next_page(fapi: Api) -> None:
    before = page(fapi, count=10)
    cooking_before = sum(tag_of(it) == "cooking" for it in before["items"])
    watched = [f"v{i:03d}" for i in range(N_VIDEOS) if TAGS[(i // 2) % 4] == "cooking"][:3]
    send(
        fapi,
        *({"user_id": "u1", "type": "play", "video_id": v, "watch_ms": 10_000} for v in watched),
        *({"user_id": "u1", "type": "like", "video_id": v} for v in watched),
    )
    after = page(fapi, count=10)
    cooking_after = sum(tag_of(it) == "cooking" for it in after["items"])
    assert cooking_after > cooking_before
    assert cooking_after >= 5
    assert any(it["reasons"]["source"] == "affinity" for it in after["items"])


def test_a_skip_streak_lowers_that_creator(fapi: Api) -> None:
    target = "v011"  # creator c3
    before = explain(fapi, target)
    skipped = [f"v{i:03d}" for i in (3, 19, 27)]  # all by c3
    send(fapi, *({"user_id": "u1", "type": "skip", "video_id": v} for v in skipped))
    after = explain(fapi, target)
    assert after["features"]["skip_streak"] >= 2.5
    assert after["score"] < before["score"] - 0.3
    assert after["rank"] > before["rank"]
    body = page(fapi, count=10)
    assert all(it["video"]["creator_id"] != "c3" for it in body["items"])


def test_not_interested_removes_the_creator_and_the_sound(fapi: Api) -> None:
    send(fapi, {"user_id": "u1", "type": "not_interested", "video_id": "v005"})  # c5, s5
    for body in drain(fapi):
        for it in body["items"]:
            assert it["video"]["creator_id"] != "c5"
            assert it["video"]["sound_id"] != "s5"
    assert explain(fapi, "v013")["removed_by"] == "NegativeFeedbackFilter"  # c5
    assert explain(fapi, "v017")["removed_by"] == "NegativeFeedbackFilter"  # s5


def test_not_interested_mute_lasts_the_configured_time(settings: Settings) -> None:
    with serve(feed_settings(settings, not_interested_days=0)) as api:
        seed_world(api.store)
        send(api, {"user_id": "u1", "type": "not_interested", "video_id": "v005"})
        assert explain(api, "v005")["removed_by"] == "NegativeFeedbackFilter"  # the video: always
        assert explain(api, "v013")["removed_by"] is None  # its creator: the mute has lapsed


def test_report_hides_the_video_from_the_reporter_at_once(settings: Settings) -> None:
    with serve(feed_settings(settings, never_repeat_days=0)) as api:
        seed_world(api.store)
        top = ids(page(api, count=10))[0]
        assert top in ids(page(api, count=10))  # repeats are allowed in this setup
        send(api, {"user_id": "u1", "type": "report", "video_id": top})
        for _ in range(3):
            assert top not in ids(page(api, count=50))
        assert explain(api, top, "u2")["eligible"] is True  # only hidden for the reporter
        assert explain(api, top)["removed_by"] == "NegativeFeedbackFilter"


def test_follow_brings_the_creators_videos_in(fapi: Api) -> None:
    # A creator nobody engaged with, whose one video is too old for the fresh pool and too far
    # down the catalog for the backfill: only following can bring it in.
    old = (datetime.now(UTC) - timedelta(days=30)).isoformat()
    fapi.client.put("/v1/users/quiet", json={"region": "US"}, headers=fapi.admin)
    r = fapi.client.put(
        "/v1/videos/by-quiet",
        json={"creator_id": "quiet", "hashtags": ["travel"], "created_at": old},
        headers=fapi.admin,
    )
    assert r.status_code == 200, r.text
    assert "by-quiet" not in ids(page(fapi, "u2", count=10))
    send(fapi, {"user_id": "u1", "type": "follow", "creator_id": "quiet"})
    body = page(fapi, count=10)
    found = [it for it in body["items"] if it["video"]["id"] == "by-quiet"]
    assert found, ids(body)
    assert found[0]["reasons"]["source"] == "following"


# -- safety --------------------------------------------------------------------------------------


def test_blocked_creators_never_appear(fapi: Api) -> None:
    r = fapi.client.put("/v1/users/u1/blocks/c2", headers=fapi.admin)
    assert r.status_code == 204
    pages = drain(fapi)
    served = [it for body in pages for it in body["items"]]
    assert len(served) > 80
    assert all(it["video"]["creator_id"] != "c2" for it in served)


def test_limited_videos_only_reach_adults_in_allowed_regions(fapi: Api) -> None:
    r = fapi.client.post(
        "/v1/videos/v000/moderation",
        json={"state": "limited", "allowed_regions": ["US"]},
        headers=fapi.admin,
    )
    assert r.status_code == 200, r.text
    r = fapi.client.post(
        "/v1/videos/v001/moderation", json={"state": "removed"}, headers=fapi.admin
    )
    assert r.status_code == 200
    for user in ("teen", "gb"):
        served = {vid for body in drain(fapi, user) for vid in ids(body)}
        assert "v000" not in served and "v001" not in served
        assert explain(fapi, "v000", user)["removed_by"] == "ModerationFilter"
    assert explain(fapi, "v000", "u1")["eligible"] is True
    assert "v000" in {vid for body in drain(fapi, "u1") for vid in ids(body)}


# -- cold start ----------------------------------------------------------------------------------


def test_a_new_user_gets_their_declared_interests_first(fapi: Api) -> None:
    body = page(fapi, "petlover", 10)
    pets = sum(tag_of(it) == "pets" for it in body["items"])
    assert pets >= 5
    assert len({it["video"]["creator_id"] for it in body["items"]}) >= 4  # still diverse


def test_a_brand_new_video_is_served_through_the_fresh_pool(fapi: Api) -> None:
    r = fapi.client.put(
        "/v1/videos/brand-new", json={"creator_id": "c1", "hashtags": ["dance"]}, headers=fapi.admin
    )
    assert r.status_code == 200
    body = page(fapi, count=10)
    found = [it for it in body["items"] if it["video"]["id"] == "brand-new"]
    assert found, ids(body)
    assert "fresh" in found[0]["reasons"]["sources"]


# -- robustness ----------------------------------------------------------------------------------


class _BoomScorer(StageBase):
    def score(self, query: Query, cands: list[Candidate]) -> list[Candidate]:
        raise RuntimeError("boom")


class _BoomSource(StageBase):
    reason = "boom"

    async def get_candidates(self, query: Query) -> list[Candidate]:
        raise RuntimeError("boom")


def test_a_failing_stage_still_answers_200_with_a_fallback(fapi: Api) -> None:
    assert fapi.services.feed is not None
    pipeline = fapi.services.feed.pipeline
    pipeline.sources.insert(0, _BoomSource())
    body = page(fapi, count=10)
    assert len(body["items"]) == 10  # a failing source just contributes nothing
    pipeline.scorers.insert(0, _BoomScorer())
    body = page(fapi, count=10)
    assert len(body["items"]) == 10
    assert body["fallback"] is not None and "_BoomScorer" in body["fallback"]


def test_disabled_stages_are_switched_off_by_name(settings: Settings) -> None:
    with serve(
        feed_settings(settings, disabled_stages=["BackfillSource", "AffinitySource"])
    ) as api:
        seed_world(api.store)
        body = page(api, "petlover", 10)
    # With no events there is no trending and the catalog is too old for the fresh pool.
    assert body["items"] == []
    assert body["exhausted"] is True


class _Arms:
    def assign(self, user_id: str) -> Assignment:
        return Assignment({"exp1": "small"}, {"default_count": 3, "random_scores": True})


def test_experiment_arms_override_the_feed_and_are_recorded(fapi: Api) -> None:
    fapi.services.assigner = _Arms()
    r = fapi.client.get("/v1/users/u1/feed", headers=fapi.app)
    body = r.json()
    assert body["arms"] == {"exp1": "small"}
    assert len(body["items"]) == 3
    assert body["items"][0]["reasons"]["signals"][0]["name"] == "random"
    rows = [r for _, r in fapi.store.read_served()]
    assert {tuple(r.arms.items()) for r in rows} == {(("exp1", "small"),)}


# -- explain -------------------------------------------------------------------------------------


def test_explain_shows_the_score_parts_of_one_video(fapi: Api) -> None:
    body = explain(fapi, "v010")
    assert body["eligible"] is True
    assert body["removed_by"] is None
    assert set(body["predictions"]) >= {"complete", "like", "share", "follow", "skip"}
    parts = body["parts"]
    assert abs(sum(parts.values()) - body["score"]) < 1e-9
    assert parts["skip"] <= 0 <= parts["complete"]
    assert isinstance(body["rank"], int)
    r = fapi.client.get("/v1/users/u1/feed/explain", params={"video_id": "v010"}, headers=fapi.app)
    assert_error(r, 403, "forbidden")
    r = fapi.client.get(
        "/v1/users/u1/feed/explain", params={"video_id": "nope"}, headers=fapi.admin
    )
    assert_error(r, 404, "not_found")
    # Explaining serves nothing and logs nothing.
    assert fapi.store.read_served() == []


# -- the Redis online state ------------------------------------------------------------------------


def test_the_feed_on_redis_learns_at_once_and_never_repeats_across_restarts(
    settings: Settings,
) -> None:
    import redis

    from tests.conftest import _unavailable

    prefix = f"fyptest:{next(_ids)}:{datetime.now(UTC).timestamp()}:"
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        client.ping()
    except redis.RedisError as e:
        _unavailable("Redis", e)
    s = with_settings(feed_settings(settings), online={"backend": "redis", "key_prefix": prefix})
    store = open_data_store("memory://")
    try:
        with serve(s, store) as api:
            seed_world(api.store)
            first = ids(page(api, count=20))
            send(api, {"user_id": "u1", "type": "not_interested", "video_id": "v005"})
        # Wipe the durable served log: after the restart only Redis can remember what was served.
        store._served.clear()  # type: ignore[attr-defined]
        with serve(s, store) as api:
            body = page(api, count=50)
        assert not set(ids(body)) & set(first)
        assert all(it["video"]["creator_id"] != "c5" for it in body["items"])
    finally:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()


def test_strict_region_preference(settings: Settings) -> None:
    s = with_settings(feed_settings(settings), serving={"region_strict": True})
    with serve(s) as api:
        seed_world(api.store)
        assert page(api, "gb", 10)["items"] == []  # every video is from the US
        assert len(page(api, "u1", 10)["items"]) == 10


def test_an_unreachable_online_state_degrades_the_feed_instead_of_failing(
    settings: Settings,
) -> None:
    dead = {"backend": "redis", "redis_url": "redis://127.0.0.1:1/0", "redis_timeout_s": 0.2}
    with serve(with_settings(feed_settings(settings), online=dead)) as api:
        seed_world(api.store)
        send(api, {"user_id": "u1", "type": "like", "video_id": "v000"})  # stored regardless
        first = page(api, count=20)
        second = page(api, count=20)
    for body in (first, second):
        assert len(body["items"]) == 20
        assert body["fallback"] is not None and "online state unavailable" in body["fallback"]
    # Never-repeat still holds: the durable served log stands in for the seen set.
    assert not set(ids(first)) & set(ids(second))


@pytest.mark.parametrize(
    "online",
    [
        {"warm_events": 0},  # in-process, nothing replayed from the log at start-up
        {"backend": "redis", "redis_url": "redis://127.0.0.1:1/0", "redis_timeout_s": 0.2},
    ],
    ids=["memory-no-warm-up", "redis"],
)
def test_the_catalog_index_loads_before_the_server_reports_ready(
    settings: Settings, online: dict[str, Any]
) -> None:
    """Loaded by the first feed request instead, a million-video catalog held that request
    (and each worker's first) for over a minute after the server said it was ready."""
    store = open_data_store("memory://")
    seed_world(store)
    # A production refresh period, so only the start-up load and its first catch-up can
    # account for what the index holds.
    s = with_settings(feed_settings(settings), online=online, serving={"catalog_refresh_s": 60.0})
    with serve(s, store) as api:
        assert api.services.feed is not None
        catalog = api.services.feed.clients.catalog
        assert catalog.loaded
        # A video stored after start-up is still in the very first feed request's index, as it
        # was when that request did the whole load.
        api.store.upsert_videos([VideoIn(id="late", creator_id="c1")], "approved")
        assert {"v000", "late"} <= set(catalog.snapshot().by_id)
