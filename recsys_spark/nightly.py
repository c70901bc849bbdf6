"""The nightly run for one ds: clean -> build -> train every model of ``train.models`` -> evaluate -> gate
-> report -> score (when the gate approves), in one Spark session."""

from __future__ import annotations

import logging
import time
from typing import Dict, List, Optional

from recsys_spark.config import PipelineConfig, load_model_config
from recsys_spark.etl.build import run_build_tables
from recsys_spark.etl.clean_events import run_clean_events
from recsys_spark.evaluate.gate import run_gate
from recsys_spark.evaluate.offline import run_evaluate
from recsys_spark.report import format_table, metrics_table, run_report
from recsys_spark.scoring import run_score
from recsys_spark.training import train_model

log = logging.getLogger(__name__)
STAGES = ("clean_events", "build_tables", "train", "evaluate", "gate", "report", "score")


def train_all(spark, lake, cfg: PipelineConfig, ds: str, conf_path: Optional[str], overrides: List[str]
              ) -> Dict[str, Dict]:
    """Trains each model of ``train.models`` with its own settings (``conf/models/<model>.yaml``)."""
    out = {}
    for position, model in enumerate(cfg.train.models):
        started = time.time()
        out[model] = train_model(spark, lake, load_model_config(conf_path, overrides, model), ds)
        log.info("train %s (%d/%d): validation NDCG@%d %.4f in %.1f s", model, position + 1, len(cfg.train.models),
                 cfg.evaluate.k, out[model]["validation_ndcg"] or 0, time.time() - started)
    return out


def run_nightly(spark, lake, cfg: PipelineConfig, ds: str, input_path: Optional[str] = None,
                conf_path: Optional[str] = None, overrides: Optional[List[str]] = None) -> Dict:
    """Runs every stage in order; stops at the first failure (later stages keep yesterday's outputs).

    A gate that refuses publication skips ``score`` (yesterday's recommendations stay current) and the
    report still records why.
    """
    timings: Dict[str, float] = {}
    out: Dict = {}

    def stage(name, fn):
        started = time.time()
        log.info("%s (%d/%d) ...", name, STAGES.index(name) + 1, len(STAGES))
        out[name] = fn()
        timings[name] = time.time() - started
        log.info("%s done in %.1f s", name, timings[name])

    stage("clean_events", lambda: run_clean_events(spark, lake, cfg.clean, ds, input_path, cfg.privacy))
    stage("build_tables", lambda: run_build_tables(spark, lake, cfg.build, cfg.train, ds))
    stage("train", lambda: train_all(spark, lake, cfg, ds, conf_path, list(overrides or [])))
    stage("evaluate", lambda: run_evaluate(spark, lake, cfg, ds))
    stage("gate", lambda: run_gate(spark, lake, cfg, ds))
    stage("report", lambda: run_report(lake, cfg, ds))
    if out["gate"]["passed"]:
        stage("score", lambda: run_score(spark, lake, cfg, ds))
    else:
        log.warning("gate refused publication: %s; score skipped, yesterday's recommendations stay current",
                    "; ".join(out["gate"]["reasons"]))
        out["score"] = None
    out["timings_s"] = timings
    return out


def summary(result: Dict, ds: str) -> str:
    clean, build, gate, score = (result[k] for k in ("clean_events", "build_tables", "gate", "score"))
    k = gate["k"]
    lines = [
        "",
        f"== recsys_spark nightly, ds={ds} ==",
        f"events: {clean['input_rows']} raw rows -> {clean['clean']} clean, {clean['quarantined']} quarantined, "
        f"{clean['duplicates']} duplicates",
        f"tables: {build['n_users']} users, {build['n_items']} items, pairs {build['pairs_by_split']}",
        "models: " + ", ".join(f"{m} (validation NDCG@{k} {meta['validation_ndcg'] or 0:.4f}, {meta['train_time_s']} s)"
                              for m, meta in result["train"].items()),
        "",
        f"Test-split quality (full ranking, history masked, all users, K={k}):",
        metrics_table(result["evaluate"], k),
        "",
        f"gate: champion {gate['champion']} {gate['champion_version']} "
        f"({'APPROVED' if gate['passed'] else 'REFUSED'}): {'; '.join(gate['reasons'])}",
        "",
        format_table(["stage", "wall s"], [[name, f"{v:.1f}"] for name, v in result["timings_s"].items()]),
        "",
        f"Report: {result['report']['html']}",
    ]
    if score:
        lines += [f"Recommendations: {score['rows']} rows for {score['users']} users (top {score['top_n']}, "
                  f"{score['model']} {score['model_version']}) at", f"  {score['path']}",
                  "Read them with: spark.read.parquet(\"" + score["path"] + "\")"]
    else:
        lines += ["Recommendations: not published for this ds (the gate refused); the previous day's stay current."]
    return "\n".join(lines)
