import numpy as np
import pytest
import tensorflow as tf

from recsys_spark import schemas as S
from recsys_spark.models.mf import MatrixFactorization, bpr_loss


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
