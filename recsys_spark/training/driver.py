"""The Spark driver's side of training: launching the ranks (``horovod.spark.run``), checking that they
agree, refitting on train + validation, and exporting vectors and metadata to the lake."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, replace
from typing import Any, Dict

from recsys_spark import schemas as S
from recsys_spark.config import PipelineConfig
from recsys_spark.errors import MissingInputError
from recsys_spark.io import fs
from recsys_spark.model_store import SCORER_DIR
from recsys_spark.models import scores_new_items
from recsys_spark.training import checkpoints
from recsys_spark.training.spec import TrainResult, TrainSpec, settings_from_config
from recsys_spark.training.worker import train_worker

log = logging.getLogger(__name__)


def train_distributed(spark, spec: TrainSpec, num_proc: int) -> TrainResult:
    """Launches ``train_worker`` on ``num_proc`` ranks and checks that they agree bit for bit."""
    from recsys_spark import distributed

    results = sorted(distributed.run_on_spark(spark, train_worker, [spec], num_proc, spec.start_timeout_s,
                                              spec.checkpoint_dir), key=lambda r: r["rank"])
    digests = [r["digest"] for r in results]
    if len(set(digests)) != 1:
        raise RuntimeError(f"ranks ended with different weights (digests {digests}): training is not in sync")
    rank0 = results[0]
    return TrainResult(
        user_vectors=rank0["user_vectors"],
        item_vectors=rank0["item_vectors"],
        epoch_losses=rank0["losses"],
        steps_per_epoch=rank0["steps_per_epoch"],
        digests=digests,
        validation=rank0.get("validation", []),
        best_epoch=rank0.get("best_epoch"),
        epochs_run=rank0["epochs_run"],
        stopped_early=rank0["stopped_early"],
        resumed_from_epoch=rank0["resumed_from_epoch"],
        epoch_train_seconds=rank0["train_seconds"],
        saved_model=rank0.get("saved_model"),
        scorer_dir=rank0.get("scorer_dir"),
        final_learning_rates=[r["learning_rate"] for r in results],
        cpu_seconds=[r["cpu_seconds"] for r in results],
        all_rank_weights=[r["weights"] for r in results] if spec.return_weights_from_all_ranks else None,
    )


def vectors_df(spark, vectors, idx_col: str, kind: str):
    """[n, d] numpy -> DataFrame(idx, embedding array<float>)."""
    import pandas as pd

    pdf = pd.DataFrame({idx_col: range(len(vectors)), S.EMBEDDING: list(vectors)})
    pdf[idx_col] = pdf[idx_col].astype("int32")
    return spark.createDataFrame(pdf, schema=S.EMBEDDINGS_SCHEMAS[kind])


def model_version(cfg: PipelineConfig, ds: str) -> str:
    """Identifies the data date and the resolved configuration of a trained model."""
    return f"{ds}-{cfg.fingerprint()}"


def train_model(spark, lake, cfg: PipelineConfig, ds: str, fresh: bool = False) -> Dict[str, Any]:
    """Trains ``cfg.train.model``: a deep model on Horovod ranks, or a traditional baseline in the driver."""
    from recsys_spark.models import BASELINE_NAMES

    if cfg.train.model in BASELINE_NAMES:
        from recsys_spark.baselines.train import run_train_baseline

        return run_train_baseline(spark, lake, cfg, ds)
    return run_train(spark, lake, cfg, ds, fresh=fresh)


def run_train(spark, lake, cfg: PipelineConfig, ds: str, fresh: bool = False) -> Dict[str, Any]:
    """Trains ``cfg.train.model`` on ``train/ds=<ds>`` and exports it to ``models/<model>/ds=<ds>/``.

    Validation NDCG@K (``evaluate.k``) picks the exported epoch and stops training after
    ``train.patience`` epochs without improvement. Checkpoints go to ``<lake>/_checkpoints/<model>/ds=<ds>/``
    every epoch. Ranks reach every table, checkpoint and export through its URL (``file://`` for a local
    lake, else the lake's own scheme: see :mod:`recsys_spark.io.fs`). A run of the same model version on
    the same input files (a retried task) resumes from the latest checkpoint; ``fresh``, other settings or
    rebuilt tables clear them first.
    """
    from pyspark.sql import functions as F

    from recsys_spark import feed
    from recsys_spark.models import feed_of

    tc = cfg.train
    hint = f"run `python -m jobs.build_tables --ds {ds} --lake {lake.root}` first."
    train_path = lake.require_partition(S.TRAIN, ds, hint)
    n_users = lake.read_table(S.USER_VOCAB, ds, hint).agg(F.max(S.USER_IDX)).first()[0] + 1
    n_items = lake.read_table(S.ITEM_VOCAB, ds, hint).agg(F.max(S.ITEM_IDX)).first()[0] + 1
    train_location = lake.url(train_path)
    feed_table, feed_fields = feed_of(tc.model, tc.loss)
    feed_path = lake.require_partition(feed_table, ds, hint)
    n_rows = feed.count_rows(lake.url(feed_path))
    if n_rows == 0:
        raise MissingInputError(f"the {feed_table} table {feed_path} is empty: there is nothing to learn from for ds={ds}")
    row_groups = feed.count_row_groups(lake.url(feed_path))
    if row_groups < tc.num_proc:
        raise MissingInputError(
            f"{feed_path} has {row_groups} Parquet row groups but train.num_proc={tc.num_proc}: every rank "
            f"needs at least one. Re-run build_tables with the same train.num_proc."
        )
    validation_path = lake.url(lake.require_partition(S.VALIDATION, ds, hint))
    checkpoint_dir, resume = None, False
    if tc.checkpoint:
        checkpoint_dir = lake.url(lake.partition_path(f"_checkpoints/{tc.model}", ds))
        identity = {"model_version": model_version(cfg, ds),
                    "inputs": checkpoints.inputs_digest([lake.url(feed_path), validation_path])}
        resume = checkpoints.prepare(checkpoint_dir, identity, fresh=fresh)
        if resume:
            log.info("%s: resuming from the checkpoints in %s", tc.model, checkpoint_dir)
    spec = TrainSpec(
        train_url=lake.url(feed_path), feed_fields=feed_fields, n_rows=n_rows, n_users=int(n_users), n_items=int(n_items),
        train_path=train_location, validation_path=validation_path, checkpoint_dir=checkpoint_dir, resume=resume,
        graph_path=lake.url(lake.require_partition(S.GRAPH_EDGES, ds, hint)),
        sequences_path=lake.url(lake.require_partition(S.SEQUENCES, ds, hint)),
        item_features_path=lake.url(lake.require_partition(S.ITEM_FEATURES, ds, hint)),
        **settings_from_config(cfg))
    started = time.time()
    result = train_distributed(spark, spec, tc.num_proc)
    refit, refit_rows = None, n_rows
    if result.best_epoch:
        # Every model, deep or traditional, is refit on train + validation for the test, with the settings
        # and the number of epochs that validation chose (the validation interaction is known at test time).
        refit_url = spec.train_url
        if feed_table == S.TRAIN:
            refit_url = [lake.url(f) for f in feed.parquet_files(train_location) + feed.parquet_files(validation_path)]
            refit_rows = n_rows + feed.count_rows(validation_path)
        # the learning rate follows the validated run's epochs (its decays on plateaus included)
        schedule = [h.get("lr_scale", 1.0) for h in result.validation[:result.best_epoch]]
        refit_spec = replace(spec, train_url=refit_url, n_rows=refit_rows, epochs=result.best_epoch,
                             fold_validation=True, resume=resume, lr_decay=1.0, lr_schedule=schedule or None,
                             checkpoint_dir=fs.join(checkpoint_dir, "refit") if checkpoint_dir else None)
        refit = train_distributed(spark, refit_spec, tc.num_proc)
        result.user_vectors, result.item_vectors = refit.user_vectors, refit.item_vectors
        result.saved_model, result.scorer_dir = refit.saved_model, refit.scorer_dir
    train_time_s = time.time() - started
    version = model_version(cfg, ds)
    metadata = {
        "model": tc.model,
        "model_version": version,
        "family": "deep",
        "ds": ds,
        "train_time_s": round(train_time_s, 2),
        "train_cpu_s": round(sum(result.cpu_seconds) + (sum(refit.cpu_seconds) if refit else 0.0), 2),  # all ranks
        "trained_at_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "num_proc": tc.num_proc,
        "train_rows": n_rows,
        "n_users": spec.n_users,
        "n_items": spec.n_items,
        "steps_per_epoch": result.steps_per_epoch,
        "epoch_losses": [round(x, 6) for x in result.epoch_losses],
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "stopped_early": result.stopped_early,
        "resumed_from_epoch": result.resumed_from_epoch,
        "validation": result.validation,
        "validation_ndcg": max((v["ndcg"] for v in result.validation), default=None),
        "weights_digest": result.digests[0],
        "refit_on_train_and_validation": None if refit is None else {
            "epochs": refit.epochs_run, "rows": refit_rows, "learning_rate_scales": refit_spec.lr_schedule,
            "weights_digest": refit.digests[0], "epoch_losses": [round(x, 6) for x in refit.epoch_losses]},
        "config": cfg.to_dict(),
        "train_spec": asdict(spec),
    }
    metadata["scores_new_items"] = scores_new_items(tc.model, tc.item_content)
    if result.scorer_dir:  # scoring and evaluation run the encoder on each user's history (SequenceScorer)
        metadata["scorer"] = "sequence"
    path = lake.write_bundle(
        S.model_table(tc.model), ds,
        {
            "user_embeddings": vectors_df(spark, result.user_vectors, S.USER_IDX, "user"),
            "item_embeddings": vectors_df(spark, result.item_vectors, S.ITEM_IDX, "item"),
        },
        files={"metadata.json": json.dumps(metadata, indent=2, sort_keys=True) + "\n"},
        dirs={"encoder": result.saved_model, SCORER_DIR: result.scorer_dir} if result.saved_model else None,
    )
    metadata["path"] = path
    return metadata
