"""In-process full-ranking evaluation on NumPy arrays, used by training for validation and early stopping.

It ranks exactly as the Spark scoring path does (:func:`recsys_spark.ranking.top_k_numpy`) and computes
the same Recall@K / NDCG@K as :mod:`recsys_spark.metrics`.
"""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np

from recsys_spark import schemas as S
from recsys_spark.ranking import top_k_numpy


def load_pairs(local_path: str):
    """(user_idx, item_idx) int64 arrays of a pairs Parquet folder (train/validation/test)."""
    import pyarrow.parquet as pq

    table = pq.read_table(local_path, columns=[S.USER_IDX, S.ITEM_IDX])
    return (table.column(S.USER_IDX).to_numpy().astype(np.int64),
            table.column(S.ITEM_IDX).to_numpy().astype(np.int64))


def group_by_user(users: np.ndarray, items: np.ndarray) -> Dict[int, np.ndarray]:
    """user -> array of its items."""
    if len(users) == 0:
        return {}
    order = np.argsort(users, kind="stable")
    users, items = users[order], items[order]
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    return {int(u): chunk for u, chunk in zip(users[starts], np.split(items, starts[1:]))}


def full_ranking_metrics(user_vectors: np.ndarray, item_vectors: np.ndarray, history: Dict[int, np.ndarray],
                         targets: Dict[int, np.ndarray], k: int, is_candidate: Optional[np.ndarray] = None,
                         max_users: Optional[int] = None, seed: int = 0, block: int = 1024) -> Dict[str, float]:
    """Recall@K and NDCG@K of dot-product scores over all items, each user's history masked.

    Args:
        user_vectors: [n_users, d]; item_vectors: [n_items, d].
        history: user -> items to mask; targets: user -> relevant items.
        is_candidate: [n_items] bool, items that may be ranked at all (default: all).
        max_users: evaluate a seeded sample of at most this many users (None: all).
    """
    users = np.array(sorted(u for u, t in targets.items() if len(t)), dtype=np.int64)
    if max_users is not None and len(users) > max_users:
        users = np.sort(np.random.default_rng(seed).choice(users, size=max_users, replace=False))
    if is_candidate is None:
        is_candidate = np.ones(item_vectors.shape[0], dtype=bool)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    recall_sum = ndcg_sum = 0.0
    for start in range(0, len(users), block):
        chunk = users[start:start + block]
        items, _ = top_k_numpy(user_vectors[chunk].astype(np.float32), item_vectors,
                               [history.get(int(u), ()) for u in chunk], is_candidate, k)
        for row, u in enumerate(chunk):
            relevant = targets[int(u)]
            hits = np.isin(items[row], relevant)
            recall_sum += hits.sum() / len(relevant)
            ideal = discounts[: min(len(relevant), k)].sum()
            ndcg_sum += float((hits * discounts[: len(hits)]).sum()) / ideal
    n = len(users)
    return {"recall": recall_sum / n if n else 0.0, "ndcg": ndcg_sum / n if n else 0.0, "n_users": n}


def log_item_shares(items: np.ndarray, n_items: int) -> np.ndarray:
    """log(count_i / total) per item, with unseen items at the log of half an interaction."""
    counts = np.bincount(items, minlength=n_items).astype(np.float64)
    counts[counts == 0] = 0.5
    return np.log(counts / counts.sum()).astype(np.float32)
