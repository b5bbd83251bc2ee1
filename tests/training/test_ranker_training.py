"""The trainer learns the ranker from the served log joined with outcome events."""

from __future__ import annotations

import random
from datetime import timedelta

import numpy as np

from fyp.config import Settings
from fyp.storage.data import DataStore, ServedRow
from fyp.training import ModelRegistry, Trainer
from tests.training.support import T0, clustered_world, load, served


def test_the_trainer_fits_a_ranker_on_served_rows_and_their_outcomes(
    store: DataStore, settings: Settings
) -> None:
    rng = random.Random(0)
    world = clustered_world(topics=3, per_topic=10, users=45)
    settings.training.page_size = 500  # several pages of served rows and events
    settings.training.ranker_min_positives = 10
    t0_ms = int(T0.timestamp() * 1000)
    served_ms0 = t0_ms + 86_400_000
    rows: list[ServedRow] = []
    n = 0
    for uid, topic in world.topic_of_user.items():
        for j, (vid, vtopic) in enumerate(rng.sample(sorted(world.topic_of_video.items()), 12)):
            n += 1
            ms = served_ms0 + n * 1000
            match = float(vtopic == topic)
            rid = f"r{uid}-{j // 6}"
            rows.append(served(rid, uid, vid, ms, {"affinity": match, "noise": rng.random()}, j))
            ts = (T0 + timedelta(milliseconds=ms - t0_ms + 500)).isoformat()
            base = {"user_id": uid, "video_id": vid, "ts": ts, "request_id": rid}
            if match and rng.random() < 0.7:
                world.events.append({**base, "event_id": f"o{n}l", "type": "like"})
            elif not match and rng.random() < 0.6:
                world.events.append({**base, "event_id": f"o{n}s", "type": "skip"})
    load(store, settings, world)
    store.log_served(rows)
    result = Trainer(settings, store).run(evaluate=False)
    summary = result.manifest["ranker"]
    assert result.manifest["counts"]["served_rows"] == len(rows)
    assert summary["trained"] and {"like", "skip"} <= set(summary["actions"])
    assert "share" in summary["skipped"]
    models = ModelRegistry(settings).current()
    assert models is not None and models.ranker is not None
    assert models.ranker.feature_names == ["affinity", "noise"]
    assert models.ranker.native is not None  # training.native_ranker: compiled with the version
    p = models.ranker.predict(np.array([[1.0, 0.5], [0.0, 0.5]]))
    assert p["like"][0] > p["like"][1] + 0.3
    assert p["skip"][1] > p["skip"][0] + 0.3
