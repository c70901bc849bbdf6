"""Popularity: every user gets the items with the most distinct train users (``popularity``), or with the
most users in the last ``popularity.recent_days`` days before the history ends (``popularity_recent``;
all-time counts break ties)."""

from __future__ import annotations

from typing import Dict

import numpy as np

from recsys_spark.evaluate.scorers import ItemPriorScorer
from recsys_spark.io.local import SplitData


def fit(data: SplitData, params: Dict, **_) -> ItemPriorScorer:
    return ItemPriorScorer(data.train_item_users().astype(np.float32))


def fit_recent(data: SplitData, params: Dict, **_) -> ItemPriorScorer:
    train = data.train
    window_s = float(params["recent_days"]) * 86400.0
    known = np.isfinite(train.last_ts)
    recent = known & (train.last_ts >= (np.nanmax(train.last_ts) if known.any() else 0.0) - window_s)
    counts = np.bincount(train.items[recent], minlength=data.n_items).astype(np.float64)
    # All-time counts only order items with the same recent count (they are < 1 in sum).
    all_time = data.train_item_users().astype(np.float64)
    return ItemPriorScorer((counts + all_time / (all_time.max() + 1.0)).astype(np.float32))
