from __future__ import annotations

import asyncio

import httpx

from fyp.simulator import DaySummary, SimConfig, Simulation, generate, population
from fyp.simulator.catalog import DAY_MS
from tests.simulator.fake_feed import FakeState, fake_app

START = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def simulate(
    learning: bool, users: int = 120, days: int = 2
) -> tuple[FakeState, Simulation, list[DaySummary]]:
    state = FakeState()
    catalog = generate(videos=600, creators=60, seed=2)
    sim = Simulation(
        catalog,
        population(catalog, users, seed=2),
        SimConfig(
            url="http://fake",
            key="appkey",
            admin_key="adminkey",
            days=days,
            seed=2,
            concurrency=8,
            start_ms=START,
        ),
        transport=httpx.ASGITransport(app=fake_app(state, learning=learning)),
    )
    asyncio.run(sim.setup())
    progress: list[int] = []
    days_out = asyncio.run(sim.run(progress.append))
    assert len(progress) == users * days
    return state, sim, days_out


def test_simulation_talks_the_feed_contract() -> None:
    state, sim, days = simulate(learning=True)
    assert len(state.videos) == 600
    assert len(state.users) == 120 + len(sim.catalog.creators)
    assert set(state.auth) == {"Bearer appkey"}
    assert days[0].active_users == 120  # everyone opens the app on day 0
    assert 0 < days[1].active_users < 120
    assert all(d.errors == 0 for d in days), [d.error_examples for d in days]
    ev = state.events
    assert sum(d.events_sent for d in days) == len(ev)
    # Every event names a response served to that same user, with a simulated time.
    assert all(state.served[e["request_id"]] == e["user_id"] for e in ev)
    assert all(START <= e["ts"] < START + 2 * DAY_MS for e in ev)
    plays = [e for e in ev if e["type"] == "play"]
    assert len(plays) == sum(d.views for d in days)
    assert sum(e["watch_ms"] for e in plays) == sum(d.watch_ms for d in days)
    assert len({e["event_id"] for e in ev}) == len(ev)
    assert {"impression", "play", "skip", "like"} <= {e["type"] for e in ev}


def test_a_learning_feed_beats_a_random_one() -> None:
    _, _, good = simulate(learning=True)
    _, _, bad = simulate(learning=False)
    watch_good = sum(d.watch_ms for d in good)
    watch_bad = sum(d.watch_ms for d in bad)
    assert watch_good > 1.2 * watch_bad
    assert sum(d.skips for d in good) / sum(d.views for d in good) < sum(
        d.skips for d in bad
    ) / sum(d.views for d in bad)


def test_feed_errors_are_counted_not_raised() -> None:
    state = FakeState()
    catalog = generate(videos=50, seed=1)
    sim = Simulation(
        catalog,
        population(catalog, 5, seed=1),
        SimConfig(url="http://fake", days=1, start_ms=START),
        transport=httpx.ASGITransport(app=fake_app(state, learning=False)),
    )
    days = asyncio.run(sim.run())  # no setup: every user is unknown -> 404
    assert days[0].errors == days[0].sessions >= 5 and days[0].feeds == 0
    assert "404" in days[0].error_examples[0]


def test_coverage_counts_only_the_simulated_catalog() -> None:
    day = DaySummary(0, videos={"a", "foreign"})
    assert day.coverage({"a", "b"}) == 0.5
    assert day.coverage(set()) == 0.0
