import numpy as np
import pytest
import tensorflow as tf

from recsys_spark import schemas as S
from recsys_spark.models.graph import GCN, LightGCN, SparseOperator

# users 0,1 and items 0,1,2: u0-i0, u0-i1, u1-i1, u1-i2
EDGES = [(0, 0), (0, 1), (1, 1), (1, 2)]


def coo(n_users=2, n_items=3):
    deg_u = np.bincount([u for u, _ in EDGES], minlength=n_users)
    deg_i = np.bincount([i for _, i in EDGES], minlength=n_items)
    rows, cols, vals = [], [], []
    for u, i in EDGES:
        w = 1 / np.sqrt(deg_u[u] * deg_i[i])
        rows += [u, n_users + i]
        cols += [n_users + i, u]
        vals += [w, w]
    n = n_users + n_items
    dense = np.zeros((n, n), np.float32)
    dense[rows, cols] = vals
    return (np.array(rows), np.array(cols), np.array(vals, np.float32), (n, n)), dense


def test_sparse_operator_product_and_gradient_match_numpy():
    # A deliberately non-symmetric matrix, so a gradient that forgot the transpose would show.
    rows, cols = np.array([0, 0, 1, 2, 2, 3]), np.array([1, 3, 0, 2, 3, 1])
    vals = np.array([0.5, -1.0, 2.0, 0.25, 1.5, -0.75], np.float32)
    A = np.zeros((4, 4), np.float32)
    A[rows, cols] = vals
    op = SparseOperator((rows, cols, vals, (4, 4)))
    x = tf.Variable(np.random.default_rng(2).normal(size=(4, 3)).astype(np.float32))
    weights = np.arange(12, dtype=np.float32).reshape(4, 3)
    with tf.GradientTape() as tape:
        y = op(op(x))
        loss = tf.reduce_sum(y * weights)
    np.testing.assert_allclose(y.numpy(), A @ A @ x.numpy(), rtol=1e-5, atol=1e-6)
    # d/dx sum(W * A A x) = (A A)^T W
    np.testing.assert_allclose(tape.gradient(loss, x).numpy(), (A @ A).T @ weights, rtol=1e-5, atol=1e-5)


def test_lightgcn_bpr_with_several_negatives_matches_numpy():
    from recsys_spark.models.losses import uniform_negatives

    graph, A = coo()
    model = LightGCN(2, 3, graph, embedding_dim=4, n_layers=1, l2=0.1, seed=3, negatives=3)
    users, items = np.array([0, 1, 1]), np.array([0, 2, 1])
    batch = {S.USER_IDX: tf.constant(users), S.ITEM_IDX: tf.constant(items), "_seed": tf.constant([2, 9], tf.int64)}
    negatives = uniform_negatives(tf.constant(items), 3, batch, 3).numpy()
    E0 = model.node_embedding.numpy()
    final = (E0 + A @ E0) / 2
    u, p, n = final[users], final[2 + items], final[2 + negatives]
    bpr = np.mean(np.log1p(np.exp(-(np.sum(u * p, 1)[:, None] - np.einsum("bd,bnd->bn", u, n)))))
    norms = np.sum(E0[users] ** 2) + np.sum(E0[2 + items] ** 2) + np.sum(E0[2 + negatives] ** 2) / 3
    assert float(model.compute_loss(batch)) == pytest.approx(bpr + 0.1 * norms / 3, rel=1e-5)


@pytest.mark.parametrize("sampler", ["uniform", "popularity"])
def test_lightgcn_sampled_cosine_softmax_matches_numpy(sampler):
    from recsys_spark.models.losses import sampled_items

    graph, A = coo()
    log_q = np.log(np.array([0.5, 0.3, 0.2], np.float32))
    model = LightGCN(2, 3, graph, embedding_dim=4, n_layers=1, l2=0.1, seed=3, loss="sampled", sampled_negatives=4,
                     sampler=sampler, item_log_q=log_q, temperature=0.2)
    users, items = np.array([0, 1, 1]), np.array([0, 2, 1])
    batch = {S.USER_IDX: tf.constant(users), S.ITEM_IDX: tf.constant(items), "_seed": tf.constant([2, 9], tf.int64)}
    negatives = sampled_items(3, 4, batch, tf.constant(log_q) if sampler == "popularity" else None).numpy()
    E0 = model.node_embedding.numpy()
    final = (E0 + A @ E0) / 2
    unit = final / np.linalg.norm(final, axis=1, keepdims=True)
    u, p, n = unit[users], unit[2 + items], unit[2 + negatives]
    correction = log_q if sampler == "popularity" else np.zeros(3, np.float32)
    positive = np.sum(u * p, 1) / 0.2 - correction[items]
    negative = u @ n.T / 0.2 - correction[negatives][None, :]
    negative[items[:, None] == negatives[None, :]] = -np.inf  # an accidental hit is not a negative of its row
    logits = np.concatenate([positive[:, None], negative], 1)
    softmax = np.mean(np.log(np.exp(logits).sum(1)) - positive)
    # L2 on the ego embeddings; the 4 shared negatives count once per row, averaged over the 4
    norms = np.sum(E0[users] ** 2) + np.sum(E0[2 + items] ** 2) + 3 * np.sum(E0[2 + negatives] ** 2) / 4
    assert float(model.compute_loss(batch)) == pytest.approx(softmax + 0.1 * norms / 3, rel=1e-5)
    # trained on cosines, the exported vectors are unit length (and paired: their products are the cosines)
    np.testing.assert_allclose(np.linalg.norm(model.item_vectors(), axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(model.user_vectors() @ model.item_vectors().T, unit[:2] @ unit[2:].T, atol=1e-5)


def test_graph_models_refuse_a_loss_they_do_not_have():
    graph, _ = coo()
    with pytest.raises(ValueError, match="loss must be one of"):
        LightGCN(2, 3, graph, loss="softmax")


def test_lightgcn_propagation_matches_numpy():
    graph, A = coo()
    model = LightGCN(2, 3, graph, embedding_dim=4, n_layers=2, seed=3)
    E0 = model.node_embedding.numpy()
    expected = (E0 + A @ E0 + A @ A @ E0) / 3
    np.testing.assert_allclose(model.propagate().numpy(), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.user_vectors(), expected[:2], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.item_vectors(), expected[2:], rtol=1e-5, atol=1e-6)


def test_exported_vectors_propagate_over_train_and_validation_edges():
    from recsys_spark.etl.features import normalized_adjacency

    graph, A = coo()
    # Validation adds u0-i2: the exported graph re-normalises the degrees of every pair.
    users, items = np.array([u for u, _ in EDGES] + [0]), np.array([i for _, i in EDGES] + [2])
    export = normalized_adjacency(users, items, 2, 3)
    model = LightGCN(2, 3, graph, embedding_dim=4, n_layers=1, seed=3, export_graph=export)
    E0 = model.node_embedding.numpy()
    B = np.zeros((5, 5), np.float32)
    deg = {0: 3, 1: 2, 2: 1, 3: 2, 4: 2}  # nodes: u0 u1 i0 i1 i2
    for u, i in zip(users, items):
        B[u, 2 + i] = B[2 + i, u] = 1 / np.sqrt(deg[u] * deg[2 + i])
    np.testing.assert_allclose(model.user_vectors(for_test=True), ((E0 + B @ E0) / 2)[:2], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.item_vectors(for_test=True), ((E0 + B @ E0) / 2)[2:], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.user_vectors(for_test=False), ((E0 + A @ E0) / 2)[:2], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.item_vectors(for_test=False), ((E0 + A @ E0) / 2)[2:], rtol=1e-5, atol=1e-6)


def test_gcn_layer_matches_numpy():
    graph, A = coo()
    model = GCN(2, 3, graph, embedding_dim=4, n_layers=1, seed=3)
    model.layer_biases[0].assign(np.full(4, 0.1, np.float32))
    h0, w, b = model.node_embedding.numpy(), model.layer_weights[0].numpy(), model.layer_biases[0].numpy()
    z = A @ h0 @ w + b
    h1 = np.where(z > 0, z, 0.2 * z)
    np.testing.assert_allclose(model.propagate().numpy(), (h0 + h1) / 2, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("contrastive_weight", [0.0, 0.2])
@pytest.mark.parametrize("loss", ["bpr", "sampled"])
@pytest.mark.parametrize("cls", [LightGCN, GCN])
def test_graph_models_learn_the_graph(cls, loss, contrastive_weight):
    graph, _ = coo()
    model = cls(2, 3, graph, embedding_dim=8, n_layers=2, l2=0.0, seed=1, loss=loss, sampled_negatives=3,
                contrastive_weight=contrastive_weight)
    opt = tf.keras.optimizers.Adam(0.05)
    batch = {S.USER_IDX: tf.constant([0, 0, 1, 1] * 8), S.ITEM_IDX: tf.constant([0, 1, 1, 2] * 8)}
    first = None
    for step in range(60):
        with tf.GradientTape() as tape:
            loss = model.compute_loss(dict(batch, _seed=tf.constant([1, step], tf.int64)))
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        first = float(loss) if first is None else first
    assert float(loss) < first
    scores = model.user_vectors() @ model.item_vectors().T
    assert scores[0, 0] > scores[0, 2] and scores[1, 2] > scores[1, 0]


def test_contrastive_loss_matches_numpy():
    from recsys_spark.models.losses import contrastive_loss

    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(5, 3)).astype(np.float32), rng.normal(size=(5, 3)).astype(np.float32)
    ua, ub = a / np.linalg.norm(a, axis=1, keepdims=True), b / np.linalg.norm(b, axis=1, keepdims=True)
    logits = ua @ ub.T / 0.2
    expected = np.mean(np.log(np.exp(logits).sum(1)) - np.diag(logits))
    assert float(contrastive_loss(tf.constant(a), tf.constant(b), 0.2)) == pytest.approx(expected, rel=1e-5)
    # identical views with well separated rows: the positive dominates, the loss is near 0
    separated = np.eye(4, dtype=np.float32)
    assert float(contrastive_loss(tf.constant(separated), tf.constant(separated), 0.05)) < 1e-6


def test_perturbed_moves_each_row_by_eps_inside_its_orthant_and_is_reproducible():
    from recsys_spark.models.graph import perturbed

    layer = tf.constant(np.random.default_rng(5).normal(size=(6, 4)).astype(np.float32))
    seed = tf.constant([3, 11], tf.int64)
    shift = (perturbed(layer, 0.3, seed, 0) - layer).numpy()
    np.testing.assert_allclose(np.linalg.norm(shift, axis=1), 0.3, rtol=1e-5)
    assert np.all(np.sign(shift) * np.sign(layer.numpy()) >= 0)  # never against the row's own signs
    np.testing.assert_array_equal(perturbed(layer, 0.3, seed, 0).numpy(), layer.numpy() + shift)
    assert not np.allclose(perturbed(layer, 0.3, seed, 1).numpy(), layer.numpy() + shift)  # each layer its own


@pytest.mark.parametrize("loss", ["bpr", "sampled"])
def test_lightgcn_contrastive_view_matches_numpy(loss):
    graph, A = coo()
    settings = dict(embedding_dim=4, n_layers=2, l2=0.1, seed=3, loss=loss, sampled_negatives=4, temperature=0.2)
    model = LightGCN(2, 3, graph, contrastive_weight=0.5, contrastive_noise=0.1, contrastive_temperature=0.3,
                     **settings)
    plain = LightGCN(2, 3, graph, **settings)  # the same weights (same seed), no contrastive view
    users, items = np.array([0, 1, 1, 0]), np.array([0, 2, 1, 0])
    seed = tf.constant([2, 9], tf.int64)
    batch = {S.USER_IDX: tf.constant(users), S.ITEM_IDX: tf.constant(items), "_seed": seed}
    E0 = model.node_embedding.numpy()
    np.testing.assert_array_equal(E0, plain.node_embedding.numpy())
    # the noisy layers, by hand: each propagated layer shifted by eps in its own orthant
    layers = [E0]
    for k in range(2):
        clean = A @ layers[-1]
        shift = (model.layers(noise=0.1, seed=seed)[k + 1].numpy() - clean)
        np.testing.assert_allclose(np.linalg.norm(shift, axis=1), 0.1, rtol=1e-4)
        layers.append(clean + shift)
    final = np.mean(layers, axis=0)

    def info_nce(a, b, t):
        a, b = a / np.linalg.norm(a, axis=1, keepdims=True), b / np.linalg.norm(b, axis=1, keepdims=True)
        logits = a @ b.T / t
        return np.mean(np.log(np.exp(logits).sum(1)) - np.diag(logits))

    # the plain model's loss on the noisy vectors = the base loss; the contrastive term over distinct nodes
    # in order of first appearance (users 0, 1; items 0, 2, 1)
    base = plain.compute_loss.__func__  # the same code path, fed the noisy layers
    plain.layers = lambda noise=0.0, seed=None, adjacency=None: [tf.constant(x) for x in layers]
    expected = float(base(plain, batch)) + 0.5 * (
        info_nce(final[[0, 1]], layers[1][[0, 1]], 0.3) + info_nce(final[2 + np.array([0, 2, 1])],
                                                                    layers[1][2 + np.array([0, 2, 1])], 0.3))
    assert float(model.compute_loss(batch)) == pytest.approx(expected, rel=1e-5)
    # validation and export propagate without noise
    np.testing.assert_allclose(model.propagate().numpy(), (E0 + A @ E0 + A @ A @ E0) / 3, rtol=1e-5, atol=1e-6)
    assert float(model.compute_loss(batch, training=False)) == pytest.approx(
        float(LightGCN(2, 3, graph, **settings).compute_loss(batch)), rel=1e-6)


def test_graph_models_refuse_a_negative_contrastive_weight():
    graph, _ = coo()
    with pytest.raises(ValueError, match="contrastive_weight must be >= 0"):
        LightGCN(2, 3, graph, contrastive_weight=-0.1)
