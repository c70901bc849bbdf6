"""Who the champion cannot score, and what those users get instead.

A user is scored by the model (``reason = model``) when their history holds at least ``score.min_history``
items and, for a model that reads a trained user vector (MF, graph models, two-tower, ALS), the model was
trained on them (an interaction in train or validation of the model's day). Everybody else gets a
fallback: ``content_fallback`` (items like the ones in their history, by content) when one of their items
has content, else ``popularity_fallback`` (the most popular items of the last ``score.fallback_recent_days``
days, all-time counts breaking ties).
"""

from __future__ import annotations

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from recsys_spark import schemas as S

MODEL, CONTENT_FALLBACK, POPULARITY_FALLBACK = "model", "content_fallback", "popularity_fallback"
ROUTE = "_route"


def route_users(users_df: DataFrame, trained_df: DataFrame, content_items_df: DataFrame, min_history: int,
                needs_trained_user: bool) -> DataFrame:
    """(user_idx, history) -> the same with ``_route``: one of MODEL, CONTENT_FALLBACK, POPULARITY_FALLBACK.

    Args:
        trained_df: (user_idx) of the users the model was trained on.
        content_items_df: (item_idx) of the items with content features.
    """
    with_content = (users_df.select(S.USER_IDX, F.explode(S.HISTORY).alias(S.ITEM_IDX))
                    .join(F.broadcast(content_items_df), S.ITEM_IDX).select(S.USER_IDX).distinct()
                    .withColumn("_has_content", F.lit(True)))
    trained = trained_df.select(S.USER_IDX).distinct().withColumn("_trained", F.lit(True))
    can_score = F.size(S.HISTORY) >= min_history
    if needs_trained_user:
        can_score = can_score & F.coalesce(F.col("_trained"), F.lit(False))
    route = (F.when(can_score, MODEL)
             .when(F.coalesce(F.col("_has_content"), F.lit(False)), CONTENT_FALLBACK)
             .otherwise(POPULARITY_FALLBACK))
    return (users_df.join(trained, S.USER_IDX, "left").join(with_content, S.USER_IDX, "left")
            .withColumn(ROUTE, route).drop("_trained", "_has_content"))


def recent_popularity(interactions_df: DataFrame, n_items: int, recent_days: float) -> np.ndarray:
    """[n_items] distinct users per item in the last ``recent_days`` days of the history, plus all-time
    counts scaled below 1 (they only order items with the same recent count)."""
    newest = interactions_df.agg(F.max(S.LAST_TS)).first()[0]
    cutoff = F.lit(newest) - F.expr(f"make_interval(0, 0, 0, 0, 0, 0, {float(recent_days) * 86400.0})")
    counts = (interactions_df.groupBy(S.ITEM_IDX)
              .agg(F.countDistinct(S.USER_IDX).alias("all_time"),
                   F.countDistinct(F.when(F.col(S.LAST_TS) >= cutoff, F.col(S.USER_IDX))).alias("recent"))
              .collect())
    recent, all_time = np.zeros(n_items), np.zeros(n_items)
    for row in counts:
        recent[row[S.ITEM_IDX]], all_time[row[S.ITEM_IDX]] = row["recent"], row["all_time"]
    return (recent + all_time / (all_time.max(initial=0.0) + 1.0)).astype(np.float32)
