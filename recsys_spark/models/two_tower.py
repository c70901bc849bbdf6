"""Two-tower model with a content item tower: score(u, i) = user(u) . item(i).

item(i) = id_embedding(i) + content(i), content as in :mod:`recsys_spark.models.content`

The id embedding starts at zero, so an item nobody has interacted with yet is scored by its content
alone (cold start); content from several modalities (categories, tags/attributes, title text) is fused
by the sum. Trained with in-batch sampled softmax and a logQ correction (or BPR).
"""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np
import tensorflow as tf

from recsys_spark import schemas as S
from recsys_spark.models.base import Recommender
from recsys_spark.models.content import ContentEncoder, ItemContent
from recsys_spark.models.losses import bpr_loss, checked_negatives, in_batch_softmax_loss, uniform_negatives


class TwoTower(Recommender):
    name = "two_tower"
    needs_content = True

    def __init__(self, n_users: int, n_items: int, content: ItemContent, embedding_dim: int = 64,
                 l2: float = 1e-6, seed: int = 0, loss: str = "softmax", item_log_q: Optional[np.ndarray] = None,
                 negatives: int = 1, **_):
        super().__init__(n_users, n_items)
        self.negatives = checked_negatives(negatives)  # BPR negatives per positive
        init = tf.keras.initializers.RandomNormal(stddev=0.1, seed=seed)
        self.user_embedding = tf.keras.layers.Embedding(n_users, embedding_dim, embeddings_initializer=init,
                                                        name="user_embedding")
        self.item_id_embedding = tf.keras.layers.Embedding(n_items, embedding_dim, embeddings_initializer="zeros",
                                                           name="item_id_embedding")
        self.content = ContentEncoder(content, embedding_dim, seed, name="content")
        self.l2 = l2
        self.loss_name = loss
        self.item_log_q = tf.constant(np.zeros(n_items, np.float32) if item_log_q is None else item_log_q.astype(np.float32))
        self.item_tower(tf.constant([0]))  # build

    def item_tower(self, items: tf.Tensor) -> tf.Tensor:
        return self.item_id_embedding(items) + self.content(items)

    def compute_loss(self, batch: Dict[str, tf.Tensor], training: bool = True) -> tf.Tensor:
        users = tf.cast(batch[S.USER_IDX], tf.int32)
        positives = tf.cast(batch[S.ITEM_IDX], tf.int32)
        u, v = self.user_embedding(users), self.item_tower(positives)
        if self.loss_name == "bpr":
            negatives = uniform_negatives(positives, self.n_items, batch, self.negatives)  # [B] or [B, n]
            if self.negatives == 1:
                negative_scores = tf.reduce_sum(u * self.item_tower(negatives), -1)
            else:
                towers = tf.reshape(self.item_tower(tf.reshape(negatives, [-1])), [-1, self.negatives, tf.shape(u)[1]])
                negative_scores = tf.reduce_sum(u[:, tf.newaxis] * towers, -1)
            loss = bpr_loss(tf.reduce_sum(u * v, -1), negative_scores)
        else:
            loss = in_batch_softmax_loss(u, v, positives, tf.gather(self.item_log_q, positives))
        norms = tf.reduce_sum(tf.square(u)) + tf.reduce_sum(tf.square(v))
        return loss + self.l2 * norms / tf.cast(tf.shape(users)[0], tf.float32)

    def user_vectors(self, for_test: bool = True) -> np.ndarray:
        return self.user_embedding.embeddings.numpy().astype(np.float32)

    def item_vectors(self, for_test: bool = True) -> np.ndarray:
        out = [self.item_tower(tf.range(s, min(s + 4096, self.n_items))).numpy()
               for s in range(0, self.n_items, 4096)]
        return np.concatenate(out).astype(np.float32)
