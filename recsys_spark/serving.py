"""Offline evaluation against the popularity baseline, the publication gate, and batch scoring."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Dict, List

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from recsys_spark import schemas as S
from recsys_spark.config import PipelineConfig
from recsys_spark.errors import DataQualityError, MissingInputError
from recsys_spark.metrics import recall_ndcg
from recsys_spark.ranking import item_matrix_from_df, ones_user_vectors, popularity_vectors, top_k


@dataclass
class LoadedModel:
    name: str
    version: str
    user_vectors_df: DataFrame
    item_matrix: np.ndarray
    metadata: Dict


def load_model(lake, model: str, ds: str) -> LoadedModel:
    table = S.model_table(model)
    path = lake.require_partition(
        table, ds, f"train it first: `python -m jobs.train --model {model} --ds {ds} --lake {lake.root}`."
    )
    metadata = json.loads(lake.read_text(f"{path}/metadata.json"))
    item_df = lake.spark.read.parquet(f"{path}/item_embeddings")
    return LoadedModel(
        name=model,
        version=metadata["model_version"],
        user_vectors_df=lake.spark.read.parquet(f"{path}/user_embeddings"),
        item_matrix=item_matrix_from_df(item_df, int(metadata["n_items"])),
        metadata=metadata,
    )


def _require(lake, table: str, ds: str) -> DataFrame:
    return lake.read_table(table, ds, f"run `python -m jobs.build_tables --ds {ds} --lake {lake.root}` first.")


def run_evaluate(spark, lake, cfg: PipelineConfig, ds: str) -> List[Dict]:
    """Full-ranking Recall@K / NDCG@K of the model and the popularity baseline on the test split.

    A user's train and validation items are masked (they are known history at test time). Writes the
    ``metrics`` table for ``ds`` and returns its rows.
    """
    k = cfg.evaluate.k
    train_df, validation_df, test_df = (_require(lake, t, ds) for t in (S.TRAIN, S.VALIDATION, S.TEST))
    model = load_model(lake, cfg.train.model, ds)
    n_items = model.item_matrix.shape[0]
    history_df = train_df.select(S.USER_IDX, S.ITEM_IDX).unionByName(validation_df.select(S.USER_IDX, S.ITEM_IDX))
    test_users_df = test_df.select(S.USER_IDX).distinct()
    pop_matrix, is_candidate = popularity_vectors(train_df, n_items)

    candidates = {
        model.name: (model.version, model.user_vectors_df.join(test_users_df, on=S.USER_IDX, how="inner"),
                     model.item_matrix),
        cfg.evaluate.baseline: (f"{ds}-train-counts", ones_user_vectors(test_users_df), pop_matrix),
    }
    rows = []
    for name, (version, users_df, item_matrix) in candidates.items():
        top_df = top_k(users_df, item_matrix, history_df, k, is_candidate, cfg.evaluate.users_per_batch)
        scores = recall_ndcg(top_df, test_df, k)
        for metric in ("recall", "ndcg"):
            rows.append({S.MODEL: name, S.MODEL_VERSION: version, S.METRIC: f"{metric}@{k}", S.K: k,
                         S.VALUE: scores[metric], S.N_USERS: scores["n_users"]})
    lake.write_table(spark.createDataFrame(rows, schema=S.METRICS_SCHEMA), S.METRICS, ds, files=1)
    return rows


def check_gate(lake, cfg: PipelineConfig, ds: str, model: str) -> Dict[str, float]:
    """Refuses publication when the model does not beat the baseline on NDCG@K for this ds.

    Raises:
        MissingInputError: no metrics for ``ds`` (evaluate has not run).
        DataQualityError: the model does not beat the baseline.
    """
    k = cfg.evaluate.k
    metrics_df = lake.read_table(
        S.METRICS, ds, f"run `python -m jobs.evaluate --ds {ds} --lake {lake.root}` before scoring."
    )
    ndcg = {r[S.MODEL]: r[S.VALUE] for r in metrics_df.filter(F.col(S.METRIC) == f"ndcg@{k}").collect()}
    if model not in ndcg or cfg.evaluate.baseline not in ndcg:
        raise MissingInputError(f"metrics for ds={ds} lack ndcg@{k} of {model} or {cfg.evaluate.baseline}: re-run evaluate")
    if ndcg[model] <= ndcg[cfg.evaluate.baseline]:
        raise DataQualityError(
            f"publication gate: {model} NDCG@{k} {ndcg[model]:.4f} does not beat {cfg.evaluate.baseline} "
            f"{ndcg[cfg.evaluate.baseline]:.4f} for ds={ds}; recommendations were not written and earlier "
            f"days are untouched. Investigate the model, or set evaluate.require_beats_baseline=false to publish anyway."
        )
    return ndcg


def run_score(spark, lake, cfg: PipelineConfig, ds: str) -> Dict:
    """Writes top-N unseen items per user to ``recommendations/ds=<ds>/`` (``_SUCCESS`` last)."""
    sc = cfg.score
    if cfg.evaluate.require_beats_baseline:
        check_gate(lake, cfg, ds, sc.model)
    model = load_model(lake, sc.model, ds)
    interactions_df = _require(lake, S.INTERACTIONS, ds)
    train_df = _require(lake, S.TRAIN, ds)
    seen_df = interactions_df.select(S.USER_IDX, S.ITEM_IDX)
    active_users_df = seen_df.select(S.USER_IDX).distinct()
    _, is_candidate = popularity_vectors(train_df, model.item_matrix.shape[0])
    users_df = model.user_vectors_df.join(active_users_df, on=S.USER_IDX, how="inner")
    top_df = top_k(users_df, model.item_matrix, seen_df, sc.top_n, is_candidate, sc.users_per_batch)
    user_vocab_df = _require(lake, S.USER_VOCAB, ds).select(S.USER_IDX, S.USER_ID)
    item_vocab_df = _require(lake, S.ITEM_VOCAB, ds).select(S.ITEM_IDX, S.ITEM_ID)
    recs_df = (
        top_df.join(user_vocab_df, on=S.USER_IDX)
        .join(item_vocab_df, on=S.ITEM_IDX)
        .select(
            S.USER_ID, S.ITEM_ID, S.RANK, S.SCORE,
            F.lit(model.name).alias(S.MODEL), F.lit(model.version).alias(S.MODEL_VERSION),
        )
        .repartition(S.USER_ID)
        .sortWithinPartitions(S.USER_ID, S.RANK)
    )
    path = lake.write_table(recs_df, S.RECOMMENDATIONS, ds)
    written_df = spark.read.parquet(path)
    summary = written_df.agg(F.countDistinct(S.USER_ID).alias("users"), F.count(F.lit(1)).alias("rows")).first()
    return {"path": path, "users": summary["users"], "rows": summary["rows"], "model": model.name,
            "model_version": model.version, "top_n": sc.top_n}
