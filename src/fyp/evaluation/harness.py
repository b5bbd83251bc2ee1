"""Run recommenders through one protocol: fit on train, rank all items for each evaluated user
with the user's training items masked, keep the top K, and add up the metrics."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import scipy.sparse as sp

from fyp.evaluation.data import FloatArray, IntArray, Split
from fyp.evaluation.metrics import TopKAccumulator, TopKMetrics, top_k


class Recommender(Protocol):
    """Anything that learns from a split's training part and scores every item for users."""

    name: str

    def fit(self, split: Split) -> None: ...

    def scores(self, users: IntArray, history: sp.csr_matrix) -> FloatArray:
        """Scores of all items (``len(users)`` x items) given each user's training rows."""


@dataclass(frozen=True)
class Evaluation:
    model: str
    part: str
    metrics: TopKMetrics
    fit_s: float
    score_s: float


def evaluate(
    model: Recommender, split: Split, part: str = "test", k: int = 20, batch: int = 1024
) -> Evaluation:
    t0 = time.perf_counter()
    model.fit(split)
    fit_s = time.perf_counter() - t0
    metrics, score_s = rank(model, split, part, k, batch)
    return Evaluation(model.name, part, metrics, fit_s, score_s)


def rank(
    model: Recommender, split: Split, part: str, k: int = 20, batch: int = 1024
) -> tuple[TopKMetrics, float]:
    """Metrics of an already fitted model on ``part`` ("valid" or "test")."""
    held = split.held_out(part)
    train = split.train
    users = np.asarray([u for u in range(split.n_users) if held[u].size], dtype=np.int64)
    # Score matrices are users x catalog float64: keep a batch near 64 MB on large catalogs.
    batch = max(16, min(batch, 8_000_000 // max(split.n_items, 1)))
    acc = TopKAccumulator(
        k,
        split.n_items,
        item_popularity=np.asarray((train > 0).sum(axis=0)).ravel(),
        n_train_users=split.n_users,
        item_creator=split.item_creator,
    )
    t0 = time.perf_counter()
    for start in range(0, len(users), batch):
        chunk = users[start : start + batch]
        rows = train[chunk]
        s = np.array(model.scores(chunk, rows), dtype=np.float64, copy=True)
        r, c = rows.nonzero()
        s[r, c] = -np.inf  # the user's training items are never recommended back
        acc.add(top_k(s, k), [held[u] for u in chunk])
    return acc.result(), time.perf_counter() - t0
