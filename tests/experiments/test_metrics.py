from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from fyp.config import ExperimentSettings, Settings
from fyp.experiments.assignment import arm_of
from fyp.experiments.metrics import METRIC_BY_NAME, arm_value, collect, results
from fyp.experiments.service import ExperimentService
from fyp.experiments.spec import ExperimentRecord, ExperimentSpec
from fyp.models import User, VideoIn
from fyp.storage.data import DataStore, EventRow
from fyp.storage.data.base import ServedRow
from fyp.types import from_ms

DAY = 86_400_000
MIN = 60_000
T0 = int(datetime(2026, 1, 10, tzinfo=UTC).timestamp() * 1000)
CFG = ExperimentSettings(min_users_per_arm=2, new_days=7)


def started(store: DataStore, settings: Settings, now: int) -> ExperimentRecord:
    svc = ExperimentService(store, settings, clock=lambda: now)
    spec = ExperimentSpec.model_validate({"name": "e", "arms": [{"name": "a"}, {"name": "b"}]})
    svc.create(spec)
    return svc.start("e")


def served(rid: str, user: str, video: str, ms: int, arm: str | None) -> ServedRow:
    return ServedRow(rid, user, video, 0, ms, "trending", 1.0, {}, {"e": arm} if arm else {})


_n = 0


def ev(
    user: str, type_: str, ts: int, video: str = "v1", rid: str | None = None, **kw: Any
) -> EventRow:
    global _n
    _n += 1
    return {
        "event_id": f"e{_n}",
        "user_id": user,
        "video_id": video,
        "creator_id": None,
        "sound_id": None,
        "hashtag": None,
        "type": type_,
        "ts_ms": ts,
        "received_ms": ts,
        "watch_ms": kw.get("watch_ms"),
        "request_id": rid,
        "extra": None,
    }


def world(store: DataStore) -> None:
    store.upsert_users([User(id=u) for u in ("x", "y", "z", "w", "c1", "c2", "c3")])
    store.upsert_videos(
        [
            VideoIn(
                id="v1", creator_id="c1", duration_ms=10_000, created_at=from_ms(T0 - 30 * DAY)
            ),
            VideoIn(
                id="v2", creator_id="c1", duration_ms=20_000, created_at=from_ms(T0 - 30 * DAY)
            ),
            VideoIn(id="v3", creator_id="c2", duration_ms=10_000, created_at=from_ms(T0 - DAY)),
            VideoIn(
                id="v4", creator_id="c3", duration_ms=10_000, created_at=from_ms(T0 - 60 * DAY)
            ),
        ],
        "approved",
    )


def test_attribution_and_per_user_values(store: DataStore, settings: Settings) -> None:
    world(store)
    exp = started(store, settings, T0)
    # x is served in arm a, y in arm b (whatever the hash says: the served row is the truth),
    # z is never served (not a unit), w is served outside the experiment (no arms).
    store.log_served(
        [
            served("r1", "x", "v1", T0 + MIN, "a"),
            served("r1", "x", "v3", T0 + MIN, "a"),
            served("r2", "y", "v2", T0 + MIN, "b"),
            served("r3", "w", "v1", T0 + MIN, None),
            served("r0", "x", "v4", T0 - DAY, "a"),  # before the start: not in the window
        ]
    )
    # Client clocks may be anywhere: attribution by request id ignores the event time.
    t = T0 - 5 * DAY
    store.append_events(
        [
            ev("x", "impression", t, "v1", "r1"),
            ev("x", "play", t + 1, "v1", "r1", watch_ms=9_500),  # completes (>= 0.9 * 10 s)
            ev("x", "like", t + 2, "v1", "r1"),
            ev("x", "play", t + 40 * MIN, "v3", "r1", watch_ms=2_000),  # new session
            ev("x", "skip", t + 41 * MIN, "v3", "r1"),
            ev("x", "play", t + DAY, "v1", "r1", watch_ms=500),  # a later day: returned
            ev("y", "play", t, "v2", "r2", watch_ms=4_000),
            ev("z", "play", T0 + MIN, "v1", None, watch_ms=99_000),  # never exposed
            ev("w", "play", T0 + MIN, "v1", "r3", watch_ms=99_000),  # never exposed
            # pre-period of x (no request of the experiment, before the start)
            ev("x", "play", T0 - 2 * DAY, "v4", "old", watch_ms=7_000),
            ev("x", "play", T0 - 30 * DAY, "v4", "old", watch_ms=1_000),  # before pre-period
        ]
    )
    # y's later event has no request id: it goes to y's assigned arm, inside the window only.
    y_arm = arm_of(exp, "y")
    assert y_arm is not None
    store.append_events([ev("y", "share", T0 + 2 * MIN, "v2", None)])

    arms, _ = collect(store, exp, CFG, now_ms=T0 + DAY)
    assert set(arms["a"].users) == {"x"} | ({"y"} if y_arm == "a" else set())
    assert "y" in arms["b"].users
    x = arms["a"].users["x"]
    assert x.watch_ms == 12_000
    assert x.plays == 3 and x.completes == 1
    assert len(x.views) == 2  # (r1, v1) and (r1, v3), impressions and plays deduplicated
    assert x.counts["like"] == 1 and x.counts["skip"] == 1
    assert x.sessions(30 * MIN) == 3
    assert x.returned() == 1.0
    assert arms["a"].pre["x"].watch_ms == 7_000
    assert arms[y_arm].users["y"].counts["share"] == 1
    assert sorted(v for v, _ in arms["a"].served) == ["v1", "v3"]

    res = results(store, exp, CFG, now_ms=T0 + DAY)
    pop = res["population"]["a"]
    assert pop["impressions"] == 2
    assert pop["coverage"] == pytest.approx(2 / 4)
    assert pop["new_video_share"] == pytest.approx(0.5)  # v3 is a day old
    assert pop["new_creator_share"] == pytest.approx(0.5)  # c2's first video is v3
    # c1 and c2 shown once each, c3 never: Gini of [0, 1, 1] = 1/3.
    assert pop["creator_gini"] == pytest.approx(1 / 3)
    by_name = {m["name"]: m for m in res["metrics"]}
    assert by_name["completion_rate"]["arms"]["a"] == pytest.approx(1 / 3)
    # x: 12 s over 3 sessions; y adds one session without watch time when assigned to a.
    per_session = 12_000 / (4 if y_arm == "a" else 3)
    assert by_name["watch_ms_per_session"]["arms"]["a"] == pytest.approx(per_session)
    assert res["srm"]["observed"] == {"a": len(arms["a"].users), "b": len(arms["b"].users)}
    assert res["metrics"][0]["name"] == "watch_ms_per_user"


def test_results_detect_a_worse_arm_and_use_cuped(settings: Settings) -> None:
    from fyp.storage.data import open_data_store

    store = open_data_store("memory://")
    world(store)
    exp = started(store, settings, T0)
    rng = np.random.default_rng(0)
    served_rows, events = [], []
    for i in range(300):
        user = f"s{i}"
        arm = arm_of(exp, user)
        assert arm is not None
        habit = rng.gamma(2.0, 10_000.0)
        served_rows.append(served(f"q{i}", user, "v1", T0 + MIN, arm))
        events.append(ev(user, "play", T0 - DAY, "v1", f"pre{i}", watch_ms=int(habit)))
        lift = 0.7 if arm == "b" else 1.0
        watch = int(max(habit * lift + rng.normal(0, 1_000), 0))
        events.append(ev(user, "play", T0 + 2 * MIN, "v1", f"q{i}", watch_ms=watch))
    store.log_served(served_rows)
    store.append_events(events)
    res = results(store, exp, ExperimentSettings(min_users_per_arm=50), now_ms=T0 + DAY)
    assert res["status"] == "ok"
    assert not res["srm"]["mismatch"]
    watch = next(m for m in res["metrics"] if m["name"] == "watch_ms_per_user")
    comp = watch["comparisons"][0]
    assert comp["arm"] == "b" and comp["method"] == "welch+cuped"
    assert comp["significant"] and comp["diff"] < 0 and comp["ci_high"] < 0
    assert comp["variance_reduction"] > 0.5
    assert comp["rel_lift"] == pytest.approx(-0.3, abs=0.05)
    users = sum(a["users"] for a in res["arms"])
    assert users == 300
    metric = METRIC_BY_NAME["watch_ms_per_user"]
    arms, _ = collect(store, exp, CFG, now_ms=T0 + DAY)
    assert watch["arms"]["a"] == pytest.approx(arm_value(metric, arms["a"], CFG))
