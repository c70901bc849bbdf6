"""Matrix factorisation: score(u, i) = p_u . q_i + b_i, trained with BPR, in-batch sampled softmax, or
MSE on explicit ratings (rows without a rating are left out of that loss)."""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np
import tensorflow as tf

from recsys_spark import schemas as S
from recsys_spark.models.base import Recommender
from recsys_spark.models.losses import bpr_loss, checked_negatives, in_batch_softmax_loss, uniform_negatives
LOSSES = ("bpr", "softmax", "mse")


class MatrixFactorization(Recommender):
    """User and item embeddings plus an item bias.

    Args:
        n_users, n_items: table sizes (indices are 0..n-1).
        embedding_dim: d.
        l2: weight of the squared norm of the embeddings used in a batch.
        seed: initialisation seed.
        loss: "bpr" (``negatives`` uniform negatives per positive), "softmax" (in-batch negatives, logQ-corrected) or
            "mse" (squared error against the batch's ``rating``; unrated rows are masked out).
        item_log_q: [n_items] log share of each item in train, for the softmax correction.
        negatives: BPR negatives per positive (the loss averages over all pairs).
    """

    name = "mf"

    def __init__(self, n_users: int, n_items: int, embedding_dim: int = 32, l2: float = 1e-5, seed: int = 0,
                 loss: str = "bpr", item_log_q: Optional[np.ndarray] = None, negatives: int = 1, **_):
        super().__init__(n_users, n_items)
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        self.negatives = checked_negatives(negatives)
        init = tf.keras.initializers.RandomNormal(stddev=0.1, seed=seed)
        self.user_embedding = tf.keras.layers.Embedding(n_users, embedding_dim, embeddings_initializer=init,
                                                        name="user_embedding")
        self.item_embedding = tf.keras.layers.Embedding(n_items, embedding_dim, embeddings_initializer=init,
                                                        name="item_embedding")
        self.item_bias = tf.keras.layers.Embedding(n_items, 1, embeddings_initializer="zeros", name="item_bias")
        self.l2 = l2
        self.loss_name = loss
        log_q = np.zeros(n_items, np.float32) if item_log_q is None else np.asarray(item_log_q, np.float32)
        self.item_log_q = tf.constant(log_q)
        # Build the variables now so that they exist before the first step (broadcast, export).
        self.score(tf.zeros([1], tf.int32), tf.zeros([1], tf.int32))

    def score(self, users: tf.Tensor, items: tf.Tensor) -> tf.Tensor:
        """[B] user and item indices -> [B] scores."""
        p = self.user_embedding(users)
        q = self.item_embedding(items)
        return tf.reduce_sum(p * q, axis=-1) + tf.squeeze(self.item_bias(items), -1)

    def compute_loss(self, batch: Dict[str, tf.Tensor], training: bool = True) -> tf.Tensor:
        users = tf.cast(batch[S.USER_IDX], tf.int32)
        positives = tf.cast(batch[S.ITEM_IDX], tf.int32)
        batch_size = tf.cast(tf.shape(users)[0], tf.float32)
        p, q = self.user_embedding(users), self.item_embedding(positives)
        if self.loss_name == "mse":
            ratings = tf.cast(batch[S.RATING], tf.float32)
            rated = tf.math.is_finite(ratings)
            error = tf.where(rated, self.score(users, positives) - tf.where(rated, ratings, 0.0), 0.0)
            n_rated = tf.maximum(tf.reduce_sum(tf.cast(rated, tf.float32)), 1.0)
            norms = tf.reduce_sum(tf.square(p)) + tf.reduce_sum(tf.square(q))
            return tf.reduce_sum(tf.square(error)) / n_rated + self.l2 * norms / batch_size
        if self.loss_name == "softmax":
            bias = tf.squeeze(self.item_bias(positives), -1)
            loss = in_batch_softmax_loss(p, q, positives, tf.gather(self.item_log_q, positives), bias)
            norms = tf.reduce_sum(tf.square(p)) + tf.reduce_sum(tf.square(q))
            return loss + self.l2 * norms / batch_size
        negatives = uniform_negatives(positives, self.n_items, batch, self.negatives)  # [B] or [B, n]
        negative_users = users if self.negatives == 1 else tf.repeat(users[:, tf.newaxis], self.negatives, axis=1)
        loss = bpr_loss(self.score(users, positives), self.score(negative_users, negatives))
        norms = tf.reduce_sum(tf.square(p)) + tf.reduce_sum(tf.square(q)) + tf.reduce_sum(
            tf.square(self.item_embedding(negatives))) / self.negatives
        return loss + self.l2 * norms / batch_size

    def user_vectors(self, for_test: bool = True) -> np.ndarray:
        p = self.user_embedding.embeddings.numpy()
        return np.hstack([p, np.ones((p.shape[0], 1), np.float32)]).astype(np.float32)

    def item_vectors(self, for_test: bool = True) -> np.ndarray:
        q = self.item_embedding.embeddings.numpy()
        b = self.item_bias.embeddings.numpy()
        return np.hstack([q, b]).astype(np.float32)
