from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from fyp.config import EmbeddingSettings
from fyp.training import embeddings


def small_fit(content: bool = False) -> tuple[embeddings.EmbeddingModel, sp.csr_matrix]:
    rng = np.random.default_rng(0)
    x = sp.csr_matrix(sp.random(40, 30, density=0.15, random_state=1, dtype=np.float32))
    x.data[:] = rng.uniform(0.5, 3.0, x.nnz)
    nb = rng.integers(0, 30, (30, 3)) if content else None
    cfg = EmbeddingSettings(factors=8, regularization=2.0, alpha=5.0, iterations=5)
    model, _ = embeddings.fit(x, cfg, nb)
    return model, x


def test_fold_in_equals_the_full_normal_equation_solve() -> None:
    model, _ = small_fit()
    v = model.item_factors.astype(np.float64)
    items = np.array([3, 7, 11])
    w = np.array([1.0, 2.5, 0.5])
    c = np.zeros(v.shape[0])
    c[items] = model.alpha * w
    # Dense form of implicit's objective: confidence 1 everywhere, 1 + (c - 1) on the items.
    conf = np.ones(v.shape[0])
    conf[items] = c[items]
    p = np.zeros(v.shape[0])
    p[items] = 1.0
    a = v.T @ (conf[:, None] * v) + model.regularization * np.eye(v.shape[1])
    expected = np.linalg.solve(a, v.T @ (conf * p))
    got = model.user_vector(items, w)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


def test_fold_in_matches_implicits_own_user_recalculation() -> None:
    from implicit.cpu.als import AlternatingLeastSquares

    model, x = small_fit()
    with threadpool_limits(1, "blas"):
        als = AlternatingLeastSquares(
            factors=8, regularization=model.regularization, alpha=model.alpha
        )
    als.item_factors = model.item_factors
    als.user_factors = np.zeros((1, 8), np.float32)
    row = x[4]
    expected = als.recalculate_user(0, row)
    got = model.user_vector(row.indices, row.data)
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-5)


def test_repeated_items_sum_their_weights_and_empty_is_zero() -> None:
    model, _ = small_fit()
    np.testing.assert_allclose(
        model.user_vector([2, 2, 5], [1.0, 1.0, 1.0]), model.user_vector([2, 5], [2.0, 1.0])
    )
    assert not model.user_vector([]).any()


def test_content_pseudo_users_hold_each_video_and_its_neighbours() -> None:
    nb = np.array([[1, 2], [0, -1], [0, 1]])
    m = embeddings.content_pseudo_users(nb, 4)
    assert m.shape == (3, 4)
    assert m.toarray().tolist() == [[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 0]]


def test_fit_is_deterministic_for_a_seed_and_content_rows_change_it() -> None:
    a, _ = small_fit()
    b, _ = small_fit()
    np.testing.assert_array_equal(a.item_factors, b.item_factors)
    c, _ = small_fit(content=True)
    assert not np.allclose(a.item_factors, c.item_factors)
