"""Fast settings exploration for a deep model: one process, the lake's tables in memory, validation only.

The product's job trains on Horovod ranks fed by Petastorm, then refits and tests; exploring settings that
way costs minutes of start-up per point. This runs the same model code (``build_model``), the same loss and
the same validation core on the validation split only, with ``--ranks`` emulating the global batch and
learning rate of that many ranks (batch x ranks, learning rate x ranks, as the job scales them). Test
figures are never printed: choose on validation here, then confirm once with ``make benchmark-quality``.

    .venv/bin/python bench/explore.py --dataset beauty --model sasrec --set train.item_content=true
    .venv/bin/python bench/explore.py --dataset ml-100k --model mf --epochs 40 --set train.embedding_dim=64

The lake is the one ``bench/quality.py`` builds (``--lake``, one sub-folder per dataset). Prints one line
per epoch and, last, the best validation NDCG@K with its epoch and the wall time.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "bench"))

DS = "2026-11-27"  # bench/quality.py's date


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, choices=["ml-100k", "beauty", "gowalla"])
    parser.add_argument("--model", required=True)
    parser.add_argument("--epochs", type=int, default=None, help="default: train.epochs")
    parser.add_argument("--patience", type=int, default=None, help="default: train.patience")
    parser.add_argument("--ranks", type=int, default=None,
                        help="emulated Horovod ranks (global batch and lr scale); default: train.num_proc")
    parser.add_argument("--lake", default="/tmp/recsys_quality_lake")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    if args.ranks is not None and args.ranks < 1:
        parser.error(f"--ranks must be 1 or more (got {args.ranks}); leave it out to use train.num_proc")
    print(explore(args.dataset, args.model, args.overrides, args.epochs, args.patience, args.ranks,
                  os.path.join(args.lake, args.dataset)), flush=True)


def explore(dataset, model_name, overrides, epochs, patience, ranks, lake_root) -> str:
    from quality import DATASETS

    from recsys_spark import schemas as S
    from recsys_spark.config import load_model_config
    from recsys_spark.io.local import load_pairs, log_item_shares, vocab_size
    from recsys_spark.training.spec import TrainSpec, settings_from_config, warmup_rate
    from recsys_spark.training.worker import _Validator, build_model

    k = DATASETS[dataset].k
    cfg = load_model_config(os.path.join(REPO, "conf", "datasets", f"{dataset}.yaml"),
                            [f"evaluate.k={k}", f"evaluate.ks=[{k}]"] + list(overrides), model_name)
    tc = cfg.train
    ranks = tc.num_proc if ranks is None else ranks

    def path(table):
        folder = os.path.join(lake_root, table, f"ds={DS}")
        if not os.path.isdir(folder):
            raise SystemExit(f"no {folder}: build the lake first with bench/quality.py --datasets {dataset}")
        return folder

    settings = settings_from_config(cfg)
    settings.update(validation_k=k, epochs=epochs or tc.epochs, patience=patience or tc.patience)
    spec = TrainSpec(
        train_url=None, n_rows=0, n_users=vocab_size(path(S.USER_VOCAB), S.USER_IDX),
        n_items=vocab_size(path(S.ITEM_VOCAB), S.ITEM_IDX), graph_path=path(S.GRAPH_EDGES),
        sequences_path=path(S.SEQUENCES), item_features_path=path(S.ITEM_FEATURES), train_path=path(S.TRAIN),
        validation_path=path(S.VALIDATION), **settings)
    import tensorflow as tf

    from recsys_spark.models.losses import SEED_KEY

    tf.random.set_seed(tc.seed)
    users, items = load_pairs(spec.train_path)
    item_log_q = log_item_shares(items, spec.n_items) if spec.loss in ("softmax", "full", "sampled") else None
    model = build_model(spec, item_log_q)
    if model_name == "sasrec":
        rows = model.validation_history[(model.validation_history >= 0).any(axis=1)]  # train sequences
        data = {S.HISTORY: rows}
    else:
        data = {S.USER_IDX: users, S.ITEM_IDX: items}
    n_rows = len(next(iter(data.values())))
    batch_size = spec.batch_size * ranks
    optimizer = tf.keras.optimizers.Adam(learning_rate=spec.learning_rate * ranks)

    @tf.function(reduce_retracing=True)
    def step(batch):
        with tf.GradientTape() as tape:
            loss = model.compute_loss(batch, training=True)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    validator = _Validator(spec)
    rng = np.random.default_rng(spec.seed)
    best, best_epoch, bad, lr_scale = -1.0, 0, 0, 1.0
    started = time.time()
    print(f"{dataset} {model_name}: {n_rows} training rows, {spec.n_users} users, {spec.n_items} items; "
          f"global batch {batch_size}, lr {spec.learning_rate * ranks}; overrides {overrides}", flush=True)
    for epoch in range(spec.epochs):
        t0 = time.time()
        order = rng.permutation(n_rows)
        total, n_steps = 0.0, max(1, n_rows // batch_size)
        for i in range(n_steps):
            take = order[i * batch_size:(i + 1) * batch_size]
            batch = {key: tf.constant(value[take]) for key, value in data.items()}
            batch[SEED_KEY] = tf.constant([spec.seed, epoch * n_steps + i], tf.int64)
            rate = warmup_rate(spec, ranks * lr_scale, epoch * n_steps + i)
            if rate is not None:
                optimizer.learning_rate.assign(rate)
            total += float(step(batch))
        metrics = validator(model)
        improved = metrics["ndcg"] > best
        if improved:
            best, best_epoch, bad = metrics["ndcg"], epoch + 1, 0
        else:
            bad += 1
            if spec.lr_decay != 1.0:
                lr_scale *= spec.lr_decay
                optimizer.learning_rate.assign(spec.learning_rate * ranks * lr_scale)
        print(f"  epoch {epoch + 1}: loss {total / n_steps:.4f}  validation NDCG@{k} {metrics['ndcg']:.4f} "
              f"Recall@{k} {metrics['recall']:.4f}  ({time.time() - t0:.0f} s)", flush=True)
        if bad >= spec.patience:
            break
    return (f"{dataset} {model_name} {' '.join(overrides)}: best validation NDCG@{k} {best:.4f} at epoch "
            f"{best_epoch}; {time.time() - started:.0f} s wall, {time.process_time():.0f} s CPU")


if __name__ == "__main__":
    main()
