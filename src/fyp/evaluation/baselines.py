"""Reference recommenders computed in the same run as the engine's own figures."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from fyp.evaluation.data import FloatArray, IntArray, Split


class Popularity:
    """Every user gets the items with the most training interactions."""

    name = "popularity"

    def __init__(self) -> None:
        self._pop: FloatArray = np.zeros(0)

    def fit(self, split: Split) -> None:
        self._pop = np.asarray((split.train > 0).sum(axis=0), dtype=np.float64).ravel()

    def scores(self, users: IntArray, history: sp.csr_matrix) -> FloatArray:
        return np.broadcast_to(self._pop, (len(users), self._pop.size))


class ImplicitALS:
    """implicit's ALS with defaults but for factors, iterations and alpha (a common baseline)."""

    def __init__(
        self, factors: int = 64, iterations: int = 20, seed: int = 42, alpha: float = 1.0
    ) -> None:
        self.factors = factors
        self.iterations = iterations
        self.seed = seed
        self.alpha = alpha
        suffix = "" if alpha == 1.0 else f"-alpha{alpha:g}"
        self.name = f"implicit-als-{factors}f-{iterations}it{suffix}"
        self._user: FloatArray = np.zeros((0, 0))
        self._item: FloatArray = np.zeros((0, 0))

    def fit(self, split: Split) -> None:
        from implicit.cpu.als import AlternatingLeastSquares

        with threadpool_limits(1, "blas"):  # after the import: implicit may load its own BLAS
            model = AlternatingLeastSquares(
                factors=self.factors,
                iterations=self.iterations,
                alpha=self.alpha,
                random_state=self.seed,
                num_threads=1,  # deterministic across machines
            )
            model.fit(sp.csr_matrix((split.train > 0).astype(np.float32)), show_progress=False)
        self._user = np.asarray(model.user_factors)
        self._item = np.asarray(model.item_factors)

    def scores(self, users: IntArray, history: sp.csr_matrix) -> FloatArray:
        result: FloatArray = self._user[users] @ self._item.T
        return result
