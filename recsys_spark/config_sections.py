"""The configuration's sections, one frozen dataclass per pipeline stage or model family.

Defaults live here; :mod:`recsys_spark.config` assembles them into a :class:`PipelineConfig`, loads YAML
and overrides into them strictly and checks the values types cannot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List

EVENT_TYPES = ("view", "click", "add_to_cart", "purchase", "rating")


@dataclass(frozen=True)
class SparkConfig:
    """How the jobs build their Spark session.

    ``master`` applies only when the job is not launched by ``spark-submit`` (which sets its own).
    """

    master: str = "local[2]"
    app_name: str = "recsys_spark"
    shuffle_partitions: int = 8
    driver_memory: str = "4g"
    session_time_zone: str = "UTC"
    log_level: str = "WARN"
    extra_conf: Dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class GenerateConfig:
    """The built-in synthetic event generator (see :mod:`recsys_spark.data.synthetic`)."""

    seed: int = 42
    n_users: int = 3000
    n_items: int = 600
    new_items: int = 0  # catalogue items with no event yet (recommended only by models that read content)
    n_categories: int = 12
    latent_dim: int = 8
    mean_events_per_user: float = 40.0
    min_events_per_user: int = 8
    history_days: int = 28
    popularity_skew: float = 1.0
    preference_temperature: float = 0.35
    drift_scale: float = 0.6
    duplicate_rate: float = 0.01
    malformed_rate: float = 0.002
    corrupt_rate: float = 0.0
    files: int = 4


@dataclass(frozen=True)
class CleanConfig:
    """Validation rules of ``clean_events``."""

    rating_min: float = 1.0
    rating_max: float = 5.0
    max_id_length: int = 256
    min_valid_year: int = 2000
    max_events_per_user_day: int = 2000
    max_events_per_user_minute: int = 60
    near_duplicate_window_s: int = 2


USER_ATTRIBUTES = ("age", "gender", "occupation", "zip")


@dataclass(frozen=True)
class PrivacyConfig:
    """Keyed pseudonymisation of user ids (see :mod:`recsys_spark.privacy`).

    With ``pseudonymize`` on, ``clean_events`` and ``load_dataset`` replace every user id by
    HMAC-SHA256(key, user id) before anything is written, so that no raw user id reaches a lake table other
    than ``raw_events``. The key comes from the environment variable ``RECSYS_PSEUDONYM_KEY`` or, failing
    that, from ``key_file`` (a secret file outside the repository), never from config text.
    """

    pseudonymize: bool = False
    key_file: str = ""
    # user attributes a dataset loader keeps in raw_users (one of USER_ATTRIBUTES); the rest are dropped
    keep_user_attributes: List[str] = field(default_factory=list)
    # also write the table user_pseudonyms (pseudonym -> raw user id), for whoever must reverse it
    write_id_map: bool = False


@dataclass(frozen=True)
class BuildConfig:
    """How ``build_tables`` turns clean events into model-ready tables."""

    lookback_days: int = 90
    event_weights: Dict[str, float] = field(
        default_factory=lambda: {
            "view": 1.0,
            "click": 2.0,
            "add_to_cart": 3.0,
            "purchase": 5.0,
            "rating": 4.0,
        }
    )
    min_items_for_split: int = 3
    split_mode: str = "leave_last_out"
    # Seed of the hash of (user id, item id) that orders a user's events with equal timestamps in the
    # split, the sequences and the co-occurrence window: never item index or file position, which carry
    # first-appearance order.
    tie_seed: int = 0
    test_days: int = 1
    validation_days: int = 1
    sequence_length: int = 50
    cooccurrence_top_k: int = 20
    cooccurrence_max_items_per_user: int = 50
    title_hash_features: int = 1024
    train_files_per_rank: int = 2
    train_row_group_mb: int = 8


@dataclass(frozen=True)
class TrainConfig:
    """Distributed training (Horovod over Gloo, fed by Petastorm)."""

    model: str = "mf"  # what `jobs.train` trains without --model
    models: List[str] = field(default_factory=lambda: ["mf"])  # the nightly competition, deep and traditional
    num_proc: int = 2
    embedding_dim: int = 32
    epochs: int = 8
    batch_size: int = 1024
    learning_rate: float = 0.005
    l2: float = 1.0e-5
    seed: int = 7
    loss: str = "bpr"
    negatives: int = 1  # BPR: uniform negatives per positive (mf, two_tower, lightgcn, gcn)
    sampled_negatives: int = 1000  # sasrec, loss "sampled": items drawn per batch, shared by its rows
    sampler: str = "uniform"  # loss "sampled": "uniform" or "popularity" (logQ-corrected)
    temperature: float = 0.1  # lightgcn/gcn, loss "sampled": logits are cosine similarities / this
    # lightgcn/gcn: a contrastive view (XSimGCL): noise of this length on every propagated layer while
    # training, and this weight times an InfoNCE (cosines / contrastive_temperature) between each batch
    # node's final vector and its first layer's. 0 = off.
    contrastive_weight: float = 0.0
    contrastive_noise: float = 0.1
    contrastive_temperature: float = 0.2
    n_layers: int = 3
    heads: int = 1
    dropout: float = 0.2
    item_content: bool = False  # sasrec: item_features fused into the item representation (others ignore it)
    patience: int = 3
    lr_decay: float = 1.0  # multiply the learning rate by this after an epoch without validation gain
    warmup_steps: int = 0  # the learning rate ramps up linearly over the first this many steps (0: none)
    validation_max_users: int = 20000
    checkpoint: bool = True
    # Horovod start-up: every rank must be running within this many seconds (a cluster without free task
    # slots, or ranks that cannot reach each other, fails the job instead of waiting forever)
    start_timeout_s: int = 600
    # Petastorm reader threads per rank. One keeps each epoch's row-group order fixed, so a run, its rerun
    # and a resumed run see the same batches; with more, Petastorm's thread pool hands row groups over in
    # the order they finish (uber/petastorm#551), and training is no longer reproducible.
    reader_workers: int = 1
    shuffle_buffer: int = 10000


@dataclass(frozen=True)
class EvaluateConfig:
    """Offline evaluation, champion choice and the publication gate."""

    k: int = 10  # the K of the champion's metric (validation NDCG@K) and of the gate
    ks: List[int] = field(default_factory=lambda: [5, 10, 20])  # every metric is reported at each K
    baseline: str = "popularity"
    require_beats_baseline: bool = True
    max_regression: float = 0.05  # relative: champion test NDCG@K >= (1 - this) x the published model's
    cold_user_max: int = 5  # "cold" slice: users with at most this many train interactions
    heavy_user_quantile: float = 0.9  # "heavy" slice: users at or above this quantile of train interactions
    head_share: float = 0.8  # "long_tail" slice: test items outside the head holding this share of train
    users_per_batch: int = 512


@dataclass(frozen=True)
class ScoreConfig:
    """Batch scoring of top-N lists (of the model the gate approved)."""

    top_n: int = 20
    users_per_batch: int = 512
    keep_versions: int = 3  # published versions kept per day (for jobs.publish --rollback), the current included
    min_history: int = 1  # users with fewer interactions get a fallback list (reason column)
    fallback_recent_days: float = 7.0  # popularity_fallback counts users of the last days before ds
    # A lake table <table>/ds=<ds>/ of (item_id, available): items marked false are never recommended that
    # day. Empty: every item is available.
    availability_table: str = ""
    # Fresh user vectors for embedding models (recsys_spark/evaluate/fold_in.py): events after the model's
    # training are folded into the user's vector at scoring time; fold_in_l2 is how firmly it stays at the
    # trained vector. Sequence models read the whole history. Chosen on validation (bench/fold_in.py, ALS,
    # the last train item folded in, NDCG@10):
    #   ml-100k  stale 0.0751 | l2 0.01: 0.0861 | 0.1: 0.0841 | 1: 0.0807 | 3: 0.0770 (refit: 0.0790)
    #   Beauty   stale 0.0285 | l2 0.001-0.1: 0.0359-0.0360 | 1: 0.0337 (refit: 0.0419)
    fold_in: bool = True
    fold_in_l2: float = 0.01
    # An item the user had an event of one of these types with is not recommended to them again; with
    # fewer types (e.g. [purchase]), items only viewed may come back. The model reads every event either way.
    exclude_event_types: List[str] = field(default_factory=lambda: list(EVENT_TYPES))
    # A scorer larger than this (an items x items matrix: EASE, item-kNN) is sent to the executors in blocks
    # of items, each ranked on its own, then merged: executor memory is bounded by one block.
    max_broadcast_mb: float = 1024.0


# Traditional baselines. A list value is a grid: `jobs.train` fits every combination and keeps the best
# on validation NDCG@K (never test); a single value fixes it.
@dataclass(frozen=True)
class PopularityConfig:
    recent_days: List[float] = field(default_factory=lambda: [1.0, 7.0, 30.0])  # popularity_recent's window


@dataclass(frozen=True)
class ItemKnnConfig:
    k: List[int] = field(default_factory=lambda: [20, 50, 200])  # neighbours kept per item
    shrink: List[float] = field(default_factory=lambda: [0.0, 10.0])  # cosine denominator + shrink


@dataclass(frozen=True)
class AlsConfig:
    rank: List[int] = field(default_factory=lambda: [64, 128])
    reg: List[float] = field(default_factory=lambda: [0.1])
    alpha: List[float] = field(default_factory=lambda: [10.0, 40.0])
    iterations: int = 10


@dataclass(frozen=True)
class EaseConfig:
    l2: List[float] = field(default_factory=lambda: [20.0, 50.0, 200.0, 500.0])
    max_items: int = 50000  # one dense float32 item x item matrix: 50k items = 10 GB


@dataclass(frozen=True)
class MarkovConfig:
    last_n: List[int] = field(default_factory=lambda: [1, 3, 5])  # the user's last items that vote
    decay: List[float] = field(default_factory=lambda: [0.5])  # weight of the j-th most recent: decay**j
    normalize: List[bool] = field(default_factory=lambda: [False, True])  # transition counts or probabilities
