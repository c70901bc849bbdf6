"""Scorers that read the events since training: SASRec's encoder in NumPy (with attention explanations)
and the fold-in of embedding models' user vectors; and scorers split in blocks of items."""

import numpy as np

from recsys_spark.evaluate.fold_in import FoldInScorer, with_fold_in
from recsys_spark.evaluate.scorer_views import padded
from recsys_spark.evaluate.scorers import DotScorer, ItemItemScorer, scorer_from_arrays
from recsys_spark.evaluate.sequence_scorer import SequenceScorer


def test_the_numpy_encoder_matches_sasrec_and_reads_the_newest_event(tmp_path):
    import tensorflow as tf

    from recsys_spark.io import local
    from recsys_spark.models.sasrec import SASRec
    from recsys_spark.training.worker import _save_sequence_scorer

    model = SASRec(n_users=4, n_items=30, embedding_dim=16, n_layers=2, heads=2, dropout=0.0, max_len=8, seed=3)
    rng = np.random.default_rng(0)
    for variable in model.variables:  # away from the initial values (zero biases, unit norms)
        variable.assign(variable.numpy() + rng.normal(0, 0.3, variable.shape).astype(np.float32))
    # saved as the training job saves it, loaded as scoring loads it
    folder = _save_sequence_scorer(model, str(tmp_path))
    scorer = scorer_from_arrays("sequence", *local.load_arrays(folder))
    histories = [np.array([1, 2, 3]), np.array([5]), np.arange(12) % 30, np.array([29, 0, 4, 7, 7])]
    padded_rows = scorer.padded_histories(histories)
    assert padded_rows[2].tolist() == list(range(4, 12))  # the last L items
    assert padded_rows[0].tolist() == [-1] * 5 + [1, 2, 3]
    expected = model.vectors_for(padded_rows.astype(np.int32))
    np.testing.assert_allclose(scorer.user_vectors(histories), expected, atol=1e-5)
    np.testing.assert_allclose(scorer.scores(np.arange(4), histories), expected @ model.item_table()[1:].numpy().T,
                               atol=1e-4)
    _, attentions = model.encode(tf.constant(padded_rows, tf.int32))
    np.testing.assert_allclose(scorer.encode(padded_rows)[1], attentions[-1].numpy()[:, :, -1], atol=1e-5)
    # a new event (not a retrained model) changes the user's scores
    later = scorer.scores(np.array([0]), [np.array([1, 2, 3, 17])])
    assert not np.allclose(later, scorer.scores(np.array([0]), histories[:1]))


def hand_set_sequence_scorer(key_of_item1: float = 0.0) -> SequenceScorer:
    """One block, one head, d = 4, items one-hot except item 4 = e0 + 0.5 e1. Value and output projections
    are the identity and the feed-forward is zero, so position p carries attention[p] * x_p with x_p the
    item's embedding times 2 (sqrt(d)). Keys are zero (uniform attention) unless ``key_of_item1`` makes
    the last query attend to item 1."""
    d = 4
    table = np.vstack([np.eye(d), [[1.0, 0.5, 0.0, 0.0]]]).astype(np.float32)
    eye = np.eye(d, dtype=np.float32)
    arrays = {"item_table": table, "position": np.zeros((3, d), np.float32),
              "final_gamma": np.ones(d), "final_beta": np.zeros(d),
              "b0_q_kernel": eye[:, None, :] * key_of_item1, "b0_q_bias": np.ones((1, d)),
              "b0_k_kernel": np.zeros((d, 1, d)), "b0_k_bias": np.zeros((1, d)),
              "b0_v_kernel": eye[:, None, :], "b0_v_bias": np.zeros((1, d)),
              "b0_o_kernel": eye[None], "b0_o_bias": np.zeros(d),
              "b0_norm1_gamma": np.ones(d), "b0_norm1_beta": np.zeros(d),
              "b0_norm2_gamma": np.ones(d), "b0_norm2_beta": np.zeros(d),
              "b0_ff1_kernel": np.zeros((d, d)), "b0_ff1_bias": np.zeros(d),
              "b0_ff2_kernel": np.zeros((d, d)), "b0_ff2_bias": np.zeros(d)}
    if key_of_item1:  # the key of item 1's position matches the (all-ones) query: logit 2 * key_of_item1
        arrays["b0_k_kernel"] = np.zeros((d, 1, d))
        arrays["b0_k_kernel"][1, 0, :] = key_of_item1
    return SequenceScorer(arrays, {"n_layers": 1, "heads": 1, "max_len": 3})


def test_sequence_because_follows_the_attention_on_a_known_case():
    history = [np.array([2, 1, 0])]  # oldest first; the last position attends to all three
    # Uniform attention: item 4 = e0 + 0.5 e1 is supported by item 0 (1/3 * 2 * 1) more than by item 1
    # (1/3 * 2 * 0.5); item 2 carries nothing towards it. Item 3 has no support at all.
    scorer = hand_set_sequence_scorer()
    _, support = scorer.position_support(history, np.array([[4, 3]]))
    np.testing.assert_allclose(support[0, 0], [0.0, 2 / 3 * 0.5, 2 / 3], atol=1e-6)
    assert scorer.because_block(history, np.array([[4, 3, -1]]))[0].tolist() == [[0, 1, -1], [-1] * 3, [-1] * 3]
    # Now the last query attends almost only to item 1: it becomes the first reason for item 4.
    focused = hand_set_sequence_scorer(key_of_item1=10.0)
    attention = focused.encode(focused.padded_histories(history))[1][0, 0]
    assert attention[1] > 0.99
    assert focused.because_block(history, np.array([[4]]))[0, 0].tolist() == [1, 0, -1]
    # through padding (a model from an earlier day): items it never knew give no reason and get none
    wide = padded(focused, 7)
    reasons = wide.because_block([np.array([2, 1, 6, 0])], np.array([[4, 6]]))[0]
    assert reasons.tolist() == [[1, 0, -1], [-1, -1, -1]]
    # an item met twice gives its reason once, from its most recent position
    twice = focused.because_block([np.array([1, 0, 1])], np.array([[4]]))[0, 0]
    assert twice.tolist() == [1, 0, -1]


def test_fold_in_matches_the_regularised_least_squares_and_keeps_users_without_news():
    rng = np.random.default_rng(1)
    items = rng.normal(size=(6, 3)).astype(np.float32)
    users = rng.normal(size=(2, 3)).astype(np.float32)
    trained_len = np.array([2, 3])
    scorer = FoldInScorer(DotScorer(users, items), trained_len, l2=0.5)
    histories = [np.array([0, 1, 4, 5]), np.array([2, 3, 0])]  # user 0 has two new events, user 1 none
    got = scorer.user_vectors(np.array([0, 1]), histories)
    np.testing.assert_array_equal(got[1], users[1])
    # the reference: stack the equations t = v_i . u (new items) and sqrt(lambda) u = sqrt(lambda) u0
    lam = 0.5 * np.mean(np.sum(items.astype(np.float64) ** 2, axis=1))
    target = np.mean(items[[0, 1]] @ users[0])
    lhs = np.vstack([items[[4, 5]], np.sqrt(lam) * np.eye(3)])
    rhs = np.concatenate([[target, target], np.sqrt(lam) * users[0]])
    np.testing.assert_allclose(got[0], np.linalg.lstsq(lhs, rhs, rcond=None)[0], rtol=1e-4, atol=1e-5)
    # the new items now score closer to the user's typical score than before
    before, after = items[[4, 5]] @ users[0], items[[4, 5]] @ got[0]
    assert np.all(np.abs(after - target) < np.abs(before - target))
    np.testing.assert_allclose(scorer.scores(np.array([0]), histories[:1])[0], items @ got[0], rtol=1e-5)


def test_fold_in_wraps_only_embedding_models():
    dot = DotScorer(np.ones((1, 2)), np.ones((3, 2)))
    assert isinstance(with_fold_in(dot, np.array([1]), 1.0), FoldInScorer)
    item_item = ItemItemScorer(np.eye(3))
    assert with_fold_in(item_item, np.array([1]), 1.0) is item_item


def test_a_block_of_columns_scores_and_explains_as_the_whole_scorer():
    from scipy import sparse

    rng = np.random.default_rng(2)
    matrix = rng.uniform(size=(7, 7)).astype(np.float32)
    histories = [np.array([0, 3, 5]), np.array([6])]
    for whole in (ItemItemScorer(matrix, last_n=2, decay=0.5, prior=np.arange(7.0), prior_weight=0.1),
                  ItemItemScorer(sparse.csr_matrix(matrix)), DotScorer(rng.normal(size=(2, 3)), rng.normal(size=(7, 3)))):
        full = whole.scores(np.array([0, 1]), histories)
        block = whole.columns(2, 5)
        assert block.n_items == 3
        np.testing.assert_allclose(block.scores(np.array([0, 1]), histories), full[:, 2:5], rtol=1e-6)
        items = np.array([[2, 4], [3, -1]])  # global ids
        np.testing.assert_array_equal(block.because_block(histories, items), whole.because_block(histories, items))
    # an items x items matrix is split for real: the block holds only its columns
    assert ItemItemScorer(matrix).columns(2, 5).nbytes() == matrix[:, 2:5].nbytes


def test_the_batched_because_of_embedding_models_equals_the_per_user_one():
    from recsys_spark.evaluate.scorers import Scorer

    rng = np.random.default_rng(4)
    items = np.round(rng.normal(size=(40, 4)), 1)  # rounded: some equal cosines (ties to the newer item)
    items[7] = -items[3]  # item 7 has only negative support from item 3: no reason
    scorer = DotScorer(np.zeros((3, 4)), items)
    histories = [np.array([3, 5, 3, 9, 11]), np.array([], np.int64), np.array([3])]
    block = np.array([[7, 1, 2, -1], [4, 5, -1, -1], [7, 8, 3, 0]])
    got = scorer.because_block(histories, block)
    np.testing.assert_array_equal(got, Scorer.because_block(scorer, histories, block))  # user by user
    assert got.shape == (3, 4, 3) and (got[2, 0] == -1).all() and (got[1] == -1).all() and (got[0, 3] == -1).all()
    assert (got[0] >= 0).sum(axis=1).max() == 3
    # the per-user reference: cosine of item vectors, each history item once
    unit = items / np.linalg.norm(items, axis=1, keepdims=True)
    cosines = {h: unit[1] @ unit[h] for h in (11, 9, 3, 5)}  # newest first
    want = [h for h in sorted(cosines, key=lambda h: -cosines[h]) if cosines[h] > 0][:3]
    assert [i for i in got[0, 1] if i >= 0] == want


def random_sequence_scorer(rng, n_items: int = 30, d: int = 8, max_len: int = 12, layers: int = 2,
                           heads: int = 2) -> SequenceScorer:
    def r(*shape):
        return rng.normal(0, 0.5, shape).astype(np.float32)

    arrays = {"item_table": r(n_items, d), "position": r(max_len, d), "final_gamma": 1 + r(d), "final_beta": r(d)}
    for block in range(layers):
        p = f"b{block}_"
        for part in "qkv":
            arrays[p + part + "_kernel"], arrays[p + part + "_bias"] = r(d, heads, d // heads), r(heads, d // heads)
        arrays[p + "o_kernel"], arrays[p + "o_bias"] = r(heads, d // heads, d), r(d)
        for norm in ("norm1", "norm2"):
            arrays[p + norm + "_gamma"], arrays[p + norm + "_beta"] = 1 + r(d), r(d)
        arrays[p + "ff1_kernel"], arrays[p + "ff1_bias"], arrays[p + "ff2_kernel"], arrays[p + "ff2_bias"] = (
            r(d, d), r(d), r(d, d), r(d))
    return SequenceScorer(arrays, {"n_layers": layers, "heads": heads, "max_len": max_len})


def test_sequence_scores_and_reasons_from_cropped_length_blocks_equal_the_full_width_ones():
    from recsys_spark.evaluate.sequence_scorer import _reasons

    rng = np.random.default_rng(3)
    scorer = random_sequence_scorer(rng)
    # out of length order: empty, short, exactly L, longer than L (its last L count), repeats
    lengths = [5, 0, 12, 2, 20, 7, 1, 9, 3, 12, 4]
    histories = [rng.integers(0, 30, n) for n in lengths]
    histories[3] = np.array([6, 6])
    full = scorer.padded_histories(histories)
    blocks = list(scorer.length_blocks(histories, block=3, step=4))
    assert sorted(np.concatenate([rows for rows, _, _ in blocks]).tolist()) == list(range(len(histories)))
    assert [padded.shape[1] for _, padded, _ in blocks] == [4, 8, 12, 12]  # sorted lengths 0 1 2 | 3 4 5 | 7 9 12 | 12 12
    assert [first for _, _, first in blocks] == [8, 4, 0, 0]
    for rows, padded, first in blocks:  # each cropped block holds the full-width rows' last columns
        np.testing.assert_array_equal(padded, full[rows, 12 - padded.shape[1]:])

    expected = scorer.encode(full)[0]
    np.testing.assert_allclose(scorer.user_vectors(histories), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(scorer.scores(None, histories), expected @ scorer.item_table.T, rtol=1e-4, atol=1e-4)
    rows, padded, first = blocks[0]
    assert not np.allclose(scorer.encode(padded)[0], expected[rows], atol=1e-3)  # the positions' offset matters

    items = np.argsort(-(expected @ scorer.item_table.T), axis=1)[:, :6]
    items[0, 5] = -1
    reasons = scorer.because_block(histories, items)
    assert (reasons >= 0).sum() > 50
    np.testing.assert_array_equal(reasons, _reasons(full, scorer.position_support(histories, items)[1], items, 3))
    assert reasons[1].tolist() == [[-1] * 3] * 6 and reasons[0, 5].tolist() == [-1] * 3  # no history; no item
