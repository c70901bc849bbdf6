"""Graph models over the normalised user-item adjacency A (users 0..U-1, items U..U+I-1), trained with BPR.

* LightGCN: E_{k+1} = A E_k, final = mean(E_0 .. E_K) (no weights, no non-linearity).
* GCN: h_{k+1} = LeakyReLU(A h_k W_k + b_k), final = mean(h_0 .. h_K).

A is built once from the ``graph_edges`` table (train edges only) as a ``tf.sparse.SparseTensor``; every
step propagates the whole graph, so the scores of a batch see every neighbour. Validation uses the train
graph; exported (test-time) vectors propagate over train + validation edges, the history known by then.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np
import tensorflow as tf

from recsys_spark import schemas as S
from recsys_spark.models.base import Recommender
from recsys_spark.models.losses import bpr_loss, uniform_negatives


def sparse_adjacency(graph: Tuple[np.ndarray, np.ndarray, np.ndarray, Tuple[int, int]]) -> tf.sparse.SparseTensor:
    """COO arrays (rows, cols, weights, shape) from ``features.load_adjacency`` -> an ordered SparseTensor."""
    rows, cols, weights, shape = graph
    indices = np.stack([rows, cols], axis=1).astype(np.int64)
    return tf.sparse.reorder(tf.sparse.SparseTensor(indices, weights.astype(np.float32), [int(shape[0]), int(shape[1])]))


class _GraphRecommender(Recommender):
    """Shared parts: node embeddings, propagation hook, BPR on the propagated vectors."""

    needs_graph = True

    def __init__(self, n_users: int, n_items: int, graph, embedding_dim: int = 64, n_layers: int = 3,
                 l2: float = 1e-4, seed: int = 0, export_graph=None, **_):
        super().__init__(n_users, n_items)
        self.adjacency = sparse_adjacency(graph)
        # Exported (test-time) vectors may propagate over a larger graph: train + validation edges.
        self.export_adjacency = sparse_adjacency(export_graph) if export_graph is not None else self.adjacency
        init = tf.keras.initializers.RandomNormal(stddev=0.1, seed=seed)
        self.node_embedding = self.add_weight(name="node_embedding", shape=(n_users + n_items, embedding_dim),
                                              initializer=init, trainable=True)
        self.n_layers = n_layers
        self.l2 = l2

    def propagate(self, training: bool = False, adjacency: Optional[tf.sparse.SparseTensor] = None) -> tf.Tensor:
        """[U + I, d] final node vectors over ``adjacency`` (default: the train graph)."""
        raise NotImplementedError

    def compute_loss(self, batch: Dict[str, tf.Tensor], training: bool = True) -> tf.Tensor:
        users = tf.cast(batch[S.USER_IDX], tf.int32)
        positives = tf.cast(batch[S.ITEM_IDX], tf.int32)
        negatives = uniform_negatives(positives, self.n_items, batch)
        final = self.propagate(training)
        u = tf.gather(final, users)
        p = tf.gather(final, self.n_users + positives)
        n = tf.gather(final, self.n_users + negatives)
        loss = bpr_loss(tf.reduce_sum(u * p, -1), tf.reduce_sum(u * n, -1))
        ego = [tf.gather(self.node_embedding, ids) for ids in (users, self.n_users + positives, self.n_users + negatives)]
        norms = tf.add_n([tf.reduce_sum(tf.square(e)) for e in ego])
        return loss + self.l2 * norms / tf.cast(tf.shape(users)[0], tf.float32)

    def _final(self, for_test: bool) -> np.ndarray:
        return self.propagate(adjacency=self.export_adjacency if for_test else self.adjacency).numpy().astype(np.float32)

    def user_vectors(self, for_test: bool = True) -> np.ndarray:
        return self._final(for_test)[: self.n_users]

    def item_vectors(self, for_test: bool = True) -> np.ndarray:
        return self._final(for_test)[self.n_users:]


class LightGCN(_GraphRecommender):
    name = "lightgcn"

    def propagate(self, training: bool = False, adjacency: Optional[tf.sparse.SparseTensor] = None) -> tf.Tensor:
        adjacency = self.adjacency if adjacency is None else adjacency
        layer = tf.convert_to_tensor(self.node_embedding)
        total = layer
        for _ in range(self.n_layers):
            layer = tf.sparse.sparse_dense_matmul(adjacency, layer)
            total += layer
        return total / float(self.n_layers + 1)


class GCN(_GraphRecommender):
    name = "gcn"

    def __init__(self, n_users: int, n_items: int, graph, embedding_dim: int = 64, n_layers: int = 2,
                 l2: float = 1e-4, seed: int = 0, export_graph=None, **kwargs):
        super().__init__(n_users, n_items, graph, embedding_dim=embedding_dim, n_layers=n_layers, l2=l2, seed=seed,
                         export_graph=export_graph)
        glorot = tf.keras.initializers.GlorotUniform(seed=seed)
        self.layer_weights = [self.add_weight(name=f"w{k}", shape=(embedding_dim, embedding_dim), initializer=glorot)
                              for k in range(n_layers)]
        self.layer_biases = [self.add_weight(name=f"b{k}", shape=(embedding_dim,), initializer="zeros")
                             for k in range(n_layers)]

    def propagate(self, training: bool = False, adjacency: Optional[tf.sparse.SparseTensor] = None) -> tf.Tensor:
        adjacency = self.adjacency if adjacency is None else adjacency
        h = tf.convert_to_tensor(self.node_embedding)
        total = h
        for w, b in zip(self.layer_weights, self.layer_biases):
            h = tf.nn.leaky_relu(tf.sparse.sparse_dense_matmul(adjacency, h) @ w + b, alpha=0.2)
            total += h
        return total / float(self.n_layers + 1)
