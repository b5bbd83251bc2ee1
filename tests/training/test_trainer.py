from __future__ import annotations

import numpy as np
import pytest

from fyp.config import Settings
from fyp.leases import HeldLease, Lease, LeaseBusy, LeaseLost
from fyp.storage.data import DataStore, open_data_store
from fyp.training import ModelRegistry, Models, NothingToTrain, ScheduledTrainer, Trainer
from tests.training.support import World, clustered_world, load


@pytest.fixture(scope="module")
def world() -> World:
    return clustered_world()


@pytest.fixture(scope="module")
def trained(world: World, tmp_path_factory: pytest.TempPathFactory) -> tuple[Models, Settings]:
    settings = Settings(
        var_dir=tmp_path_factory.mktemp("var"),
        database_url="memory://",
        _env_file=None,  # type: ignore[call-arg]
    )
    store = open_data_store("memory://")
    load(store, settings, world)
    result = Trainer(settings, store).run()
    models = ModelRegistry(settings).current()
    assert models is not None and models.version == result.version
    return models, settings


def test_a_user_s_co_engaged_videos_rank_above_random_ones(
    trained: tuple[Models, Settings], world: World
) -> None:
    models, _ = trained
    aucs = []
    for uid, topic in list(world.topic_of_user.items())[:20]:
        mine = [e["video_id"] for e in world.events if e["user_id"] == uid and e["type"] == "play"]
        u = models.user_vector([(v, 1.0) for v in mine[:3]])
        assert u is not None
        scores = models.vectors @ u
        same = [
            scores[models.index_of[v]]
            for v, t in world.topic_of_video.items()
            if t == topic and v not in mine[:3]
        ]
        other = [scores[models.index_of[v]] for v, t in world.topic_of_video.items() if t != topic]
        aucs.append(np.mean([s > o for s in same for o in other]))
    assert np.mean(aucs) > 0.8  # 0.5 is chance; the default recipe gets ~0.88 here


def test_search_returns_the_best_dot_products_first(trained: tuple[Models, Settings]) -> None:
    models, _ = trained
    u = models.user_vector([("v0_03", 1.0), ("v0_04", 2.0)])
    assert u is not None
    hits = models.search(u, 5)
    exact = np.argsort(-(models.vectors @ u))[:5]
    assert [v for v, _ in hits] == [models.video_ids[i] for i in exact]
    scores = [s for _, s in hits]
    assert scores == sorted(scores, reverse=True)
    assert models.user_vector([("unknown", 1.0)]) is None


def test_item_content_and_next_item_tables(trained: tuple[Models, Settings], world: World) -> None:
    models, _ = trained
    topic = world.topic_of_video
    nb = models.neighbours("v2_05", 5)
    assert nb and all(topic[v] == 2 for v, _ in nb)
    sim = models.similar_content("v1_00", 5)
    assert sim and all(topic[v] == 1 for v, _ in sim)
    # Users watch a topic's videos in catalog order: after 4 then 5 comes 6.
    nxt = models.next_items(["v3_04", "v3_05"], 3)
    assert nxt[0][0] == "v3_06"
    assert "v3_05" not in [v for v, _ in nxt]
    assert models.neighbours("unknown", 5) == [] and models.next_items(["unknown"], 5) == []


def test_the_manifest_records_window_counts_timings_memory_and_metrics(
    trained: tuple[Models, Settings], world: World
) -> None:
    models, _ = trained
    m = models.manifest
    assert m["data_window"]["first_seq"] == 1
    assert m["data_window"]["last_seq"] == len(world.events)
    assert m["counts"]["videos"] == len(world.videos)
    assert m["counts"]["events_by_type"]["skip"] == len(world.topic_of_user)
    assert {"events", "embeddings", "ann index", "total"} <= set(m["timings_s"])
    assert m["peak_memory_mb"] > 0
    # the process's peak as each step ended: it only grows, and the last is the overall peak
    peaks = [m["peak_memory_mb_by_step"][s] for s in ("catalog", "events", "embeddings")]
    assert 0 < peaks[0] <= peaks[1] <= peaks[2] <= m["peak_memory_mb"]
    assert m["metrics"]["fyp"]["recall"] > m["metrics"]["popularity"]["recall"]
    assert m["ranker"]["trained"] is False  # no served log in this world


def test_an_empty_log_has_nothing_to_train(settings: Settings) -> None:
    with pytest.raises(NothingToTrain):
        Trainer(settings, open_data_store("memory://")).run()


def test_the_scheduled_trainer_retrains_only_when_the_log_grew(
    settings: Settings, world: World
) -> None:
    store: DataStore = open_data_store("memory://")
    settings.training.schedule_seconds = 3600
    job = ScheduledTrainer(settings, store)
    assert job.tick() is None  # empty log: nothing to do, and no error
    load(store, settings, world)
    first = job.tick()
    assert first is not None and job.tick() is None
    assert ModelRegistry(settings).active_version() == first.version
    job.start()
    job.stop()


@pytest.mark.parametrize("seconds", [0.0, 3600.0])
def test_the_server_runs_the_scheduled_trainer_only_when_configured(
    settings: Settings, seconds: float
) -> None:
    from fastapi.testclient import TestClient

    from fyp.api.app import create_app

    settings.training.schedule_seconds = seconds
    app = create_app(settings)
    with TestClient(app):
        job: ScheduledTrainer = app.state.trainer
        running = job._thread is not None and job._thread.is_alive()
        assert running == (seconds > 0)
    assert job._thread is None  # stopped with the app


def test_a_catalog_without_content_gets_no_content_table(settings: Settings) -> None:
    world = clustered_world(topics=2, per_topic=8, users=10)
    for n, v in enumerate(world.videos):
        v.update(caption="", hashtags=[], creator_id=f"solo{n}")
        world.users.append({"id": f"solo{n}"})
    store = open_data_store("memory://")
    load(store, settings, world)
    Trainer(settings, store).run(evaluate=False)
    models = ModelRegistry(settings).current()
    assert models is not None
    assert models.similar_content("v0_00", 5) == []
    assert models.neighbours("v0_03", 5)  # co-engagement does not need content


def test_the_leave_one_out_samples_users_but_trains_on_all() -> None:
    from fyp.evaluation.data import temporal_leave_one_out
    from fyp.training.trainer import _sample_users

    users = [u for u in range(30) for _ in range(4)]
    split = temporal_leave_one_out(
        "t", users, [u % 7 + j for u in range(30) for j in range(4)], list(range(120))
    )
    nnz = split.train.nnz
    _sample_users(split, 12, seed=1)
    assert sum(1 for t in split.test if t.size) == 12
    assert sum(1 for t in split.valid if t.size) == 12
    assert split.train.nnz == nnz


def test_a_second_trainer_is_refused_while_the_lease_is_held(
    settings: Settings, world: World
) -> None:
    store: DataStore = open_data_store("memory://")
    load(store, settings, world)
    other = Lease(store, "trainer", ttl_s=60, holder="other-machine")
    assert other.acquire()
    with pytest.raises(LeaseBusy):
        Trainer(settings, store).run()
    assert ScheduledTrainer(settings, store).tick() is None  # the schedule just waits its turn
    assert ModelRegistry(settings).versions() == []
    other.release()
    assert Trainer(settings, store).run().activated


def test_a_trainer_that_lost_its_lease_publishes_nothing(
    settings: Settings, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    store: DataStore = open_data_store("memory://")
    load(store, settings, world)

    def lapsed(self: HeldLease) -> None:
        raise LeaseLost("taken over while training")

    monkeypatch.setattr(HeldLease, "check", lapsed)
    with pytest.raises(LeaseLost):
        Trainer(settings, store).run()
    assert ModelRegistry(settings).versions() == []
    assert ModelRegistry(settings).active_version() is None
