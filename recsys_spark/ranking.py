"""Top-K ranking with Spark: user vectors against a broadcast item matrix, seen items masked.

Used by both evaluation and batch scoring, so the lists that are evaluated are produced exactly as the
ones that are published.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from recsys_spark import schemas as S

TOP_K_SCHEMA = T.StructType(
    [
        T.StructField(S.USER_IDX, T.IntegerType(), False),
        T.StructField(S.ITEM_IDX, T.IntegerType(), False),
        T.StructField(S.RANK, T.IntegerType(), False),
        T.StructField(S.SCORE, T.FloatType(), False),
    ]
)
_SEEN = "seen_items"


def top_k_numpy(user_matrix: np.ndarray, item_matrix: np.ndarray, seen: list, is_candidate: np.ndarray,
                k: int):
    """Reference top-K for a block of users.

    Args:
        user_matrix: [B, d] user vectors.
        item_matrix: [n_items, d] item vectors.
        seen: B lists of item indices to exclude.
        is_candidate: [n_items] bool, items that may be recommended at all.
        k: list length.

    Returns:
        (items [B, k'] int, scores [B, k'] float) with k' = min(k, candidates), best first; ties go to
        the lower item index. Slots with no eligible item hold -1 and -inf.
    """
    scores = user_matrix @ item_matrix.T
    scores[:, ~is_candidate] = -np.inf
    for row, items in enumerate(seen):
        if items is not None and len(items):
            scores[row, np.asarray(items, dtype=np.int64)] = -np.inf
    k = min(k, scores.shape[1])
    # Stable ordering: sort by (-score, item index).
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < scores.shape[1] else np.tile(
        np.arange(scores.shape[1]), (scores.shape[0], 1))
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -part_scores), axis=1)
    items = np.take_along_axis(part, order, axis=1)
    top_scores = np.take_along_axis(part_scores, order, axis=1)
    # argpartition may pick any of several items tied at the k-th score; make ties deterministic.
    kth = top_scores[:, -1:]
    if np.any(np.sum(scores == kth, axis=1) > np.sum(top_scores == kth, axis=1)):
        full = np.lexsort((np.broadcast_to(np.arange(scores.shape[1]), scores.shape), -scores), axis=1)[:, :k]
        items, top_scores = full, np.take_along_axis(scores, full, axis=1)
    items = np.where(np.isfinite(top_scores), items, -1)
    return items, top_scores


def top_k(user_vectors_df: DataFrame, item_matrix: np.ndarray, seen_df: DataFrame, k: int,
          is_candidate: np.ndarray, users_per_batch: int = 512) -> DataFrame:
    """Top-``k`` items per user, excluding the user's ``seen_df`` items and non-candidates.

    Args:
        user_vectors_df: (user_idx, embedding array<float>) for the users to rank for.
        item_matrix: [n_items, d] item vectors, row = item_idx (broadcast to executors).
        seen_df: (user_idx, item_idx) pairs to exclude.
        is_candidate: [n_items] bool.

    Returns:
        DataFrame(user_idx, item_idx, rank 1..k, score); fewer than k rows for a user only when fewer
        than k eligible items exist.
    """
    spark = user_vectors_df.sparkSession
    items_bc = spark.sparkContext.broadcast((item_matrix.astype(np.float32), is_candidate.astype(bool)))
    seen_lists_df = seen_df.groupBy(S.USER_IDX).agg(F.collect_list(S.ITEM_IDX).alias(_SEEN))
    users_df = user_vectors_df.join(seen_lists_df, on=S.USER_IDX, how="left")

    def rank_partition(batches: Iterator) -> Iterator:
        import pandas as pd

        matrix, candidates = items_bc.value
        for pdf in batches:
            for start in range(0, len(pdf), users_per_batch):
                block = pdf.iloc[start:start + users_per_batch]
                if block.empty:
                    continue
                users = np.stack(block[S.EMBEDDING].to_numpy()).astype(np.float32)
                items, scores = top_k_numpy(users, matrix, list(block[_SEEN]), candidates, k)
                ranks = np.broadcast_to(np.arange(1, items.shape[1] + 1), items.shape)
                keep = items >= 0
                yield pd.DataFrame(
                    {
                        S.USER_IDX: np.repeat(block[S.USER_IDX].to_numpy(), items.shape[1])[keep.ravel()].astype(np.int32),
                        S.ITEM_IDX: items[keep].astype(np.int32),
                        S.RANK: ranks[keep].astype(np.int32),
                        S.SCORE: scores[keep].astype(np.float32),
                    }
                )

    return users_df.mapInPandas(rank_partition, schema=TOP_K_SCHEMA)


def popularity_vectors(train_df: DataFrame, n_items: int):
    """Popularity as a rank-1 factorisation: user vector [1], item vector [number of train users].

    Returns (item_matrix [n_items, 1], is_candidate [n_items]).
    """
    counts = np.zeros(n_items, dtype=np.float32)
    for row in train_df.groupBy(S.ITEM_IDX).agg(F.countDistinct(S.USER_IDX).alias("n")).collect():
        counts[row[S.ITEM_IDX]] = row["n"]
    return counts.reshape(-1, 1), counts > 0


def ones_user_vectors(users_df: DataFrame) -> DataFrame:
    """(user_idx, [1.0]) for every distinct user: the user side of the popularity baseline."""
    return users_df.select(S.USER_IDX).distinct().withColumn(S.EMBEDDING, F.array(F.lit(1.0).cast("float")))


def item_matrix_from_df(item_vectors_df: DataFrame, n_items: int) -> np.ndarray:
    """Collects (item_idx, embedding) rows into an [n_items, d] matrix (missing rows stay zero)."""
    rows = item_vectors_df.select(S.ITEM_IDX, S.EMBEDDING).collect()
    dim = len(rows[0][S.EMBEDDING]) if rows else 0
    matrix = np.zeros((n_items, dim), dtype=np.float32)
    for row in rows:
        matrix[row[S.ITEM_IDX]] = row[S.EMBEDDING]
    return matrix
