"""Item content as model input: the ``item_features`` table as padded arrays, and the layer that turns an
item's categories, tags/attributes and title text into one vector.

content(i) = C category_multi_hot(i) + mean(tag_embedding(tags(i))) + T title_tfidf(i) + b

The two-tower item tower adds it to an id embedding; SASRec (``train.item_content``) does the same for the
item representation it reads and predicts, so an item with few or no interactions still gets a vector
from what it is.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from recsys_spark import schemas as S


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
        from recsys_spark.io import fs

        table = fs.read_parquet(path).to_pydict()
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


class ContentEncoder(tf.keras.layers.Layer):
    """[B] item indices -> [B, d] content vectors (the formula of the module docstring)."""

    def __init__(self, content: ItemContent, dim: int, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        n_items = content.tags.shape[0]
        category = content.category if content.category.shape[1] else np.zeros((n_items, 1), np.float32)
        self.category_weight = self.add_weight(name="category_weight", shape=(category.shape[1], dim),
                                               initializer=tf.keras.initializers.RandomNormal(stddev=0.1, seed=seed + 1))
        self.tag_embedding = self.add_weight(name="tag_embedding", shape=(max(content.n_tags, 1), dim),
                                             initializer=tf.keras.initializers.RandomNormal(stddev=0.1, seed=seed + 2))
        self.title_weight = self.add_weight(name="title_weight", shape=(content.n_hash, dim),
                                            initializer=tf.keras.initializers.RandomNormal(stddev=0.1, seed=seed + 3))
        self.content_bias = self.add_weight(name="content_bias", shape=(dim,), initializer="zeros")
        self.category = tf.constant(category)
        self.tags = tf.constant(content.tags)
        self.title_ids = tf.constant(content.title_ids)
        self.title_weights = tf.constant(content.title_weights)

    def call(self, items: tf.Tensor) -> tf.Tensor:
        category = tf.gather(self.category, items) @ self.category_weight
        tags = tf.gather(self.tags, items)
        is_tag = tf.cast(tags >= 0, tf.float32)[..., tf.newaxis]
        tag_vectors = tf.gather(self.tag_embedding, tf.maximum(tags, 0)) * is_tag
        tag_mean = tf.reduce_sum(tag_vectors, 1) / tf.maximum(tf.reduce_sum(is_tag, 1), 1.0)
        ids, weights = tf.gather(self.title_ids, items), tf.gather(self.title_weights, items)
        title = tf.reduce_sum(tf.gather(self.title_weight, tf.maximum(ids, 0))
                              * (weights * tf.cast(ids >= 0, tf.float32))[..., tf.newaxis], 1)
        return category + tag_mean + title + self.content_bias
