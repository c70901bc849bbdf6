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
