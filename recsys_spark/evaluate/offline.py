"""Offline evaluation of scorers on one ds's split, in the driver with users in blocks.

Protocol (the same for every model, deep or traditional): full ranking over the items met in the history,
the user's history masked. Validation ranks with the train history; test ranks with train then
validation (the validation interaction is folded into every model's history at test time). Slices:
``all``, ``cold`` (<= ``evaluate.cold_user_max`` train interactions), ``heavy`` (at or above the
``evaluate.heavy_user_quantile`` of train interactions) and ``long_tail`` (relevant items restricted to
those outside the head that holds ``evaluate.head_share`` of train interactions).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Dict, List, Optional, Tuple

import numpy as np

from recsys_spark import schemas as S
from recsys_spark.config_sections import EvaluateConfig
from recsys_spark.evaluate import metrics as M
from recsys_spark.evaluate.ranking import candidates_of, rank_blocks
from recsys_spark.evaluate.scorers import Scorer
from recsys_spark.io.local import SplitData

SLICES = ("all", "cold", "heavy", "long_tail")


def rank_split(scorer: Scorer, data: SplitData, for_test: bool, k: int, users: Optional[np.ndarray] = None,
               block: int = 1024) -> Tuple[np.ndarray, np.ndarray]:
    """(users [n], ranked [n, k]) for the users with a target in the split (or ``users``)."""
    history = data.history(for_test)
    if users is None:
        users = data.targets(for_test).users_with_items()
    rows = history.rows(users)
    is_candidate = candidates_of(history.items, data.n_items)
    ranked = [items for _, items, _ in rank_blocks(scorer, users, rows, rows, is_candidate, k, block)]
    ranked = np.concatenate(ranked) if ranked else np.zeros((0, k), np.int64)
    if ranked.shape[1] < k:
        ranked = np.pad(ranked, ((0, 0), (0, k - ranked.shape[1])), constant_values=-1)
    return users, ranked


def validation_metrics(scorer: Scorer, data: SplitData, k: int, max_users: Optional[int] = None,
                       seed: int = 0) -> Dict[str, float]:
    """Validation NDCG@K and Recall@K over (a seeded sample of at most ``max_users``) users."""
    users = data.validation.users_with_items()
    if max_users is not None and len(users) > max_users:
        users = np.sort(np.random.default_rng(seed).choice(users, size=max_users, replace=False))
    users, ranked = rank_split(scorer, data, False, k, users)
    if len(users) == 0:
        return {"ndcg": 0.0, "recall": 0.0, "n_users": 0}
    values = M.per_user(ranked, data.validation.rows(users), [k])
    return {"ndcg": float(values["ndcg"].mean()), "recall": float(values["recall"].mean()), "n_users": len(users)}


def head_items(item_users: np.ndarray, share: float) -> np.ndarray:
    """[n_items] bool: the most popular items that together hold ``share`` of train interactions."""
    order = np.lexsort((np.arange(len(item_users)), -item_users))
    cumulative = np.cumsum(item_users[order])
    total = cumulative[-1] if len(cumulative) else 0
    n_head = int(np.searchsorted(cumulative, share * total) + 1) if total else 0
    head = np.zeros(len(item_users), bool)
    head[order[:n_head]] = True
    return head


def evaluate_scorer(scorer: Scorer, data: SplitData, for_test: bool, cfg: EvaluateConfig,
                    block: int = 1024) -> List[Tuple[str, str, int, float, int]]:
    """Every metric at every K for every slice: rows of (slice, metric, k, value, n_users)."""
    ks = sorted(set(cfg.ks))
    users, ranked = rank_split(scorer, data, for_test, max(ks), block=block)
    targets = data.targets(for_test).rows(users)
    n_train = data.train.lengths()[users]
    item_users = data.train_item_users()
    head = head_items(item_users, cfg.head_share)
    heavy_min = np.quantile(n_train, cfg.heavy_user_quantile) if len(n_train) else 0
    tail_targets = [t[~head[t]] for t in targets]
    slices = {
        "all": (np.ones(len(users), bool), targets),
        "cold": (n_train <= cfg.cold_user_max, targets),
        "heavy": (n_train >= heavy_min, targets),
        "long_tail": (np.array([len(t) > 0 for t in tail_targets], bool), tail_targets),
    }
    n_candidates = int(candidates_of(data.history(for_test).items, data.n_items).sum())
    n_train_users = len(data.train.users_with_items())
    rows = []
    for name, (mask, relevant) in slices.items():
        idx = np.flatnonzero(mask)
        if len(idx) == 0:
            continue
        values = M.per_user(ranked[idx], [relevant[i] for i in idx], ks)
        for (metric, k), value in M.mean_over_users(values, ks).items():
            rows.append((name, metric, k, value, len(idx)))
        for k in ks:
            for metric, value in M.beyond_accuracy(ranked[idx], k, item_users, n_train_users, n_candidates).items():
                rows.append((name, metric, k, value, len(idx)))
    return rows


def competitors(lake, cfg, ds: str, data: SplitData):
    """[(name, version, model_ds, scorer, role)] to evaluate: today's models of ``train.models``, the
    popularity baseline (trained here when it is not one of them), and the currently published model's version
    when it is not one of today's (role ``published``)."""
    from recsys_spark.baselines.train import run_train_baseline
    from recsys_spark.evaluate.gate import published_model
    from recsys_spark.evaluate.scorer_views import padded
    from recsys_spark.model_store import load_model

    out = []
    for name in cfg.train.models:
        loaded = load_model(lake, name, ds, data.n_items)
        out.append((name, loaded.version, ds, padded(loaded.scorer, data.n_items), "candidate", loaded.metadata))
    if cfg.evaluate.baseline not in cfg.train.models:
        # The gate's reference is trained like any baseline (cheap), so that it has a version and metadata.
        run_train_baseline(lake.spark, lake, replace(cfg, train=replace(cfg.train, model=cfg.evaluate.baseline)),
                           ds, data)
        loaded = load_model(lake, cfg.evaluate.baseline, ds, data.n_items)
        out.append((loaded.name, loaded.version, ds, loaded.scorer, "baseline", loaded.metadata))
    published = published_model(lake, ds)
    if published and (published["model"], published["model_version"]) not in {(c[0], c[1]) for c in out}:
        if lake.has_partition(S.model_table(published["model"]), published["model_ds"]):
            loaded = load_model(lake, published["model"], published["model_ds"], data.n_items)
            if loaded.version == published["model_version"]:
                out.append((loaded.name, loaded.version, published["model_ds"], padded(loaded.scorer, data.n_items),
                            "published", loaded.metadata))
    return out


def run_evaluate(spark, lake, cfg, ds: str) -> List[Dict]:
    """Evaluates every competitor on the test split (all metrics, Ks and slices) and records each model's
    validation NDCG@K / Recall@K from its training (the figure the champion is chosen by); writes the
    ``metrics`` table for ``ds`` and returns its rows."""
    from recsys_spark.io.local import read_lake_split

    data = read_lake_split(lake, ds)
    rows: List[Dict] = []
    for name, version, model_ds, scorer, role, metadata in competitors(lake, cfg, ds, data):
        base = {S.MODEL: name, S.MODEL_VERSION: version}
        for slice_name, metric, k, value, n_users in evaluate_scorer(scorer, data, True, cfg.evaluate,
                                                                   cfg.evaluate.users_per_batch):
            rows.append(dict(base, **{S.SPLIT: S.SPLIT_TEST, S.SLICE: slice_name, S.METRIC: metric, S.K: k,
                                      S.VALUE: float(value), S.N_USERS: int(n_users)}))
        if role in ("candidate", "baseline"):
            best = max(metadata.get("validation") or [{"ndcg": 0.0}], key=lambda v: v.get("ndcg", 0.0))
            validation = {"ndcg": metadata.get("validation_ndcg") or 0.0, "recall": best.get("recall"),
                          "n_users": best.get("n_users", 0)}
        else:
            continue
        for metric in ("ndcg", "recall"):
            if validation.get(metric) is not None:
                rows.append(dict(base, **{S.SPLIT: S.SPLIT_VALIDATION, S.SLICE: "all", S.METRIC: metric,
                                          S.K: cfg.evaluate.k, S.VALUE: float(validation[metric]),
                                          S.N_USERS: int(validation.get("n_users") or 0)}))
    lake.write_table(spark.createDataFrame(rows, schema=S.METRICS_SCHEMA), S.METRICS, ds, files=1)
    return rows
