"""Top-K metrics over ranked lists, computed the way the published tables compute them.

Accuracy (Recall, Precision, NDCG, HR at K) is averaged over evaluated users; diversity costs
(catalog coverage, novelty, Gini of creator exposure) are computed over all users' lists, so
both sit side by side in one report.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class TopKMetrics:
    k: int
    users: int
    recall: float
    precision: float
    ndcg: float
    hit_rate: float
    coverage: float
    novelty: float
    creator_gini: float

    def as_dict(self) -> dict[str, float | int]:
        return {
            "k": self.k,
            "users": self.users,
            "recall": self.recall,
            "precision": self.precision,
            "ndcg": self.ndcg,
            "hr": self.hit_rate,
            "coverage": self.coverage,
            "novelty": self.novelty,
            "creator_gini": self.creator_gini,
        }


def top_k(scores: FloatArray, k: int) -> IntArray:
    """Indices of the k best scores per row, best first (ties broken by lower index)."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1).astype(np.int64)


def gini(counts: npt.ArrayLike) -> float:
    """Gini coefficient of non-negative counts: 0 is perfectly even, near 1 is one winner."""
    x = np.sort(np.asarray(counts, dtype=np.float64))
    n = x.size
    if n == 0 or x.sum() == 0:
        return 0.0
    ranks = np.arange(1, n + 1)
    return float((2 * (ranks * x).sum()) / (n * x.sum()) - (n + 1) / n)


class TopKAccumulator:
    """Adds up per-user accuracy and the exposure of items and creators over batches of users.

    Args:
        k: list length.
        n_items: catalog size (coverage denominator).
        item_popularity: training interactions per item (for novelty).
        n_train_users: users in training (novelty's probability denominator).
        item_creator: creator index of each item (Gini of creator exposure); None means each
            item is its own creator.
    """

    def __init__(
        self,
        k: int,
        n_items: int,
        item_popularity: npt.ArrayLike,
        n_train_users: int,
        item_creator: npt.ArrayLike | None = None,
    ) -> None:
        self.k = k
        self.n_items = n_items
        pop = np.asarray(item_popularity, dtype=np.float64)
        # Self-information of recommending an item; unseen items get the rarest observed value.
        p = np.maximum(pop, 1.0) / max(n_train_users, 1)
        self._self_info = -np.log2(np.minimum(p, 1.0))
        self._creator = (
            np.arange(n_items) if item_creator is None else np.asarray(item_creator, np.int64)
        )
        self._exposure = np.zeros(n_items, dtype=np.int64)
        self._discount = 1.0 / np.log2(np.arange(2, k + 2))
        self._sums = np.zeros(4)  # recall, precision, ndcg, hit
        self._novelty = 0.0
        self._users = 0

    def add(self, ranked: IntArray, relevant: list[IntArray]) -> None:
        """``ranked``: (users, k) item indices best first; ``relevant``: held-out items per user."""
        for row, rel in zip(ranked, relevant, strict=True):
            if rel.size == 0:
                continue
            hits = np.isin(row, rel)
            n_hit = int(hits.sum())
            ideal = self._discount[: min(rel.size, self.k)].sum()
            self._sums += (
                n_hit / rel.size,
                n_hit / self.k,
                float((hits * self._discount[: row.size]).sum() / ideal),
                float(n_hit > 0),
            )
            self._users += 1
        np.add.at(self._exposure, ranked.ravel(), 1)
        self._novelty += float(self._self_info[ranked].sum())

    def result(self) -> TopKMetrics:
        u = max(self._users, 1)
        recall, precision, ndcg, hit = self._sums / u
        shown = int(self._exposure.sum())
        creators = np.zeros(int(self._creator.max()) + 1 if self._creator.size else 0, np.int64)
        np.add.at(creators, self._creator, self._exposure)
        return TopKMetrics(
            k=self.k,
            users=self._users,
            recall=float(recall),
            precision=float(precision),
            ndcg=float(ndcg),
            hit_rate=float(hit),
            coverage=float((self._exposure > 0).sum() / max(self.n_items, 1)),
            novelty=self._novelty / max(shown, 1),
            creator_gini=gini(creators),
        )
