"""SASRec: causal self-attention over each user's item sequence, trained on next-item prediction.

Input: the ``sequences`` table's ``history`` [B, L] of item indices, left-padded with -1. Internally ids
are shifted by one so that 0 is padding. Every position t predicts the item at t + 1 with a softmax over
the whole catalogue (or, with ``loss: softmax``, over the batch's targets with a logQ correction, or with
``loss: sampled``, over ``sampled_negatives`` items drawn uniformly or by popularity, logQ-corrected).

The user vector for scoring is the last position's hidden state; item vectors are the item embeddings,
so ``user . item`` ranks exactly as the model does. With ``content`` (``train.item_content``) an item's
representation, read at the input and predicted at the output, is its id embedding (starting at zero)
plus its content vector (categories, attributes, title; :mod:`recsys_spark.models.content`), so rare and
unseen items get a vector from what they are. The attention weights of the last block over the
history explain a recommendation ("because of items X, Y").
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import numpy as np
import tensorflow as tf

from recsys_spark import schemas as S
from recsys_spark.models.base import Recommender
from recsys_spark.models.content import ContentEncoder, ItemContent
from recsys_spark.models.length_blocks import length_blocks


class _Block(tf.keras.layers.Layer):
    """Pre-norm transformer block: causal multi-head attention + point-wise feed-forward, residuals."""

    def __init__(self, dim: int, heads: int, dropout: float, seed: int, **kwargs):
        super().__init__(**kwargs)
        self.attention = tf.keras.layers.MultiHeadAttention(num_heads=heads, key_dim=dim // heads, dropout=dropout,
                                                            kernel_initializer=tf.keras.initializers.GlorotUniform(seed))
        self.norm1 = tf.keras.layers.LayerNormalization(epsilon=1e-6)
        self.norm2 = tf.keras.layers.LayerNormalization(epsilon=1e-6)
        self.ff1 = tf.keras.layers.Dense(dim, activation="relu", kernel_initializer=tf.keras.initializers.GlorotUniform(seed + 1))
        self.ff2 = tf.keras.layers.Dense(dim, kernel_initializer=tf.keras.initializers.GlorotUniform(seed + 2))
        self.drop = tf.keras.layers.Dropout(dropout, seed=seed)

    def call(self, x, mask, training=False):
        """x [B, L, d]; mask [B, L, L] bool (query may attend key). Returns (x', attention [B, heads, L, L])."""
        q = self.norm1(x)
        attended, scores = self.attention(q, x, x, attention_mask=mask, return_attention_scores=True, training=training)
        x = x + self.drop(attended, training=training)
        h = self.norm2(x)
        x = x + self.drop(self.ff2(self.drop(self.ff1(h), training=training)), training=training)
        return x, scores


class SASRec(Recommender):
    """Args:
        n_users, n_items: table sizes.
        embedding_dim: d (a multiple of ``heads``).
        n_layers: attention blocks.
        heads: attention heads per block.
        dropout: on embeddings, attention and feed-forward.
        max_len: L, the sequence length of the ``sequences`` table.
        loss: "full" (softmax over every item), "softmax" (in-batch targets with logQ correction) or
            "sampled" (``sampled_negatives`` items shared by the batch, drawn by ``sampler``).
        sampler: "uniform" or "popularity" (in proportion to train interactions, logQ-corrected).
        export_history: [n_users, L] histories used for exported user vectors (train + validation items);
            validation uses ``validation_history`` (train items only).
        content: item features fused into the item representation (None: id embeddings only).
    """

    name = "sasrec"

    def __init__(self, n_users: int, n_items: int, embedding_dim: int = 64, n_layers: int = 2, heads: int = 1,
                 dropout: float = 0.2, max_len: int = 50, l2: float = 0.0, seed: int = 0, loss: str = "full",
                 export_history: Optional[np.ndarray] = None, validation_history: Optional[np.ndarray] = None,
                 item_log_q: Optional[np.ndarray] = None, content: Optional[ItemContent] = None,
                 sampled_negatives: int = 1000, sampler: str = "uniform", **_):
        super().__init__(n_users, n_items)
        init = tf.keras.initializers.RandomNormal(stddev=0.05, seed=seed)
        # With content the id part starts at zero (as in the two-tower item tower): an item's first vector is
        # its content vector, and an item never seen in training keeps exactly that.
        self.item_embedding = tf.keras.layers.Embedding(n_items + 1, embedding_dim, name="item_embedding",
                                                        embeddings_initializer="zeros" if content else init)
        self.item_embedding.build((None,))
        self.content = ContentEncoder(content, embedding_dim, seed, name="content") if content else None
        self.position_embedding = tf.keras.layers.Embedding(max_len, embedding_dim, embeddings_initializer=init,
                                                            name="position_embedding")
        self.blocks = [_Block(embedding_dim, heads, dropout, seed + 10 * k, name=f"block{k}") for k in range(n_layers)]
        self.final_norm = tf.keras.layers.LayerNormalization(epsilon=1e-6)
        self.drop = tf.keras.layers.Dropout(dropout, seed=seed)
        self.max_len = max_len
        self.dim = embedding_dim
        self.l2 = l2
        self.loss_name = "full" if loss in ("full", "bpr") else loss
        self.sampled_negatives = sampled_negatives
        self.sampler = sampler
        self.item_log_q = None if item_log_q is None else tf.constant(np.asarray(item_log_q, np.float32))
        self.export_history = export_history
        self.validation_history = validation_history
        self.encode(tf.fill([1, max_len], -1))  # build the variables

    def item_table(self) -> tf.Tensor:
        """[n_items + 1, d] item representations; row 0 is padding (masked wherever it is read)."""
        table = self.item_embedding.embeddings
        if self.content is None:
            return table
        return tf.concat([table[:1], table[1:] + self.content(tf.range(self.n_items))], axis=0)

    def encode(self, history: tf.Tensor, training: bool = False, table: Optional[tf.Tensor] = None,
               first_position=0) -> Tuple[tf.Tensor, List[tf.Tensor]]:
        """history [B, L] item indices (-1 = padding) -> (hidden [B, L, d], attention per block [B, h, L, L]).
        ``table``: :meth:`item_table`, when the caller has it already. ``first_position``: the position of
        column 0, when the history is the right end of a longer window whose left columns were padding only
        (their keys are masked, so cropping them changes nothing that the real items see)."""
        ids = tf.cast(history, tf.int32) + 1
        length = tf.shape(ids)[1]
        is_item = tf.not_equal(ids, 0)
        table = self.item_table() if table is None else table
        positions = tf.range(length) + tf.cast(first_position, tf.int32)
        x = tf.gather(table, ids) * (self.dim ** 0.5) + self.position_embedding(positions)[tf.newaxis]
        x = self.drop(x, training=training) * tf.cast(is_item, x.dtype)[..., tf.newaxis]
        causal = tf.linalg.band_part(tf.ones([length, length], tf.bool), -1, 0)
        # A query attends to earlier real items, and always to itself so that padded rows stay finite.
        mask = (causal[tf.newaxis] & is_item[:, tf.newaxis, :]) | tf.eye(length, dtype=tf.bool)[tf.newaxis]
        attentions = []
        for block in self.blocks:
            x, scores = block(x, mask, training=training)
            x = x * tf.cast(is_item, x.dtype)[..., tf.newaxis]
            attentions.append(scores)
        return self.final_norm(x), attentions

    def compute_loss(self, batch: Dict[str, tf.Tensor], training: bool = True) -> tf.Tensor:
        targets = tf.cast(batch[S.HISTORY], tf.int32)  # [B, L]
        # Position t sees items up to t - 1 and predicts item t: inputs are the targets shifted right.
        inputs = tf.concat([tf.fill([tf.shape(targets)[0], 1], -1), targets[:, :-1]], axis=1)
        table = self.item_table()
        hidden, _ = self.encode(inputs, training=training, table=table)
        valid = tf.not_equal(targets, -1) & tf.not_equal(inputs, -1)
        h = tf.boolean_mask(hidden, valid)  # [N, d]
        y = tf.boolean_mask(targets, valid)  # [N]
        items = table[1:]
        if self.loss_name == "softmax":
            from recsys_spark.models.losses import in_batch_softmax_loss

            log_q = None if self.item_log_q is None else tf.gather(self.item_log_q, y)
            loss = in_batch_softmax_loss(h, tf.gather(items, y), y, log_q)
        elif self.loss_name == "sampled":
            from recsys_spark.models.losses import sampled_items, sampled_softmax_loss

            log_q = self.item_log_q if self.sampler == "popularity" else None
            negatives = sampled_items(self.n_items, self.sampled_negatives, batch, log_q)
            loss = sampled_softmax_loss(h, y, tf.gather(items, y), negatives, tf.gather(items, negatives),
                                        None if log_q is None else tf.gather(log_q, y),
                                        None if log_q is None else tf.gather(log_q, negatives))
        else:
            logits = tf.matmul(h, items, transpose_b=True)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
        if self.l2:
            loss += self.l2 * tf.reduce_sum(tf.square(tf.gather(items, y))) / tf.cast(tf.size(y), tf.float32)
        return loss

    @tf.function(reduce_retracing=True)
    def _last_hidden(self, history: tf.Tensor, first_position: tf.Tensor) -> tf.Tensor:
        # Traced once: calling the attention eagerly on large batches grows memory on every call (TF 2.15).
        return self.encode(history, training=False, first_position=first_position)[0][:, -1]

    def vectors_for(self, history: np.ndarray, batch: int = 256, width_step: int = 16) -> np.ndarray:
        """[n, L] left-padded histories -> [n, d] last-position hidden states.

        Users go through in blocks of similar history length, each block cropped to its longest history
        (rounded up to ``width_step`` columns, so that few shapes are traced): attention costs the square
        of the width, and most histories are shorter than L. The result is the full-width encoding's.
        """
        history = np.asarray(history)
        n, window = history.shape
        out = np.zeros((n, self.dim), np.float32)
        for users, width in length_blocks((history >= 0).sum(axis=1), window, batch, width_step):
            cropped = tf.constant(history[users, window - width:], tf.int32)
            out[users] = self._last_hidden(cropped, tf.constant(window - width, tf.int32)).numpy()
        return out

    def user_vectors(self, for_test: bool = True) -> np.ndarray:
        history = self.export_history if for_test else self.validation_history
        if history is None:
            history = np.full((self.n_users, self.max_len), -1, np.int32)
        return self.vectors_for(history)

    def item_vectors(self, for_test: bool = True) -> np.ndarray:
        return self.item_table()[1:].numpy().astype(np.float32)

    def explain(self, history: np.ndarray, top: int = 3) -> List[Tuple[int, float]]:
        """The items of one ``history`` [L] the last position attends to most (last block, mean over heads)."""
        _, attentions = self.encode(tf.constant(history[np.newaxis]), training=False)
        weights = tf.reduce_mean(attentions[-1], axis=1)[0, -1].numpy()
        order = [int(k) for k in np.argsort(-weights) if history[k] >= 0][:top]
        return [(int(history[k]), float(weights[k])) for k in order]


def histories_from_sequences(path: str, n_users: int, max_len: int):
    """(validation_history, export_history) [n_users, L] from a sequences Parquet folder.

    The export history appends each user's validation items to the train items (the "fold back" of the
    leave-one-out protocol), keeping the last L.
    """
    from recsys_spark.io import fs

    table = fs.read_parquet(path, columns=[S.USER_IDX, S.HISTORY, S.VALIDATION_ITEMS])
    validation = np.full((n_users, max_len), -1, np.int32)
    export = np.full((n_users, max_len), -1, np.int32)
    for user, history, held in zip(table.column(S.USER_IDX).to_pylist(), table.column(S.HISTORY).to_pylist(),
                                   table.column(S.VALIDATION_ITEMS).to_pylist()):
        items = [i for i in history if i >= 0]
        validation[user, max_len - min(len(items), max_len):] = items[-max_len:] if items else []
        full = (items + list(held or []))[-max_len:]
        if full:
            export[user, max_len - len(full):] = full
    return validation, export
