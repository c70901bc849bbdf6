"""The one metrics core: top-K accuracy per user and beyond-accuracy figures of ranked lists.

Used by validation during training and by the nightly evaluation (and cross-checked against
``pyspark.ml.evaluation.RankingEvaluator`` in the tests). Binary relevance; for a user with relevant set R
and list L (best first), with hits h_r = [L_r ∈ R]:

- recall@K = Σ_{r≤K} h_r / |R|;  precision@K = Σ_{r≤K} h_r / K;  hr@K = [Σ_{r≤K} h_r > 0]
- ndcg@K = Σ_{r≤K} h_r / log2(r + 1) over the same sum for min(|R|, K) hits at the top
- mrr@K = 1 / (rank of the first hit) when it is within K, else 0
- map@K = Σ_{r≤K} h_r · precision@r / min(|R|, K)

Lists are [B, K_max] item indices padded with -1 (never a hit).
"""

from __future__ import annotations

from typing import Dict, Iterable, List, Sequence

import numpy as np

ACCURACY = ("recall", "ndcg", "hr", "mrr", "map", "precision")
BEYOND = ("coverage", "mean_popularity", "novelty")


def hits_matrix(ranked: np.ndarray, relevant: Sequence[np.ndarray]) -> np.ndarray:
    """[B, K_max] bool: is ranked[b, r] one of user b's relevant items."""
    ranked = np.asarray(ranked)
    out = np.zeros(ranked.shape, bool)
    for b, rel in enumerate(relevant):
        if len(rel):
            out[b] = np.isin(ranked[b], rel) & (ranked[b] >= 0)
    return out


def per_user(ranked: np.ndarray, relevant: Sequence[np.ndarray], ks: Iterable[int]) -> Dict[str, np.ndarray]:
    """Accuracy metrics per user and K.

    Args:
        ranked: [B, K_max] lists, best first, -1 = empty slot; K_max >= max(ks).
        relevant: B arrays of relevant items (each non-empty).
        ks: list lengths.

    Returns:
        {metric: [B, len(ks)] float64} for every metric in :data:`ACCURACY`.
    """
    ks = list(ks)
    ranked = np.asarray(ranked)
    k_max = max(ks)
    if ranked.shape[1] < k_max:
        ranked = np.pad(ranked, ((0, 0), (0, k_max - ranked.shape[1])), constant_values=-1)
    ranked = ranked[:, :k_max]
    hits = hits_matrix(ranked, relevant).astype(np.float64)
    n_rel = np.array([len(r) for r in relevant], np.float64)
    positions = np.arange(1, k_max + 1)
    discounts = 1.0 / np.log2(positions + 1)
    cum_hits = np.cumsum(hits, axis=1)
    cum_dcg = np.cumsum(hits * discounts, axis=1)
    ideal = np.cumsum(discounts)
    cum_ap = np.cumsum(hits * cum_hits / positions, axis=1)
    first_hit = np.where(hits.any(axis=1), hits.argmax(axis=1) + 1, 0)
    out = {m: np.zeros((len(ranked), len(ks))) for m in ACCURACY}
    for j, k in enumerate(ks):
        capped = np.minimum(n_rel, k).astype(np.int64)
        out["recall"][:, j] = cum_hits[:, k - 1] / n_rel
        out["precision"][:, j] = cum_hits[:, k - 1] / k
        out["hr"][:, j] = cum_hits[:, k - 1] > 0
        out["ndcg"][:, j] = cum_dcg[:, k - 1] / ideal[capped - 1]
        out["mrr"][:, j] = np.where((first_hit > 0) & (first_hit <= k), 1.0 / np.maximum(first_hit, 1), 0.0)
        out["map"][:, j] = cum_ap[:, k - 1] / capped
    return out


def beyond_accuracy(ranked: np.ndarray, k: int, item_users: np.ndarray, n_train_users: int,
                    n_candidates: int) -> Dict[str, float]:
    """Catalogue coverage, mean popularity and novelty of the top-``k`` lists.

    Args:
        ranked: [B, K_max] lists (-1 = empty).
        item_users: [n_items] distinct train users per item (popularity).
        n_train_users: users with train items (the denominator of an item's share).
        n_candidates: items that could be recommended at all.

    Returns:
        coverage: distinct recommended items / n_candidates; mean_popularity: mean train users of a
        recommended item; novelty: mean -log2(train share) of a recommended item (self-information).
    """
    top = np.asarray(ranked)[:, :k]
    items = top[top >= 0]
    if len(items) == 0:
        return {"coverage": 0.0, "mean_popularity": 0.0, "novelty": 0.0}
    shares = np.maximum(item_users[items], 1) / max(n_train_users, 1)
    return {
        "coverage": len(np.unique(items)) / max(n_candidates, 1),
        "mean_popularity": float(item_users[items].mean()),
        "novelty": float(np.mean(-np.log2(shares))),
    }


def mean_over_users(values: Dict[str, np.ndarray], ks: List[int]) -> Dict[tuple, float]:
    """{(metric, k): mean over users} of :func:`per_user`'s output."""
    return {(m, k): float(values[m][:, j].mean()) if len(values[m]) else 0.0
            for m in values for j, k in enumerate(ks)}
