"""Checks of a :class:`~recsys_spark.config.PipelineConfig` that types alone cannot make: each problem is
one line that names the key and says what is allowed."""

from __future__ import annotations

from typing import List

from recsys_spark.config_sections import EVENT_TYPES, USER_ATTRIBUTES


def problems(cfg) -> List[str]:
    """Every problem of the configuration ``cfg`` (empty when it is valid)."""
    found: List[str] = []
    from recsys_spark.models import MODEL_NAMES

    for key, names in (("train.model", [cfg.train.model]), ("train.models", cfg.train.models)):
        unknown_models = [m for m in names if m not in MODEL_NAMES]
        if unknown_models:
            found.append(f"{key}: unknown model(s) {unknown_models}; supported models are {list(MODEL_NAMES)}")
    if not cfg.train.models:
        found.append("train.models: name at least one model for the nightly competition")
    if cfg.evaluate.k not in cfg.evaluate.ks:
        found.append(f"evaluate.k={cfg.evaluate.k} must be one of evaluate.ks={cfg.evaluate.ks}")
    if any(k <= 0 for k in cfg.evaluate.ks):
        found.append(f"evaluate.ks={cfg.evaluate.ks}: every K must be > 0")
    if not 0.0 <= cfg.evaluate.max_regression < 1.0:
        found.append(f"evaluate.max_regression={cfg.evaluate.max_regression}: a share in [0, 1)")
    grids = {"popularity.recent_days": cfg.popularity.recent_days, "item_knn.k": cfg.item_knn.k,
             "item_knn.shrink": cfg.item_knn.shrink, "als.rank": cfg.als.rank, "als.reg": cfg.als.reg,
             "als.alpha": cfg.als.alpha, "ease.l2": cfg.ease.l2, "markov.last_n": cfg.markov.last_n,
             "markov.decay": cfg.markov.decay, "markov.normalize": cfg.markov.normalize}
    for key, values in grids.items():
        if not values:
            found.append(f"{key}: give at least one value")
        elif key != "markov.normalize" and key != "item_knn.shrink" and min(values) <= 0:
            found.append(f"{key}={values}: every value must be > 0")
    if cfg.train.loss not in ("bpr", "softmax", "full", "sampled", "mse"):
        found.append(f"train.loss={cfg.train.loss!r}: use 'bpr', 'softmax' (mf, two_tower, sasrec), 'mse' (mf), "
                     "'full' (sasrec) or 'sampled' (sasrec, lightgcn, gcn)")
    if cfg.train.loss == "mse" and cfg.train.model != "mf":
        found.append("train.loss='mse' (explicit ratings) is for mf")
    if cfg.train.loss == "full" and cfg.train.model != "sasrec":
        found.append("train.loss='full' (softmax over the catalogue) is for sasrec; use 'bpr' or 'softmax'")
    if cfg.train.loss == "sampled" and cfg.train.model not in ("sasrec", "lightgcn", "gcn"):
        found.append(f"train.loss='sampled' (softmax over a sample of the catalogue) is for sasrec, lightgcn and "
                     f"gcn, not {cfg.train.model}; use 'bpr' or 'softmax'")
    if cfg.train.loss == "softmax" and cfg.train.model in ("lightgcn", "gcn"):
        found.append(f"train.loss='softmax' (in-batch negatives) is for mf, two_tower and sasrec; "
                     f"{cfg.train.model} takes 'bpr' or 'sampled'")
    if cfg.train.loss == "sampled" and not cfg.train.temperature > 0:
        found.append(f"train.temperature={cfg.train.temperature}: must be > 0")
    if cfg.train.contrastive_weight < 0 or cfg.train.contrastive_noise < 0 or not cfg.train.contrastive_temperature > 0:
        found.append(f"train.contrastive_weight={cfg.train.contrastive_weight}, contrastive_noise="
                     f"{cfg.train.contrastive_noise}, contrastive_temperature={cfg.train.contrastive_temperature}: "
                     f"the weight and the noise must be >= 0 (weight 0: no contrastive view), the temperature > 0")
    if cfg.train.contrastive_weight > 0 and cfg.train.model not in ("lightgcn", "gcn"):
        found.append(f"train.contrastive_weight: the contrastive view is for lightgcn and gcn, not {cfg.train.model}")
    if cfg.train.sampler not in ("uniform", "popularity"):
        found.append(f"train.sampler={cfg.train.sampler!r}: use 'uniform' or 'popularity'")
    if cfg.train.embedding_dim % max(cfg.train.heads, 1):
        found.append("train.embedding_dim must be a multiple of train.heads")
    if cfg.train.negatives < 1:
        found.append(f"train.negatives={cfg.train.negatives}: must be >= 1 (BPR negatives per positive)")
    if not 0.0 < cfg.train.lr_decay <= 1.0:
        found.append(f"train.lr_decay={cfg.train.lr_decay}: must be in (0, 1] (1 = constant learning rate)")
    if cfg.train.warmup_steps < 0:
        found.append(f"train.warmup_steps={cfg.train.warmup_steps}: must be >= 0 (0 = no warm-up)")
    if cfg.evaluate.baseline != "popularity":
        found.append("evaluate.baseline: only 'popularity' is supported")
    unknown = sorted(set(cfg.build.event_weights) - set(EVENT_TYPES))
    if unknown:
        found.append(f"build.event_weights: unknown event types {unknown}; known: {list(EVENT_TYPES)}")
    missing = sorted(set(EVENT_TYPES) - set(cfg.build.event_weights))
    if missing:
        found.append(f"build.event_weights: missing a weight for {missing}")
    positive = {
        "train.num_proc": cfg.train.num_proc,
        "train.start_timeout_s": cfg.train.start_timeout_s,
        "train.embedding_dim": cfg.train.embedding_dim,
        "train.epochs": cfg.train.epochs,
        "train.batch_size": cfg.train.batch_size,
        "train.patience": cfg.train.patience,
        "train.validation_max_users": cfg.train.validation_max_users,
        "train.sampled_negatives": cfg.train.sampled_negatives,
        "evaluate.k": cfg.evaluate.k,
        "score.top_n": cfg.score.top_n,
        "score.keep_versions": cfg.score.keep_versions,
        "score.min_history": cfg.score.min_history,
        "score.fallback_recent_days": cfg.score.fallback_recent_days,
        "score.fold_in_l2": cfg.score.fold_in_l2,
        "score.max_broadcast_mb": cfg.score.max_broadcast_mb,
        "build.lookback_days": cfg.build.lookback_days,
        "build.min_items_for_split": cfg.build.min_items_for_split,
        "build.train_files_per_rank": cfg.build.train_files_per_rank,
        "generate.n_users": cfg.generate.n_users,
        "generate.n_items": cfg.generate.n_items,
        "generate.files": cfg.generate.files,
    }
    for key, value in positive.items():
        if value <= 0:
            found.append(f"{key}={value}: must be > 0")
    unknown = sorted(set(cfg.score.exclude_event_types) - set(EVENT_TYPES))
    if unknown or not cfg.score.exclude_event_types:
        found.append(f"score.exclude_event_types={list(cfg.score.exclude_event_types)}: give one or more of "
                        f"{list(EVENT_TYPES)}")
    if cfg.generate.new_items < 0:
        found.append(f"generate.new_items={cfg.generate.new_items}: must be >= 0")
    if cfg.build.split_mode not in ("leave_last_out", "time_cut"):
        found.append(f"build.split_mode={cfg.build.split_mode!r}: use 'leave_last_out' or 'time_cut'")
    for key in ("test_days", "validation_days", "sequence_length", "cooccurrence_top_k",
                "cooccurrence_max_items_per_user", "title_hash_features", "train_row_group_mb"):
        if getattr(cfg.build, key) <= 0:
            found.append(f"build.{key}={getattr(cfg.build, key)}: must be > 0")
    if cfg.build.min_items_for_split < 3:
        found.append("build.min_items_for_split: must be >= 3 (train, validation and test need one item each)")
    unknown = sorted(set(cfg.privacy.keep_user_attributes) - set(USER_ATTRIBUTES))
    if unknown:
        found.append(f"privacy.keep_user_attributes: unknown {unknown}; known: {list(USER_ATTRIBUTES)}")
    if cfg.clean.rating_min > cfg.clean.rating_max:
        found.append("clean.rating_min must not exceed clean.rating_max")
    for key in ("duplicate_rate", "malformed_rate", "corrupt_rate"):
        rate = getattr(cfg.generate, key)
        if not 0.0 <= rate < 1.0:
            found.append(f"generate.{key}={rate}: must be in [0, 1)")
    if cfg.generate.duplicate_rate + cfg.generate.malformed_rate + cfg.generate.corrupt_rate >= 1.0:
        found.append("generate: duplicate_rate + malformed_rate + corrupt_rate must stay below 1")
    return found
