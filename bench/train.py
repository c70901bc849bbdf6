"""Training throughput: MF/BPR examples per second through Petastorm + Horovod (2 ranks on Spark) against
the same model fed from in-memory tensors in one process, measured in the same run.

Both train the same table with the same batch size per step; the first epoch (tracing, reader start-up)
is left out of both rates. The pipeline's epoch time includes the Petastorm reader's start and the
allreduce of every step, not validation. The last line carries the ratio (target: >= 0.5).

    .venv/bin/python bench/train.py                       # 1,000,000 rows, batch 4096 per rank
    .venv/bin/python bench/train.py --rows 200000 --epochs 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from recsys_spark.session import quiet_known_noise  # noqa: E402

quiet_known_noise()


def write_table(folder: str, rows: int, n_users: int, n_items: int, files: int, seed: int = 0) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    os.makedirs(folder)
    per_file = rows // files
    for k in range(files):
        users = rng.integers(0, n_users, per_file).astype(np.int32)
        items = np.minimum(rng.zipf(1.3, per_file) - 1, n_items - 1).astype(np.int32)
        pq.write_table(pa.table({"user_idx": users, "item_idx": items, "weight": np.ones(per_file, np.float32)}),
                       os.path.join(folder, f"part-{k:05d}.parquet"), row_group_size=64 * 1024)


def in_memory_rate(folder: str, n_users: int, n_items: int, batch: int, epochs: int, dim: int) -> float:
    """Examples/s of one process training from tensors already in memory (epochs after the first)."""
    import tensorflow as tf

    from recsys_spark.io.local import load_pairs
    from recsys_spark.models.mf import MatrixFactorization

    users, items = load_pairs(folder)
    model = MatrixFactorization(n_users, n_items, embedding_dim=dim, seed=1)
    opt = tf.keras.optimizers.Adam(1e-3)
    data = tf.data.Dataset.from_tensor_slices({"user_idx": users.astype(np.int32), "item_idx": items.astype(np.int32)})
    data = data.shuffle(100_000, seed=1).batch(batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)

    @tf.function
    def step(b):
        with tf.GradientTape() as tape:
            loss = model.compute_loss(b)
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    seconds, examples = [], 0
    for epoch in range(epochs):
        started, n = time.time(), 0
        for b in data:
            step(b)
            n += batch
        seconds.append(time.time() - started)
        examples = n
    return examples / float(np.mean(seconds[1:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--dim", type=int, default=32)
    args = parser.parse_args()

    from recsys_spark.config import load_config
    from recsys_spark.session import build_session
    from recsys_spark.training import TrainSpec, train_distributed

    workdir = tempfile.mkdtemp(prefix="recsys_bench_train_")
    try:
        folder = os.path.join(workdir, "train")
        write_table(folder, args.rows, args.users, args.items, files=4)
        rows = (args.rows // 4) * 4
        memory = in_memory_rate(folder, args.users, args.items, args.batch, args.epochs, args.dim)
        print(f"in-memory, 1 process: {memory:,.0f} examples/s (batch {args.batch}, d={args.dim})")
        spark = build_session(load_config("conf/nightly.yaml").spark, app_suffix="bench-train")
        spec = TrainSpec(train_url=f"file://{folder}", n_rows=rows, n_users=args.users, n_items=args.items,
                         model="mf", embedding_dim=args.dim, l2=1e-5, epochs=args.epochs, batch_size=args.batch,
                         learning_rate=1e-3, seed=1, reader_workers=1, shuffle_buffer=50_000, sparse_as_dense=False)
        result = train_distributed(spark, spec, num_proc=2)
        examples = result.steps_per_epoch * args.batch * 2
        pipeline = examples / float(np.mean(result.epoch_train_seconds[1:]))
        print(f"Petastorm + Horovod, 2 ranks: {pipeline:,.0f} examples/s "
              f"(epochs {', '.join(f'{s:.1f}' for s in result.epoch_train_seconds)} s)")
        spark.stop()
        print(f"ratio pipeline/in-memory: {pipeline / memory:.2f} (target >= 0.5)")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
