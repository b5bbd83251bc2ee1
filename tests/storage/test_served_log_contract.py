"""The served-log and user-history part of the DataStore contract, on every backend."""

from __future__ import annotations

import math

from fyp.models import User
from fyp.storage.data import DataStore, EventRow, ServedRow, log_event

T0 = 1_714_979_289_123


def row(i: int, user: str = "u1", ms: int = T0, **kw: object) -> ServedRow:
    fields: dict[str, object] = {
        "request_id": f"r{i // 3}",
        "user_id": user,
        "video_id": f"v{i}",
        "position": i,
        "served_ms": ms,
        "source": "trending",
        "score": 0.5 + i,
        "features": {"aff_creator": 1.25, "v_complete_rate": 0.3},
        "arms": {"exp": "b"},
    }
    fields.update(kw)
    return ServedRow(**fields)  # type: ignore[arg-type]


def test_served_rows_round_trip_in_log_order(store: DataStore) -> None:
    rows = [row(i) for i in range(5)] + [row(9, score=None, features={}, arms={})]
    store.log_served(rows[:2])
    store.log_served(rows[2:])
    store.log_served([])
    got = store.read_served()
    assert [r for _, r in got] == rows
    seqs = [s for s, _ in got]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    after = store.read_served(after_seq=seqs[2], limit=2)
    assert [r.video_id for _, r in after] == ["v3", "v4"]
    assert not math.isnan(got[0][1].features["aff_creator"])


def test_served_video_ids_per_user_and_since(store: DataStore) -> None:
    store.log_served(
        [
            row(1, ms=T0 - 10),
            row(2, ms=T0),
            row(3, ms=T0 + 10),
            row(2, ms=T0 + 20),  # served again: one id
            row(4, user="u2", ms=T0 + 10),
        ]
    )
    assert store.served_video_ids("u1", T0) == {"v2", "v3"}
    assert store.served_video_ids("u1", 0) == {"v1", "v2", "v3"}
    assert store.served_video_ids("u2", 0) == {"v4"}
    assert store.served_video_ids("nobody", 0) == set()


def _event(eid: str, user: str, ts: int) -> EventRow:
    return {
        "event_id": eid,
        "user_id": user,
        "video_id": None,
        "creator_id": None,
        "sound_id": None,
        "hashtag": None,
        "type": "profile_visit",
        "ts_ms": ts,
        "received_ms": ts,
        "watch_ms": None,
        "request_id": None,
        "extra": None,
    }


def test_user_events_are_the_newest_since_oldest_first(store: DataStore) -> None:
    store.upsert_users([User(id="u1"), User(id="u2")])
    store.append_events(
        [_event(f"e{i}", "u1", T0 + i * 1000) for i in range(6)] + [_event("x", "u2", T0)]
    )
    got = store.user_events("u1", T0 + 1000, limit=3)
    assert [e.ts_ms for e in got] == [T0 + 3000, T0 + 4000, T0 + 5000]
    # the online state's part of the log's own rows, every field as appended
    assert got[0] == log_event(_event("e3", "u1", T0 + 3000))
    assert [e.ts_ms for e in store.user_events("u1", T0 + 4000)] == [T0 + 4000, T0 + 5000]
    assert store.user_events("u2", 0, limit=10) == [log_event(_event("x", "u2", T0))]
    assert store.user_events("nobody", 0) == []


def test_user_events_can_leave_impressions_out_before_the_limit(store: DataStore) -> None:
    store.upsert_users([User(id="u1")])
    kinds = ["like", "impression", "play", "impression", "impression"]
    rows = [{**_event(f"i{i}", "u1", T0 + i), "type": k} for i, k in enumerate(kinds)]
    store.append_events(rows)  # type: ignore[arg-type]
    assert [e.type for e in store.user_events("u1", 0, limit=2)] == ["impression"] * 2
    assert [e.type for e in store.user_events("u1", 0, limit=2, impressions=False)] == [
        "like",
        "play",
    ]
    assert [e.ts_ms for e in store.user_events("u1", T0 + 1, impressions=False)] == [T0 + 2]


def test_user_events_with_the_same_time_keep_log_order(store: DataStore) -> None:
    store.upsert_users([User(id="u1")])
    kinds = ["play", "like", "skip", "share"]
    rows = [{**_event(f"s{i}", "u1", T0), "type": k} for i, k in enumerate(kinds)]
    store.append_events(rows)  # type: ignore[arg-type]
    assert [e.type for e in store.user_events("u1", 0)] == kinds
    assert [e.type for e in store.user_events("u1", 0, limit=2)] == kinds[2:]
