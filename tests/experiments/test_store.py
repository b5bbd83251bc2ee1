"""The experiments section of the DataStore contract, on every backend."""

from __future__ import annotations

from fyp.storage.data import DataStore
from fyp.storage.data.base import ExperimentRow


def test_create_get_list_update(store: DataStore) -> None:
    row = ExperimentRow("e1", {"name": "e1", "arms": [{"name": "a"}]}, "draft", 10)
    assert store.create_experiment(row)
    assert not store.create_experiment(ExperimentRow("e1", {}, "draft", 11))
    assert store.get_experiment("e1") == row
    assert store.get_experiment("nope") is None
    store.create_experiment(ExperimentRow("e0", {"x": 1}, "draft", 20))
    assert [r.name for r in store.list_experiments()] == ["e1", "e0"]

    started = ExperimentRow("e1", {**row.spec, "buckets": [0, 100]}, "running", 10, 15)
    assert store.update_experiment(started, expect_state="draft")
    assert not store.update_experiment(started, expect_state="draft")  # lost the race
    assert store.get_experiment("e1") == started
    assert [r.name for r in store.list_experiments("running")] == ["e1"]
    assert [r.name for r in store.list_experiments("draft")] == ["e0"]
    # created_ms never changes on update
    assert store.update_experiment(ExperimentRow("e1", {}, "stopped", 99, 15, 30), "running")
    got = store.get_experiment("e1")
    assert got is not None and got.created_ms == 10 and got.stopped_ms == 30


def test_rows_read_back_are_copies(store: DataStore) -> None:
    store.create_experiment(ExperimentRow("e", {"arms": [1]}, "draft", 1))
    got = store.get_experiment("e")
    assert got is not None
    got.spec["arms"].append(2)
    again = store.get_experiment("e")
    assert again is not None and again.spec == {"arms": [1]}


def test_exposures_and_activity(store: DataStore) -> None:
    from fyp.storage.data.base import Activity, EventRow, Exposure, ServedRow

    def served(rid: str, user: str, ms: int, arms: dict[str, str]) -> ServedRow:
        return ServedRow(rid, user, "v1", 0, ms, "trending", 0.5, {"f": 1.0}, arms)

    store.log_served(
        [
            served("r1", "u1", 100, {"e": "a", "other": "x"}),
            served("r2", "u2", 150, {"other": "y"}),
            served("r3", "u2", 200, {"e": "b"}),
            served("r4", "u1", 300, {"e": "a"}),  # after the window
            served("r5", "u3", 120, {}),
        ]
    )
    assert store.experiment_exposures("e", 100, 250) == [
        Exposure("r1", "u1", "v1", 100, "a"),
        Exposure("r3", "u2", "v1", 200, "b"),
    ]
    assert store.experiment_exposures("nope", 0, 1000) == []

    def ev(i: int, user: str, type_: str, watch: int | None = None) -> EventRow:
        return {
            "event_id": f"ev{i}",
            "user_id": user,
            "video_id": "v1",
            "creator_id": None,
            "sound_id": None,
            "hashtag": None,
            "type": type_,
            "ts_ms": 1000 + i,
            "received_ms": 1000 + i,
            "watch_ms": watch,
            "request_id": f"r{i}" if i % 2 else None,
            "extra": None,
        }

    store.append_events(
        [ev(1, "u1", "play", 500), ev(2, "u2", "like"), ev(3, "u1", "skip"), ev(4, "u3", "like")]
    )
    got = store.users_activity({"u1", "u2"})
    assert sorted(got) == sorted(
        [
            Activity("u1", "v1", "play", 1001, 500, "r1"),
            Activity("u2", "v1", "like", 1002, None, None),
            Activity("u1", "v1", "skip", 1003, None, "r3"),
        ]
    )
    assert [a.type for a in got if a.user_id == "u1"] == ["play", "skip"]  # log order per user
    assert store.users_activity(set()) == []
