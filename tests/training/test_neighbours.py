from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from fyp.training import neighbours


def test_co_engagement_ranks_by_shrunk_cosine() -> None:
    # items 0 and 1 share three users; 0 and 2 share one.
    x = sp.csr_matrix(np.array([[1, 1, 0], [1, 1, 0], [1, 1, 1], [0, 0, 1], [1, 0, 0]], np.float32))
    idx, val = neighbours.co_engagement(x, k=2, shrink=1.0)
    assert idx[0].tolist() == [1, 2]
    # |U0 ∩ U1| = 3, |U0| = 4, |U1| = 3 -> 3 / (sqrt(12) + 1)
    assert val[0, 0] == np.float32(3 / (np.sqrt(12) + 1))
    # item 2 meets 0 and 1 once each; 1 has fewer users, so its cosine is higher
    assert idx[2].tolist() == [1, 0]


def test_transitions_prefer_the_next_step_and_keep_direction() -> None:
    seqs = [np.array([0, 1, 2]), np.array([0, 1, 3]), np.array([4, 0, 1])]
    idx, val = neighbours.transitions(seqs, 5, k=3, window=2)
    assert idx[0, 0] == 1  # 1 always comes right after 0
    assert 4 not in idx[0].tolist()  # 4 only ever comes before 0
    np.testing.assert_allclose(val[0].sum(), 1.0, rtol=1e-6)


def test_blend_rows_weights_recent_sources_more() -> None:
    idx = np.array([[1, -1], [2, -1], [-1, -1]], np.int32)
    val = np.array([[1.0, 0], [1.0, 0], [0, 0]], np.float32)
    scores = neighbours.blend_rows(idx, val, [0, 1])  # 1 is newest
    assert scores[2] > scores[1]


def test_topk_rows_breaks_ties_by_index_and_pads() -> None:
    m = sp.csr_matrix(np.array([[0, 2, 2, 1], [0, 0, 0, 0]], np.float32))
    idx, val = neighbours.topk_rows(m, 3, exclude_diagonal=False)
    assert idx.tolist() == [[1, 2, 3], [-1, -1, -1]]
    assert val[0].tolist() == [2, 2, 1]


def test_co_engagement_keeps_only_a_heavy_users_latest_positives() -> None:
    x = sp.csr_matrix(np.array([[1, 1, 1, 1], [0, 0, 1, 1]], np.float32))
    seqs = [np.array([0, 1, 2, 3]), np.array([2, 3])]
    idx, _ = neighbours.co_engagement(x, k=3, sequences=seqs, max_history=2, shrink=0)
    # user 0's oldest positives (0, 1) are dropped: they co-occur with nothing any more
    assert idx[0].tolist() == [-1, -1, -1]
    assert idx[2].tolist() == [3, -1, -1]
    full, _ = neighbours.co_engagement(x, k=3, sequences=seqs, max_history=10, shrink=0)
    assert full[0].tolist() == [1, 2, 3]
