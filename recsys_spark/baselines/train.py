"""Training a traditional baseline for one ds: fit every grid point on train, keep the best by validation
NDCG@K (never test), export its scorer to ``models/<model>/ds=<ds>/`` with ``metadata.json``."""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, Tuple

from recsys_spark import schemas as S
from recsys_spark.baselines import grid_of, registry
from recsys_spark.config import PipelineConfig
from recsys_spark.errors import NumericalBreakdown
from recsys_spark.evaluate.offline import validation_metrics
from recsys_spark.io import local
from recsys_spark.model_store import save_scorer_bundle
from recsys_spark.models import scores_new_items


def run_train_baseline(spark, lake, cfg: PipelineConfig, ds: str, data: local.SplitData = None) -> Dict[str, Any]:
    """Fits ``cfg.train.model`` (a baseline), picks its settings on validation and exports it."""
    from recsys_spark.training import model_version

    name = cfg.train.model
    started, cpu_started = time.time(), time.process_time()
    data = data or local.read_lake_split(lake, ds)
    extra: Dict[str, Any] = {"spark": spark, "seed": cfg.train.seed, "iterations": cfg.als.iterations,
                             "max_items": cfg.ease.max_items}
    if name == "content":
        path = lake.require_partition(S.ITEM_FEATURES, ds, f"run `python -m jobs.build_tables --ds {ds}` first.")
        extra["item_features"] = local.read_item_features(lake.url(path), data.n_items)
    fit = registry()[name].fit

    def fit_on(split, params):
        return fit(split, params, **extra)

    def validate(scorer):
        return validation_metrics(scorer, data, cfg.evaluate.k, cfg.train.validation_max_users, cfg.train.seed)

    trials = search_grid(fit_on, grid_of(name, cfg), data, validate)
    # Every model is refit on train + validation for the test, with the settings validation chose; at test
    # time the history it reads holds the validation interaction too.
    scorer, best, refit_errors = refit_best(fit_on, data.with_validation_in_train(), trials)
    validation_ndcg, params = best["ndcg"], best["params"]
    version = model_version(cfg, ds)
    metadata = {
        "model": name, "model_version": version, "ds": ds, "family": "baseline",
        "params": params, "grid": trials, "refit_on_train_and_validation": True, "refit_errors": refit_errors,
        "validation_ndcg": validation_ndcg, "scores_new_items": scores_new_items(name),
        "validation": [{"epoch": 1, "ndcg": validation_ndcg, "recall": best["recall"], "n_users": best["n_users"]}],
        "best_epoch": None, "epochs_run": 1, "epoch_losses": [], "num_proc": 1, "stopped_early": False,
        "train_rows": int(len(data.train.items)),
        "n_users": data.n_users, "n_items": data.n_items,
        "train_time_s": round(time.time() - started, 2), "train_cpu_s": round(time.process_time() - cpu_started, 2),
        "trained_at_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "config": cfg.to_dict(),
    }
    metadata["path"] = save_scorer_bundle(lake, name, ds, scorer, metadata)
    return metadata


def search_grid(fit: Callable, grid: List[Dict], data, validate: Callable) -> List[Dict]:
    """Fits every grid point on train and scores it on validation. A point whose fit breaks down
    numerically is recorded with its error and skipped; if every point does, the last error is raised."""
    trials, last_error = [], None
    for params in grid:
        fit_started = time.time()
        try:
            scorer = fit(data, params)
        except NumericalBreakdown as err:
            last_error = err
            trials.append(dict(params=params, error=str(err), fit_s=round(time.time() - fit_started, 2)))
            continue
        scores = validate(scorer)
        trials.append(dict(params=params, ndcg=scores["ndcg"], recall=scores["recall"], n_users=scores["n_users"],
                           fit_s=round(time.time() - fit_started, 2)))
        del scorer  # an EASE matrix is n_items² floats: never hold two
    if all("error" in t for t in trials):
        raise NumericalBreakdown(f"every grid point broke down; the last: {last_error}")
    return trials


def refit_best(fit: Callable, data, trials: List[Dict]) -> Tuple[Any, Dict, List[Dict]]:
    """Refits the best validated point on ``data``; if that breaks down, the next best, and so on (each
    breakdown is returned for the metadata). Raises the last breakdown when none refits."""
    ranked = sorted((t for t in trials if "error" not in t), key=lambda t: -t["ndcg"])
    errors = []
    for trial in ranked:
        try:
            return fit(data, trial["params"]), trial, errors
        except NumericalBreakdown as err:
            errors.append(dict(params=trial["params"], error=str(err)))
    raise NumericalBreakdown(f"the refit on train + validation broke down at every validated setting; "
                             f"the last: {errors[-1]['error']}")
