"""Batch scoring: the top-N unseen items per active user from the model the gate approved, published as a
new validated version of ``recommendations`` for the day (``recsys_spark/publication.py``)."""

from __future__ import annotations

import functools
import logging
from typing import Callable, Dict, Optional

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from recsys_spark import publication
from recsys_spark import schemas as S
from recsys_spark.config import PipelineConfig
from recsys_spark.errors import DataQualityError, MissingInputError
from recsys_spark.evaluate.gate import read_decision
from recsys_spark.evaluate.ranking import candidates_of, top_k_spark_in_item_blocks
from recsys_spark.evaluate.scorer_views import padded
from recsys_spark.io.parquet_parts import WRITTEN_ROWS, PartSink, remove_attempts
from recsys_spark.model_store import load_model

log = logging.getLogger(__name__)


def approved_model(lake, ds: str) -> Dict:
    """The gate's decision for ``ds`` when it approved publication; raises otherwise."""
    decision = read_decision(lake, ds)
    if decision is None:
        raise MissingInputError(f"no gate decision for ds={ds}: run `python -m jobs.gate --ds {ds} --lake {lake.root}` "
                                f"(after evaluate) first.")
    if not decision["passed"]:
        raise DataQualityError(
            f"publication gate refused {decision['champion']} {decision['champion_version']} for ds={ds}: "
            f"{'; '.join(decision['reasons'])}. recommendations were not written and earlier days are untouched. "
            f"Investigate the model, or set evaluate.require_beats_baseline=false to publish anyway.")
    return decision


def run_score(spark, lake, cfg: PipelineConfig, ds: str) -> Dict:
    """Writes top-``score.top_n`` unseen items per active user of the approved model version."""
    decision = approved_model(lake, ds)
    hint = f"run `python -m jobs.build_tables --ds {ds} --lake {lake.root}` first."
    interactions_df = lake.read_table(S.INTERACTIONS, ds, hint)
    n_items = lake.read_table(S.ITEM_VOCAB, ds, hint).agg(F.max(S.ITEM_IDX)).first()[0] + 1
    model = load_model(lake, decision["champion"], decision["champion_ds"], n_items)
    if model.version != decision["champion_version"]:
        raise DataQualityError(
            f"models/{model.name}/ds={decision['champion_ds']} holds version {model.version}, but the gate approved "
            f"{decision['champion_version']}: it was retrained after the gate. Re-run evaluate and gate for ds={ds}.")
    excluded = excluded_interactions(interactions_df, cfg)
    users_df = histories_of(interactions_df, excluded)
    seen_items = interactions_df.select(S.ITEM_IDX).distinct().toPandas()[S.ITEM_IDX].to_numpy().astype(np.int64)
    features = read_features(lake, ds, n_items)
    unavailable = unavailable_items(lake, cfg, ds)
    candidates, new_items = candidate_items(seen_items, features, model, n_items, unavailable)
    user_vocab_df = lake.read_table(S.USER_VOCAB, ds, hint).select(S.USER_IDX, S.USER_ID)
    item_vocab_df = lake.read_table(S.ITEM_VOCAB, ds, hint).select(S.ITEM_IDX, S.ITEM_ID)
    names = item_names(lake, ds, n_items)

    def write(path: str) -> None:
        """The scoring tasks write the version's files themselves (pyarrow; ids attached per user before
        ranking and per item inside the executors, no join of the output), one file per task and route."""
        def sink_of(route: str):
            return PartSink(path, route, S.RECOMMENDATIONS_SCHEMA, {S.MODEL: model.name, S.MODEL_VERSION: model.version,
                                                                    S.REASON: route}, plain_columns=(S.ITEM_ID, S.BECAUSE))
        written = score_every_user(lake, cfg, ds, decision["champion_ds"], interactions_df,
                                   users_df.join(user_vocab_df, S.USER_IDX), model.scorer, candidates, n_items,
                                   features, new_items, names, sink_of=sink_of).collect()
        left = remove_attempts(path)
        log.info("%d rows written in %d files%s", sum(r[WRITTEN_ROWS] for r in written), len(written),
                 f"; removed {len(left)} file(s) of failed task attempts" if left else "")
    # (user_id, item_idx): validation numbers the recommended items by the same index (names)
    seen_df = ((interactions_df if excluded is None else excluded).select(S.USER_IDX, S.ITEM_IDX)
               .join(user_vocab_df, on=S.USER_IDX).select(S.USER_ID, S.ITEM_IDX))
    unavailable_df = (spark.createDataFrame([(int(i),) for i in unavailable], f"{S.ITEM_IDX} int")
                      .join(item_vocab_df, S.ITEM_IDX).select(S.ITEM_ID)) if len(unavailable) else None
    active_df = None if excluded is None else (  # (else: the users of seen_df, every active user)
        interactions_df.select(S.USER_IDX).distinct().join(user_vocab_df, S.USER_IDX).select(S.USER_ID))
    expect = publication.Expectations(seen_df, cfg.score.top_n, int(candidates.sum()), model.version, unavailable_df,
                                      active_df, names)
    details = {"model": model.name, "model_version": model.version, "model_ds": decision["champion_ds"],
               "top_n": cfg.score.top_n, "new_item_candidates": int(new_items.sum())}
    manifest = publication.publish(spark, lake, ds, write, expect, details, cfg.score.keep_versions)
    return {"path": lake.partition_path(S.RECOMMENDATIONS, ds), "version_path": manifest["path"],
            "version": manifest["version"], "users": manifest["users"], "rows": manifest["rows"],
            "users_by_reason": manifest["users_by_reason"], "model": model.name, "model_version": model.version,
            "top_n": cfg.score.top_n}


def candidate_items(seen_items: np.ndarray, features, model, n_items: int, unavailable: np.ndarray):
    """(candidates, new_items), [n_items] bool each: the items anybody interacted with, plus, when the model
    scores items by their content (``model.scores_new_items``), the items with content and no interaction
    yet that the model knows; never an unavailable item."""
    candidates = candidates_of(seen_items, n_items)
    new_items = (np.diff(features.indptr) > 0) & ~candidates
    new_items[int(model.metadata.get("n_items", n_items)):] = False
    if not model.scores_new_items:
        new_items[:] = False
    candidates |= new_items
    candidates[unavailable] = False
    return candidates, new_items & candidates


SEEN = "_seen"


def excluded_interactions(interactions_df: DataFrame, cfg: PipelineConfig) -> Optional[DataFrame]:
    """The interactions whose items are not recommended again: those with an event of one of
    ``score.exclude_event_types`` (None: every interaction, when every type is excluded)."""
    from recsys_spark.config_sections import EVENT_TYPES

    types = sorted(set(cfg.score.exclude_event_types))
    if set(types) >= set(EVENT_TYPES):
        return None
    return interactions_df.filter(F.arrays_overlap(S.EVENT_TYPES, F.array(*[F.lit(t) for t in types])))


def histories_of(interactions_df: DataFrame, excluded_df: Optional[DataFrame] = None) -> DataFrame:
    """(user_idx, history): every interaction up to ds, oldest first (first time, then the seeded tie-break).
    It is what the model reads (the events since training included) and, unless ``excluded_df`` (the
    interactions not to recommend again) is given, what is not recommended again: with it, the items of
    ``excluded_df`` are the ``_seen`` column."""
    ordered = F.sort_array(F.collect_list(F.struct(S.FIRST_TS, S.TIE_BREAK, S.ITEM_IDX)))
    users = interactions_df.groupBy(S.USER_IDX).agg(ordered.alias("_h")).select(
        S.USER_IDX, F.transform("_h", lambda s: s[S.ITEM_IDX]).alias(S.HISTORY))
    if excluded_df is None:
        return users
    seen = excluded_df.groupBy(S.USER_IDX).agg(F.collect_list(S.ITEM_IDX).alias(SEEN))
    return users.join(seen, S.USER_IDX, "left").withColumn(SEEN, F.coalesce(SEEN, F.array().cast("array<int>")))


def unavailable_items(lake, cfg: PipelineConfig, ds: str) -> np.ndarray:
    """Item indices that ``score.availability_table`` marks unavailable on ``ds`` (none without the table)."""
    table = cfg.score.availability_table
    if not table:
        return np.zeros(0, np.int64)
    available_df = lake.read_table(table, ds, f"write the day's availability to {lake.partition_path(table, ds)} "
                                              f"(item_id, available), or set score.availability_table to ''.")
    rows = (available_df.filter(~F.col(S.AVAILABLE)).join(lake.read_table(S.ITEM_VOCAB, ds, ""), S.ITEM_ID)
            .select(S.ITEM_IDX).collect())
    return np.array([r[0] for r in rows], np.int64)


def read_features(lake, ds: str, n_items: int):
    """The day's ``item_features`` as a scipy CSR [n_items, n_features] (rows of items without content empty)."""
    from recsys_spark.io import local

    path = lake.require_partition(S.ITEM_FEATURES, ds, f"run `python -m jobs.build_tables --ds {ds}` first.")
    return local.read_item_features(lake.url(path), n_items)


def item_names(lake, ds: str, n_items: int) -> np.ndarray:
    """[n_items] item id by item index (object array)."""
    vocab = lake.read_table(S.ITEM_VOCAB, ds, "").select(S.ITEM_IDX, S.ITEM_ID).toPandas()
    names = np.empty(n_items, dtype=object)
    names[vocab[S.ITEM_IDX].to_numpy()] = vocab[S.ITEM_ID].to_numpy()
    return names


def score_every_user(lake, cfg: PipelineConfig, ds: str, model_ds: str, interactions_df, users_df, scorer,
                     candidates, n_items: int, features=None, new_items: Optional[np.ndarray] = None,
                     names: Optional[np.ndarray] = None, sink_of: Optional[Callable[[str], PartSink]] = None):
    """Top-N rows (user_idx, item_idx, rank, score, because, reason) for every user of ``users_df``: the model's
    where it can score the user, else a fallback (``recsys_spark/fallback.py``). An embedding model's user
    vectors take in the events since its training (``score.fold_in``). ``new_items`` [n_items] bool marks
    the candidates without any interaction (the ``new_item`` column). With ``sink_of`` (route -> where its
    rows go) the tasks write the rows and the DataFrame says which files (:mod:`recsys_spark.io.parquet_parts`)."""
    from recsys_spark import fallback
    from recsys_spark.evaluate.fold_in import with_fold_in
    from recsys_spark.evaluate.scorers import ItemPriorScorer, ProfileScorer
    features = read_features(lake, ds, n_items) if features is None else features
    content_items = [int(i) for i in np.flatnonzero(np.diff(features.indptr) > 0)]
    content_items_df = lake.spark.createDataFrame([(i,) for i in content_items], f"{S.ITEM_IDX} int")
    # (user_idx, count): the users the model was trained on, and how many of their items it saw
    trained_df = (lake.read_table(S.INTERACTIONS, model_ds, "")
                  .filter(F.col(S.SPLIT).isin(S.SPLIT_TRAIN, S.SPLIT_VALIDATION)).groupBy(S.USER_IDX).count().cache())
    routed = fallback.route_users(users_df, trained_df, content_items_df, cfg.score.min_history,
                                  scorer.needs_trained_user).cache()
    routes = {r[fallback.ROUTE]: r["count"] for r in routed.groupBy(fallback.ROUTE).count().collect()}
    log.info("users by route for ds=%s: %s", ds, ", ".join(f"{k} {v}" for k, v in sorted(routes.items())))
    if cfg.score.fold_in and routes.get(fallback.MODEL):
        # the first trained_len[u] items of u's history (time order) are what the model was trained on
        counts = trained_df.toPandas()
        trained_len = np.zeros(int(counts[S.USER_IDX].max()) + 1 if len(counts) else 0, np.int64)
        trained_len[counts[S.USER_IDX].to_numpy()] = counts["count"].to_numpy()
        scorer = with_fold_in(scorer, trained_len, cfg.score.fold_in_l2)
    trained_df.unpersist()
    scorer = padded(scorer, n_items)
    scorers = {fallback.MODEL: lambda: scorer, fallback.CONTENT_FALLBACK: lambda: ProfileScorer(features),
               fallback.POPULARITY_FALLBACK: lambda: ItemPriorScorer(fallback.recent_popularity(
                   interactions_df, n_items, cfg.score.fallback_recent_days))}
    names = item_names(lake, ds, n_items) if names is None else names
    # a scorer larger than score.max_broadcast_mb (an items x items matrix) is broadcast in blocks of items
    parts = []
    for route in [r for r in scorers if routes.get(r)]:  # a fallback nobody needs is not built
        part = top_k_spark_in_item_blocks(routed.filter(F.col(fallback.ROUTE) == route), scorers[route](), candidates,
                                          cfg.score.top_n, cfg.score.max_broadcast_mb * 2 ** 20,
                                          users_per_batch=cfg.score.users_per_batch, explain_names=names,
                                          carry=[S.USER_ID], new_items=new_items,
                                          seen_col=SEEN if SEEN in users_df.columns else None,
                                          sink=sink_of(route) if sink_of else None)
        parts.append(part if sink_of else part.withColumn(S.REASON, F.lit(route)))
    if not parts:
        raise DataQualityError(f"interactions for ds={ds} hold no user: there is nobody to recommend to")
    return functools.reduce(DataFrame.unionByName, parts)
