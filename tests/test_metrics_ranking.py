import math

import numpy as np
import pytest

from recsys_spark import schemas as S
from recsys_spark.metrics import recall_ndcg, recall_ndcg_numpy
from recsys_spark.ranking import popularity_vectors, top_k, top_k_numpy


def test_metrics_hand_computed(spark):
    # user 0: relevant {5}, hit at rank 2 -> recall 1, ndcg 1/log2(3)
    # user 1: relevant {7, 8}, hit 8 at rank 1 -> recall 1/2, ndcg 1 / (1 + 1/log2(3))
    # user 2: relevant {9}, no hit -> 0, 0
    ranked = {0: [4, 5, 6], 1: [8, 1, 2], 2: [1, 2, 3]}
    relevant = {0: [5], 1: [7, 8], 2: [9]}
    expected_recall = (1 + 0.5 + 0) / 3
    expected_ndcg = (1 / math.log2(3) + 1 / (1 + 1 / math.log2(3)) + 0) / 3
    recall, ndcg, n = recall_ndcg_numpy(ranked, relevant, k=3)
    assert (recall, ndcg, n) == (pytest.approx(expected_recall), pytest.approx(expected_ndcg), 3)
    top_df = spark.createDataFrame(
        [(u, i, r + 1) for u, items in ranked.items() for r, i in enumerate(items)], "user_idx int, item_idx int, rank int")
    rel_df = spark.createDataFrame([(u, i) for u, items in relevant.items() for i in items], "user_idx int, item_idx int")
    got = recall_ndcg(top_df, rel_df, k=3)
    assert got == {"recall": pytest.approx(expected_recall), "ndcg": pytest.approx(expected_ndcg), "n_users": 3}
    # With k=1 only user 1's first item counts: recall 1/2 / 3 users, ndcg 1/1 for user 1 (idcg over 1 rank).
    assert recall_ndcg(top_df, rel_df, k=1)["ndcg"] == pytest.approx(1 / 3)


def test_top_k_numpy_matches_brute_force():
    rng = np.random.default_rng(0)
    users, items = rng.normal(size=(6, 4)), rng.normal(size=(30, 4))
    seen = [[0, 1], [], None, [29], list(range(25)), [3]]
    candidate = np.ones(30, bool)
    candidate[7] = False
    got_items, got_scores = top_k_numpy(users.copy(), items, seen, candidate, 5)
    for u in range(6):
        scores = users[u] @ items.T
        allowed = [i for i in range(30) if candidate[i] and i not in (seen[u] or [])]
        best = sorted(allowed, key=lambda i: (-scores[i], i))[:5]
        assert [i for i in got_items[u] if i >= 0] == best
    # user 4 has only 4 eligible items (25..29 minus none): one slot is empty
    assert list(got_items[4]) == sorted(range(25, 30), key=lambda i: -(users[4] @ items[i]))[:5]


def test_top_k_ties_go_to_the_lower_index():
    items, _ = top_k_numpy(np.ones((1, 1)), np.array([[1.0], [2.0], [2.0], [2.0], [0.5]]), [[]], np.ones(5, bool), 2)
    assert list(items[0]) == [1, 2]


def test_spark_top_k_excludes_seen_items(spark):
    users_df = spark.createDataFrame([(0, [1.0, 0.0]), (1, [0.0, 1.0])], "user_idx int, embedding array<float>")
    item_matrix = np.array([[3, 0], [2, 0], [1, 1], [0, 2], [0, 3]], dtype=np.float32)
    seen_df = spark.createDataFrame([(0, 0), (1, 4)], "user_idx int, item_idx int")
    got = sorted(tuple(r) for r in top_k(users_df, item_matrix, seen_df, 2, np.ones(5, bool)).collect())
    assert got == [(0, 1, 1, 2.0), (0, 2, 2, 1.0), (1, 2, 2, 1.0), (1, 3, 1, 2.0)]


def test_popularity_counts_distinct_train_users(spark):
    train_df = spark.createDataFrame([(0, 1, 1.0, None), (1, 1, 1.0, 3.0), (1, 2, 5.0, None)], S.PAIRS_SCHEMA)
    matrix, candidate = popularity_vectors(train_df, 4)
    assert matrix[:, 0].tolist() == [0.0, 2.0, 1.0, 0.0]
    assert candidate.tolist() == [False, True, True, False]
