"""Collaborative embeddings: weighted ALS over users x videos, with content pseudo-users.

The recipe (tuned on the TikTok ``valid`` split only, see docs/benchmarks.md): implicit's
conjugate-gradient ALS on the interaction weights, with one extra "pseudo-user" row per video
that engaged with the video and its nearest content neighbours. Those rows tie videos that look
and sound alike together, so a video with little or no history still gets a useful vector, and
they regularise the sparse long tail (+0.5 to +1 point of Recall@20 on TikTok ``valid``).

User vectors are never stored for serving: the online path folds a user in from their recent
positives with one small linear solve (:meth:`EmbeddingModel.user_vector`), the same solve ALS
itself runs for a user given the video vectors, so a vector is fresh after every event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from fyp.config import EmbeddingSettings

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass
class EmbeddingModel:
    """Video vectors and what a fold-in needs.

    Attributes:
        item_factors: (videos x factors) float32 video vectors; a user's score for a video is
            the dot product of the user vector with the video's row.
        regularization: the L2 weight the vectors were trained with.
        alpha: confidence per unit of interaction weight (implicit's ``alpha``).
    """

    item_factors: F32
    regularization: float
    alpha: float

    def __post_init__(self) -> None:
        v = self.item_factors
        f = v.shape[1]
        # VᵀV + λI is shared by every fold-in; only the user's own rows are added per call
        # (computed in float64 from the float32 rows, without keeping a float64 copy of V).
        gram = np.zeros((f, f))
        for start in range(0, v.shape[0], 65_536):
            block = np.asarray(v[start : start + 65_536], dtype=np.float64)
            gram += block.T @ block
        self._gram: F64 = gram + self.regularization * np.eye(f)

    @property
    def factors(self) -> int:
        return int(self.item_factors.shape[1])

    def user_vector(self, items: npt.ArrayLike, weights: F64 | list[float] | None = None) -> F32:
        """The least-squares user vector for these videos, as ALS would compute it.

        Solves ``(VᵀV + λI + Σ_i (c_i - 1) v_i v_iᵀ) u = Σ_i c_i v_i`` with ``c_i = alpha w_i``
        (implicit's confidence model, preference 1 on each given video, 0 elsewhere).

        Args:
            items: video indices (repeats are summed).
            weights: interaction weight per index; 1 each when None.

        Returns:
            The (factors,) float32 vector; zeros when ``items`` is empty.
        """
        idx = np.asarray(items, dtype=np.int64)
        if idx.size == 0:
            return np.zeros(self.factors, np.float32)
        w = np.ones(idx.size) if weights is None else np.asarray(weights, np.float64)
        if idx.size > 1:
            idx, inverse = np.unique(idx, return_inverse=True)
            w = np.bincount(inverse, weights=w).astype(np.float64)
        c = self.alpha * w
        vi = np.asarray(self.item_factors[idx], dtype=np.float64)
        a = self._gram + (vi * (c - 1.0)[:, None]).T @ vi
        b = c @ vi
        return np.linalg.solve(a, b).astype(np.float32)

    def user_vectors(self, rows: sp.csr_matrix) -> F32:
        """Fold-in for every row of a users x videos weight matrix (zeros for empty rows)."""
        out = np.zeros((rows.shape[0], self.factors), np.float32)
        for r in range(rows.shape[0]):
            lo, hi = rows.indptr[r], rows.indptr[r + 1]
            if hi > lo:
                out[r] = self.user_vector(rows.indices[lo:hi], rows.data[lo:hi])
        return out


def content_pseudo_users(neighbours: I64 | None, n_items: int) -> sp.csr_matrix:
    """One row per video: the video itself and its nearest content neighbours, weight 1.

    Args:
        neighbours: (videos x k) indices of each video's nearest videos by content (-1 pads).
        n_items: catalog size.
    """
    if neighbours is None or neighbours.size == 0:
        return sp.csr_matrix(np.zeros((0, n_items), np.float32))
    n, k = neighbours.shape
    cols = np.concatenate([np.arange(n)[:, None], neighbours], axis=1)
    rows = np.repeat(np.arange(n), k + 1)
    flat = cols.ravel()
    keep = flat >= 0
    m = sp.csr_matrix(
        (np.ones(int(keep.sum()), np.float32), (rows[keep], flat[keep])), shape=(n, n_items)
    )
    m.data[:] = 1.0  # a neighbour listed twice is still one engagement
    return m


def fit(
    interactions: sp.csr_matrix,
    settings: EmbeddingSettings,
    content_neighbours: I64 | None = None,
    on_iteration: Callable[[int], None] | None = None,
) -> tuple[EmbeddingModel, F32]:
    """Train video vectors (and the training users' vectors) by weighted ALS.

    Args:
        interactions: users x videos positive weights (like = 1); zeros are "not engaged".
        settings: factors, regularization, alpha, iterations, seed.
        content_neighbours: (videos x k) content neighbour indices for the pseudo-user rows;
            None trains on interactions alone.
        on_iteration: called after each ALS iteration (progress bars).

    Returns:
        The model, and the (users x factors) vectors of the interaction rows.
    """
    from implicit.cpu.als import AlternatingLeastSquares

    x = sp.csr_matrix(interactions, dtype=np.float32)
    n_users, n_items = x.shape
    k = settings.content_neighbours
    pseudo = content_pseudo_users(
        None if content_neighbours is None or k == 0 else content_neighbours[:, :k], n_items
    )
    pseudo.data *= np.float32(settings.content_weight)
    stacked = sp.vstack([x, pseudo]).tocsr() if pseudo.shape[0] else x

    def callback(iteration: int, _elapsed: float, _loss: float | None) -> None:
        if on_iteration is not None:
            on_iteration(iteration)

    # implicit's extension may load its own BLAS on import: limit after importing it, or its
    # solver runs on a contended threadpool (many times slower, and it warns).
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(
            factors=settings.factors,
            regularization=settings.regularization,
            alpha=settings.alpha,
            iterations=settings.iterations,
            random_state=settings.seed,
            # One thread keeps results identical run to run; the fit takes seconds anyway.
            num_threads=1,
        )
        model.fit(stacked, show_progress=False, callback=callback)
    item = np.ascontiguousarray(model.item_factors, dtype=np.float32)
    users = np.ascontiguousarray(model.user_factors[:n_users], dtype=np.float32)
    return EmbeddingModel(item, settings.regularization, settings.alpha), users
