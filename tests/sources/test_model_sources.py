"""The model-backed sources and the ranker path, with a fake model version; and that each of
them returns nothing, without error, when no model is active."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pytest

from fyp.config import FeedSettings
from fyp.pipeline.candidate import Candidate
from fyp.scorers.action_scorer import (
    ACTIONS,
    COLUMNS,
    ActionScorer,
    heuristic,
    heuristic_batch,
)
from fyp.sources.content_source import ContentSource
from fyp.sources.embedding_source import EmbeddingSource
from fyp.sources.item_neighbours_source import ItemNeighboursSource
from fyp.storage.cache import UserState
from tests.pipeline.support import cand, make_query


class FakeRanker:
    def __init__(self) -> None:
        self.feature_names = ["aff_creator", "missing_feature"]
        self.actions = ["like"]
        self.seen: npt.NDArray[np.float64] | None = None

    def predict(self, x: npt.NDArray[np.float64]) -> dict[str, npt.NDArray[np.float64]]:
        self.seen = x
        return {"like": np.full(len(x), 0.75)}


class FakeModels:
    version = "fake-1"

    def __init__(self) -> None:
        self.ranker: FakeRanker | None = FakeRanker()
        self.video_ids = [f"e{i}" for i in range(5)]

    def user_vector(self, recent: Sequence[tuple[str, float]]) -> npt.NDArray[np.float32] | None:
        return np.ones(2, np.float32) if recent else None

    def search_rows(self, vector: npt.ArrayLike, k: int) -> tuple[list[int], list[float]]:
        rows = list(range(min(k, 5)))
        return rows, [1.0 - i / 10 for i in rows]

    def affinity(self, vector: npt.ArrayLike, video_ids: Sequence[str]) -> npt.NDArray[np.float64]:
        return np.full(len(video_ids), 0.5)

    def neighbours(self, video_id: str, k: int) -> list[tuple[str, float]]:
        return [(f"{video_id}-n{i}", 0.9 - i / 10) for i in range(min(k, 3))]

    def similar_content(self, video_id: str, k: int) -> list[tuple[str, float]]:
        return [(f"{video_id}-c", 0.8)]

    def next_items(self, recent_video_ids: Sequence[str], k: int) -> list[tuple[str, float]]:
        return [("after", 2.0)] if recent_video_ids else []


STATE = UserState(recent=[("old", 1.0), ("skipped", -0.5), ("last", 2.0)], warm=True)


def get(source: object, **query: object) -> list[Candidate]:
    return asyncio.run(source.get_candidates(make_query(**query)))  # type: ignore[attr-defined]


def test_embedding_source_searches_with_the_user_vector_and_skips_served() -> None:
    m = FakeModels()
    got = get(EmbeddingSource(), models=m, user_vector=m.user_vector(STATE.recent), served={"e0"})
    assert [c.video_id for c in got] == ["e1", "e2", "e3", "e4"]
    assert [c.source_score for c in got] == [0.9, 0.8, 0.7, 0.6]
    assert {c.source for c in got} == {"embedding"}


def test_embedding_source_fills_its_quota_past_served_videos() -> None:
    m = FakeModels()
    two = FeedSettings.model_validate({"quotas": {"embedding": 2}})
    got = get(
        EmbeddingSource(),
        models=m,
        user_vector=m.user_vector(STATE.recent),
        served={"e0", "not-found"},
        settings=two,
    )
    assert [c.video_id for c in got] == ["e1", "e2"]  # of e1, e2, e3


def test_item_neighbours_seed_from_the_newest_positives() -> None:
    got = get(ItemNeighboursSource(), models=FakeModels(), state=STATE)
    ids = [c.video_id for c in got]
    assert ids[0] == "after"  # the sequence signal
    assert "last-n0" in ids and "old-n0" in ids
    assert not any(i.startswith("skipped") for i in ids)  # negatives seed nothing
    assert ids.index("last-n0") < ids.index("old-n0")  # newer positives weigh more


def test_content_source_uses_content_vectors() -> None:
    got = get(ContentSource(), models=FakeModels(), state=STATE)
    assert {c.video_id for c in got} == {"last-c", "old-c"}


def test_model_sources_return_nothing_without_models() -> None:
    for source in (EmbeddingSource(), ItemNeighboursSource(), ContentSource()):
        assert get(source, state=STATE) == []


def test_the_ranker_predicts_from_named_features_and_the_heuristic_fills_the_rest() -> None:
    m = FakeModels()
    cands = [cand(1), cand(2)]
    for c in cands:
        c.features = {"aff_creator": 2.0, "v_complete_rate": 0.4}
    out = ActionScorer().score(make_query(models=m), cands)
    assert [c.predictions["like"] for c in out] == [0.75, 0.75]
    assert 0 < out[0].predictions["complete"] < 1  # no ranker model for it: heuristic
    assert m.ranker is not None and m.ranker.seen is not None
    assert m.ranker.seen[0, 0] == 2.0 and np.isnan(m.ranker.seen[0, 1])


def test_a_ranker_with_every_action_leaves_no_heuristic_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from fyp.scorers import action_scorer

    class EveryAction(FakeRanker):
        def predict(self, x: npt.NDArray[np.float64]) -> dict[str, npt.NDArray[np.float64]]:
            self.seen = x
            return {a: np.full(len(x), 0.01 * (i + 1)) for i, a in enumerate(ACTIONS)}

    def refuse(x: npt.NDArray[np.float64]) -> dict[str, npt.NDArray[np.float64]]:
        raise AssertionError("the heuristic is not needed when the ranker has every action")

    m = FakeModels()
    m.ranker = EveryAction()
    cands = [cand(1), cand(2)]
    for c in cands:
        c.features = {"aff_creator": 2.0, "v_complete_rate": 0.4}
    monkeypatch.setattr(action_scorer, "heuristic_batch", refuse)
    out = ActionScorer().score(make_query(models=m), cands)
    for c in out:  # the ranker's values, in the actions' order
        assert list(c.predictions) == list(ACTIONS)
        assert [c.predictions[a] for a in ACTIONS] == pytest.approx([0.01 * i for i in range(1, 8)])


def test_the_batched_heuristic_matches_the_scalar_one() -> None:
    rows = [
        {"aff_hashtag_max": 2.0, "v_complete_rate": 0.4, "v_like_rate": 0.1, "skip_streak": 1.0},
        {"emb_score": float("nan"), "following": 1.0, "v_skip_rate": 0.3, "v_ni_rate": 0.01},
        {"emb_score": -3.0, "aff_creator": -4.0, "v_complete_rate": 0.9, "v_share_rate": 0.2},
        {},
    ]
    batch = heuristic_batch(np.array([[f.get(c, math.nan) for c in COLUMNS] for f in rows]))
    for i, f in enumerate(rows):
        for action, p in heuristic(f).items():
            assert batch[action][i] == pytest.approx(p), (i, action)
