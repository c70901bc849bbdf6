"""Content-based: the user profile is the mean of the history items' normalised content rows (categories,
tags/attributes, title TF-IDF from ``item_features``); items score their cosine with it."""

from __future__ import annotations

from typing import Dict

from recsys_spark.evaluate.scorers import ProfileScorer
from recsys_spark.io.local import SplitData


def fit(data: SplitData, params: Dict, item_features=None, **_) -> ProfileScorer:
    return ProfileScorer(item_features)
