"""Typed pipeline configuration: defaults -> YAML file -> command-line overrides.

Every section is a frozen dataclass. Loading is strict: an unknown key, a value of the wrong type or a
missing file is rejected with a :class:`ConfigError` that names the key and says what to do. The resolved
configuration is saved beside each model so that a run can be reproduced.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional

from recsys_spark.config_sections import (
    SparkConfig,
    GenerateConfig,
    CleanConfig,
    PrivacyConfig,
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

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PipelineConfig:
    """The whole pipeline's configuration, one section per stage."""

    spark: SparkConfig = field(default_factory=SparkConfig)
    generate: GenerateConfig = field(default_factory=GenerateConfig)
    clean: CleanConfig = field(default_factory=CleanConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
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
        """Checks values that types alone cannot (:mod:`recsys_spark.config_checks`); returns self."""
        from recsys_spark.config_checks import problems

        found = problems(self)
        if found:
            raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(found))
        return self


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


_EXPONENT_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Checks ``value`` against the annotation ``tp``; ints, and strings such as ``1e-5``, are accepted where floats
    are expected."""
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
    if tp is float and isinstance(value, str) and _EXPONENT_NUMBER.fullmatch(value.strip()):
        return float(value)  # PyYAML (YAML 1.1) reads 1e-5 (no dot) as a string
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


def project_root() -> str:
    """The project checkout holding ``conf/``: the folder above the package, found also when the package is
    imported from ``dist/recsys_spark.zip`` (as under spark-submit with --py-files)."""
    folder = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for candidate in (folder, os.path.dirname(folder), os.path.dirname(os.path.dirname(folder))):
        if os.path.isdir(os.path.join(candidate, "conf", "models")):
            return candidate
    return folder


def model_conf_dir() -> str:
    """Where ``<model>.yaml`` files live: ``$RECSYS_MODEL_CONF_DIR``, else the project's ``conf/models``."""
    return os.environ.get("RECSYS_MODEL_CONF_DIR", os.path.join(project_root(), "conf", "models"))


def conf_model_layer(path: Optional[str], model: str) -> Optional[str]:
    """``<conf>.<model>.yaml`` beside a ``--conf`` file (``conf/datasets/gowalla.lightgcn.yaml`` beside
    ``conf/datasets/gowalla.yaml``): what that deployment or dataset changes in one model's settings."""
    if not path:
        return None
    stem, ext = os.path.splitext(path)
    return f"{stem}.{model}{ext or '.yaml'}"


def load_model_config(path: Optional[str], overrides: Optional[List[str]], model: str) -> PipelineConfig:
    """The configuration a model trains with: ``--conf`` file, then ``conf/models/<model>.yaml`` (from
    :func:`model_conf_dir`, whichever folder ``--conf`` is in), then ``<conf>.<model>.yaml`` beside the
    ``--conf`` file when there is one (:func:`conf_model_layer`), then ``--set`` overrides, with
    ``train.model`` set to ``model``. Every job and the nightly resolve a model's settings through here."""
    layers = [layer for layer in (os.path.join(model_conf_dir(), f"{model}.yaml"), conf_model_layer(path, model))
              if layer and os.path.exists(layer)]
    log.info("%s settings: %s", model, " < ".join(
        ([path] if path else ["defaults"]) + layers + ([f"{len(overrides)} --set"] if overrides else [])))
    return load_config(path, [f"train.model={model}"] + list(overrides or []), layers=layers)
