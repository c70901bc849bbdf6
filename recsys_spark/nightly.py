"""The nightly run for one ds: clean -> build -> train -> evaluate -> score, in one Spark session."""

from __future__ import annotations

import time
from typing import Dict, Optional

from recsys_spark.config import PipelineConfig
from recsys_spark.etl.build import run_build_tables
from recsys_spark.etl.clean import run_clean_events
from recsys_spark.report import format_table, metrics_table
from recsys_spark.serving import run_evaluate, run_score
from recsys_spark.training import run_train

STAGES = ("clean_events", "build_tables", "train", "evaluate", "score")


def run_nightly(spark, lake, cfg: PipelineConfig, ds: str, input_path: Optional[str] = None,
                log=print) -> Dict:
    """Runs every stage in order; stops at the first failure (later stages keep yesterday's outputs)."""
    timings = {}
    out: Dict = {}

    def stage(name, fn):
        started = time.time()
        log(f"[nightly] {name} ...")
        out[name] = fn()
        timings[name] = time.time() - started
        log(f"[nightly] {name} done in {timings[name]:.1f} s")

    stage("clean_events", lambda: run_clean_events(spark, lake, cfg.clean, ds, input_path))
    stage("build_tables", lambda: run_build_tables(spark, lake, cfg.build, cfg.train, ds))
    stage("train", lambda: run_train(spark, lake, cfg, ds))
    stage("evaluate", lambda: run_evaluate(spark, lake, cfg, ds))
    stage("score", lambda: run_score(spark, lake, cfg, ds))
    out["timings_s"] = timings
    return out


def summary(result: Dict, ds: str) -> str:
    clean, build, train, score = (result[k] for k in ("clean_events", "build_tables", "train", "score"))
    lines = [
        "",
        f"== recsys_spark nightly, ds={ds} ==",
        f"events: {clean['input_rows']} raw rows -> {clean['clean']} clean, {clean['quarantined']} quarantined, "
        f"{clean['duplicates']} duplicates",
        f"tables: {build['n_users']} users, {build['n_items']} items, pairs {build['pairs_by_split']}",
        f"train:  {train['model']} on {train['num_proc']} Horovod ranks, {len(train['epoch_losses'])} epochs, "
        f"{train['train_time_s']} s, loss {train['epoch_losses'][0]:.4f} -> {train['epoch_losses'][-1]:.4f}, "
        f"best validation NDCG@{train['config']['evaluate']['k']} {train['validation_ndcg'] or 0:.4f} "
        f"at epoch {train['best_epoch']}",
        "",
        "Test-split quality (full ranking, history masked):",
        metrics_table(result["evaluate"]),
        "",
        format_table(["stage", "wall s"], [[k, f"{v:.1f}"] for k, v in result["timings_s"].items()]),
        "",
        f"Recommendations: {score['rows']} rows for {score['users']} users (top {score['top_n']}) at",
        f"  {score['path']}",
        "Read them with: spark.read.parquet(\"" + score["path"] + "\")",
    ]
    return "\n".join(lines)
