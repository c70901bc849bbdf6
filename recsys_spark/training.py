"""Distributed training: the driver side (``run_train``) and what each Horovod rank runs (``train_worker``)."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Dict, List, Optional

import numpy as np

from recsys_spark import schemas as S
from recsys_spark.config import PipelineConfig
from recsys_spark.errors import MissingInputError


@dataclass
class TrainSpec:
    """Everything a rank needs, pickled to the executors. Paths are local (the lake is a shared disk)."""

    train_url: Any  # a Parquet folder URL, or a list of Parquet file URLs (train + validation for a refit)
    n_rows: int
    n_users: int
    n_items: int
    model: str
    embedding_dim: int
    l2: float
    epochs: int
    batch_size: int
    learning_rate: float
    seed: int
    loss: str = "bpr"
    negatives: int = 1  # BPR negatives per positive
    n_layers: int = 3
    graph_path: Optional[str] = None  # graph_edges of the same ds, for graph models
    sequences_path: Optional[str] = None  # sequences of the same ds, for sequence models
    item_features_path: Optional[str] = None  # item_features of the same ds, for content models
    title_hash_features: int = 1024
    feed_fields: Optional[List[str]] = None  # columns read from train_url (default user_idx, item_idx)
    max_len: int = 50
    heads: int = 1
    dropout: float = 0.2
    shuffle_buffer: int = 10000
    reader_workers: int = 2
    sparse_as_dense: bool = True
    train_path: Optional[str] = None  # for validation: history to mask, item shares for logQ
    validation_path: Optional[str] = None
    validation_k: int = 10
    validation_max_users: Optional[int] = None
    patience: int = 3
    lr_decay: float = 1.0  # learning rate x this after every epoch without validation improvement
    checkpoint_dir: Optional[str] = None
    resume: bool = False
    stop_after_epochs: Optional[int] = None  # end the run early as if interrupted (tests)
    # The refit for test: train + validation are both training data (pairs, graph edges, or each sequence
    # with its validation items appended); no validation, the epoch count chosen by the first run.
    fold_validation: bool = False
    return_weights_from_all_ranks: bool = False


@dataclass
class TrainResult:
    """What rank 0 brings back, plus the digests of every rank's final weights."""

    user_vectors: Any
    item_vectors: Any
    epoch_losses: List[float]
    steps_per_epoch: int
    digests: List[str] = field(default_factory=list)
    validation: List[Dict[str, float]] = field(default_factory=list)
    best_epoch: Optional[int] = None
    epochs_run: int = 0
    stopped_early: bool = False
    resumed_from_epoch: int = 0
    epoch_train_seconds: List[float] = field(default_factory=list)  # rank 0's feed + steps, per epoch
    saved_model: Optional[str] = None  # local folder of a sequence model's encoder
    final_learning_rates: List[float] = field(default_factory=list)  # every rank's, after any decay
    cpu_seconds: List[float] = field(default_factory=list)  # every rank's process CPU time (all its threads)
    all_rank_weights: Optional[List[List[Any]]] = None


def steps_per_epoch(n_rows: int, batch_size: int, size: int) -> int:
    """Identical on every rank: one pass over the data split across ranks, at least one step."""
    return max(1, n_rows // (batch_size * size))


def build_model(spec: TrainSpec, item_log_q=None):
    from recsys_spark.models import registry

    cls = registry()[spec.model]
    extra = {}
    if cls.needs_graph:
        from recsys_spark.etl.features import load_adjacency, normalized_adjacency

        extra["graph"] = load_adjacency(spec.graph_path, spec.n_users, spec.n_items)
        if spec.validation_path:
            # Exported vectors propagate over train + validation edges: at test time both are known history
            # (and a refit trains on them too).
            from recsys_spark.io.local import load_pairs

            rows, cols = extra["graph"][:2]
            train_users, train_items = rows[rows < spec.n_users], cols[rows < spec.n_users] - spec.n_users
            val_users, val_items = load_pairs(spec.validation_path)
            extra["export_graph"] = normalized_adjacency(np.concatenate([train_users, val_users]),
                                                         np.concatenate([train_items, val_items]),
                                                         spec.n_users, spec.n_items)
            if spec.fold_validation:
                extra["graph"] = extra["export_graph"]
    if cls.needs_content:
        from recsys_spark.models.two_tower import ItemContent

        extra["content"] = ItemContent.from_parquet(spec.item_features_path, spec.n_items, spec.title_hash_features)
    if spec.model == "sasrec":
        from recsys_spark.models.sasrec import histories_from_sequences

        extra["validation_history"], extra["export_history"] = histories_from_sequences(
            spec.sequences_path, spec.n_users, spec.max_len)
        extra.update(max_len=spec.max_len, heads=spec.heads, dropout=spec.dropout)
    return cls(spec.n_users, spec.n_items, embedding_dim=spec.embedding_dim, l2=spec.l2, seed=spec.seed,
               loss=spec.loss, item_log_q=item_log_q, n_layers=spec.n_layers, negatives=spec.negatives, **extra)


class _Validator:
    """Rank 0's validation: full-ranking NDCG@K with train history masked (the evaluation's own core)."""

    def __init__(self, spec: TrainSpec):
        from recsys_spark.io.local import Histories, SplitData, load_pairs

        empty = Histories.from_pairs([], [], spec.n_users)
        self.data = SplitData(spec.n_users, spec.n_items,
                              Histories.from_pairs(*load_pairs(spec.train_path), spec.n_users),
                              Histories.from_pairs(*load_pairs(spec.validation_path), spec.n_users), empty)
        self.spec = spec

    def __call__(self, model) -> Dict[str, float]:
        from recsys_spark.evaluate.offline import validation_metrics
        from recsys_spark.evaluate.scorers import DotScorer

        scorer = DotScorer(model.user_vectors(for_test=False), model.item_vectors(for_test=False))
        return validation_metrics(scorer, self.data, self.spec.validation_k, self.spec.validation_max_users,
                                  seed=self.spec.seed)


def train_worker(spec: TrainSpec) -> Dict[str, Any]:
    """Runs on every Horovod rank: reads its shard through Petastorm and trains with averaged gradients.

    Each epoch is one seeded pass (reader, shuffle and negatives seeded by epoch), so a resumed run
    repeats what an uninterrupted one would have done. After every epoch rank 0 validates, decides on
    early stopping (broadcast to all ranks) and checkpoints; it alone writes.

    Returns a dict with the rank, the digest of its final weights, its loss history and, on rank 0, the
    best epoch's user/item vectors and the validation history.
    """
    from recsys_spark.session import quiet_known_noise

    cpu_started = time.process_time()
    quiet_known_noise()
    import tensorflow as tf

    from recsys_spark import distributed, feed
    from recsys_spark.io.local import load_pairs, log_item_shares
    from recsys_spark.models.losses import SEED_KEY

    rank, size = distributed.init()
    item_log_q = None
    if spec.loss in ("softmax", "full") and spec.train_path:
        item_log_q = log_item_shares(load_pairs(spec.train_path)[1], spec.n_items)
    model = build_model(spec, item_log_q)
    # Linear scaling: the global batch is size x batch_size, so the step size grows with it.
    optimizer = tf.keras.optimizers.Adam(learning_rate=spec.learning_rate * size)
    state = {name: tf.Variable(value, trainable=False, name=name) for name, value in
             (("epoch", 0), ("best_epoch", -1), ("bad_epochs", 0), ("best_ndcg", -1.0), ("lr_scale", 1.0))}
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, **state)
    manager = tf.train.CheckpointManager(checkpoint, spec.checkpoint_dir, max_to_keep=2) if spec.checkpoint_dir else None
    validator = _Validator(spec) if rank == 0 and spec.validation_path and not spec.fold_validation else None
    folded_history = None
    if spec.fold_validation and getattr(model, "export_history", None) is not None:
        folded_history = tf.constant(model.export_history, tf.int32)  # [n_users, L]: train then validation
    best_weights = None
    history: List[Dict[str, float]] = []
    resumed_from = 0
    if spec.resume and manager is not None and manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint)
        resumed_from = int(state["epoch"].numpy())
        optimizer.learning_rate.assign(spec.learning_rate * size * float(state["lr_scale"].numpy()))
        if rank == 0:
            best_weights, history = _load_best(spec.checkpoint_dir)

    def make_step(broadcast: bool):
        @tf.function
        def step(batch):
            with tf.GradientTape() as tape:
                loss = model.compute_loss(batch, training=True)
            tape = distributed.distributed_tape(tape, spec.sparse_as_dense)
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            if broadcast:
                # After the first step the optimizer's slots exist: broadcast both from rank 0.
                distributed.broadcast_from_rank0(model.variables)
                distributed.broadcast_from_rank0(_optimizer_variables(optimizer))
            return loss

        return step

    first_step, step = make_step(True), make_step(False)
    n_steps = steps_per_epoch(spec.n_rows, spec.batch_size, size)
    losses: List[float] = []
    fields = spec.feed_fields or [S.USER_IDX, S.ITEM_IDX]
    stopped_early = False
    is_first = True
    train_seconds: List[float] = []
    for epoch in range(resumed_from, spec.epochs):
        if spec.stop_after_epochs is not None and epoch >= spec.stop_after_epochs:
            break
        total = 0.0
        epoch_started = time.time()
        with feed.sharded_batches(spec.train_url, fields, rank, size, spec.batch_size,
                                  seed=spec.seed + 7919 * epoch + rank, shuffle_buffer=spec.shuffle_buffer,
                                  workers=spec.reader_workers) as dataset:
            batches = iter(dataset)
            for i in range(n_steps):
                batch = dict(next(batches))
                if folded_history is not None:
                    batch[S.HISTORY] = tf.gather(folded_history, tf.cast(batch[S.USER_IDX], tf.int32))
                batch[SEED_KEY] = tf.constant([spec.seed * 1009 + rank, epoch * n_steps + i], tf.int64)
                total += float((first_step if is_first else step)(batch))
                is_first = False
        train_seconds.append(time.time() - epoch_started)
        losses.append(distributed.mean_over_ranks(total / n_steps))
        state["epoch"].assign(epoch + 1)
        stop, improved = 0.0, 1.0
        if validator is not None:
            metrics = dict(validator(model), epoch=epoch + 1, loss=losses[-1])
            history.append(metrics)
            if metrics["ndcg"] > float(state["best_ndcg"].numpy()):
                state["best_ndcg"].assign(metrics["ndcg"])
                state["best_epoch"].assign(epoch + 1)
                state["bad_epochs"].assign(0)
                best_weights = [v.numpy() for v in model.variables]
            else:
                improved = 0.0
                state["bad_epochs"].assign_add(1)
                stop = float(state["bad_epochs"].numpy() >= spec.patience)
        if spec.lr_decay != 1.0 and distributed.value_from_rank0(improved) == 0:  # reduce on plateau, every rank
            state["lr_scale"].assign(state["lr_scale"] * spec.lr_decay)
            optimizer.learning_rate.assign(spec.learning_rate * size * float(state["lr_scale"].numpy()))
        if rank == 0 and manager is not None:
            manager.save(checkpoint_number=epoch + 1)
            _save_best(spec.checkpoint_dir, best_weights, history)
        if distributed.value_from_rank0(stop) > 0:
            stopped_early = True
            break
    weights = [v.numpy() for v in model.variables]
    out: Dict[str, Any] = {"rank": rank, "digest": distributed.weights_digest(weights), "losses": losses,
                           "steps_per_epoch": n_steps, "epochs_run": int(state["epoch"].numpy()),
                           "stopped_early": stopped_early, "resumed_from_epoch": resumed_from,
                           "train_seconds": train_seconds, "learning_rate": float(optimizer.learning_rate.numpy())}
    if rank == 0:
        if best_weights is not None:  # export the best validated epoch, not the last
            for variable, value in zip(model.variables, best_weights):
                variable.assign(value)
        out["user_vectors"], out["item_vectors"] = model.user_vectors(for_test=True), model.item_vectors(for_test=True)
        if hasattr(model, "encode") and spec.checkpoint_dir:
            out["saved_model"] = _save_encoder(model, spec)
        out["validation"] = history
        out["best_epoch"] = int(state["best_epoch"].numpy()) if validator is not None else None
    if spec.return_weights_from_all_ranks:
        out["weights"] = weights
    out["cpu_seconds"] = time.process_time() - cpu_started
    return out


def _save_best(folder: str, best_weights, history) -> None:
    import os

    if best_weights is not None:
        tmp = os.path.join(folder, "best.tmp.npz")
        np.savez(tmp, *best_weights)
        os.replace(tmp, os.path.join(folder, "best.npz"))
    with open(os.path.join(folder, "validation.json.tmp"), "w") as fh:
        json.dump(history, fh)
    os.replace(os.path.join(folder, "validation.json.tmp"), os.path.join(folder, "validation.json"))


def _load_best(folder: str):
    import os

    best = None
    if os.path.exists(os.path.join(folder, "best.npz")):
        data = np.load(os.path.join(folder, "best.npz"))
        best = [data[f"arr_{k}"] for k in range(len(data.files))]
    history = []
    if os.path.exists(os.path.join(folder, "validation.json")):
        with open(os.path.join(folder, "validation.json")) as fh:
            history = json.load(fh)
    return best, history


def _save_encoder(model, spec: TrainSpec) -> str:
    """Saves a sequence model's encoder as a SavedModel: history [None, L] int32 -> user vector [None, d]."""
    import os
    import shutil

    import tensorflow as tf

    class Encoder(tf.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        @tf.function(input_signature=[tf.TensorSpec([None, spec.max_len], tf.int32, name="history")])
        def encode(self, history):
            hidden, _ = self.inner.encode(history, training=False)
            return {"user_vector": hidden[:, -1]}

    path = os.path.join(spec.checkpoint_dir, "saved_model")
    shutil.rmtree(path, ignore_errors=True)
    encoder = Encoder(model)
    tf.saved_model.save(encoder, path, signatures={"serving_default": encoder.encode})
    return path


def _optimizer_variables(optimizer):
    variables = optimizer.variables
    return variables() if callable(variables) else variables


def train_distributed(spark, spec: TrainSpec, num_proc: int) -> TrainResult:
    """Launches ``train_worker`` on ``num_proc`` ranks and checks that they agree bit for bit."""
    from recsys_spark import distributed

    results = sorted(distributed.run_on_spark(spark, train_worker, [spec], num_proc), key=lambda r: r["rank"])
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


def train_model(spark, lake, cfg: PipelineConfig, ds: str, resume: bool = False) -> Dict[str, Any]:
    """Trains ``cfg.train.model``: a deep model on Horovod ranks, or a traditional baseline in the driver."""
    from recsys_spark.models import BASELINE_NAMES

    if cfg.train.model in BASELINE_NAMES:
        from recsys_spark.baselines.train import run_train_baseline

        return run_train_baseline(spark, lake, cfg, ds)
    return run_train(spark, lake, cfg, ds, resume=resume)


def run_train(spark, lake, cfg: PipelineConfig, ds: str, resume: bool = False) -> Dict[str, Any]:
    """Trains ``cfg.train.model`` on ``train/ds=<ds>`` and exports it to ``models/<model>/ds=<ds>/``.

    Validation NDCG@K (``evaluate.k``) picks the exported epoch and stops training after
    ``train.patience`` epochs without improvement. Checkpoints go to ``<lake>/_checkpoints/<model>/ds=<ds>/``
    every epoch; ``resume`` continues from the latest one, otherwise they are cleared first.
    """
    from pyspark.sql import functions as F

    from recsys_spark import feed
    from recsys_spark.models import feed_of

    tc = cfg.train
    hint = f"run `python -m jobs.build_tables --ds {ds} --lake {lake.root}` first."
    train_path = lake.require_partition(S.TRAIN, ds, hint)
    n_users = lake.read_table(S.USER_VOCAB, ds, hint).agg(F.max(S.USER_IDX)).first()[0] + 1
    n_items = lake.read_table(S.ITEM_VOCAB, ds, hint).agg(F.max(S.ITEM_IDX)).first()[0] + 1
    local_train = lake.local_path(train_path)
    feed_table, feed_fields = feed_of(tc.model, tc.loss)
    feed_path = lake.require_partition(feed_table, ds, hint)
    n_rows = feed.count_rows(lake.local_path(feed_path))
    if n_rows == 0:
        raise MissingInputError(f"the {feed_table} table {feed_path} is empty: there is nothing to learn from for ds={ds}")
    row_groups = feed.count_row_groups(lake.local_path(feed_path))
    if row_groups < tc.num_proc:
        raise MissingInputError(
            f"{feed_path} has {row_groups} Parquet row groups but train.num_proc={tc.num_proc}: every rank "
            f"needs at least one. Re-run build_tables with the same train.num_proc."
        )
    validation_path = lake.local_path(lake.require_partition(S.VALIDATION, ds, hint))
    checkpoint_dir = None
    if tc.checkpoint:
        checkpoint_dir = lake.local_path(lake.partition_path(f"_checkpoints/{tc.model}", ds))
        if not resume:
            lake.delete(checkpoint_dir)
    spec = TrainSpec(
        train_url=lake.url(feed_path), feed_fields=feed_fields, n_rows=n_rows, n_users=int(n_users), n_items=int(n_items),
        model=tc.model, embedding_dim=tc.embedding_dim, l2=tc.l2, epochs=tc.epochs, batch_size=tc.batch_size,
        learning_rate=tc.learning_rate, seed=tc.seed, loss=tc.loss, negatives=tc.negatives, shuffle_buffer=tc.shuffle_buffer,
        reader_workers=tc.reader_workers, train_path=local_train, validation_path=validation_path,
        validation_k=cfg.evaluate.k, validation_max_users=tc.validation_max_users, patience=tc.patience,
        lr_decay=tc.lr_decay,
        checkpoint_dir=checkpoint_dir, resume=resume, n_layers=tc.n_layers,
        graph_path=lake.local_path(lake.require_partition(S.GRAPH_EDGES, ds, hint)),
        sequences_path=lake.local_path(lake.require_partition(S.SEQUENCES, ds, hint)),
        max_len=cfg.build.sequence_length, heads=tc.heads, dropout=tc.dropout,
        item_features_path=lake.local_path(lake.require_partition(S.ITEM_FEATURES, ds, hint)),
        title_hash_features=cfg.build.title_hash_features,
    )
    started = time.time()
    result = train_distributed(spark, spec, tc.num_proc)
    refit, refit_rows = None, n_rows
    if result.best_epoch:
        # Every model, deep or traditional, is refit on train + validation for the test, with the settings
        # and the number of epochs that validation chose (the validation interaction is known at test time).
        refit_url = spec.train_url
        if feed_table == S.TRAIN:
            refit_url = [lake.url(f) for f in feed.parquet_files(local_train) + feed.parquet_files(validation_path)]
            refit_rows = n_rows + feed.count_rows(validation_path)
        refit_spec = replace(spec, train_url=refit_url, n_rows=refit_rows, epochs=result.best_epoch,
                             fold_validation=True, resume=False, lr_decay=1.0,
                             checkpoint_dir=os.path.join(checkpoint_dir, "refit") if checkpoint_dir else None)
        refit = train_distributed(spark, refit_spec, tc.num_proc)
        result.user_vectors, result.item_vectors = refit.user_vectors, refit.item_vectors
        result.saved_model = refit.saved_model
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
            "epochs": refit.epochs_run, "rows": refit_rows,
            "weights_digest": refit.digests[0], "epoch_losses": [round(x, 6) for x in refit.epoch_losses]},
        "config": cfg.to_dict(),
        "train_spec": asdict(spec),
    }
    path = lake.write_bundle(
        S.model_table(tc.model), ds,
        {
            "user_embeddings": vectors_df(spark, result.user_vectors, S.USER_IDX, "user"),
            "item_embeddings": vectors_df(spark, result.item_vectors, S.ITEM_IDX, "item"),
        },
        files={"metadata.json": json.dumps(metadata, indent=2, sort_keys=True) + "\n"},
        local_dirs={"encoder": result.saved_model} if result.saved_model else None,
    )
    metadata["path"] = path
    return metadata
