"""Spark MLlib ALS with implicit feedback (Hu, Koren & Volinsky): rank, regParam and alpha from config.

At test time a user's factor is folded in from the train + validation history with the item factors
fixed, by the same least-squares step ALS itself takes (so the validation interaction enters the user side
as it does for every other model).
"""

from __future__ import annotations

from typing import Dict

import numpy as np

from recsys_spark.evaluate.scorers import DotScorer
from recsys_spark.io.local import Histories, SplitData


def fit(data: SplitData, params: Dict, spark=None, seed: int = 0, iterations: int = 10, **_) -> DotScorer:
    import pandas as pd
    from pyspark.ml.recommendation import ALS

    train = data.train
    pdf = pd.DataFrame({"user": train.user_of_each().astype(np.int32), "item": train.items.astype(np.int32),
                        "rating": np.ones(len(train.items), np.float32)})
    als = ALS(rank=int(params["rank"]), regParam=float(params["reg"]), alpha=float(params["alpha"]),
              implicitPrefs=True, maxIter=iterations, seed=seed, userCol="user", itemCol="item",
              ratingCol="rating", nonnegative=False, coldStartStrategy="drop")
    model = als.fit(spark.createDataFrame(pdf))
    users = np.zeros((data.n_users, int(params["rank"])), np.float32)
    items = np.zeros((data.n_items, int(params["rank"])), np.float32)
    for target, factors_df in ((users, model.userFactors), (items, model.itemFactors)):
        rows = factors_df.toPandas()
        if len(rows):
            target[rows["id"].to_numpy()] = np.stack(rows["features"].to_numpy()).astype(np.float32)
    scorer = DotScorer(users, items)
    scorer.params_used = dict(params)
    return scorer


def fold_in(scorer: DotScorer, history: Histories, reg: float, alpha: float) -> DotScorer:
    """Recomputes every user factor from ``history`` with item factors Y fixed:
    x_u = (YᵀY + α Σ_{i∈H} y_i y_iᵀ + λ |H| I)⁻¹ (1 + α) Σ_{i∈H} y_i, as Spark's implicit ALS does
    (preference 1, confidence 1 + α, regularisation scaled by the number of the user's items)."""
    y = scorer.item_matrix.astype(np.float64)
    gram = y.T @ y
    rank = y.shape[1]
    users = scorer.user_matrix.copy()
    for u in history.users_with_items():
        items = history.of(u)
        yu = y[items]
        a = gram + alpha * yu.T @ yu + reg * len(items) * np.eye(rank)
        users[u] = np.linalg.solve(a, (1.0 + alpha) * yu.sum(axis=0)).astype(np.float32)
    return DotScorer(users, scorer.item_matrix)
