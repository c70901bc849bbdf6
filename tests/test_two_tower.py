import numpy as np
import pytest
import tensorflow as tf

from recsys_spark import schemas as S
from recsys_spark.models.content import ItemContent
from recsys_spark.models.two_tower import TwoTower


def content(n_items=6):
    # items 0-2 are category 0 with tag 0, items 3-5 category 1 with tag 1; titles hash to buckets 0..3
    category = np.zeros((n_items, 2), np.float32)
    category[:3, 0] = 1
    category[3:, 1] = 1
    tags = np.array([[0], [0], [0], [1], [1], [1]], np.int32)
    title_ids = np.array([[0, -1], [0, 1], [1, -1], [2, -1], [2, 3], [3, -1]], np.int32)
    title_weights = np.array([[1.0, 0], [0.5, 0.5], [1.0, 0], [1.0, 0], [0.5, 0.5], [1.0, 0]], np.float32)
    return ItemContent(category, tags, 2, title_ids, title_weights, n_hash=4)


def test_item_tower_matches_numpy():
    c = content()
    m = TwoTower(2, 6, c, embedding_dim=4, seed=2)
    m.item_id_embedding.embeddings.assign(np.arange(24, dtype=np.float32).reshape(6, 4) / 100)
    e = m.content
    C, T, W, b = (e.category_weight.numpy(), e.tag_embedding.numpy(), e.title_weight.numpy(), e.content_bias.numpy())
    ids = m.item_id_embedding.embeddings.numpy()
    for i in range(6):
        title = sum(w * W[t] for t, w in zip(c.title_ids[i], c.title_weights[i]) if t >= 0)
        expected = ids[i] + c.category[i] @ C + T[c.tags[i, 0]] + title + b
        np.testing.assert_allclose(m.item_tower(tf.constant([i])).numpy()[0], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m.item_vectors()[3], m.item_tower(tf.constant([3])).numpy()[0], rtol=1e-6)


def test_cold_items_are_scored_by_content():
    """User 0 likes category-0 items 0 and 1, user 1 category-1 items 3 and 4; items 2 and 5 are never seen."""
    m = TwoTower(2, 6, content(), embedding_dim=8, seed=1, l2=0.0)
    opt = tf.keras.optimizers.Adam(0.05)
    batch = {S.USER_IDX: tf.constant([0, 1, 0, 1] * 4), S.ITEM_IDX: tf.constant([0, 3, 1, 4] * 4)}
    for _ in range(100):
        with tf.GradientTape() as tape:
            loss = m.compute_loss(batch)
        opt.apply_gradients(zip(tape.gradient(loss, m.trainable_variables), m.trainable_variables))
    assert np.all(m.item_id_embedding.embeddings.numpy()[[2, 5]] == 0)  # never trained: content only
    scores = m.user_vectors() @ m.item_vectors().T
    assert scores[0, 2] > scores[0, 5] and scores[1, 5] > scores[1, 2]


def test_two_tower_bpr_with_several_negatives_matches_numpy():
    from recsys_spark.models.losses import uniform_negatives

    m = TwoTower(3, 6, content(), embedding_dim=4, seed=2, loss="bpr", l2=0.0, negatives=3)
    users, items = np.array([0, 2]), np.array([1, 4])
    batch = {S.USER_IDX: tf.constant(users), S.ITEM_IDX: tf.constant(items), "_seed": tf.constant([1, 3], tf.int64)}
    negatives = uniform_negatives(tf.constant(items), 6, batch, 3).numpy()
    loss = float(m.compute_loss(batch))  # also builds the user embedding
    towers, u = m.item_vectors(), m.user_vectors()[users]
    s_pos = np.sum(u * towers[items], 1)
    s_neg = np.einsum("bd,bnd->bn", u, towers[negatives])
    expected = np.mean(np.log1p(np.exp(-(s_pos[:, None] - s_neg))))
    assert loss == pytest.approx(expected, rel=1e-5)
