"""Each traditional baseline against a hand-computed or NumPy reference."""

import subprocess
import sys

import numpy as np
import pytest

from recsys_spark.baselines import ease, item_knn, markov, popularity
from recsys_spark.baselines.train import refit_best, search_grid
from recsys_spark.errors import ConfigError, NumericalBreakdown
from recsys_spark.evaluate.scorers import ProfileScorer
from recsys_spark.io.local import Histories, SplitData

from .conftest import REPO, jobs_env


def split(train, n_users=3, n_items=4, last_ts=None):
    """train: {user: [items in time order]}"""
    users = [u for u, items in train.items() for _ in items]
    items = [i for u, items in train.items() for i in items]
    train_h = Histories.from_sorted(users, n_users, items, last_ts=last_ts)
    empty = Histories.from_pairs([], [], n_users)
    return SplitData(n_users, n_items, train_h, empty, empty)


def test_popularity_counts_distinct_train_users_and_recent_window():
    data = split({0: [0, 1], 1: [1, 2], 2: [1]}, last_ts=[0.0, 0.0, 86400.0 * 10, 86400.0 * 10, 0.0])
    assert popularity.fit(data, {}).prior.tolist() == [1, 3, 1, 0]
    recent = popularity.fit_recent(data, {"recent_days": 1}).prior
    # In the last day only user 1's items 1 and 2 count; all-time counts order them (1 before 2).
    assert np.argsort(-recent)[:2].tolist() == [1, 2] and recent[0] < 1


def test_item_knn_cosine_top_k():
    data = split({0: [0, 1], 1: [0, 1, 2], 2: [2]})
    sim = item_knn.cosine_top_k(data.train.to_csr(4), k=1).toarray()
    # |U0 ∩ U1| = 2, |U0| = |U1| = 2 -> 1; |U1 ∩ U2| = 1, |U2| = 2 -> 1/2; each row keeps its best neighbour
    np.testing.assert_allclose(sim, [[0, 1, 0, 0], [1, 0, 0, 0], [0.5, 0, 0, 0], [0, 0, 0, 0]], rtol=1e-6)
    scores = item_knn.fit(data, {"k": 1, "shrink": 0.0}).scores(np.array([2]), [np.array([2])])
    np.testing.assert_allclose(scores[0], [0.5, 0, 0, 0], rtol=1e-6)


@pytest.mark.parametrize("layout", ["csr", "csc"])  # XᵀX comes out in Fortran or C order
def test_ease_matches_the_numpy_closed_form(layout):
    rng = np.random.default_rng(1)
    x = (rng.random((40, 12)) < 0.3).astype(np.float64)
    from scipy import sparse

    got = ease.ease_matrix(getattr(sparse, f"{layout}_matrix")(x.astype(np.float32)), l2=5.0, block=5)
    p = np.linalg.inv(x.T @ x + 5.0 * np.eye(12))
    expected = -p / np.diag(p)[None, :]
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_allclose(got, expected, rtol=2e-3, atol=2e-5)


def test_ease_refuses_catalogues_above_max_items():
    with pytest.raises(ConfigError, match=r"above ease.max_items=3.*Raise ease.max_items"):
        ease.fit(split({0: [0, 1]}), {"l2": 1.0}, max_items=3)


def test_ease_breakdown_is_one_error_that_names_a_larger_l2():
    data = split({0: [0, 1], 1: [1, 2]})  # item 3 has no user: XᵀX - 0.5 I has a negative pivot
    with pytest.raises(NumericalBreakdown, match=r"XᵀX \+ -0.5 I broke down .* at column \d+ of 4.*ease.l2, e.g. 2"):
        ease.fit(data, {"l2": -0.5})


def _ease_reference(x, l2):
    p = np.linalg.inv(x.T @ x + l2 * np.eye(x.shape[1]))
    return -p / np.diag(p)[None, :]


def test_grid_search_skips_a_breakdown_and_the_refit_falls_back_to_the_next_best():
    train = {0: [0, 1], 1: [1, 2], 2: [0, 2, 3]}
    data = split(train)
    x = np.zeros((3, 4))
    for user, items in train.items():
        x[user, items] = 1.0

    def validate(scorer):  # a stand-in metric that depends on the fitted matrix: B[0, 1]
        return {"ndcg": float(scorer.matrix[0, 1]), "recall": 0.0, "n_users": 3}

    grid = [{"l2": -5.0}, {"l2": 1.0}, {"l2": 10.0}]
    trials = search_grid(lambda d, p: ease.fit(d, p), grid, data, validate)
    assert [t["params"] for t in trials] == grid
    assert "broke down" in trials[0]["error"] and "ndcg" not in trials[0]
    for trial in trials[1:]:
        expected = _ease_reference(x, trial["params"]["l2"])[0, 1]
        assert trial["ndcg"] == pytest.approx(expected, rel=1e-4)
    best, second = sorted(trials[1:], key=lambda t: -t["ndcg"])

    def fit_breaking_at_best(d, params):
        if params == best["params"]:
            raise NumericalBreakdown("refit broke down")
        return ease.fit(d, params)

    scorer, chosen, errors = refit_best(fit_breaking_at_best, data, trials)
    assert chosen is second and errors == [{"params": best["params"], "error": "refit broke down"}]
    np.testing.assert_allclose(scorer.matrix[0, 1], second["ndcg"], rtol=1e-5)
    with pytest.raises(NumericalBreakdown, match="every grid point broke down"):
        search_grid(lambda d, p: ease.fit(d, p), [{"l2": -5.0}], data, validate)
    with pytest.raises(NumericalBreakdown, match="refit on train \\+ validation broke down at every"):
        refit_best(lambda d, p: (_ for _ in ()).throw(NumericalBreakdown("no")), data, trials)


def test_markov_scores_transitions_from_the_last_items_with_decay():
    data = split({0: [0, 1, 2], 1: [0, 1], 2: [1, 3]})
    assert markov.transitions(data).toarray().tolist() == [[0, 2, 0, 0], [0, 0, 1, 1], [0, 0, 0, 0], [0, 0, 0, 0]]
    scorer = markov.fit(data, {"last_n": 2, "decay": 0.5, "normalize": False})
    # history [0, 1]: 1 (weight 1) -> {2: 1, 3: 1}; 0 (weight 0.5) -> {1: 2}; popularity only breaks ties
    # (item 0 is reached by no transition: its score is its back-off alone)
    got = scorer.scores(np.array([0]), [np.array([0, 1])])[0]
    np.testing.assert_allclose(got, [0.0, 0.5 * 2, 1.0, 1.0] + np.array([2, 3, 1, 1]) / 3 * markov.BACKOFF_WEIGHT,
                               rtol=1e-5, atol=1e-9)


def test_content_profile_is_the_cosine_with_the_mean_of_history_features():
    from scipy import sparse

    features = sparse.csr_matrix(np.array([[1, 0], [0, 1], [0.6, 0.8], [0, 0]], np.float32))
    got = ProfileScorer(features).scores(np.array([0]), [np.array([0, 1])])[0]
    profile = np.array([1, 1]) / np.sqrt(2)
    np.testing.assert_allclose(got, features.toarray() @ profile, rtol=1e-6)


def test_train_help_lists_every_model_and_an_unknown_one_is_one_error(tmp_path):
    from recsys_spark.models import MODEL_NAMES

    help_text = subprocess.run([sys.executable, "-m", "jobs.train", "--help"], cwd=REPO, env=jobs_env(),
                               capture_output=True, text=True, timeout=120).stdout
    assert all(name in help_text for name in MODEL_NAMES)
    proc = subprocess.run([sys.executable, "-m", "jobs.train", "--model", "nope", "--ds", "2026-11-27", "--lake",
                           str(tmp_path)], cwd=REPO, env=jobs_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and errors[0].endswith("ERROR [train] unknown model 'nope'; choose one of "
                                                   + ", ".join(MODEL_NAMES))
