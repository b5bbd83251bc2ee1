from __future__ import annotations

from pathlib import Path

import numpy as np

from fyp.models import VideoBrief
from fyp.training import ranker
from tests.training.support import T0, event, served

MS0 = int(T0.timestamp() * 1000)


BRIEFS = {"v1": VideoBrief("c1", 10_000), "v2": VideoBrief("c2", 10_000)}


def test_outcomes_join_by_request_or_by_time_window() -> None:
    rows = [
        served("r1", "u1", "v1", MS0, {"a": 1.0}),
        served("r2", "u1", "v2", MS0, {"b": 2.0}),
    ]
    idx = ranker.OutcomeIndex()
    idx.add(event("like", "v1", minute=200, request_id="r1"))  # late, but names the request
    idx.add(event("share", "v1", minute=300))  # late and anonymous: not an outcome
    idx.add(event("play", "v2", minute=5, watch_ms=9_500))  # within the hour, 95% watched
    idx.add(event("skip", "v2", minute=-1))  # before serving: not an outcome
    idx.add(event("follow", None, minute=10, creator_id="c2"))  # the creator, in the window
    data = ranker.join(rows, idx, BRIEFS)
    assert data.feature_names == ["a", "b"]
    assert np.isnan(data.x[0, 1]) and data.x[1, 1] == 2.0
    labels = {a: y.tolist() for a, y in data.labels.items()}
    assert labels["like"] == [1, 0]
    assert labels["share"] == [0, 0]
    assert labels["complete"] == [0, 1]
    assert labels["skip"] == [0, 0]
    assert labels["follow"] == [0, 1]


def test_a_short_play_is_not_a_completion() -> None:
    idx = ranker.OutcomeIndex()
    idx.add(event("play", "v1", minute=1, watch_ms=3_000))
    data = ranker.join([served("r", "u1", "v1", MS0, {"a": 0.0})], idx, BRIEFS)
    assert data.labels["complete"].tolist() == [0]


def planted(n: int, seed: int) -> ranker.RankerData:
    """Like happens when affinity is high, skip when it is low; noise is irrelevant."""
    rng = np.random.default_rng(seed)
    affinity = rng.uniform(0, 1, n)
    noise = rng.uniform(0, 1, n)
    x = np.column_stack([affinity, noise])
    like = (rng.uniform(0, 1, n) < 0.05 + 0.8 * affinity**2).astype(np.int8)
    skip = (rng.uniform(0, 1, n) < 0.6 * (1 - affinity)).astype(np.int8)
    labels = {a: np.zeros(n, np.int8) for a in ranker.ACTIONS}
    labels["like"], labels["skip"] = like, skip
    labels["share"][:3] = 1  # too rare to learn from
    return ranker.RankerData(["affinity", "noise"], x, labels, np.arange(n, dtype=np.int64))


def test_the_ranker_learns_a_planted_signal_and_skips_rare_actions(tmp_path: Path) -> None:
    model = ranker.train(planted(3000, 0), min_positives=20, rounds=60)
    assert model is not None
    assert model.actions == ["like", "skip"]
    assert "share" in model.skipped and "3 positive" in model.skipped["share"]
    test = planted(2000, 1)
    p = model.predict(test.x)
    assert ranker.auc(test.labels["like"], p["like"]) > 0.75
    assert ranker.auc(test.labels["skip"], p["skip"]) > 0.65
    assert model.metrics["like"]["holdout_auc"] > 0.7
    # higher affinity, more likes and fewer skips
    grid = np.array([[0.1, 0.5], [0.9, 0.5]])
    q = model.predict(grid)
    assert q["like"][1] > q["like"][0] and q["skip"][1] < q["skip"][0]
    # survives a save and load bit for bit
    model.save(tmp_path / "ranker")
    again = ranker.Ranker.load(tmp_path / "ranker")
    np.testing.assert_allclose(again.predict(test.x)["like"], p["like"])
    assert again.skipped == model.skipped


def test_predict_takes_nan_for_missing_features_and_checks_width() -> None:
    model = ranker.train(planted(1000, 2), rounds=20)
    assert model is not None
    out = model.predict(np.array([[np.nan, 0.3]]))
    assert 0 <= out["like"][0] <= 1
    try:
        model.predict(np.zeros((1, 3)))
    except ValueError:
        pass
    else:
        raise AssertionError("a wrong feature count must be refused")


def test_no_features_or_no_positives_means_no_ranker() -> None:
    empty = ranker.RankerData([], np.zeros((0, 0)), {}, np.zeros(0, np.int64))
    assert ranker.train(empty) is None
    data = planted(200, 3)
    for y in data.labels.values():
        y[:] = 0
    assert ranker.train(data) is None


def test_auc_against_hand_computed_values() -> None:
    assert ranker.auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
    assert ranker.auc([0, 1], [0.5, 0.5]) == 0.5
    assert ranker.auc([1, 0], [0.9, 0.1]) == 1.0
