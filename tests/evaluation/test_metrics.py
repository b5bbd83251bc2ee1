from __future__ import annotations

import math

import numpy as np
import pytest

from fyp.evaluation.metrics import TopKAccumulator, gini, top_k


def test_top_k_orders_best_first_and_breaks_ties_by_index() -> None:
    s = np.array([[0.1, 0.9, 0.5, 0.9], [3.0, 2.0, 1.0, 0.0]])
    assert top_k(s, 3).tolist() == [[1, 3, 2], [0, 1, 2]]


def test_accuracy_against_hand_computed_values() -> None:
    acc = TopKAccumulator(k=3, n_items=6, item_popularity=[4, 2, 1, 1, 0, 0], n_train_users=4)
    # user A: relevant {1, 5}, list [1, 2, 5] -> hits at ranks 1 and 3
    # user B: relevant {4}, list [0, 1, 2] -> no hit
    acc.add(np.array([[1, 2, 5], [0, 1, 2]]), [np.array([1, 5]), np.array([4])])
    m = acc.result()
    d = 1 / np.log2(np.arange(2, 5))  # 1, 0.6309, 0.5
    ndcg_a = (d[0] + d[2]) / (d[0] + d[1])
    assert m.users == 2
    assert m.recall == pytest.approx((2 / 2 + 0) / 2)
    assert m.precision == pytest.approx((2 / 3 + 0) / 2)
    assert m.ndcg == pytest.approx(ndcg_a / 2)
    assert m.hit_rate == pytest.approx(0.5)
    assert m.coverage == pytest.approx(4 / 6)  # items 0, 1, 2, 5 shown
    # novelty: mean self-information -log2(pop / users), unseen items count as pop 1
    info = {0: -math.log2(4 / 4), 1: -math.log2(2 / 4), 2: -math.log2(1 / 4), 5: -math.log2(1 / 4)}
    shown = [1, 2, 5, 0, 1, 2]
    assert m.novelty == pytest.approx(sum(info[i] for i in shown) / 6)


def test_users_without_held_out_items_are_not_averaged() -> None:
    acc = TopKAccumulator(k=2, n_items=3, item_popularity=[1, 1, 1], n_train_users=2)
    acc.add(np.array([[0, 1], [1, 2]]), [np.array([0]), np.array([], np.int64)])
    assert acc.result().users == 1 and acc.result().recall == 1.0


def test_gini_by_hand() -> None:
    assert gini([5, 5, 5, 5]) == pytest.approx(0.0)
    assert gini([0, 0, 0, 8]) == pytest.approx(0.75)  # (n - 1) / n for one winner
    assert gini([1, 2, 3]) == pytest.approx(2 / 9)
    assert gini([]) == 0.0


def test_creator_gini_pools_items_by_creator() -> None:
    acc = TopKAccumulator(
        k=2, n_items=4, item_popularity=[1] * 4, n_train_users=1, item_creator=[0, 0, 1, 1]
    )
    acc.add(np.array([[0, 1], [0, 1]]), [np.array([0]), np.array([1])])
    assert acc.result().creator_gini == pytest.approx(gini([4, 0]))
