"""Two-tower model with a content item tower: score(u, i) = user(u) . item(i).

item(i) = id_embedding(i) + C category_multi_hot(i) + mean(tag_embedding(tags(i))) + T title_tfidf(i) + b

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
from recsys_spark.models.losses import bpr_loss, checked_negatives, in_batch_softmax_loss, uniform_negatives


class ItemContent:
    """Item features as padded arrays: category multi-hot [I, C], tag ids [I, T] (-1 pad), and the title's
    hashed TF-IDF as bucket ids [I, M] (-1 pad) with their weights [I, M]."""

    def __init__(self, category: np.ndarray, tags: np.ndarray, n_tags: int, title_ids: np.ndarray,
                 title_weights: np.ndarray, n_hash: int):
        self.category = category.astype(np.float32)
        self.tags = tags.astype(np.int32)
        self.n_tags = n_tags
        self.title_ids = title_ids.astype(np.int32)
        self.title_weights = title_weights.astype(np.float32)
        self.n_hash = n_hash

    @classmethod
    def from_parquet(cls, path: str, n_items: int, n_hash: int) -> "ItemContent":
        import pyarrow.parquet as pq

        table = pq.read_table(path).to_pydict()
        n_categories = max((len(v) for v in table[S.CATEGORY_MULTI_HOT]), default=0)
        max_tags = max((len(v) for v in table[S.TAG_IDS]), default=0)
        max_tokens = max((len(v) for v in table[S.TITLE_TFIDF_INDICES]), default=0)
        category = np.zeros((n_items, n_categories), np.float32)
        tags = np.full((n_items, max(max_tags, 1)), -1, np.int32)
        title_ids = np.full((n_items, max(max_tokens, 1)), -1, np.int32)
        title_weights = np.zeros((n_items, max(max_tokens, 1)), np.float32)
        for item, cats, tag_ids, idx, w in zip(table[S.ITEM_IDX], table[S.CATEGORY_MULTI_HOT], table[S.TAG_IDS],
                                               table[S.TITLE_TFIDF_INDICES], table[S.TITLE_TFIDF_VALUES]):
            if cats:
                category[item, :len(cats)] = cats
            tags[item, :len(tag_ids)] = tag_ids
            title_ids[item, :len(idx)] = idx
            title_weights[item, :len(w)] = w
        n_tags = int(tags.max()) + 1 if tags.size and tags.max() >= 0 else 0
        return cls(category, tags, n_tags, title_ids, title_weights, n_hash)


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
        self.category_weight = self.add_weight(name="category_weight", shape=(max(content.category.shape[1], 1), embedding_dim),
                                               initializer=tf.keras.initializers.RandomNormal(stddev=0.1, seed=seed + 1))
        self.tag_embedding = self.add_weight(name="tag_embedding", shape=(max(content.n_tags, 1), embedding_dim),
                                             initializer=tf.keras.initializers.RandomNormal(stddev=0.1, seed=seed + 2))
        self.title_weight = self.add_weight(name="title_weight", shape=(content.n_hash, embedding_dim),
                                            initializer=tf.keras.initializers.RandomNormal(stddev=0.1, seed=seed + 3))
        self.content_bias = self.add_weight(name="content_bias", shape=(embedding_dim,), initializer="zeros")
        category = content.category if content.category.shape[1] else np.zeros((n_items, 1), np.float32)
        self.category = tf.constant(category)
        self.tags = tf.constant(content.tags)
        self.title_ids = tf.constant(content.title_ids)
        self.title_weights = tf.constant(content.title_weights)
        self.l2 = l2
        self.loss_name = loss
        self.item_log_q = tf.constant(np.zeros(n_items, np.float32) if item_log_q is None else item_log_q.astype(np.float32))
        self.item_tower(tf.constant([0]))  # build

    def content_vectors(self, items: tf.Tensor) -> tf.Tensor:
        """[B] item indices -> [B, d] content part of the item tower."""
        category = tf.gather(self.category, items) @ self.category_weight
        tags = tf.gather(self.tags, items)
        is_tag = tf.cast(tags >= 0, tf.float32)[..., tf.newaxis]
        tag_vectors = tf.gather(self.tag_embedding, tf.maximum(tags, 0)) * is_tag
        tag_mean = tf.reduce_sum(tag_vectors, 1) / tf.maximum(tf.reduce_sum(is_tag, 1), 1.0)
        ids, weights = tf.gather(self.title_ids, items), tf.gather(self.title_weights, items)
        title = tf.reduce_sum(tf.gather(self.title_weight, tf.maximum(ids, 0))
                              * (weights * tf.cast(ids >= 0, tf.float32))[..., tf.newaxis], 1)
        return category + tag_mean + title + self.content_bias

    def item_tower(self, items: tf.Tensor) -> tf.Tensor:
        return self.item_id_embedding(items) + self.content_vectors(items)

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
