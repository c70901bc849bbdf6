"""What every Horovod rank runs: the model built from its spec, the per-rank loop (Petastorm shard, averaged
gradients, rank 0's validation, early stopping and checkpoints) and the export of rank 0's vectors."""

from __future__ import annotations

import logging
import time
from typing import Any, Dict, List

import numpy as np

from recsys_spark import logs
from recsys_spark import schemas as S
from recsys_spark.io import fs
from recsys_spark.training.checkpoints import load_best, save_best
from recsys_spark.training.spec import TrainSpec, steps_per_epoch, warmup_rate

log = logging.getLogger(__name__)


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
    if cls.needs_content or spec.item_content:
        from recsys_spark.models.content import ItemContent

        extra["content"] = ItemContent.from_parquet(spec.item_features_path, spec.n_items, spec.title_hash_features)
    if spec.model == "sasrec":
        from recsys_spark.models.sasrec import histories_from_sequences

        extra["validation_history"], extra["export_history"] = histories_from_sequences(
            spec.sequences_path, spec.n_users, spec.max_len)
        extra.update(max_len=spec.max_len, heads=spec.heads, dropout=spec.dropout)
    return cls(spec.n_users, spec.n_items, embedding_dim=spec.embedding_dim, l2=spec.l2, seed=spec.seed,
               loss=spec.loss, item_log_q=item_log_q, n_layers=spec.n_layers, negatives=spec.negatives,
               sampled_negatives=spec.sampled_negatives, sampler=spec.sampler, temperature=spec.temperature,
               contrastive_weight=spec.contrastive_weight, contrastive_noise=spec.contrastive_noise,
               contrastive_temperature=spec.contrastive_temperature, **extra)


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
    logs.configure()  # (a Horovod rank is a new process: the job's level comes in RECSYS_LOG_LEVEL)
    import tensorflow as tf

    from recsys_spark import distributed, feed
    from recsys_spark.io.local import load_pairs, log_item_shares
    from recsys_spark.models.losses import SEED_KEY

    rank, size = distributed.init()
    item_log_q = None
    if spec.loss in ("softmax", "full", "sampled") and spec.train_path:
        item_log_q = log_item_shares(load_pairs(spec.train_path)[1], spec.n_items)
    # what has no seed of its own draws from the global one (Keras gives the attention's dropout in
    # MultiHeadAttention none): the same spec trains the same weights, run after run
    tf.random.set_seed(spec.seed)
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
            best_weights, history = load_best(spec.checkpoint_dir)

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
    # A resumed run whose early stopping had already fired goes straight to the export.
    stopped_early = bool(resumed_from and spec.validation_path and not spec.fold_validation
                         and int(state["bad_epochs"].numpy()) >= spec.patience)
    is_first = True
    train_seconds: List[float] = []
    for epoch in range(resumed_from, resumed_from if stopped_early else spec.epochs):
        if spec.stop_after_epochs is not None and epoch >= spec.stop_after_epochs:
            break
        total = 0.0
        epoch_started = time.time()
        if spec.lr_schedule:  # the scale this epoch had in the run being replayed
            state["lr_scale"].assign(spec.lr_schedule[min(epoch, len(spec.lr_schedule) - 1)])
            optimizer.learning_rate.assign(spec.learning_rate * size * float(state["lr_scale"].numpy()))
        epoch_lr_scale = float(state["lr_scale"].numpy())
        with feed.sharded_batches(spec.train_url, fields, rank, size, spec.batch_size,
                                  seed=spec.seed + 7919 * epoch + rank, shuffle_buffer=spec.shuffle_buffer,
                                  workers=spec.reader_workers) as batches:
            for i in range(n_steps):
                batch = next(batches)
                if folded_history is not None:
                    batch[S.HISTORY] = tf.gather(folded_history, tf.cast(batch[S.USER_IDX], tf.int32))
                batch[SEED_KEY] = tf.constant([spec.seed * 1009 + rank, epoch * n_steps + i], tf.int64)
                rate = warmup_rate(spec, size * epoch_lr_scale, epoch * n_steps + i)
                if rate is not None:
                    optimizer.learning_rate.assign(rate)
                total += float((first_step if is_first else step)(batch))
                is_first = False
        train_seconds.append(time.time() - epoch_started)
        losses.append(distributed.mean_over_ranks(total / n_steps))
        state["epoch"].assign(epoch + 1)
        stop, improved = 0.0, 1.0
        if validator is not None:
            metrics = dict(validator(model), epoch=epoch + 1, loss=losses[-1], lr_scale=epoch_lr_scale)
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
        # reduce on plateau, every rank (a replayed schedule sets the rate itself)
        if spec.lr_decay != 1.0 and not spec.lr_schedule and distributed.value_from_rank0(improved) == 0:
            state["lr_scale"].assign(state["lr_scale"] * spec.lr_decay)
            optimizer.learning_rate.assign(spec.learning_rate * size * float(state["lr_scale"].numpy()))
        if rank == 0 and manager is not None:
            manager.save(checkpoint_number=epoch + 1)
            save_best(spec.checkpoint_dir, best_weights, history)
        if rank == 0:  # progress: one line per epoch
            done = epoch + 1 - resumed_from
            quality, until_stop = "", ""
            if validator is not None:
                quality = (f"validation NDCG@{spec.validation_k} {history[-1]['ndcg']:.4f} (best "
                           f"{float(state['best_ndcg'].numpy()):.4f} at epoch {int(state['best_epoch'].numpy())}), ")
                # the early stop comes after ``patience`` epochs without a gain (or at the cap, if sooner)
                left = min(spec.epochs - epoch - 1, spec.patience - int(state["bad_epochs"].numpy()))
                until_stop = f", {logs.eta(done, done + left, sum(train_seconds))} if validation stops improving"
            log.info("%s epoch %d/%d: loss %.4f, %s%.1f s; %s at the %d-epoch cap%s", spec.model, epoch + 1, spec.epochs,
                     losses[-1], quality, train_seconds[-1], logs.eta(done, spec.epochs - resumed_from,
                     sum(train_seconds)), spec.epochs, until_stop)
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
            out["scorer_dir"] = _save_sequence_scorer(model, spec.checkpoint_dir)
        out["validation"] = history
        out["best_epoch"] = int(state["best_epoch"].numpy()) if validator is not None else None
    if spec.return_weights_from_all_ranks:
        out["weights"] = weights
    out["cpu_seconds"] = time.process_time() - cpu_started
    return out


def _save_encoder(model, spec: TrainSpec) -> str:
    """Saves a sequence model's encoder as a SavedModel: history [None, L] int32 -> user vector [None, d]."""
    import tensorflow as tf

    class Encoder(tf.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        @tf.function(input_signature=[tf.TensorSpec([None, spec.max_len], tf.int32, name="history")])
        def encode(self, history):
            hidden, _ = self.inner.encode(history, training=False)
            return {"user_vector": hidden[:, -1]}

    path = fs.join(spec.checkpoint_dir, "saved_model")  # TensorFlow writes local paths and file/hdfs/gs URLs
    if tf.io.gfile.exists(path):
        tf.io.gfile.rmtree(path)
    encoder = Encoder(model)
    tf.saved_model.save(encoder, path, signatures={"serving_default": encoder.encode})
    return path


def _save_sequence_scorer(model, folder: str) -> str:
    """Saves the encoder's weights for the TensorFlow-free scorer that scoring and evaluation run."""
    import tempfile

    from recsys_spark.evaluate.sequence_scorer import arrays_of_sasrec
    from recsys_spark.io import local

    path = fs.join(folder, "scorer")
    with tempfile.TemporaryDirectory() as scratch:
        local.save_arrays(scratch, *arrays_of_sasrec(model))
        fs.upload_dir(scratch, path)
    return path


def _optimizer_variables(optimizer):
    variables = optimizer.variables
    return variables() if callable(variables) else variables
