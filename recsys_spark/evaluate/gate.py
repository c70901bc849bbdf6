"""The champion and the publication gate.

The champion is the model of ``train.models`` with the best validation NDCG@K (never test). It is approved
for publication only if, on the test split, it beats the popularity baseline (``evaluate.require_beats_baseline``)
and is not worse than the currently published model's version by more than ``evaluate.max_regression``
(relative, measured on today's test split). The decision is written to
``<lake>/gate_decisions/ds=<ds>/decision.json``; ``score`` publishes exactly the version it names.
"""

from __future__ import annotations

import json
from typing import Dict, List, Optional

from recsys_spark import schemas as S

DECISION_FILE = "decision.json"


def read_decision(lake, ds: str) -> Optional[Dict]:
    path = f"{lake.partition_path(S.GATE_DECISIONS, ds)}/{DECISION_FILE}"
    return json.loads(lake.read_text(path)) if lake.exists(path) else None


def published_model(lake, ds: str) -> Optional[Dict]:
    """The model behind the current version of the newest published day before ``ds`` (a rollback
    included), from its manifest; None when nothing was published before."""
    from recsys_spark import publication

    earlier = [d for d in publication.published_days(lake) if d < ds]
    if not earlier:
        return None
    manifest = publication.current(lake, earlier[-1])
    return {"model": manifest["model"], "model_version": manifest["model_version"],
            "model_ds": manifest["model_ds"], "published_ds": earlier[-1]}


def _value(rows: List[Dict], model: str, version: str, split: str, metric: str, k: int) -> Optional[float]:
    for r in rows:
        if (r[S.MODEL], r[S.MODEL_VERSION], r[S.SPLIT], r[S.SLICE], r[S.METRIC], r[S.K]) == (
                model, version, split, "all", metric, k):
            return r[S.VALUE]
    return None


def decide(rows: List[Dict], cfg, ds: str, published: Optional[Dict]) -> Dict:
    """The gate's decision from the ``metrics`` rows of ``ds`` (pure: no I/O)."""
    k, ev = cfg.evaluate.k, cfg.evaluate
    versions = {r[S.MODEL]: r[S.MODEL_VERSION] for r in rows if r[S.MODEL] in cfg.train.models}
    validation = {m: _value(rows, m, v, S.SPLIT_VALIDATION, "ndcg", k) for m, v in versions.items()}
    ranked = sorted((m for m in cfg.train.models if validation.get(m) is not None),
                    key=lambda m: (-validation[m], cfg.train.models.index(m)))
    if not ranked:
        raise ValueError(f"no validation NDCG@{k} for any of train.models={cfg.train.models} on ds={ds}: re-run evaluate")
    champion = ranked[0]
    version = versions[champion]
    test = _value(rows, champion, version, S.SPLIT_TEST, "ndcg", k)
    baseline_version = next(r[S.MODEL_VERSION] for r in rows if r[S.MODEL] == ev.baseline)
    baseline_test = _value(rows, ev.baseline, baseline_version, S.SPLIT_TEST, "ndcg", k)
    reasons, passed = [], True
    if ev.require_beats_baseline:
        if champion == ev.baseline or test <= baseline_test:
            passed = False
            reasons.append(f"{champion} test NDCG@{k} {test:.4f} does not beat {ev.baseline} {baseline_test:.4f}")
        else:
            reasons.append(f"{champion} test NDCG@{k} {test:.4f} beats {ev.baseline} {baseline_test:.4f}")
    published_test = None
    if published:
        published_test = _value(rows, published["model"], published["model_version"], S.SPLIT_TEST, "ndcg", k)
        if published_test is not None:
            floor = (1.0 - ev.max_regression) * published_test
            if test < floor:
                passed = False
                reasons.append(f"{champion} test NDCG@{k} {test:.4f} is below the published {published['model']} "
                               f"{published['model_version']}'s {published_test:.4f} by more than "
                               f"evaluate.max_regression={ev.max_regression}")
            else:
                reasons.append(f"within evaluate.max_regression={ev.max_regression} of the published "
                               f"{published['model']} {published['model_version']} ({published_test:.4f})")
    return {
        "ds": ds, "k": k, "champion": champion, "champion_version": version, "champion_ds": ds,
        "validation_ndcg": validation, "champion_test_ndcg": test, "baseline": ev.baseline,
        "baseline_test_ndcg": baseline_test, "published": published, "published_test_ndcg": published_test,
        "passed": passed, "reasons": reasons,
    }


def run_gate(spark, lake, cfg, ds: str) -> Dict:
    """Decides on ``ds``'s champion from its ``metrics`` and writes the decision."""
    metrics_df = lake.read_table(S.METRICS, ds, f"run `python -m jobs.evaluate --ds {ds} --lake {lake.root}` first.")
    rows = [r.asDict() for r in metrics_df.collect()]
    decision = decide(rows, cfg, ds, published_model(lake, ds))
    lake.write_json(S.GATE_DECISIONS, ds, DECISION_FILE, decision)
    return decision
