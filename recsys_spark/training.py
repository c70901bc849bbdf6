"""Distributed training: the driver side (``run_train``) and what each Horovod rank runs (``train_worker``)."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional

from recsys_spark import schemas as S
from recsys_spark.config import PipelineConfig
from recsys_spark.errors import MissingInputError


@dataclass
class TrainSpec:
    """Everything a rank needs, pickled to the executors."""

    train_url: str
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
    shuffle_buffer: int = 10000
    reader_workers: int = 2
    sparse_as_dense: bool = True
    return_weights_from_all_ranks: bool = False


@dataclass
class TrainResult:
    """What rank 0 brings back, plus the digests of every rank's final weights."""

    user_vectors: Any
    item_vectors: Any
    epoch_losses: List[float]
    steps_per_epoch: int
    digests: List[str] = field(default_factory=list)
    all_rank_weights: Optional[List[List[Any]]] = None


def steps_per_epoch(n_rows: int, batch_size: int, size: int) -> int:
    """Identical on every rank: one pass over the data split across ranks, at least one step."""
    return max(1, n_rows // (batch_size * size))


def build_model(spec: TrainSpec):
    from recsys_spark.models import registry

    cls = registry()[spec.model]
    return cls(spec.n_users, spec.n_items, embedding_dim=spec.embedding_dim, l2=spec.l2, seed=spec.seed)


def train_worker(spec: TrainSpec) -> Dict[str, Any]:
    """Runs on every Horovod rank: reads its shard through Petastorm and trains with averaged gradients.

    Returns a dict with the rank, the digest of its final weights, its loss history and (rank 0, or every
    rank when asked) the weights.
    """
    from recsys_spark.session import quiet_known_noise

    quiet_known_noise()
    import tensorflow as tf

    from recsys_spark import distributed, feed

    rank, size = distributed.init()
    tf.random.set_seed(spec.seed + 1000 * rank)  # different negatives per rank
    model = build_model(spec)
    # Linear scaling: the global batch is size x batch_size, so the step size grows with it.
    optimizer = tf.keras.optimizers.Adam(learning_rate=spec.learning_rate * size)

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
    fields = [S.USER_IDX, S.ITEM_IDX]
    with feed.sharded_batches(spec.train_url, fields, rank, size, spec.batch_size, seed=spec.seed + rank,
                              shuffle_buffer=spec.shuffle_buffer, workers=spec.reader_workers) as dataset:
        batches = iter(dataset)
        for epoch in range(spec.epochs):
            total = 0.0
            for i in range(n_steps):
                run = first_step if (epoch == 0 and i == 0) else step
                total += float(run(next(batches)))
            losses.append(distributed.mean_over_ranks(total / n_steps))
    user_vectors, item_vectors = model.user_vectors(), model.item_vectors()
    weights = [v.numpy() for v in model.variables]
    out: Dict[str, Any] = {"rank": rank, "digest": distributed.weights_digest(weights), "losses": losses,
                           "steps_per_epoch": n_steps}
    if rank == 0:
        out["user_vectors"], out["item_vectors"] = user_vectors, item_vectors
    if spec.return_weights_from_all_ranks:
        out["weights"] = weights
    return out


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


def run_train(spark, lake, cfg: PipelineConfig, ds: str) -> Dict[str, Any]:
    """Trains ``cfg.train.model`` on ``train/ds=<ds>`` and exports it to ``models/<model>/ds=<ds>/``."""
    from pyspark.sql import functions as F

    from recsys_spark import feed

    tc = cfg.train
    hint = f"run `python -m jobs.build_tables --ds {ds} --lake {lake.root}` first."
    train_path = lake.require_partition(S.TRAIN, ds, hint)
    n_users = lake.read_table(S.USER_VOCAB, ds, hint).agg(F.max(S.USER_IDX)).first()[0] + 1
    n_items = lake.read_table(S.ITEM_VOCAB, ds, hint).agg(F.max(S.ITEM_IDX)).first()[0] + 1
    local_train = lake.local_path(train_path)
    n_rows = feed.count_rows(local_train)
    if n_rows == 0:
        raise MissingInputError(f"the train table {train_path} is empty: there is nothing to learn from for ds={ds}")
    row_groups = feed.count_row_groups(local_train)
    if row_groups < tc.num_proc:
        raise MissingInputError(
            f"{train_path} has {row_groups} Parquet row groups but train.num_proc={tc.num_proc}: every rank "
            f"needs at least one. Re-run build_tables with the same train.num_proc."
        )
    spec = TrainSpec(
        train_url=lake.url(train_path), n_rows=n_rows, n_users=int(n_users), n_items=int(n_items),
        model=tc.model, embedding_dim=tc.embedding_dim, l2=tc.l2, epochs=tc.epochs, batch_size=tc.batch_size,
        learning_rate=tc.learning_rate, seed=tc.seed, shuffle_buffer=tc.shuffle_buffer,
        reader_workers=tc.reader_workers,
    )
    started = time.time()
    result = train_distributed(spark, spec, tc.num_proc)
    train_time_s = time.time() - started
    version = model_version(cfg, ds)
    metadata = {
        "model": tc.model,
        "model_version": version,
        "ds": ds,
        "train_time_s": round(train_time_s, 2),
        "trained_at_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "num_proc": tc.num_proc,
        "train_rows": n_rows,
        "n_users": spec.n_users,
        "n_items": spec.n_items,
        "steps_per_epoch": result.steps_per_epoch,
        "epoch_losses": [round(x, 6) for x in result.epoch_losses],
        "weights_digest": result.digests[0],
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
    )
    metadata["path"] = path
    return metadata
