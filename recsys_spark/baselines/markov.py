"""Markov chain: first-order transition counts between consecutive train items of each user (time order,
same-time items by the seeded tie hash), scored from the user's last ``markov.last_n`` items with weights
``decay**j``, backed off to popularity for items no transition reaches."""

from __future__ import annotations

from typing import Dict

import numpy as np

from recsys_spark.evaluate.scorers import ItemItemScorer
from recsys_spark.io.local import SplitData

# Popularity only orders what the transitions leave tied: far below one transition.
BACKOFF_WEIGHT = 1e-6


def transitions(data: SplitData):
    """CSR [n_items, n_items] of counts of item a followed by item b in a user's train history."""
    from scipy import sparse

    train = data.train
    users = train.user_of_each()
    same_user = users[1:] == users[:-1]
    src, dst = train.items[:-1][same_user], train.items[1:][same_user]
    matrix = sparse.csr_matrix((np.ones(len(src), np.float32), (src, dst)), shape=(data.n_items, data.n_items))
    matrix.sum_duplicates()
    return matrix


def fit(data: SplitData, params: Dict, **_) -> ItemItemScorer:
    counts = transitions(data)
    if params.get("normalize"):
        out_degree = np.asarray(counts.sum(axis=1)).ravel()
        from scipy import sparse

        counts = sparse.diags(1.0 / np.maximum(out_degree, 1.0)).astype(np.float32) @ counts
    popularity = data.train_item_users().astype(np.float32)
    prior = popularity / max(popularity.max(), 1.0)
    return ItemItemScorer(counts, last_n=int(params["last_n"]), decay=float(params["decay"]), prior=prior,
                          prior_weight=BACKOFF_WEIGHT)
