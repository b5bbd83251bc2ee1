"""The live audience: real-time days against the fake API, tastes over a server's catalog."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from fyp import demo
from fyp.cli import _live_audience
from fyp.config import Settings, SimulatorSettings
from fyp.simulator import DaySummary, SimConfig, Simulation, SimUser, generate, population
from fyp.simulator.audience import newcomer
from fyp.simulator.catalog import from_videos
from fyp.simulator.live import LiveAudience
from fyp.types import now_ms
from tests.simulator.fake_feed import FakeState, fake_app


class Recording(httpx.AsyncBaseTransport):
    """Delegates to ``inner`` and notes, for every event batch, when it arrived and the latest
    ``ts`` in it; and when each feed was asked for."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.batches: list[tuple[int, int]] = []
        self.feeds: list[float] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/events":
            body = json.loads(request.content)
            self.batches.append((now_ms(), max(e["ts"] for e in body["events"])))
        elif request.url.path.endswith("/feed"):
            self.feeds.append(time.monotonic())
        return await self.inner.handle_async_request(request)


def live_sim(state: FakeState, users: int, **config: Any) -> tuple[Simulation, Recording]:
    catalog = generate(videos=300, creators=30, seed=3)
    transport = Recording(httpx.ASGITransport(app=fake_app(state, learning=True)))
    sim = Simulation(
        catalog,
        population(catalog, users, seed=3, prefix="live_u"),
        SimConfig(url="http://fake", key="appkey", admin_key="adminkey", seed=3, **config),
        transport=transport,
    )
    for v in catalog.videos:
        state.videos[v.id] = v.upload()
    return sim, transport


async def play(sim: Simulation, seconds: float) -> tuple[list[DaySummary], float]:
    """Run ``live`` for ``seconds``, cancel it; (the days it reported, how long cancel took)."""
    days: list[DaySummary] = []
    task = asyncio.create_task(sim.live(days.append))
    await asyncio.sleep(seconds)
    t0 = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    took = time.monotonic() - t0
    # Its sessions and day reports went with it.
    assert asyncio.all_tasks() == {asyncio.current_task()}
    return days, took


def test_live_days_roll_on_in_real_time() -> None:
    state = FakeState()
    sim, rec = live_sim(state, 30, day_s=0.8, speedup=2000.0, max_sessions_per_s=200.0)
    assert asyncio.run(sim.register_users()) == 30
    assert set(state.users) == {f"live_u{i:06d}" for i in range(30)}
    started = now_ms()
    days, cancel_s = asyncio.run(play(sim, 3.0))
    assert cancel_s < 0.5
    # One summary per simulated day, in order, each once all its sessions ended.
    assert [d.day for d in days] == list(range(len(days))) and len(days) >= 2
    assert days[0].active_users == 30  # everyone opens the app on day 0
    assert 0 < days[1].active_users < 30
    assert all(d.errors == 0 for d in days), [d.error_examples for d in days]
    assert all(d.sessions >= d.active_users // 2 and d.events_sent > 0 for d in days)
    # Events carry the real moments they stand for: never ahead of the clock when they
    # arrive, never before the audience started, and each names a feed served to its user.
    assert rec.batches and all(arrived >= latest for arrived, latest in rec.batches)
    assert min(e["ts"] for e in state.events) >= started
    assert all(state.served[e["request_id"]] == e["user_id"] for e in state.events)
    assert {"impression", "play", "skip", "like"} <= {e["type"] for e in state.events}


def test_live_sessions_start_no_faster_than_the_cap() -> None:
    state = FakeState()
    # 40 users would start about 58 sessions at once in a 0.1 s day; the cap spreads them.
    sim, rec = live_sim(state, 40, day_s=0.1, speedup=2000.0, max_sessions_per_s=10.0, max_pages=1)
    asyncio.run(sim.register_users())
    days, _ = asyncio.run(play(sim, 1.5))
    # One page per session: each feed request is a session start, at least 0.1 s apart.
    gaps = [b - a for a, b in zip(rec.feeds, rec.feeds[1:], strict=False)]
    assert 10 <= len(rec.feeds) <= 17
    assert min(gaps) >= 0.09
    assert days == []  # day 0 is still being played


class Slow(httpx.AsyncBaseTransport):
    """Answers every request 50 ms late; counts requests started and answered."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.started: list[float] = []
        self.answered = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.started.append(time.monotonic())
        await request.aread()
        await asyncio.sleep(0.05)
        response = await self.inner.handle_async_request(request)
        await response.aread()
        self.answered += 1
        return response


def test_halt_starts_nothing_new_and_lets_requests_in_flight_finish() -> None:
    """Cutting a request mid-body makes the server log an error: a halt must not."""
    state = FakeState()
    sim, _ = live_sim(state, 40, day_s=0.5, speedup=5000.0, max_sessions_per_s=400.0)
    slow = Slow(httpx.ASGITransport(app=fake_app(state, learning=True)))
    sim.transport = slow
    asyncio.run(sim.register_users())

    async def run() -> tuple[float, float]:
        halt = asyncio.Event()
        task = asyncio.create_task(sim.live(halt=halt))
        await asyncio.sleep(0.6)
        assert slow.started and len(slow.started) > slow.answered  # some are in flight
        t0 = time.monotonic()
        halt.set()
        await task  # returns by itself
        return t0, time.monotonic() - t0

    halted_at, took = asyncio.run(run())
    assert took < 0.5
    assert slow.answered == len(slow.started)  # everything started was answered
    assert all(t <= halted_at for t in slow.started)  # and nothing started after the halt


def test_a_user_who_saw_everything_makes_way_for_a_newcomer() -> None:
    state = FakeState()
    sim, _ = live_sim(state, 4, day_s=0.3, speedup=5000.0, max_sessions_per_s=100.0)
    # A catalog of 30 videos and pages of 20: a user runs out within a session or two.
    sim.catalog = generate(videos=30, creators=5, seed=3)
    state.videos = {v.id: v.upload() for v in sim.catalog.videos}
    asyncio.run(sim.register_users())
    first = [u.id for u in sim.users]
    joined = iter(range(1000))

    def join() -> SimUser:
        return newcomer(sim.catalog, f"live_n{next(joined)}", seed=next(joined))

    async def run() -> list[DaySummary]:
        days: list[DaySummary] = []
        task = asyncio.create_task(sim.live(days.append, join))
        await asyncio.sleep(2.0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return days

    days = asyncio.run(run())
    assert all(d.errors == 0 for d in days), [d.error_examples for d in days]
    came = sum(d.newcomers for d in days)
    assert came >= 4
    now = [u.id for u in sim.users]
    assert len(now) == 4 and not set(now) <= set(first)  # as many users, some of them new
    # Newcomers were registered before their first feed, and then played.
    newcomers = {u for u in state.users if u.startswith("live_n")}
    assert len(newcomers) == came
    assert newcomers & {e["user_id"] for e in state.events}
    # Whoever left was done: their last feed page said the catalog ran out.
    left = set(first) - set(now)
    assert left and all(len(state.seen[u]) == 30 for u in left)


def test_tastes_are_drawn_over_the_servers_catalog() -> None:
    world = demo.build(creators=12, videos=90, users=5)
    # created_at in the API's shape (ISO with offset), as GET /v1/videos lists it.
    catalog = from_videos(world.videos, seed=1)
    assert [v.id for v in catalog.videos] == [v["id"] for v in world.videos]
    assert from_videos(world.videos, seed=1) == catalog  # hidden quality is stable
    tags = {t for v in world.videos for t in v["hashtags"]}
    creators = {v["creator_id"] for v in world.videos}
    sounds = {v["sound_id"] for v in world.videos}
    users = population(catalog, 50, seed=1, prefix="live_u")
    assert [u.id for u in users][:2] == ["live_u000000", "live_u000001"]
    for u in users:
        assert u.tags and set(u.tags) <= tags
        assert u.creators and set(u.creators) <= creators
        assert u.sounds <= sounds


def test_live_audience_over_the_fake_server(tmp_path: Path) -> None:
    """LiveAudience end to end in-process: catalog from GET /v1/videos, users registered,
    sessions played, and stop() ends its thread at once."""
    state = FakeState()
    app = fake_app(state, learning=True)
    world = demo.build(creators=10, videos=80, users=1)
    for v in world.videos:
        state.videos[v["id"]] = v

    @app.get("/v1/videos")
    def videos(moderation: str, limit: int, after: str | None = None) -> dict[str, Any]:
        ids = sorted(i for i in state.videos if after is None or i > after)[:limit]
        return {"videos": [state.videos[i] for i in ids], "next": ids[-1] if ids else None}

    cfg = SimulatorSettings(users=12, day_seconds=0.5, speedup=2000, max_sessions_per_s=100)
    audience = LiveAudience(
        cfg, url="http://fake", key="k", admin_key="a", transport=httpx.ASGITransport(app=app)
    )
    audience.start()
    deadline = time.monotonic() + 10
    while not audience.days and time.monotonic() < deadline:
        time.sleep(0.05)
    t0 = time.monotonic()
    assert audience.stop()
    assert time.monotonic() - t0 < 1.0
    assert audience.days and audience.days[0].errors == 0
    assert {u for u in state.users if u.startswith("live_u")} == {
        f"live_u{i:06d}" for i in range(12)
    }
    assert {e["video_id"] for e in state.events} <= set(state.videos)
    assert {e["user_id"] for e in state.events} <= set(state.users)


def test_serve_without_demo_keys_runs_no_audience(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(var_dir=tmp_path)
    assert _live_audience(settings, "127.0.0.1", 8000, 0, wait_ready=False) is None
    assert _live_audience(settings, "127.0.0.1", 8000, 5, wait_ready=False) is None
    assert "no demo keys" in capsys.readouterr().err
    (tmp_path / "demo-keys.env").write_text("FYP_DEMO_ADMIN_KEY=a\nFYP_DEMO_APP_KEY=b\n")
    audience = _live_audience(settings, "0.0.0.0", 8123, 5, wait_ready=False)
    assert audience is not None
    assert audience.config.url == "http://127.0.0.1:8123"
    assert (audience.config.key, audience.config.admin_key) == ("b", "a")
    assert audience.settings.users == 5
