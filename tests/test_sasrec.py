import numpy as np
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


def test_explain_names_history_items():
    m = model()
    history = np.array([-1, -1, 3, 5, 1, 7], np.int32)
    reasons = m.explain(history, top=3)
    assert len(reasons) == 3 and {i for i, _ in reasons} <= {3, 5, 1, 7}
    assert all(0 <= w <= 1 for _, w in reasons)


def test_learns_a_deterministic_sequence_and_exports_vectors():
    tf.random.set_seed(0)
    m = SASRec(n_users=2, n_items=6, embedding_dim=16, n_layers=1, heads=1, dropout=0.0, max_len=L, seed=1,
               export_history=np.array([[0, 1, 2, 3, 4, 5], [-1, -1, 5, 4, 3, 2]], np.int32))
    opt = tf.keras.optimizers.Adam(0.01)
    batch = {S.HISTORY: tf.constant([[0, 1, 2, 3, 4, 5], [-1, 5, 4, 3, 2, 1]] * 8)}
    for _ in range(150):
        with tf.GradientTape() as tape:
            loss = m.compute_loss(batch)
        opt.apply_gradients(zip(tape.gradient(loss, m.trainable_variables), m.trainable_variables))
    assert float(loss) < 0.3
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
