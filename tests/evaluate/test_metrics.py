import math

import numpy as np
import pytest

from recsys_spark.evaluate import metrics as M
from recsys_spark.evaluate.ranking import top_k_from_scores, top_k_spark
from recsys_spark.evaluate.scorers import DotScorer


def test_metrics_hand_computed():
    # user 0: relevant {5}, hit at rank 2; user 1: relevant {7, 8}, 8 at rank 1; user 2: no hit (-1 pads)
    ranked = np.array([[4, 5, 6], [8, 1, 2], [1, -1, -1]])
    relevant = [np.array([5]), np.array([7, 8]), np.array([9])]
    got = M.per_user(ranked, relevant, [1, 3])
    d = 1 / math.log2(3)
    np.testing.assert_allclose(got["recall"][:, 1], [1, 0.5, 0])
    np.testing.assert_allclose(got["ndcg"][:, 1], [d, 1 / (1 + d), 0])
    np.testing.assert_allclose(got["hr"][:, 1], [1, 1, 0])
    np.testing.assert_allclose(got["mrr"][:, 1], [0.5, 1, 0])
    np.testing.assert_allclose(got["precision"][:, 1], [1 / 3, 1 / 3, 0])
    np.testing.assert_allclose(got["map"][:, 1], [0.5, 0.5, 0])  # user 1: P@1 = 1 over min(2, 3) relevant
    # K = 1: only user 1's first item counts; idcg over one rank
    np.testing.assert_allclose(got["ndcg"][:, 0], [0, 1, 0])
    np.testing.assert_allclose(got["map"][:, 0], [0, 1, 0])


def test_beyond_accuracy_hand_computed():
    item_users = np.array([8, 4, 2, 1, 0])
    got = M.beyond_accuracy(np.array([[0, 1], [0, 2]]), 2, item_users, n_train_users=8, n_candidates=4)
    assert got["coverage"] == pytest.approx(3 / 4)
    assert got["mean_popularity"] == pytest.approx((8 + 4 + 8 + 2) / 4)
    assert got["novelty"] == pytest.approx((0 + 1 + 0 + 2) / 4)


def test_metrics_match_spark_ranking_evaluator(spark):
    from pyspark.ml.evaluation import RankingEvaluator

    rng = np.random.default_rng(5)
    k, n_items = 10, 40
    ranked = np.array([rng.permutation(n_items)[:k] for _ in range(60)])
    relevant = [rng.choice(n_items, size=rng.integers(1, 6), replace=False) for _ in range(60)]
    ours = M.per_user(ranked, relevant, [k])
    df = spark.createDataFrame([([float(x) for x in r], [float(x) for x in rel]) for r, rel in zip(ranked, relevant)],
                               "prediction array<double>, label array<double>")
    for metric, name in (("ndcg", "ndcgAtK"), ("recall", "recallAtK"), ("precision", "precisionAtK"),
                         ("map", "meanAveragePrecisionAtK")):
        spark_value = RankingEvaluator(metricName=name, k=k).evaluate(df)
        assert ours[metric][:, 0].mean() == pytest.approx(spark_value, rel=1e-9), metric


def test_top_k_matches_brute_force_and_masks():
    rng = np.random.default_rng(0)
    users, items = rng.normal(size=(6, 4)), rng.normal(size=(30, 4))
    seen = [[0, 1], [], None, [29], list(range(25)), [3]]
    candidate = np.ones(30, bool)
    candidate[7] = False
    got_items, _ = top_k_from_scores(users @ items.T, seen, candidate, 5)
    for u in range(6):
        scores = users[u] @ items.T
        allowed = [i for i in range(30) if candidate[i] and i not in (seen[u] or [])]
        assert [i for i in got_items[u] if i >= 0] == sorted(allowed, key=lambda i: (-scores[i], i))[:5]


def test_top_k_on_a_large_catalogue_with_ties_and_masked_rows_matches_a_full_sort():
    # wide rows take the sampled-threshold path; rows it cannot serve fall back to an exact partition
    rng = np.random.default_rng(3)
    scores = np.round(rng.normal(size=(40, 6000)), 1).astype(np.float32)  # many ties
    scores[0, 10:] = -np.inf  # fewer eligible items than k
    scores[1, :] = np.linspace(0, 1, 6000)[::-1]  # the best items all at low indices: few in the sample
    scores[2, 3000:] = np.nan
    scores[3, :] = 0.0  # the sample (every 5th item) holds only 20 items at the top: its threshold keeps too few
    scores[3, 0:100:5], scores[3, 1:300:5] = 2.0, 1.0
    seen = [[] for _ in range(40)]
    seen[5] = list(range(0, 6000, 2))
    expected_input = scores.copy()
    items, top = top_k_from_scores(scores, seen, np.ones(6000, bool), 25)
    for row in range(40):
        values = np.where(np.isnan(expected_input[row]), -np.inf, expected_input[row])
        allowed = [i for i in range(6000) if np.isfinite(values[i]) and i not in set(seen[row])]
        want = sorted(allowed, key=lambda i: (-values[i], i))[:25]
        assert [i for i in items[row] if i >= 0] == want, row
        np.testing.assert_array_equal(top[row][:len(want)], values[want])
    assert list(items[0][10:]) == [-1] * 15


def test_top_k_ties_go_to_the_lower_index():
    items, _ = top_k_from_scores(np.array([[1.0, 2.0, 2.0, 2.0, 0.5]]), [[]], np.ones(5, bool), 2)
    assert list(items[0]) == [1, 2]


def test_spark_top_k_scores_in_executors_and_excludes_history(spark):
    item_matrix = np.array([[3, 0], [2, 0], [1, 1], [0, 2], [0, 3]], dtype=np.float32)
    scorer = DotScorer(np.array([[1.0, 0.0], [0.0, 1.0]], np.float32), item_matrix)
    users_df = spark.createDataFrame([(0, [0]), (1, [4])], "user_idx int, history array<int>")
    got = sorted(tuple(r) for r in top_k_spark(users_df, scorer, np.ones(5, bool), 2).collect())
    assert got == [(0, 1, 1, 2.0), (0, 2, 2, 1.0), (1, 2, 2, 1.0), (1, 3, 1, 2.0)]


def test_because_names_the_history_items_that_support_a_recommendation_most(spark):
    from scipy import sparse

    from recsys_spark.evaluate.reasons import because
    from recsys_spark.evaluate.scorers import ItemItemScorer, ProfileScorer

    # Item-item: support of item 4 from history items 0..3 is 0.2, 0.9, 0.0, 0.5; of item 5: only item 2.
    matrix = np.zeros((6, 6), np.float32)
    matrix[[0, 1, 2, 3], 4] = [0.2, 0.9, 0.0, 0.5]
    matrix[2, 5] = 0.7
    got = because(ItemItemScorer(matrix), np.array([0, 1, 2, 3, 1]), np.array([4, 5]))
    assert [g.tolist() for g in got] == [[1, 3, 0], [2]]
    # Equal support: the more recent history item first. A sparse matrix gives the same.
    matrix[0, 4] = matrix[3, 4] = 0.5
    got = because(ItemItemScorer(sparse.csr_matrix(matrix)), np.array([3, 0, 1]), np.array([4]), n=2)
    assert got[0].tolist() == [1, 0]
    # Dot product models: the cosine of item vectors (item 2 is closest to item 0, then item 1; 3 is opposite).
    items = np.array([[1, 0], [1, 1], [0.9, 0.1], [-1, 0]], np.float32)
    got = because(DotScorer(np.zeros((1, 2), np.float32), items), np.array([1, 3, 2]), np.array([0]))
    assert got[0].tolist() == [2, 1]
    # Content: the cosine of feature rows.
    features = sparse.csr_matrix(np.array([[1, 0], [0, 1], [0.6, 0.8]], np.float32))
    assert because(ProfileScorer(features), np.array([0, 1]), np.array([2]))[0].tolist() == [1, 0]
    # In the executors: the because column holds item ids.
    scorer = ItemItemScorer(np.array([[0, 1, 0.5], [0, 0, 0], [0, 0, 0]], np.float32))
    users_df = spark.createDataFrame([(0, [0])], "user_idx int, history array<int>")
    rows = top_k_spark(users_df, scorer, np.ones(3, bool), 2, explain_names=np.array(["a", "b", "c"])).collect()
    assert [(r.item_idx, r.because) for r in rows] == [(1, ["a"]), (2, ["a"])]
