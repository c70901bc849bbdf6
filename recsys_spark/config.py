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

from recsys_spark.config_sections import (
    EVENT_TYPES,
    SparkConfig,
    GenerateConfig,
    CleanConfig,
    BuildConfig,
    TrainConfig,
    EvaluateConfig,
    ScoreConfig,
    PopularityConfig,
    ItemKnnConfig,
    AlsConfig,
    EaseConfig,
    MarkovConfig,
)
from recsys_spark.errors import ConfigError


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
        if self.train.loss not in ("bpr", "softmax", "full", "sampled", "mse"):
            problems.append(f"train.loss={self.train.loss!r}: use 'bpr', 'softmax', (mf) 'mse' or (sasrec) 'full' "
                            "or 'sampled'")
        if self.train.loss == "mse" and self.train.model != "mf":
            problems.append("train.loss='mse' (explicit ratings) is for mf")
        if self.train.loss in ("full", "sampled") and self.train.model != "sasrec":
            problems.append(f"train.loss={self.train.loss!r} (softmax over the catalogue or a sample of it) is for "
                            "sasrec; use 'bpr' or 'softmax'")
        if self.train.sampler not in ("uniform", "popularity"):
            problems.append(f"train.sampler={self.train.sampler!r}: use 'uniform' or 'popularity'")
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
            "train.sampled_negatives": self.train.sampled_negatives,
            "evaluate.k": self.evaluate.k,
            "score.top_n": self.score.top_n,
            "score.keep_versions": self.score.keep_versions,
            "score.min_history": self.score.min_history,
            "score.fallback_recent_days": self.score.fallback_recent_days,
            "score.fold_in_l2": self.score.fold_in_l2,
            "score.max_broadcast_mb": self.score.max_broadcast_mb,
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
        unknown = sorted(set(self.score.exclude_event_types) - set(EVENT_TYPES))
        if unknown or not self.score.exclude_event_types:
            problems.append(f"score.exclude_event_types={list(self.score.exclude_event_types)}: give one or more of "
                            f"{list(EVENT_TYPES)}")
        if self.generate.new_items < 0:
            problems.append(f"generate.new_items={self.generate.new_items}: must be >= 0")
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
