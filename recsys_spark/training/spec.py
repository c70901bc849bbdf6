"""What a Horovod rank is given (``TrainSpec``) and what rank 0 brings back (``TrainResult``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional


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
    sampled_negatives: int = 1000  # loss "sampled": items shared by a batch
    sampler: str = "uniform"  # loss "sampled": uniform or popularity
    temperature: float = 0.1  # graph models, loss "sampled": cosine logits / this
    contrastive_weight: float = 0.0  # graph models: weight of the contrastive (XSimGCL) term, 0 = off
    contrastive_noise: float = 0.1
    contrastive_temperature: float = 0.2
    n_layers: int = 3
    graph_path: Optional[str] = None  # graph_edges of the same ds, for graph models
    sequences_path: Optional[str] = None  # sequences of the same ds, for sequence models
    item_features_path: Optional[str] = None  # item_features of the same ds, for content models
    item_content: bool = False  # sasrec: fuse item_features into the item representation
    title_hash_features: int = 1024
    feed_fields: Optional[List[str]] = None  # columns read from train_url (default user_idx, item_idx)
    max_len: int = 50
    heads: int = 1
    dropout: float = 0.2
    shuffle_buffer: int = 10000
    reader_workers: int = 1  # (train.reader_workers: one keeps the row-group order fixed)
    sparse_as_dense: bool = True
    train_path: Optional[str] = None  # for validation: history to mask, item shares for logQ
    validation_path: Optional[str] = None
    validation_k: int = 10
    validation_max_users: Optional[int] = None
    patience: int = 3
    lr_decay: float = 1.0  # learning rate x this after every epoch without validation improvement
    warmup_steps: int = 0  # linear learning-rate warm-up over the first steps (warmup_scale)
    # the learning rate's scale for each epoch, given (a refit replays the validated run's decays)
    lr_schedule: Optional[List[float]] = None
    checkpoint_dir: Optional[str] = None
    resume: bool = False
    start_timeout_s: int = 600  # every rank must have started within this, or the run fails
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
    scorer_dir: Optional[str] = None  # local folder of a sequence model's NumPy scorer (its encoder's weights)
    final_learning_rates: List[float] = field(default_factory=list)  # every rank's, after any decay
    cpu_seconds: List[float] = field(default_factory=list)  # every rank's process CPU time (all its threads)
    all_rank_weights: Optional[List[List[Any]]] = None


def settings_from_config(cfg) -> Dict[str, Any]:
    """The TrainSpec fields that come from a PipelineConfig (model settings, sequence length, validation),
    shared by the train job and bench/explore.py so that both train exactly the configured model."""
    tc = cfg.train
    return dict(
        model=tc.model, embedding_dim=tc.embedding_dim, l2=tc.l2, epochs=tc.epochs, batch_size=tc.batch_size,
        learning_rate=tc.learning_rate, seed=tc.seed, loss=tc.loss, negatives=tc.negatives,
        sampled_negatives=tc.sampled_negatives, sampler=tc.sampler, temperature=tc.temperature,
        contrastive_weight=tc.contrastive_weight, contrastive_noise=tc.contrastive_noise,
        contrastive_temperature=tc.contrastive_temperature, n_layers=tc.n_layers, heads=tc.heads,
        dropout=tc.dropout, item_content=tc.item_content,
        title_hash_features=cfg.build.title_hash_features,
        max_len=cfg.build.sequence_length, shuffle_buffer=tc.shuffle_buffer, reader_workers=tc.reader_workers,
        validation_k=cfg.evaluate.k, validation_max_users=tc.validation_max_users, patience=tc.patience,
        lr_decay=tc.lr_decay, warmup_steps=tc.warmup_steps, start_timeout_s=tc.start_timeout_s)


def steps_per_epoch(n_rows: int, batch_size: int, size: int) -> int:
    """Identical on every rank: one pass over the data split across ranks, at least one step."""
    return max(1, n_rows // (batch_size * size))


def warmup_scale(step: int, warmup_steps: int) -> float:
    """The learning rate's factor at optimizer step ``step`` (0-based, counted over the whole run):
    (step + 1) / warmup_steps during the warm-up, then 1."""
    if warmup_steps <= 0 or step >= warmup_steps:
        return 1.0
    return (step + 1) / warmup_steps


def warmup_rate(spec: TrainSpec, scale: float, step: int) -> Optional[float]:
    """The learning rate to set before optimizer step ``step`` while the warm-up lasts (one step past
    its end included, which restores the full rate), else None: the rate already set stands.
    ``scale`` multiplies ``spec.learning_rate`` (ranks x the plateau decay's factor)."""
    if not spec.warmup_steps or step > spec.warmup_steps:
        return None
    return spec.learning_rate * scale * warmup_scale(step, spec.warmup_steps)
