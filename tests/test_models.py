import numpy as np
import pytest
import tensorflow as tf

from recsys_spark import schemas as S
from recsys_spark.models.losses import bpr_loss, in_batch_softmax_loss, mse_loss
from recsys_spark.models.mf import MatrixFactorization


def test_bpr_loss_matches_numpy():
    rng = np.random.default_rng(3)
    pos, neg = rng.normal(size=16).astype(np.float32), rng.normal(size=16).astype(np.float32)
    expected = np.mean(np.log1p(np.exp(-(pos - neg))))
    assert float(bpr_loss(tf.constant(pos), tf.constant(neg))) == pytest.approx(expected, rel=1e-5)


def test_mf_scores_and_exported_vectors_agree():
    model = MatrixFactorization(5, 7, embedding_dim=3, seed=1)
    model.item_bias.embeddings.assign(np.arange(7, dtype=np.float32).reshape(7, 1) / 10)
    users, items = tf.constant([0, 4, 2]), tf.constant([6, 1, 3])
    p = model.user_embedding.embeddings.numpy()
    q = model.item_embedding.embeddings.numpy()
    expected = np.sum(p[[0, 4, 2]] * q[[6, 1, 3]], axis=1) + np.array([0.6, 0.1, 0.3])
    np.testing.assert_allclose(model.score(users, items).numpy(), expected, rtol=1e-6)
    # Scoring in the pipeline is a plain dot product of the exported vectors.
    exported = model.user_vectors() @ model.item_vectors().T
    np.testing.assert_allclose(exported[[0, 4, 2], [6, 1, 3]], expected, rtol=1e-5)
    assert model.user_vectors().shape == (5, 4) and model.item_vectors().shape == (7, 4)


def test_mf_learns_a_planted_preference():
    tf.random.set_seed(0)
    model = MatrixFactorization(2, 4, embedding_dim=4, l2=0.0, seed=0)
    opt = tf.keras.optimizers.Adam(0.05)
    batch = {S.USER_IDX: tf.constant([0, 0, 1, 1] * 8), S.ITEM_IDX: tf.constant([0, 1, 2, 3] * 8)}
    for _ in range(150):
        with tf.GradientTape() as tape:
            loss = model.compute_loss(batch)
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
    scores = model.user_vectors() @ model.item_vectors().T
    assert set(np.argsort(-scores[0])[:2]) == {0, 1} and set(np.argsort(-scores[1])[:2]) == {2, 3}


def _softmax_reference(query, cands, ids, log_q, bias):
    logits = query @ cands.T + bias[None, :] - log_q[None, :]
    n = len(ids)
    for i in range(n):
        for j in range(n):
            if i != j and ids[i] == ids[j]:
                logits[i, j] = -1e9
    logits -= logits.max(axis=1, keepdims=True)
    log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return -np.mean(np.diag(log_softmax))


def test_in_batch_softmax_matches_numpy():
    rng = np.random.default_rng(7)
    query, cands = rng.normal(size=(6, 4)).astype(np.float32), rng.normal(size=(6, 4)).astype(np.float32)
    ids = np.array([3, 1, 3, 0, 2, 5])  # rows 0 and 2 share item 3: neither is the other's negative
    log_q, bias = np.log(rng.uniform(0.05, 0.5, 6)).astype(np.float32), rng.normal(size=6).astype(np.float32)
    got = float(in_batch_softmax_loss(tf.constant(query), tf.constant(cands), tf.constant(ids),
                                      tf.constant(log_q), tf.constant(bias)))
    assert got == pytest.approx(_softmax_reference(query, cands, ids, log_q, bias), rel=1e-5)
    # Without the correction and bias it is plain in-batch softmax.
    plain = float(in_batch_softmax_loss(tf.constant(query), tf.constant(cands), tf.constant(ids)))
    assert plain == pytest.approx(_softmax_reference(query, cands, ids, np.zeros(6), np.zeros(6)), rel=1e-5)


def test_mse_loss_matches_numpy():
    pred, target = np.array([1.0, 2.0, 4.5], np.float32), np.array([1, 3, 4])
    assert float(mse_loss(tf.constant(pred), tf.constant(target))) == pytest.approx((0 + 1 + 0.25) / 3)


def test_stateless_negatives_are_reproducible():
    model = MatrixFactorization(4, 9, embedding_dim=3, seed=1)
    batch = {S.USER_IDX: tf.constant([0, 1, 2]), S.ITEM_IDX: tf.constant([1, 2, 3]),
             "_seed": tf.constant([5, 11], tf.int64)}
    assert float(model.compute_loss(batch)) == float(model.compute_loss(batch))


def test_mse_on_explicit_ratings_ignores_unrated_rows():
    model = MatrixFactorization(3, 4, embedding_dim=2, seed=2, loss="mse", l2=0.0)
    users, items = tf.constant([0, 1, 2]), tf.constant([1, 2, 3])
    batch = {S.USER_IDX: users, S.ITEM_IDX: items, S.RATING: tf.constant([4.0, np.nan, 2.0])}
    pred = model.score(users, items).numpy()
    expected = ((pred[0] - 4.0) ** 2 + (pred[2] - 2.0) ** 2) / 2
    assert float(model.compute_loss(batch)) == pytest.approx(expected, rel=1e-5)


def test_bpr_with_several_negatives_averages_every_pair():
    rng = np.random.default_rng(4)
    pos, neg = rng.normal(size=5).astype(np.float32), rng.normal(size=(5, 3)).astype(np.float32)
    expected = np.mean(np.log1p(np.exp(-(pos[:, None] - neg))))
    assert float(bpr_loss(tf.constant(pos), tf.constant(neg))) == pytest.approx(expected, rel=1e-5)


def test_mf_bpr_with_several_negatives_matches_numpy():
    from recsys_spark.models.losses import uniform_negatives

    model = MatrixFactorization(4, 9, embedding_dim=3, seed=1, l2=0.01, negatives=4)
    model.item_bias.embeddings.assign(np.linspace(-0.2, 0.2, 9, dtype=np.float32).reshape(9, 1))
    users, items = np.array([0, 3, 2]), np.array([1, 8, 3])
    batch = {S.USER_IDX: tf.constant(users), S.ITEM_IDX: tf.constant(items), "_seed": tf.constant([5, 11], tf.int64)}
    negatives = uniform_negatives(tf.constant(items), 9, batch, 4).numpy()
    assert negatives.shape == (3, 4)
    assert np.array_equal(negatives, uniform_negatives(tf.constant(items), 9, batch, 4).numpy())  # seeded
    p, q, b = (model.user_embedding.embeddings.numpy(), model.item_embedding.embeddings.numpy(),
               model.item_bias.embeddings.numpy()[:, 0])
    s_pos = np.sum(p[users] * q[items], 1) + b[items]
    s_neg = np.einsum("bd,bnd->bn", p[users], q[negatives]) + b[negatives]
    bpr = np.mean(np.log1p(np.exp(-(s_pos[:, None] - s_neg))))
    norms = np.sum(p[users] ** 2) + np.sum(q[items] ** 2) + np.sum(q[negatives] ** 2) / 4
    assert float(model.compute_loss(batch)) == pytest.approx(bpr + 0.01 * norms / 3, rel=1e-5)
    with pytest.raises(ValueError, match="negatives"):
        MatrixFactorization(4, 9, negatives=0)


def test_sampled_softmax_matches_numpy_with_accidental_hits_and_logq():
    from recsys_spark.models.losses import sampled_softmax_loss

    rng = np.random.default_rng(3)
    n, s, d = 5, 4, 3
    query, pos_vec = rng.normal(size=(n, d)).astype(np.float32), rng.normal(size=(n, d)).astype(np.float32)
    positives = np.array([7, 2, 9, 2, 4])
    negatives = np.array([2, 8, 9, 1])  # item 2 is rows 1 and 3's positive, item 9 row 2's: left out there
    neg_vec = rng.normal(size=(s, d)).astype(np.float32)
    lq_pos, lq_neg = np.log(rng.uniform(0.01, 0.3, n)).astype(np.float32), np.log(rng.uniform(0.01, 0.3, s)).astype(np.float32)
    expected = []
    for r in range(n):
        logits = [query[r] @ pos_vec[r] - lq_pos[r]]
        logits += [query[r] @ neg_vec[j] - lq_neg[j] for j in range(s) if negatives[j] != positives[r]]
        logits = np.array(logits, np.float64)
        expected.append(-(logits[0] - np.log(np.exp(logits).sum())))
    got = float(sampled_softmax_loss(tf.constant(query), tf.constant(positives), tf.constant(pos_vec),
                                     tf.constant(negatives), tf.constant(neg_vec), tf.constant(lq_pos), tf.constant(lq_neg)))
    assert got == pytest.approx(np.mean(expected), rel=1e-5)


def test_sampled_items_are_reproducible_and_follow_the_popularity():
    from recsys_spark.models.losses import SEED_KEY, sampled_items

    batch = {SEED_KEY: tf.constant([3, 11], tf.int64)}
    uniform = sampled_items(50, 4000, batch).numpy()
    assert np.array_equal(uniform, sampled_items(50, 4000, batch).numpy()) and 0 <= uniform.min() and uniform.max() < 50
    shares = np.array([0.7, 0.2, 0.1, 0.0])
    log_q = np.log(np.maximum(shares, 1e-12)).astype(np.float32)
    drawn = sampled_items(4, 20000, batch, tf.constant(log_q)).numpy()
    np.testing.assert_allclose(np.bincount(drawn, minlength=4) / 20000, shares, atol=0.015)


def test_sasrec_sampled_softmax_over_the_whole_catalogue_equals_full_softmax_without_hits():
    """With every item but the target sampled exactly once, uniform sampled softmax is the full softmax."""
    from recsys_spark.models.losses import sampled_softmax_loss

    rng = np.random.default_rng(0)
    query, items = rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=(6, 4)).astype(np.float32)
    y = np.array([1, 4, 0])
    full = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=query @ items.T))
    got = sampled_softmax_loss(tf.constant(query), tf.constant(y), tf.constant(items[y]), tf.constant(np.arange(6)),
                               tf.constant(items))
    assert float(got) == pytest.approx(float(full), rel=1e-5)
