"""Training losses shared by the models. Shapes are per batch of B examples."""

from __future__ import annotations

from typing import Dict, Optional

import tensorflow as tf


SEED_KEY = "_seed"  # batch entry: [2] int64 seed for stateless negative sampling (rank, step)


def checked_negatives(n: int) -> int:
    """The number of BPR negatives per positive, rejected below 1."""
    if n < 1:
        raise ValueError(f"negatives must be >= 1, got {n}")
    return n


def uniform_negatives(positives: tf.Tensor, n_items: int, batch: Dict[str, tf.Tensor], n: int = 1) -> tf.Tensor:
    """Uniformly drawn items, int32: [B] for ``n == 1``, else [B, n] (n per positive). Reproducible when the
    batch carries SEED_KEY."""
    shape = tf.shape(positives) if n == 1 else tf.stack([tf.shape(positives)[0], n])
    seed = batch.get(SEED_KEY)
    if seed is None:
        return tf.random.uniform(shape, 0, n_items, dtype=tf.int32)
    return tf.random.stateless_uniform(shape, seed=seed, minval=0, maxval=n_items, dtype=tf.int32)


def bpr_loss(positive_scores: tf.Tensor, negative_scores: tf.Tensor) -> tf.Tensor:
    """Bayesian personalised ranking: mean of -log sigmoid(s+ - s-) over all (positive, negative) pairs.
    [B] and [B] (one negative each) or [B, n] (n negatives each) -> scalar."""
    if negative_scores.shape.rank == 2:
        positive_scores = positive_scores[:, tf.newaxis]
    return -tf.reduce_mean(tf.math.log_sigmoid(positive_scores - negative_scores))


def mse_loss(predictions: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
    """Mean squared error on explicit ratings. [B], [B] -> scalar."""
    return tf.reduce_mean(tf.square(predictions - tf.cast(targets, predictions.dtype)))


def in_batch_softmax_loss(query: tf.Tensor, candidates: tf.Tensor, candidate_ids: tf.Tensor,
                          log_q: Optional[tf.Tensor] = None, candidate_bias: Optional[tf.Tensor] = None) -> tf.Tensor:
    """Sampled softmax with the batch's other items as negatives and a popularity (logQ) correction.

    Args:
        query: [B, d] user (or sequence) vectors.
        candidates: [B, d] vectors of each row's positive item.
        candidate_ids: [B] item ids; another row holding the same item is not used as a negative.
        log_q: [B] log sampling probability of each candidate (its share of train interactions);
            subtracting it keeps popular items from being over-penalised as negatives.
        candidate_bias: [B] optional per-item bias added to every logit of that item.

    Returns:
        Scalar mean cross-entropy of each row's positive against the batch.
    """
    logits = tf.matmul(query, candidates, transpose_b=True)  # [B, B]
    if candidate_bias is not None:
        logits += candidate_bias[tf.newaxis, :]
    if log_q is not None:
        logits -= tf.cast(log_q, logits.dtype)[tf.newaxis, :]
    same_item = tf.equal(candidate_ids[:, tf.newaxis], candidate_ids[tf.newaxis, :])
    off_diagonal = tf.logical_not(tf.eye(tf.shape(logits)[0], dtype=tf.bool))
    logits = tf.where(same_item & off_diagonal, tf.cast(-1e9, logits.dtype), logits)
    labels = tf.range(tf.shape(logits)[0])
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))


def sampled_items(n_items: int, n: int, batch: Dict[str, tf.Tensor], log_q: Optional[tf.Tensor] = None) -> tf.Tensor:
    """[n] int32 items drawn with replacement, shared by every row of the batch: uniformly, or with
    probability exp(log_q) (``log_q`` [n_items], the items' train shares). Reproducible with SEED_KEY."""
    seed = batch.get(SEED_KEY)
    if log_q is None:
        if seed is None:
            return tf.random.uniform([n], 0, n_items, dtype=tf.int32)
        return tf.random.stateless_uniform([n], seed=seed, minval=0, maxval=n_items, dtype=tf.int32)
    logits = tf.cast(log_q, tf.float32)[tf.newaxis]
    if seed is None:
        return tf.random.categorical(logits, n, dtype=tf.int32)[0]
    return tf.random.stateless_categorical(logits, n, seed=seed, dtype=tf.int32)[0]


def sampled_softmax_loss(query: tf.Tensor, positives: tf.Tensor, positive_vectors: tf.Tensor,
                         negatives: tf.Tensor, negative_vectors: tf.Tensor,
                         positive_log_q: Optional[tf.Tensor] = None,
                         negative_log_q: Optional[tf.Tensor] = None) -> tf.Tensor:
    """Softmax of each row's positive against S sampled items shared by the batch, with the logQ correction.

    logit(i) = query . v_i - log q(i) for the positive and every sampled item; a sampled item equal to the
    row's positive (an accidental hit) is left out of that row. With uniform sampling log q is a constant
    and may be omitted.

    Args:
        query: [N, d]; positives: [N] item ids; positive_vectors: [N, d].
        negatives: [S] sampled item ids; negative_vectors: [S, d].
        positive_log_q, negative_log_q: [N] and [S] log sampling probabilities (None: uniform).

    Returns:
        Scalar mean cross-entropy.
    """
    positive_logits = tf.reduce_sum(query * positive_vectors, -1, keepdims=True)  # [N, 1]
    negative_logits = tf.matmul(query, negative_vectors, transpose_b=True)  # [N, S]
    if positive_log_q is not None:
        positive_logits -= tf.cast(positive_log_q, positive_logits.dtype)[:, tf.newaxis]
        negative_logits -= tf.cast(negative_log_q, negative_logits.dtype)[tf.newaxis, :]
    hit = tf.equal(positives[:, tf.newaxis], tf.cast(negatives, positives.dtype)[tf.newaxis, :])
    negative_logits = tf.where(hit, tf.cast(-1e9, negative_logits.dtype), negative_logits)
    logits = tf.concat([positive_logits, negative_logits], axis=1)
    labels = tf.zeros(tf.shape(logits)[:1], tf.int32)
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))


def contrastive_loss(view_a: tf.Tensor, view_b: tf.Tensor, temperature: float) -> tf.Tensor:
    """InfoNCE between two views of the same N nodes: row i of ``view_a`` against every row of ``view_b``,
    its own row the positive, on cosine similarities / ``temperature``. [N, d], [N, d] -> scalar mean."""
    a = tf.math.l2_normalize(view_a, -1) / temperature
    b = tf.math.l2_normalize(view_b, -1)
    return in_batch_softmax_loss(a, b, tf.range(tf.shape(b)[0]))
