"""Spark MLlib ALS with implicit feedback (Hu, Koren & Volinsky): rank, regParam and alpha from config.

Like every model, it is refit on train + validation for the test with the settings validation chose.
"""

from __future__ import annotations

from typing import Dict

import numpy as np

from recsys_spark.evaluate.scorers import DotScorer
from recsys_spark.io.local import SplitData


def fit(data: SplitData, params: Dict, spark=None, seed: int = 0, iterations: int = 10, **_) -> DotScorer:
    import pandas as pd
    from pyspark.ml.recommendation import ALS

    train = data.train
    if spark.sparkContext.getCheckpointDir() is None:
        # ALS checkpoints its factors every checkpointInterval (10) iterations; without a folder the lineage
        # of a longer run overflows the JVM stack.
        import tempfile

        spark.sparkContext.setCheckpointDir(tempfile.mkdtemp(prefix="recsys_als_checkpoints_"))
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
    return DotScorer(users, items)
