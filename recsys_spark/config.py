"""Typed pipeline configuration: defaults -> YAML file -> command-line overrides.

Every section is a frozen dataclass. Loading is strict: an unknown key, a value of the wrong type or a
missing file is rejected with a :class:`ConfigError` that names the key and says what to do. The resolved
configuration is saved beside each model so that a run can be reproduced.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional

from recsys_spark.errors import ConfigError

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
    n_layers: int = 3
    heads: int = 1
    dropout: float = 0.2
    patience: int = 3
    lr_decay: float = 1.0  # multiply the learning rate by this after an epoch without validation gain
    validation_max_users: int = 20000
    checkpoint: bool = True
    reader_workers: int = 2
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


@dataclass(frozen=True)
class PipelineConfig:
    """The whole pipeline's configuration, one section per stage."""

    spark: SparkConfig = field(default_factory=SparkConfig)
    generate: GenerateConfig = field(default_factory=GenerateConfig)
    clean: CleanConfig = field(default_factory=CleanConfig)
    build: BuildConfig = field(default_factory=BuildConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    score: ScoreConfig = field(default_factory=ScoreConfig)
    popularity: PopularityConfig = field(default_factory=PopularityConfig)
    item_knn: ItemKnnConfig = field(default_factory=ItemKnnConfig)
    als: AlsConfig = field(default_factory=AlsConfig)
    ease: EaseConfig = field(default_factory=EaseConfig)
    markov: MarkovConfig = field(default_factory=MarkovConfig)

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    def fingerprint(self) -> str:
        """A short stable hash of the resolved configuration."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:8]

    def validate(self) -> "PipelineConfig":
        """Checks values that types alone cannot; returns self."""
        problems: List[str] = []
        from recsys_spark.models import MODEL_NAMES

        for key, names in (("train.model", [self.train.model]), ("train.models", self.train.models)):
            unknown_models = [m for m in names if m not in MODEL_NAMES]
            if unknown_models:
                problems.append(f"{key}: unknown model(s) {unknown_models}; supported models are {list(MODEL_NAMES)}")
        if not self.train.models:
            problems.append("train.models: name at least one model for the nightly competition")
        if self.evaluate.k not in self.evaluate.ks:
            problems.append(f"evaluate.k={self.evaluate.k} must be one of evaluate.ks={self.evaluate.ks}")
        if any(k <= 0 for k in self.evaluate.ks):
            problems.append(f"evaluate.ks={self.evaluate.ks}: every K must be > 0")
        if not 0.0 <= self.evaluate.max_regression < 1.0:
            problems.append(f"evaluate.max_regression={self.evaluate.max_regression}: a share in [0, 1)")
        grids = {"popularity.recent_days": self.popularity.recent_days, "item_knn.k": self.item_knn.k,
                 "item_knn.shrink": self.item_knn.shrink, "als.rank": self.als.rank, "als.reg": self.als.reg,
                 "als.alpha": self.als.alpha, "ease.l2": self.ease.l2, "markov.last_n": self.markov.last_n,
                 "markov.decay": self.markov.decay, "markov.normalize": self.markov.normalize}
        for key, values in grids.items():
            if not values:
                problems.append(f"{key}: give at least one value")
            elif key != "markov.normalize" and key != "item_knn.shrink" and min(values) <= 0:
                problems.append(f"{key}={values}: every value must be > 0")
        if self.train.loss not in ("bpr", "softmax", "full", "mse"):
            problems.append(f"train.loss={self.train.loss!r}: use 'bpr', 'softmax', (mf) 'mse' or (sasrec) 'full'")
        if self.train.loss == "mse" and self.train.model != "mf":
            problems.append("train.loss='mse' (explicit ratings) is for mf")
        if self.train.loss == "full" and self.train.model != "sasrec":
            problems.append("train.loss='full' (softmax over the catalogue) is for sasrec; use 'bpr' or 'softmax'")
        if self.train.embedding_dim % max(self.train.heads, 1):
            problems.append("train.embedding_dim must be a multiple of train.heads")
        if self.train.negatives < 1:
            problems.append(f"train.negatives={self.train.negatives}: must be >= 1 (BPR negatives per positive)")
        if not 0.0 < self.train.lr_decay <= 1.0:
            problems.append(f"train.lr_decay={self.train.lr_decay}: must be in (0, 1] (1 = constant learning rate)")
        if self.evaluate.baseline != "popularity":
            problems.append("evaluate.baseline: only 'popularity' is supported")
        unknown = sorted(set(self.build.event_weights) - set(EVENT_TYPES))
        if unknown:
            problems.append(f"build.event_weights: unknown event types {unknown}; known: {list(EVENT_TYPES)}")
        missing = sorted(set(EVENT_TYPES) - set(self.build.event_weights))
        if missing:
            problems.append(f"build.event_weights: missing a weight for {missing}")
        positive = {
            "train.num_proc": self.train.num_proc,
            "train.embedding_dim": self.train.embedding_dim,
            "train.epochs": self.train.epochs,
            "train.batch_size": self.train.batch_size,
            "train.patience": self.train.patience,
            "train.validation_max_users": self.train.validation_max_users,
            "evaluate.k": self.evaluate.k,
            "score.top_n": self.score.top_n,
            "build.lookback_days": self.build.lookback_days,
            "build.min_items_for_split": self.build.min_items_for_split,
            "build.train_files_per_rank": self.build.train_files_per_rank,
            "generate.n_users": self.generate.n_users,
            "generate.n_items": self.generate.n_items,
            "generate.files": self.generate.files,
        }
        for key, value in positive.items():
            if value <= 0:
                problems.append(f"{key}={value}: must be > 0")
        if self.build.split_mode not in ("leave_last_out", "time_cut"):
            problems.append(f"build.split_mode={self.build.split_mode!r}: use 'leave_last_out' or 'time_cut'")
        for key in ("test_days", "validation_days", "sequence_length", "cooccurrence_top_k",
                    "cooccurrence_max_items_per_user", "title_hash_features", "train_row_group_mb"):
            if getattr(self.build, key) <= 0:
                problems.append(f"build.{key}={getattr(self.build, key)}: must be > 0")
        if self.build.min_items_for_split < 3:
            problems.append("build.min_items_for_split: must be >= 3 (train, validation and test need one item each)")
        if self.clean.rating_min > self.clean.rating_max:
            problems.append("clean.rating_min must not exceed clean.rating_max")
        for key in ("duplicate_rate", "malformed_rate", "corrupt_rate"):
            rate = getattr(self.generate, key)
            if not 0.0 <= rate < 1.0:
                problems.append(f"generate.{key}={rate}: must be in [0, 1)")
        if self.generate.duplicate_rate + self.generate.malformed_rate + self.generate.corrupt_rate >= 1.0:
            problems.append("generate: duplicate_rate + malformed_rate + corrupt_rate must stay below 1")
        if problems:
            raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(problems))
        return self


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Checks ``value`` against the annotation ``tp``; ints are accepted where floats are expected."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], key)
    if origin in (dict, Dict):
        key_tp, val_tp = typing.get_args(tp)
        if not isinstance(value, Mapping):
            raise ConfigError(f"config key '{key}' must be a mapping, got {type(value).__name__} {value!r}")
        return {_coerce(k, key_tp, f"{key}.{k}"): _coerce(v, val_tp, f"{key}.{k}") for k, v in value.items()}
    if origin in (list, List):
        (item_tp,) = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            value = [value]  # one value where a list (a grid) is expected: a grid of one
        return [_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is bool and not isinstance(value, bool):
        raise ConfigError(f"config key '{key}' must be true or false, got {value!r}")
    if tp in (int, float) and isinstance(value, bool):
        raise ConfigError(f"config key '{key}' must be a number ({_type_name(tp)}), got {value!r}")
    if not isinstance(value, tp):
        raise ConfigError(
            f"config key '{key}' must be of type {_type_name(tp)}, got {type(value).__name__} {value!r}"
        )
    return value


def _build(cls: Any, data: Mapping[str, Any], prefix: str) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"config section '{prefix or '<root>'}' must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        where = f"section '{prefix}'" if prefix else "the top level"
        raise ConfigError(
            f"unknown config key(s) {[f'{prefix}.{k}' if prefix else k for k in unknown]} in {where}; "
            f"known keys: {names}. Fix the spelling or remove the key."
        )
    kwargs = {}
    defaults = cls()
    for name in names:
        key = f"{prefix}.{name}" if prefix else name
        tp = hints[name]
        if name not in data:
            continue
        if dataclasses.is_dataclass(tp):
            kwargs[name] = _build(tp, data[name], key)
        elif typing.get_origin(tp) in (dict, Dict) and isinstance(getattr(defaults, name), dict):
            merged = dict(getattr(defaults, name))
            merged.update(_coerce(data[name], tp, key))
            kwargs[name] = merged
        else:
            kwargs[name] = _coerce(data[name], tp, key)
    return cls(**kwargs)


def _merge(base: Dict[str, Any], override: Mapping[str, Any]) -> Dict[str, Any]:
    out = dict(base)
    for k, v in override.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def parse_override(text: str) -> Dict[str, Any]:
    """Turns ``section.key=value`` (value parsed as YAML) into a nested mapping."""
    import yaml

    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like section.key=value, e.g. train.epochs=3")
    dotted, raw = text.split("=", 1)
    parts = [p for p in dotted.strip().split(".") if p]
    if not parts:
        raise ConfigError(f"override {text!r} has an empty key")
    value: Any = yaml.safe_load(raw) if raw.strip() else ""
    for part in reversed(parts):
        value = {part: value}
    return value


def _read_yaml(path: str) -> Dict[str, Any]:
    import yaml

    if not os.path.isfile(path):
        raise ConfigError(f"config file not found: {path!r}. Pass --conf with an existing YAML file, e.g. conf/nightly.yaml")
    try:
        with open(path, encoding="utf-8") as fh:
            loaded = yaml.safe_load(fh)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path!r} is not valid YAML: {exc}") from None
    if loaded is None:
        loaded = {}
    if not isinstance(loaded, Mapping):
        raise ConfigError(f"config file {path!r} must hold a mapping of sections, got {type(loaded).__name__}")
    return dict(loaded)


def load_config(path: Optional[str] = None, overrides: Optional[List[str]] = None,
                layers: Optional[List[str]] = None) -> PipelineConfig:
    """Loads defaults, then the YAML file at ``path``, then each YAML in ``layers`` (e.g. a model's
    ``conf/models/<model>.yaml``), then ``overrides`` (``section.key=value``).

    Raises:
        ConfigError: the file is missing or not YAML, or a key is unknown or of the wrong type.
    """
    data: Dict[str, Any] = {}
    for file_path in ([path] if path else []) + list(layers or []):
        data = _merge(data, _read_yaml(file_path))
    for text in overrides or []:
        data = _merge(data, parse_override(text))
    return _build(PipelineConfig, data, "").validate()


def model_conf_dir() -> str:
    """Where ``<model>.yaml`` files live: ``$RECSYS_MODEL_CONF_DIR``, else the project's ``conf/models``."""
    default = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "conf", "models")
    return os.environ.get("RECSYS_MODEL_CONF_DIR", default)


def load_model_config(path: Optional[str], overrides: Optional[List[str]], model: str) -> PipelineConfig:
    """The configuration a model trains with: ``--conf`` file, then ``conf/models/<model>.yaml`` (from
    :func:`model_conf_dir`, whichever folder ``--conf`` is in), then ``--set`` overrides, with
    ``train.model`` set to ``model``. Every job and the nightly resolve a model's settings through here."""
    layer = os.path.join(model_conf_dir(), f"{model}.yaml")
    return load_config(path, [f"train.model={model}"] + list(overrides or []),
                      layers=[layer] if os.path.exists(layer) else [])
