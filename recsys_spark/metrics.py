"""Full-ranking Recall@K and NDCG@K, in Spark (for the pipeline) and in NumPy (the reference for tests).

Recall@K = |top-K ∩ relevant| / |relevant|; NDCG@K = DCG / IDCG with gain 1/log2(rank + 1) and
IDCG over min(|relevant|, K) ideal ranks. Both are averaged over users that have a relevant item.
"""

from __future__ import annotations

import math
from typing import Dict, Iterable, Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from recsys_spark import schemas as S


def recall_ndcg_numpy(ranked: Dict[int, Sequence[int]], relevant: Dict[int, Iterable[int]], k: int):
    """Reference implementation. ``ranked[u]`` is u's list best first; ``relevant[u]`` its test items.

    Returns (recall, ndcg, n_users) averaged over users with at least one relevant item.
    """
    recalls, ndcgs = [], []
    for user, rel in relevant.items():
        rel = set(rel)
        if not rel:
            continue
        top = list(ranked.get(user, []))[:k]
        dcg = sum(1.0 / math.log2(r + 2) for r, item in enumerate(top) if item in rel)
        idcg = sum(1.0 / math.log2(r + 2) for r in range(min(len(rel), k)))
        recalls.append(sum(1 for item in top if item in rel) / len(rel))
        ndcgs.append(dcg / idcg)
    n = len(recalls)
    return (sum(recalls) / n if n else 0.0, sum(ndcgs) / n if n else 0.0, n)


def recall_ndcg(top_k_df: DataFrame, relevant_df: DataFrame, k: int) -> Dict[str, float]:
    """Spark implementation over (user_idx, item_idx, rank) lists and (user_idx, item_idx) relevant pairs.

    Returns {"recall": ..., "ndcg": ..., "n_users": ...}.
    """
    relevant_df = relevant_df.select(S.USER_IDX, S.ITEM_IDX).distinct()
    per_user_relevant = relevant_df.groupBy(S.USER_IDX).agg(F.count(F.lit(1)).alias("n_relevant"))
    hits = (
        top_k_df.filter(F.col(S.RANK) <= k)
        .join(relevant_df, on=[S.USER_IDX, S.ITEM_IDX])
        .groupBy(S.USER_IDX)
        .agg(F.count(F.lit(1)).alias("n_hits"), F.sum(1.0 / F.log2(F.col(S.RANK) + 1)).alias("dcg"))
    )
    ideal = F.aggregate(
        F.sequence(F.lit(1), F.least(F.col("n_relevant"), F.lit(k))),
        F.lit(0.0),
        lambda acc, r: acc + 1.0 / F.log2(r + 1),
    )
    per_user = (
        per_user_relevant.join(hits, on=S.USER_IDX, how="left")
        .fillna({"n_hits": 0, "dcg": 0.0})
        .select((F.col("n_hits") / F.col("n_relevant")).alias("recall"), (F.col("dcg") / ideal).alias("ndcg"))
    )
    row = per_user.agg(F.avg("recall"), F.avg("ndcg"), F.count(F.lit(1))).first()
    return {"recall": float(row[0] or 0.0), "ndcg": float(row[1] or 0.0), "n_users": int(row[2])}
