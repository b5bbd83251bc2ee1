"""One contract for every OnlineState backend: memory and Redis (127.0.0.1:6379).

Each Redis test uses a key prefix of its own and deletes its keys afterwards. Under CI=true an
unreachable Redis fails the run instead of skipping.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from fyp.config import OnlineSettings
from fyp.storage.cache import (
    COUNTERS,
    GLOBAL,
    Affinity,
    Count,
    Engage,
    Heat,
    MarkWarm,
    Mute,
    OnlineState,
    OnlineUnavailable,
    Op,
    Reset,
    compact,
)
from fyp.storage.cache.memory import MemoryOnlineState
from fyp.storage.cache.redis import RedisOnlineState
from tests.conftest import _unavailable

H = 3_600_000
T0 = 1_780_000_000_000
REDIS_URL = "redis://127.0.0.1:6379/0"


def _settings(**kw: object) -> OnlineSettings:
    base = {"affinity_half_life_h": 1.0, "trending_half_life_h": 1.0, "recent_size": 3}
    return OnlineSettings.model_validate({**base, **kw})


def _own_prefix(**kw: object) -> OnlineSettings:
    """Settings whose Redis keys no other test shares."""
    return _settings(key_prefix=f"fyptest:{uuid.uuid4().hex[:10]}:", **kw)


@pytest.fixture(params=["memory", "redis"])
def online(request: pytest.FixtureRequest) -> Iterator[OnlineState]:
    settings = _own_prefix(max_served=100)
    if request.param == "memory":
        yield MemoryOnlineState(settings, clock=lambda: T0)
        return
    state = _redis(settings)
    yield state
    _drop(state)


def _redis(settings: OnlineSettings, **client_kw: object) -> RedisOnlineState:
    """A Redis backend on the test server (``client_kw``: a client of our own, so built)."""
    client = (
        redis.Redis.from_url(REDIS_URL, decode_responses=True, **client_kw) if client_kw else None
    )
    state = RedisOnlineState(settings, client=client)
    try:
        state.ping()
    except Exception as e:
        _unavailable("Redis", e)
    return state


def _drop(state: RedisOnlineState) -> None:
    """Delete the keys of the test's own prefix."""
    keys = list(state.r.scan_iter(match=f"{state.settings.key_prefix}*", count=1000))
    if keys:
        state.r.delete(*keys)
    state.close()


def test_a_new_user_is_cold_and_empty(online: OnlineState) -> None:
    st = online.user_state("nobody", T0)
    assert st.warm is False
    assert st.recent == [] and st.affinities == {} and st.mutes == {}
    assert online.served_since("nobody", 0) is None


def test_recent_engagements_keep_order_and_are_bounded(online: OnlineState) -> None:
    online.apply([Engage("u", f"v{i}", float(i + 1)) for i in range(5)])
    assert online.user_state("u", T0).recent == [("v2", 3.0), ("v3", 4.0), ("v4", 5.0)]


def test_affinities_add_and_decay_with_the_half_life(online: OnlineState) -> None:
    online.apply(
        [
            Affinity("u", "hashtag", "cooking", 2.0, T0),
            Affinity("u", "hashtag", "cooking", 2.0, T0 + H),  # the first is worth 1 by now
            Affinity("u", "creator", "c1", -1.0, T0),
            Affinity("u", "skip", "c1", 1.0, T0),
        ]
    )
    st = online.user_state("u", T0 + H)
    assert st.affinity("hashtag", "cooking") == pytest.approx(3.0)
    assert st.affinity("creator", "c1") == pytest.approx(-0.5)
    assert online.user_state("u", T0 + 3 * H).affinity("hashtag", "cooking") == pytest.approx(0.75)
    online.apply([Reset("u", "skip", "c1")])
    assert online.user_state("u", T0 + H).affinity("skip", "c1") == 0.0


def test_mutes_keep_the_newest_time(online: OnlineState) -> None:
    online.apply(
        [
            Mute("u", "creator", "c1", T0 + 5),
            Mute("u", "creator", "c1", T0),  # an older, late event does not shorten the mute
            Mute("u", "report", "v1", T0),
            MarkWarm("u"),
        ]
    )
    st = online.user_state("u", T0)
    assert st.mutes == {"creator": {"c1": T0 + 5}, "report": {"v1": T0}}
    assert st.warm is True


def test_warm_users_are_those_marked_warm(online: OnlineState) -> None:
    assert online.warm_users(["a", "b", "c"]) == set()
    online.apply([Engage("a", "v1", 1.0), MarkWarm("b"), MarkWarm("c")])
    assert online.warm_users(["a", "b", "d"]) == {"b"}  # a has state but no rebuild
    assert online.warm_users([]) == set()
    online.forget_user("b")
    assert online.warm_users(["b", "c"]) == {"c"}


def _replay(user: str) -> list[Op]:
    return [
        Engage(user, "v1", 2.0),
        Affinity(user, "hashtag", "cooking", 1.5, T0),
        Mute(user, "creator", "c9", T0),
        MarkWarm(user),
    ]


def test_a_rebuild_applies_once_even_when_two_race(online: OnlineState) -> None:
    """Two requests that found the same user cold both rebuild them: the second rebuild must
    not add the history again (doubled affinities, a repeated recent list)."""
    assert online.rebuild_user("u", _replay("u")) is True
    once = online.user_state("u", T0)
    assert once.warm and once.recent == [("v1", 2.0)]
    assert once.affinity("hashtag", "cooking") == pytest.approx(1.5)
    assert online.rebuild_user("u", _replay("u")) is False
    assert online.user_state("u", T0) == once
    # Live events still add to a rebuilt user.
    online.apply([Engage("u", "v2", 1.0)])
    assert [v for v, _ in online.user_state("u", T0).recent] == ["v1", "v2"]


def test_concurrent_rebuilds_of_one_user_apply_once(online: OnlineState) -> None:
    """Eight threads (the workers' requests) rebuild one cold user at the same moment: exactly
    one rebuild lands, whatever the interleaving."""
    start = threading.Barrier(8)

    def rebuild(_: int) -> bool:
        start.wait()
        return online.rebuild_user("u", _replay("u"))

    with ThreadPoolExecutor(8) as pool:
        applied = list(pool.map(rebuild, range(8)))
    assert applied.count(True) == 1
    st = online.user_state("u", T0)
    assert st.recent == [("v1", 2.0)]
    assert st.affinity("hashtag", "cooking") == pytest.approx(1.5)


def test_the_served_set_is_cold_until_primed_and_respects_the_horizon(online: OnlineState) -> None:
    assert online.served_since("u", 0) is None
    online.prime_served("u", {})
    assert online.served_since("u", 0) == set()  # primed, empty: warm
    online.prime_served("u", {"old": T0 - 10 * H})
    online.mark_served("u", ["a", "b"], T0)
    assert online.served_since("u", T0 - 20 * H) == {"old", "a", "b"}
    assert online.served_since("u", T0 - H) == {"a", "b"}
    online.forget_user("u")
    assert online.served_since("u", 0) is None


def test_the_served_set_is_bounded(online: OnlineState) -> None:
    online.prime_served("u", {})
    for i in range(150):
        online.mark_served("u", [f"v{i}"], T0 + i)
    served = online.served_since("u", 0)
    assert served is not None
    assert len(served) == 100
    assert "v149" in served and "v0" not in served  # the oldest go first


def test_video_counters_and_velocity(online: OnlineState) -> None:
    online.apply(
        [
            Count("v1", "impressions"),
            Count("v1", "impressions"),
            Count("v1", "likes"),
            Count("v1", "likes", -1),
            Heat("v1", "US", 4.0, T0),
        ]
    )
    online.apply([Count("v3", "shares", 3), Heat("v3", None, 1.0, T0 + 2 * H)])
    got = online.video_counters(["v2", "v1", "v3", "v1"], T0 + H)  # any order, repeats too
    assert got.counts.shape == (4, len(COUNTERS))
    assert got.of(1) == {"impressions": 2} == got.of(3)  # the likes cancelled out
    assert got.column("impressions").tolist() == [0, 2, 0, 2]
    assert got.column("shares").tolist() == [0, 0, 3, 0]
    assert got.velocity[1] == pytest.approx(2.0)  # one half-life later
    assert got.velocity[2] == pytest.approx(1.0)  # written after the read's now: not grown
    assert got.of(0) == {} and got.velocity[0] == 0.0
    assert online.video_counters([], T0).counts.shape == (0, len(COUNTERS))


def test_video_counters_of_many_videos(online: OnlineState) -> None:
    # more videos than the in-process table starts with, each counted in its own way
    vids = [f"m{i}" for i in range(3000)]
    online.apply([Count(v, "plays", i + 1) for i, v in enumerate(vids)])
    online.apply([Heat(v, None, 1.0, T0) for v in vids[::1000]])
    got = online.video_counters(vids[::-1], T0)
    assert got.column("plays").tolist() == list(range(3000, 0, -1))
    assert sorted(got.velocity.nonzero()[0].tolist()) == [999, 1999, 2999]


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_counters_read_either_reply_protocol(protocol: int) -> None:
    # The counters are read straight off a pooled connection: RESP2 answers each HGETALL with
    # a flat list, RESP3 with a map; both must give the same matrix.
    state = _redis(_own_prefix(redis_retry_s=0.0), protocol=protocol)
    try:
        state.apply([Count("a", "plays", 5), Count("a", "likes", 2), Heat("b", None, 1.0, T0)])
        got = state.video_counters(["b", "nope", "a"], T0)
        assert got.of(2) == {"plays": 5, "likes": 2}
        assert got.of(1) == {} == got.of(0)
        assert got.velocity.tolist() == [pytest.approx(1.0), 0.0, 0.0]
    finally:
        _drop(state)


def test_redis_counters_after_a_failed_read_are_read_right() -> None:
    # A reply that fails half-way through a read (a key of the wrong type) leaves later
    # replies unread on the socket: the next read must not get them as its own.
    state = _redis(_own_prefix(redis_retry_s=0.0))
    try:
        state.apply([Count(f"v{i}", "plays", i + 1) for i in range(50)])
        state.r.set(state._v("bad"), "not a hash")
        with pytest.raises(OnlineUnavailable):
            state.video_counters(["v0", "bad", *(f"v{i}" for i in range(1, 50))], T0)
        for _ in range(3):  # every pooled connection, not only the one that failed
            got = state.video_counters([f"v{i}" for i in range(49, -1, -1)], T0)
            assert got.column("plays").tolist() == list(range(50, 0, -1))
    finally:
        _drop(state)


def test_trending_is_per_region_and_decays(online: OnlineState) -> None:
    online.apply(
        [
            Heat("old-hit", "US", 8.0, T0 - 4 * H),  # worth 0.5 at T0
            Heat("new", "US", 1.0, T0),
            Heat("gb", "GB", 3.0, T0),
            Heat("nowhere", None, 2.0, T0),
        ]
    )
    us = online.trending("US", 10, T0)
    assert [v for v, _ in us] == ["new", "old-hit"]
    assert us[1][1] == pytest.approx(0.5)
    assert [v for v, _ in online.trending(GLOBAL, 10, T0)] == ["gb", "nowhere", "new", "old-hit"]
    assert [v for v, _ in online.trending(GLOBAL, 2, T0)] == ["gb", "nowhere"]
    assert online.trending("JP", 10, T0) == []


def test_trending_survives_an_epoch_boundary() -> None:
    # Redis keeps trending in epochs of 256 half-lives; a score written in the previous epoch
    # must still count, decayed, after the boundary.
    state = _redis(_own_prefix())
    try:
        boundary = (T0 // (256 * H) + 1) * 256 * H
        state.apply([Heat("before", None, 4.0, boundary - H), Heat("after", None, 1.0, boundary)])
        best = dict(state.trending(GLOBAL, 10, boundary + H))
        assert best["before"] == pytest.approx(1.0)
        assert best["after"] == pytest.approx(0.5)
    finally:
        _drop(state)


def test_memory_backend_drops_least_recently_used_and_expired_users() -> None:
    now = [T0]
    state = MemoryOnlineState(_settings(max_users=2, user_ttl_days=1.0), clock=lambda: now[0])
    state.apply([MarkWarm("a"), MarkWarm("b")])
    state.user_state("a", T0)  # a is now more recent than b
    state.apply([MarkWarm("c")])
    assert state.user_state("b", T0).warm is False
    assert state.user_state("a", T0).warm is True
    now[0] = T0 + 25 * H
    assert state.user_state("a", now[0]).warm is False


def test_sizes_grow_as_the_state_fills(online: OnlineState) -> None:
    before = online.sizes()
    assert before and all(isinstance(n, int) and n >= 0 for n in before.values())
    online.apply([Engage("size-u", "size-v", 1.0), Count("size-v", "plays")])
    after = online.sizes()
    assert after.keys() == before.keys()
    counted = [k for k in after if k != "bytes"]
    assert any(after[k] > before[k] for k in counted)


def _history(user: str) -> list[Op]:
    """A replay-like history: taste, skip streaks reset by positives, mutes, and engagements
    past the recent list's bound."""
    ops: list[Op] = []
    for i in range(12):
        ts = T0 + i * H // 4
        ops.append(Engage(user, f"v{i}", 1.0 + i))
        ops.append(Affinity(user, "hashtag", f"t{i % 3}", 1.0 + i / 2, ts))
        ops.append(Affinity(user, "skip", "c1", 1.0, ts))
        if i % 5 == 4:
            ops.append(Reset(user, "skip", "c1"))
        ops.append(Mute(user, "creator", f"c{i % 2}", ts - (i % 3) * 1000))
    ops.append(MarkWarm(user))
    return ops


def test_compacted_ops_leave_the_same_state(online: OnlineState) -> None:
    ops = _history("full")
    compacted = compact(_history("short"), recent_size=3, half_life_ms=1.0 * H)
    assert len(compacted) < len(ops) / 3
    # on a user that already holds a score the replay resets and one it adds to
    for user in ("full", "short"):
        online.apply(
            [Affinity(user, "skip", "c1", 5.0, T0), Affinity(user, "hashtag", "t0", 1.0, T0)]
        )
    online.apply(ops)
    online.apply(compacted)
    now = T0 + 4 * H
    full, short = online.user_state("full", now), online.user_state("short", now)
    assert short.recent == full.recent == [("v9", 10.0), ("v10", 11.0), ("v11", 12.0)]
    assert short.mutes == full.mutes
    assert short.warm and full.warm
    assert short.affinities.keys() == full.affinities.keys()
    for kind, scores in full.affinities.items():
        assert short.affinities[kind] == pytest.approx(scores, rel=1e-9)
    # the skip streak restarted at the last reset (i = 9): two skips after it
    assert full.affinity("skip", "c1") == pytest.approx(
        sum(2 ** (-(now - (T0 + i * H // 4)) / H) for i in (10, 11))
    )


def test_memory_trending_keeps_its_top_exact_as_events_arrive() -> None:
    """The in-process trending list is maintained per event (not re-selected from every score on
    each read): after any mix of adds, reads and drops it equals a full sort of the scores."""
    import random

    from fyp.storage.cache.memory import _Trending

    rng = random.Random(5)
    tr = _Trending(half_life_ms=H, keep=8)
    now = T0
    for step in range(3000):
        now += rng.randrange(0, 60_000)
        vid = f"v{min(int(rng.paretovariate(1.2)), 200)}"
        delta = rng.choice([1.0, 2.0, 5.0, 0.5]) if rng.random() > 0.01 else -3.0
        tr.add(vid, delta, now - rng.randrange(0, 3_600_000))
        if step % 7 == 0:
            k = rng.choice([1, 3, 8, 8, 12])
            got = tr.best(k, now)
            scale = 2.0 ** (-(now - (tr.base or 0)) / H)
            want = sorted(
                ((v, s * scale) for v, s in tr.scores.items() if s > 0), key=lambda x: -x[1]
            )[:k]
            assert [s for _, s in got] == pytest.approx([s for _, s in want]), step
            assert {v for v, _ in got} <= {v for v, s in tr.scores.items() if s > 0}
