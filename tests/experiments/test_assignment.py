from __future__ import annotations

from collections import Counter

import pytest

from fyp.config import Settings
from fyp.experiments.assignment import (
    Assignment,
    NoExperiments,
    StoreAssigner,
    arm_of,
    assign,
    free_range,
    layer_bucket,
    unit_hash,
)
from fyp.experiments.service import ExperimentService
from fyp.experiments.spec import BUCKETS, ExperimentRecord, ExperimentSpec
from fyp.storage.data import DataStore, open_data_store
from fyp.storage.data.base import ExperimentRow

USERS = [f"u{i}" for i in range(20_000)]


def record(
    name: str,
    buckets: tuple[int, int] = (0, BUCKETS),
    layer: str = "default",
    weights: tuple[float, ...] = (1, 1),
    overrides: dict[str, object] | None = None,
    started_ms: int = 1,
) -> ExperimentRecord:
    arms = [{"name": f"arm{i}", "weight": w} for i, w in enumerate(weights)]
    if overrides:
        arms[-1]["overrides"] = overrides
    spec = ExperimentSpec.model_validate({"name": name, "layer": layer, "arms": arms})
    return ExperimentRecord(
        spec=spec, state="running", created_ms=0, started_ms=started_ms, buckets=buckets
    )


def test_unit_hash_is_deterministic_and_uniform() -> None:
    assert unit_hash("s", "u1") == unit_hash("s", "u1")
    assert unit_hash("s", "u1") != unit_hash("t", "u1")
    values = [unit_hash("seed", u) for u in USERS]
    assert all(0 <= v < 1 for v in values)
    deciles = Counter(int(v * 10) for v in values)
    assert all(1_850 < deciles[d] < 2_150 for d in range(10))


def test_arms_follow_weights_and_are_stable() -> None:
    exp = record("e1", weights=(3, 1))
    arms = Counter(arm_of(exp, u) for u in USERS)
    assert abs(arms["arm0"] / len(USERS) - 0.75) < 0.015
    assert [arm_of(exp, u) for u in USERS[:200]] == [arm_of(exp, u) for u in USERS[:200]]


def test_traffic_outside_the_range_is_not_assigned() -> None:
    exp = record("e1", buckets=(0, BUCKETS // 10))
    inside = [u for u in USERS if arm_of(exp, u) is not None]
    assert abs(len(inside) / len(USERS) - 0.1) < 0.01
    assert all(layer_bucket("default", u) < BUCKETS // 10 for u in inside)
    assert arm_of(record("draft", buckets=(0, 0)), "u1") is None


def test_same_layer_disjoint_different_layers_orthogonal() -> None:
    a = record("a", buckets=(0, 5_000))
    b = record("b", buckets=(5_000, 10_000))
    c = record("c", layer="ranking")
    both = [u for u in USERS if arm_of(a, u) and arm_of(b, u)]
    assert both == []
    assert all(arm_of(a, u) or arm_of(b, u) for u in USERS)
    # Orthogonal: c's arms split a's users in the same proportions as everyone else's.
    in_a = [u for u in USERS if arm_of(a, u)]
    share = Counter(arm_of(c, u) for u in in_a)["arm0"] / len(in_a)
    assert abs(share - 0.5) < 0.02
    # Same salt would correlate arms across experiments; distinct names give distinct salts.
    agree = sum(arm_of(c, u) == arm_of(record("d", layer="other"), u) for u in USERS)
    assert abs(agree / len(USERS) - 0.5) < 0.02


def test_free_range_packs_a_layer_and_refuses_overflow() -> None:
    running = [record("a", buckets=(0, 3_000)), record("b", buckets=(5_000, 10_000))]
    assert free_range(running, "default", 0.2) == (3_000, 5_000)
    assert free_range(running, "default", 0.25) is None
    assert free_range(running, "other", 1.0) == (0, BUCKETS)
    assert free_range([], "default", 0.00001) == (0, 1)


def test_assign_merges_overrides_of_every_experiment() -> None:
    a = record("a", overrides={"blend": {"share": 8.0}}, weights=(0.000001, 1))
    b = record("b", layer="l2", overrides={"exploration_share": 0.3}, weights=(0.000001, 1))
    got = assign([a, b], "u1")
    assert got.arms == {"a": "arm1", "b": "arm1"}
    assert got.overrides == {"blend": {"share": 8.0}, "exploration_share": 0.3}
    assert assign([], "u1") == Assignment({}, {})
    assert NoExperiments().assign("u1") == Assignment()


class CountingStore:
    def __init__(self, inner: DataStore) -> None:
        self.inner = inner
        self.reads = 0

    def list_experiments(self, state: str | None = None) -> list[ExperimentRow]:
        self.reads += 1
        return self.inner.list_experiments(state)


def test_store_assigner_caches_and_invalidates(settings: Settings) -> None:
    store = open_data_store("memory://")
    counting = CountingStore(store)
    now = [0.0]
    assigner = StoreAssigner(counting, cache_seconds=5, clock=lambda: now[0])  # type: ignore[arg-type]
    svc = ExperimentService(store, settings, assigner)
    assert assigner.assign("u1").arms == {}
    spec = ExperimentSpec.model_validate(
        {"name": "e", "arms": [{"name": "a"}, {"name": "b", "overrides": {"random_scores": True}}]}
    )
    svc.create(spec)
    svc.start("e")  # invalidates
    got = assigner.assign("u1")
    assert set(got.arms) == {"e"}
    assert got.overrides == ({"random_scores": True} if got.arms["e"] == "b" else {})
    reads = counting.reads
    for u in USERS[:100]:
        assigner.assign(u)
    assert counting.reads == reads  # cached
    now[0] = 6.0
    assigner.assign("u1")
    assert counting.reads == reads + 1
    svc.stop("e")
    assert assigner.assign("u1").arms == {}


def test_store_assigner_keeps_last_known_when_the_store_fails(settings: Settings) -> None:
    from fyp.storage.data import StoreUnavailable

    store = open_data_store("memory://")
    now = [0.0]
    assigner = StoreAssigner(store, cache_seconds=1, clock=lambda: now[0])
    svc = ExperimentService(store, settings, assigner)
    svc.create(ExperimentSpec.model_validate({"name": "e", "arms": [{"name": "a"}, {"name": "b"}]}))
    svc.start("e")
    assert "e" in assigner.assign("u1").arms

    def broken(state: str | None = None) -> list[ExperimentRow]:
        raise StoreUnavailable("down")

    store.list_experiments = broken  # type: ignore[method-assign]
    now[0] = 10.0
    assert "e" in assigner.assign("u1").arms


@pytest.mark.parametrize("traffic", [0.1, 0.5])
def test_started_experiments_in_one_layer_never_share_users(
    settings: Settings, traffic: float
) -> None:
    store = open_data_store("memory://")
    svc = ExperimentService(store, settings)
    for name in ("x", "y"):
        svc.create(
            ExperimentSpec.model_validate(
                {"name": name, "traffic": traffic, "arms": [{"name": "a"}, {"name": "b"}]}
            )
        )
        svc.start(name)
    running = svc.list("running")
    got = [assign(running, u).arms for u in USERS[:5000]]
    assert not any(len(a) > 1 for a in got)
    share = sum(1 for a in got if "x" in a) / 5000
    assert abs(share - traffic) < 0.03


def test_an_experiment_that_no_longer_validates_is_skipped(settings: Settings) -> None:
    store = open_data_store("memory://")
    assigner = StoreAssigner(store, cache_seconds=0)
    svc = ExperimentService(store, settings, assigner)
    for name in ("good", "broken"):
        svc.create(
            ExperimentSpec.model_validate(
                {"name": name, "layer": name, "arms": [{"name": "a"}, {"name": "b"}]}
            )
        )
        svc.start(name)
    row = store.get_experiment("broken")
    assert row is not None
    row.spec["arms"][1]["overrides"] = {"renamed_knob": 1}
    assert store.update_experiment(row, "running")
    assert set(assigner.assign("u1").arms) == {"good"}
