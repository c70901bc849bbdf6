import numpy as np
import pytest
import tensorflow as tf

from recsys_spark import schemas as S
from recsys_spark.models.sasrec import SASRec, histories_from_sequences

L = 6


def model(**kw):
    return SASRec(n_users=3, n_items=10, embedding_dim=8, n_layers=2, heads=2, dropout=0.0, max_len=L, seed=4, **kw)


def test_attention_scores_match_a_numpy_reference():
    m = model()
    history = np.array([[-1, -1, 3, 5, 1, 7]], np.int32)
    _, attentions = m.encode(tf.constant(history))
    block = m.blocks[0]
    ids = history + 1
    x = m.item_embedding(ids).numpy() * np.sqrt(8) + m.position_embedding(np.arange(L)).numpy()[None]
    x *= (ids != 0)[..., None]
    q_in = block.norm1(x).numpy()
    wq, bq = [w.numpy() for w in block.attention._query_dense.weights]
    wk, bk = [w.numpy() for w in block.attention._key_dense.weights]
    q = np.einsum("bld,dhk->bhlk", q_in, wq) + bq.transpose(0, 1)[None, :, None, :]
    k = np.einsum("bld,dhk->bhlk", x, wk) + bk[None, :, None, :]
    logits = np.einsum("bhqk,bhsk->bhqs", q, k) / np.sqrt(4)
    allowed = np.tril(np.ones((L, L), bool)) & (ids[0] != 0)[None, :] | np.eye(L, dtype=bool)
    logits = np.where(allowed[None, None], logits, -1e9)
    expected = np.exp(logits - logits.max(-1, keepdims=True))
    expected /= expected.sum(-1, keepdims=True)
    np.testing.assert_allclose(attentions[0].numpy(), expected, rtol=1e-4, atol=1e-5)


def test_causal_and_padding():
    m = model()
    a = np.array([[-1, 2, 3, 4, 5, 6]], np.int32)
    b = a.copy()
    b[0, -1] = 9  # change only the last item
    ha, att = m.encode(tf.constant(a))
    hb, _ = m.encode(tf.constant(b))
    np.testing.assert_allclose(ha[:, :-1].numpy(), hb[:, :-1].numpy(), atol=1e-6)  # the past never sees the future
    assert not np.allclose(ha[:, -1].numpy(), hb[:, -1].numpy())
    weights = att[-1].numpy()[0]  # [heads, L, L]
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)
    assert np.all(weights[:, 1:, 0] == 0)  # nobody attends to the padding position
    assert np.all(np.triu(weights[0], 1) == 0)


def test_user_vectors_in_cropped_length_blocks_equal_the_full_width_encoding():
    m = SASRec(n_users=7, n_items=10, embedding_dim=8, n_layers=2, heads=2, dropout=0.0, max_len=12, seed=4)
    rng = np.random.default_rng(1)
    history = np.full((7, 12), -1, np.int32)
    for user, n in enumerate([12, 0, 3, 1, 7, 12, 5]):  # full, empty and short histories, out of length order
        history[user, 12 - n:] = rng.integers(0, 10, n)
    full_width = m.encode(tf.constant(history))[0][:, -1].numpy()
    # blocks of 2 users, widths rounded up to 4 columns: 0 | 1, 3 -> 4; 5, 7 -> 8; 12, 12 -> 12 (no crop)
    np.testing.assert_allclose(m.vectors_for(history, batch=2, width_step=4), full_width, atol=1e-5)
    # a crop without the position offset would shift every position: the offset is what keeps it exact
    cropped = m.encode(tf.constant(history[4:5, 4:]))[0][:, -1].numpy()
    assert not np.allclose(cropped, full_width[4:5], atol=1e-3)


def test_explain_names_history_items():
    m = model()
    history = np.array([-1, -1, 3, 5, 1, 7], np.int32)
    reasons = m.explain(history, top=3)
    assert len(reasons) == 3 and {i for i, _ in reasons} <= {3, 5, 1, 7}
    assert all(0 <= w <= 1 for _, w in reasons)


@pytest.mark.parametrize("loss", ["full", "sampled"])
def test_learns_a_deterministic_sequence_and_exports_vectors(loss):
    """The same sequences, learnt with the full softmax or with 4 popularity-sampled items per batch."""
    from recsys_spark.models.losses import SEED_KEY

    tf.random.set_seed(0)
    log_q = np.log(np.array([1, 2, 2, 2, 2, 1], np.float32) / 10)
    m = SASRec(n_users=2, n_items=6, embedding_dim=16, n_layers=1, heads=1, dropout=0.0, max_len=L, seed=1,
               export_history=np.array([[0, 1, 2, 3, 4, 5], [-1, -1, 5, 4, 3, 2]], np.int32),
               loss=loss, sampled_negatives=4, sampler="popularity", item_log_q=log_q)
    opt = tf.keras.optimizers.Adam(0.01)
    batch = {S.HISTORY: tf.constant([[0, 1, 2, 3, 4, 5], [-1, 5, 4, 3, 2, 1]] * 8)}
    for step in range(150):
        batch[SEED_KEY] = tf.constant([1, step], tf.int64)
        with tf.GradientTape() as tape:
            loss_value = m.compute_loss(batch)
        opt.apply_gradients(zip(tape.gradient(loss_value, m.trainable_variables), m.trainable_variables))
    assert float(loss_value) < 0.3
    scores = m.user_vectors() @ m.item_vectors().T
    assert scores.shape == (2, 6)
    assert int(np.argmax(scores[1])) == 1  # after 5 4 3 2 comes 1


def test_histories_fold_validation_back(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({S.USER_IDX: [0, 1], S.HISTORY: [[-1, 3, 4], [-1, -1, 2]], S.VALIDATION_ITEMS: [[7], []]}),
                   str(tmp_path / "part.parquet"))
    validation, export = histories_from_sequences(str(tmp_path), n_users=3, max_len=3)
    assert validation.tolist() == [[-1, 3, 4], [-1, -1, 2], [-1, -1, -1]]
    assert export.tolist() == [[3, 4, 7], [-1, -1, 2], [-1, -1, -1]]


def item_content():
    """Items 0-2: category 0, attribute 0; items 3-5: category 1, attribute 1; no titles."""
    from recsys_spark.models.content import ItemContent

    category = np.repeat(np.eye(2, dtype=np.float32), 3, axis=0)
    tags = np.array([[0], [0], [0], [1], [1], [1]], np.int32)
    return ItemContent(category, tags, 2, np.full((6, 1), -1, np.int32), np.zeros((6, 1), np.float32), n_hash=4)


def test_content_is_fused_into_the_item_representation():
    m = SASRec(n_users=1, n_items=6, embedding_dim=8, n_layers=1, dropout=0.0, max_len=L, seed=3, content=item_content())
    ids = np.random.default_rng(0).normal(size=(7, 8)).astype(np.float32)
    m.item_embedding.embeddings.assign(ids)
    e = m.content
    C, T, b = e.category_weight.numpy(), e.tag_embedding.numpy(), e.content_bias.numpy()
    expected = ids[1:] + np.repeat(np.eye(2), 3, axis=0) @ C + T[[0, 0, 0, 1, 1, 1]] + b
    np.testing.assert_allclose(m.item_vectors(), expected, rtol=1e-5, atol=1e-6)
    # the encoder reads the same representation: the input of position t is table[item + 1] * sqrt(d) + pos
    history = tf.constant([[-1, -1, -1, -1, 2, 4]], tf.int32)
    hidden, _ = m.encode(history)
    m_plain = SASRec(n_users=1, n_items=6, embedding_dim=8, n_layers=1, dropout=0.0, max_len=L, seed=3)
    m_plain.item_embedding.embeddings.assign(np.vstack([ids[:1], expected]))
    m_plain.position_embedding.set_weights(m.position_embedding.get_weights())
    m_plain.blocks[0].set_weights(m.blocks[0].get_weights())
    m_plain.final_norm.set_weights(m.final_norm.get_weights())
    np.testing.assert_allclose(hidden.numpy(), m_plain.encode(history)[0].numpy(), rtol=1e-5, atol=1e-5)


def test_an_item_nobody_interacted_with_gets_a_vector_from_its_content():
    """Sequences alternate within category 0 (items 0, 1) or within category 1 (items 3, 4); items 2 and 5
    never occur. Without content their vectors stay at their random start; with content they take their
    category's direction, so a category-0 user ranks item 2 above item 5 and the reverse."""
    tf.random.set_seed(0)
    export = np.array([[-1, -1, 0, 1, 0, 1], [-1, -1, 3, 4, 3, 4]], np.int32)
    batch = {S.HISTORY: tf.constant([[0, 1, 0, 1, 0, 1], [1, 0, 1, 0, 1, 0], [3, 4, 3, 4, 3, 4], [4, 3, 4, 3, 4, 3]] * 4)}
    m = SASRec(n_users=2, n_items=6, embedding_dim=8, n_layers=1, dropout=0.0, max_len=L, seed=5, loss="softmax",
               content=item_content(), export_history=export)
    opt = tf.keras.optimizers.Adam(0.02)
    for _ in range(100):
        with tf.GradientTape() as tape:
            loss = m.compute_loss(batch)
        opt.apply_gradients(zip(tape.gradient(loss, m.trainable_variables), m.trainable_variables))
    ids = m.item_embedding.embeddings.numpy()
    assert np.all(ids[[3, 6]] == 0)  # never a target: the id part of items 2 and 5 was never trained
    vectors = m.item_vectors()
    np.testing.assert_allclose(vectors[2], m.content(tf.constant([2])).numpy()[0], rtol=1e-6)
    assert np.linalg.norm(vectors[2]) > 0.1 and np.linalg.norm(vectors[5]) > 0.1
    scores = m.user_vectors() @ vectors.T
    assert scores[0, 2] > scores[0, 5] and scores[1, 5] > scores[1, 2]
