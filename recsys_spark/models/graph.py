"""Graph models over the normalised user-item adjacency A (users 0..U-1, items U..U+I-1), trained with BPR
(``negatives`` per positive) or a sampled softmax over cosine similarities (loss ``sampled``), optionally with
a contrastive view (``contrastive_weight`` > 0, as in XSimGCL: noise on every propagated layer while training,
and InfoNCE between the final vectors and the first layer's of the batch's users and items).

* LightGCN: E_{k+1} = A E_k, final = mean(E_0 .. E_K) (no weights, no non-linearity).
* GCN: h_{k+1} = LeakyReLU(A h_k W_k + b_k), final = mean(h_0 .. h_K).

A is built once from the ``graph_edges`` table (train edges only) as a CSR sparse matrix (``SparseOperator``);
every step propagates the whole graph, so the scores of a batch see every neighbour. Validation uses the train
graph; exported (test-time) vectors propagate over train + validation edges, the history known by then.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import numpy as np
import tensorflow as tf
# TF has no public CSR API; this module ships with TF 2.x (pinned at 2.15.1, see ../shared/STACK.md).
from tensorflow.python.ops.linalg.sparse import sparse_csr_matrix_ops

from recsys_spark import schemas as S
from recsys_spark.models.base import Recommender
from recsys_spark.models.losses import (SEED_KEY, bpr_loss, checked_negatives, contrastive_loss, sampled_items,
                                        sampled_softmax_loss, uniform_negatives)

LOSSES = ("bpr", "sampled")
# The contrastive term's InfoNCE compares at most this many distinct users (and items) of a batch with each
# other: its cost grows with the square of the count, and a large batch's first few thousand are a random sample.
CONTRASTIVE_ROWS = 2048


def sparse_adjacency(graph: Tuple[np.ndarray, np.ndarray, np.ndarray, Tuple[int, int]]) -> tf.sparse.SparseTensor:
    """COO arrays (rows, cols, weights, shape) from ``features.load_adjacency`` -> an ordered SparseTensor."""
    rows, cols, weights, shape = graph
    indices = np.stack([rows, cols], axis=1).astype(np.int64)
    return tf.sparse.reorder(tf.sparse.SparseTensor(indices, weights.astype(np.float32), [int(shape[0]), int(shape[1])]))


def perturbed(layer: tf.Tensor, eps: float, seed: Optional[tf.Tensor], index: int) -> tf.Tensor:
    """SimGCL's noise: every row moved by length ``eps`` in a random direction inside its own orthant
    (``sign(layer) * unit(uniform[0, 1)^d)``), so it is shifted a little without being turned around.
    ``seed`` ([2] int64, the batch's) and ``index`` (the layer) make it reproducible."""
    if seed is None:
        noise = tf.random.uniform(tf.shape(layer))
    else:
        noise = tf.random.stateless_uniform(tf.shape(layer), seed=tf.random.experimental.stateless_fold_in(
            tf.cast(seed, tf.int64), 7919 + index))
    return layer + eps * tf.math.sign(layer) * tf.math.l2_normalize(noise, -1)


class SparseOperator:
    """A fixed sparse matrix A in CSR form, applied as ``op(x) = A @ x`` with the gradient ``A^T @ g``.

    TensorFlow's CSR product (``SparseMatrixMatMul``) is about twice as fast on CPU as
    ``tf.sparse.sparse_dense_matmul``, and the hand-written gradient reuses a CSR copy of A^T instead of
    transposing on every backward pass (A itself is a constant: no gradient flows to it). A full training
    step over Gowalla's graph (3 layers, d = 64) measured 188 ms -> 88 ms.
    """

    def __init__(self, graph: Tuple[np.ndarray, np.ndarray, np.ndarray, Tuple[int, int]]):
        matrix = sparse_adjacency(graph)
        self._csr = self._to_csr(matrix)
        self._csr_transposed = self._to_csr(tf.sparse.reorder(tf.sparse.transpose(matrix)))

    @staticmethod
    def _to_csr(matrix: tf.sparse.SparseTensor):
        # CSRSparseMatrix (TF's own wrapper of the CSR variant) carries the dtype/shape metadata that a
        # tf.function needs when it captures the matrix; the raw variant tensor alone loses it.
        return sparse_csr_matrix_ops.CSRSparseMatrix(matrix)

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        @tf.custom_gradient
        def product(dense):
            def grad(upstream):
                return sparse_csr_matrix_ops.matmul(self._csr_transposed, upstream)

            return sparse_csr_matrix_ops.matmul(self._csr, dense), grad

        return product(x)


class _GraphRecommender(Recommender):
    """Shared parts: node embeddings, propagation hook, the loss on the propagated vectors.

    * ``loss="bpr"``: ``negatives`` uniform negatives per positive (BPR averaged over all pairs): the
      whole-graph propagation dominates a step, so scoring more negatives is almost free and gives more
      signal per step.
    * ``loss="sampled"``: softmax of each positive against ``sampled_negatives`` items shared by the batch
      (``sampler`` uniform, or popularity with the logQ correction), on cosine similarities divided by
      ``temperature`` (the sampled-softmax loss of Wu et al., "On the Effectiveness of Sampled Softmax
      Loss for Item Recommendation"). Exported vectors are then unit length, so that serving ranks by
      the cosine the model was trained on.
    * ``contrastive_weight`` > 0 (either loss): while training, every propagated layer gets
      :func:`perturbed` noise of length ``contrastive_noise``, the loss is taken on those vectors, and the
      weight times an InfoNCE (cosines / ``contrastive_temperature``) between each node's final vector and
      its first layer's is added, over the batch's users and over its positive items (XSimGCL: Yu et al.,
      "XSimGCL: Towards Extremely Simple Graph Contrastive Learning for Recommendation"). Exported and
      validated vectors are propagated without noise.
    """

    needs_graph = True

    def __init__(self, n_users: int, n_items: int, graph, embedding_dim: int = 64, n_layers: int = 3,
                 l2: float = 1e-4, seed: int = 0, export_graph=None, negatives: int = 1, loss: str = "bpr",
                 sampled_negatives: int = 1000, sampler: str = "uniform", item_log_q: Optional[np.ndarray] = None,
                 temperature: float = 0.1, contrastive_weight: float = 0.0, contrastive_noise: float = 0.1,
                 contrastive_temperature: float = 0.2, **_):
        super().__init__(n_users, n_items)
        if loss not in LOSSES:
            raise ValueError(f"{self.name}: loss must be one of {LOSSES}, got {loss!r}")
        if loss == "sampled" and not temperature > 0:
            raise ValueError(f"{self.name}: temperature must be > 0 with loss 'sampled', got {temperature}")
        self.loss_name = loss
        self.negatives = checked_negatives(negatives)
        self.sampled_negatives = checked_negatives(sampled_negatives)
        self.temperature = float(temperature)
        if contrastive_weight < 0 or (contrastive_weight > 0 and not (
                contrastive_noise >= 0 and contrastive_temperature > 0 and n_layers >= 1)):
            raise ValueError(f"{self.name}: contrastive_weight must be >= 0, and with it contrastive_noise >= 0, "
                             f"contrastive_temperature > 0 and n_layers >= 1; got {contrastive_weight}, "
                             f"{contrastive_noise}, {contrastive_temperature}, {n_layers}")
        self.contrastive = (float(contrastive_weight), float(contrastive_noise), float(contrastive_temperature))
        self.item_log_q = (tf.constant(np.asarray(item_log_q, np.float32))
                           if loss == "sampled" and sampler == "popularity" and item_log_q is not None else None)
        self.adjacency = SparseOperator(graph)
        # Exported (test-time) vectors may propagate over a larger graph: train + validation edges.
        self.export_adjacency = SparseOperator(export_graph) if export_graph is not None else self.adjacency
        init = tf.keras.initializers.RandomNormal(stddev=0.1, seed=seed)
        self.node_embedding = self.add_weight(name="node_embedding", shape=(n_users + n_items, embedding_dim),
                                              initializer=init, trainable=True)
        self.n_layers = n_layers
        self.l2 = l2

    def layers(self, adjacency: Optional[SparseOperator] = None, noise: float = 0.0,
               seed: Optional[tf.Tensor] = None) -> List[tf.Tensor]:
        """[U + I, d] node vectors of every layer, the ego embeddings first, over ``adjacency`` (default: the
        train graph); with ``noise`` > 0 each propagated layer is :func:`perturbed`."""
        raise NotImplementedError

    def propagate(self, adjacency: Optional[SparseOperator] = None) -> tf.Tensor:
        """[U + I, d] final node vectors (the mean of the layers) over ``adjacency``, without noise."""
        return _mean(self.layers(adjacency))

    def _noisy(self, layer: tf.Tensor, noise: float, seed: Optional[tf.Tensor], index: int) -> tf.Tensor:
        return perturbed(layer, noise, seed, index) if noise > 0 else layer

    def compute_loss(self, batch: Dict[str, tf.Tensor], training: bool = True) -> tf.Tensor:
        users = tf.cast(batch[S.USER_IDX], tf.int32)
        positives = tf.cast(batch[S.ITEM_IDX], tf.int32)
        batch_size = tf.cast(tf.shape(users)[0], tf.float32)
        # the negatives, and the weight of each in the L2 term: what it stands for in one row (BPR: one of
        # the n drawn per positive; sampled: the S shared by the batch stand in every row, B / S)
        sampled = self.loss_name == "sampled"
        negatives, negative_share = (
            (sampled_items(self.n_items, self.sampled_negatives, batch, self.item_log_q),  # [S]
             batch_size / self.sampled_negatives) if sampled else
            (uniform_negatives(positives, self.n_items, batch, self.negatives), 1.0 / self.negatives))  # [B] or [B, n]
        weight, noise, contrastive_temperature = self.contrastive
        contrastive = training and weight > 0
        layers = self.layers(noise=noise if contrastive else 0.0, seed=batch.get(SEED_KEY))
        final = _mean(layers)
        u = tf.gather(final, users)
        p = tf.gather(final, self.n_users + positives)
        n = tf.gather(final, self.n_users + negatives)
        loss = self._sampled_loss(u, p, positives, n, negatives) if sampled else self._bpr_loss(u, p, n)
        # L2 on the ego embeddings of the batch
        norms = (tf.reduce_sum(tf.square(tf.gather(self.node_embedding, users)))
                 + tf.reduce_sum(tf.square(tf.gather(self.node_embedding, self.n_users + positives)))
                 + negative_share * tf.reduce_sum(tf.square(tf.gather(self.node_embedding, self.n_users + negatives))))
        loss += self.l2 * norms / batch_size
        if contrastive:  # final vs first layer, over the batch's distinct users and distinct positive items
            for nodes in (tf.unique(users).y, self.n_users + tf.unique(positives).y):
                nodes = nodes[:CONTRASTIVE_ROWS]
                loss += weight * contrastive_loss(tf.gather(final, nodes), tf.gather(layers[1], nodes),
                                                  contrastive_temperature)
        return loss

    def _bpr_loss(self, u, p, n):
        negative_scores = tf.reduce_sum((u[:, tf.newaxis] if self.negatives > 1 else u) * n, -1)
        return bpr_loss(tf.reduce_sum(u * p, -1), negative_scores)

    def _sampled_loss(self, u, p, positives, n, negatives):
        """On cosines / temperature; logQ-corrected when the negatives were drawn by popularity."""
        log_q = self.item_log_q
        return sampled_softmax_loss(tf.math.l2_normalize(u, -1) / self.temperature, positives,
                                    tf.math.l2_normalize(p, -1), negatives, tf.math.l2_normalize(n, -1),
                                    None if log_q is None else tf.gather(log_q, positives),
                                    None if log_q is None else tf.gather(log_q, negatives))

    def _final(self, for_test: bool) -> np.ndarray:
        final = self.propagate(adjacency=self.export_adjacency if for_test else self.adjacency)
        if self.loss_name == "sampled":  # trained on cosines: rank by them
            final = tf.math.l2_normalize(final, -1)
        return final.numpy().astype(np.float32)

    def user_vectors(self, for_test: bool = True) -> np.ndarray:
        return self._final(for_test)[: self.n_users]

    def item_vectors(self, for_test: bool = True) -> np.ndarray:
        return self._final(for_test)[self.n_users:]


def _mean(layers: List[tf.Tensor]) -> tf.Tensor:
    return tf.add_n(layers) / float(len(layers))


class LightGCN(_GraphRecommender):
    name = "lightgcn"

    def layers(self, adjacency=None, noise=0.0, seed=None):
        adjacency = self.adjacency if adjacency is None else adjacency
        layers = [tf.convert_to_tensor(self.node_embedding)]
        for k in range(self.n_layers):
            layers.append(self._noisy(adjacency(layers[-1]), noise, seed, k))
        return layers


class GCN(_GraphRecommender):
    name = "gcn"

    def __init__(self, n_users: int, n_items: int, graph, embedding_dim: int = 64, n_layers: int = 2,
                 l2: float = 1e-4, seed: int = 0, export_graph=None, negatives: int = 1, **kwargs):
        super().__init__(n_users, n_items, graph, embedding_dim=embedding_dim, n_layers=n_layers, l2=l2, seed=seed,
                         export_graph=export_graph, negatives=negatives, **kwargs)
        glorot = tf.keras.initializers.GlorotUniform(seed=seed)
        self.layer_weights = [self.add_weight(name=f"w{k}", shape=(embedding_dim, embedding_dim), initializer=glorot)
                              for k in range(n_layers)]
        self.layer_biases = [self.add_weight(name=f"b{k}", shape=(embedding_dim,), initializer="zeros")
                             for k in range(n_layers)]

    def layers(self, adjacency=None, noise=0.0, seed=None):
        adjacency = self.adjacency if adjacency is None else adjacency
        layers = [tf.convert_to_tensor(self.node_embedding)]
        for k, (w, b) in enumerate(zip(self.layer_weights, self.layer_biases)):
            layers.append(self._noisy(tf.nn.leaky_relu(adjacency(layers[-1]) @ w + b, alpha=0.2), noise, seed, k))
        return layers
