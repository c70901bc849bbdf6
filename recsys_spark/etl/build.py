"""From clean events to model-ready tables: stable id vocabularies, interactions and leakage-free splits.

Splits cut time per user (leave-last-out) or globally (time cut). Train interactions are aggregated only
from events at or before the cut, and every derived table (sequences, graph, item statistics) is built
from train alone, so nothing from validation or test reaches what a model learns from.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Dict, Optional

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from recsys_spark import schemas as S
from recsys_spark.config_sections import BuildConfig, TrainConfig
from recsys_spark.errors import DataQualityError, MissingInputError
from recsys_spark.etl import deliveries

log = logging.getLogger(__name__)
CUTOFF = "_cutoff_ts"  # last instant whose events may feed train, per user; NULL = no held-out items


def extend_vocab(events_df: DataFrame, previous_vocab_df: Optional[DataFrame], id_col: str, idx_col: str,
                 ds: str, catalog_ids_df: Optional[DataFrame] = None) -> DataFrame:
    """Returns the vocabulary ``(id, idx, first_ds)``: every earlier index kept, new ids appended.

    New ids get contiguous indices after the largest existing one, ordered by first event time then id,
    so the result is deterministic for the same input. ``catalog_ids_df`` (``id_col``): ids known without
    an event (new catalogue items, scored by content); they come after the day's new ids, by id.
    """
    seen_df = events_df.groupBy(id_col).agg(F.min(S.EVENT_TS).alias("_first_ts"))
    if catalog_ids_df is not None:
        after_the_day = F.lit(dt.datetime.fromisoformat(_next_day(ds))).cast("timestamp")
        seen_df = seen_df.unionByName(catalog_ids_df.select(id_col).distinct().join(seen_df, id_col, "left_anti")
                                      .withColumn("_first_ts", after_the_day))
    if previous_vocab_df is None:
        offset = 0
        new_df = seen_df
    else:
        offset_row = previous_vocab_df.agg(F.max(idx_col)).first()[0]
        offset = 0 if offset_row is None else int(offset_row) + 1
        new_df = seen_df.join(previous_vocab_df.select(id_col), on=id_col, how="left_anti")
    appended_df = number_in_order(new_df, "_first_ts", id_col, offset).select(
        F.col(id_col), F.col("_index").cast("int").alias(idx_col), F.lit(ds).alias(S.FIRST_DS))
    if previous_vocab_df is None:
        return appended_df
    return previous_vocab_df.select(id_col, idx_col, S.FIRST_DS).unionByName(appended_df)


def number_in_order(df: DataFrame, ts_col: str, id_col: str, offset: int = 0) -> DataFrame:
    """Adds ``_index``: offset, offset + 1, ... in (``ts_col``, ``id_col``) order, without one big partition.

    Rows fall into hourly buckets that are numbered in parallel; each bucket then starts after the sizes
    of the earlier ones (one number per bucket reaches the driver). Deterministic for the same input.
    """
    df = df.withColumn("_bucket", F.floor(F.unix_seconds(F.col(ts_col)) / 3600))
    starts, total = [], offset
    for bucket, size in sorted(tuple(r) for r in df.groupBy("_bucket").count().collect()):
        starts.append((bucket, total))
        total += size
    starts_df = df.sparkSession.createDataFrame(starts, "_bucket long, _start long")
    within = Window.partitionBy("_bucket").orderBy(F.col(ts_col), F.col(id_col))
    return (df.join(F.broadcast(starts_df), "_bucket")
            .withColumn("_index", F.col("_start") + F.row_number().over(within) - 1)
            .drop("_bucket", "_start"))


def tie_break(seed: int):
    """A seeded 64-bit hash of (user id, item id): the order of a user's events that share a timestamp.

    Ids and indices follow first appearance in the data, so ordering ties by them would let a model
    learn that "the next item has a larger index"; a hash carries no such order.
    """
    return F.xxhash64(F.lit(int(seed)), F.col(S.USER_ID), F.col(S.ITEM_ID))


def with_indices(events_df: DataFrame, user_vocab_df: DataFrame, item_vocab_df: DataFrame,
                 event_weights: Dict[str, float], tie_seed: int = 0) -> DataFrame:
    """Adds ``user_idx``, ``item_idx``, the event's implicit ``weight`` (by event type) and ``tie_break``."""
    pairs = []
    for name, weight in sorted(event_weights.items()):
        pairs += [F.lit(name), F.lit(float(weight))]
    return (
        events_df.withColumn(S.WEIGHT, F.create_map(*pairs)[F.col(S.EVENT_TYPE)])
        .withColumn(S.TIE_BREAK, tie_break(tie_seed))
        .join(user_vocab_df.select(S.USER_ID, S.USER_IDX), on=S.USER_ID)
        .join(item_vocab_df.select(S.ITEM_ID, S.ITEM_IDX), on=S.ITEM_ID)
    )


def _pair_aggregates(only_when=None, suffix: str = ""):
    """Aggregates of one user-item pair's events (all of them, or those meeting ``only_when``)."""
    def of(col):
        return col if only_when is None else F.when(only_when, col)

    ts = F.col(S.EVENT_TS)
    return [
        F.sum(of(F.col(S.WEIGHT))).cast("float").alias(S.WEIGHT + suffix),
        F.count(of(F.lit(1))).cast("int").alias(S.EVENT_COUNT + suffix),
        F.max_by(S.RATING, of(F.when(F.col(S.RATING).isNotNull(), ts))).alias(S.LAST_RATING + suffix),
        F.min(of(ts)).alias(S.FIRST_TS + suffix),
        F.max(of(ts)).alias(S.LAST_TS + suffix),
        F.array_sort(F.collect_set(of(F.col(S.EVENT_TYPE)))).alias(S.EVENT_TYPES + suffix),
    ]


def _tie_of_pair():
    """The pair's tie break (the same for every event of a pair)."""
    return F.max(S.TIE_BREAK).alias(S.TIE_BREAK)


_PAIR_VALUES = (S.WEIGHT, S.EVENT_COUNT, S.LAST_RATING, S.FIRST_TS, S.LAST_TS, S.EVENT_TYPES)


def aggregate_pairs(indexed_events_df: DataFrame, *keys: str) -> DataFrame:
    """One row per user-item pair (and ``keys``): summed weight, event count, latest rating, first and last time."""
    return indexed_events_df.groupBy(S.USER_IDX, S.ITEM_IDX, *keys).agg(*_pair_aggregates(), _tie_of_pair())


_TEST_ITEM, _VALIDATION_ITEM = "_test_item", "_validation_item"


def user_cutoffs(indexed_events_df: DataFrame, min_items_for_split: int) -> DataFrame:
    """Leave-last-out per user: (user_idx, _test_item, _validation_item, _cutoff_ts).

    The item first met last is test, the one before it validation, and train may use events up to the
    validation item's first time. Items first met at the same instant are ordered by ``tie_break`` (a
    seeded hash of user and item id), never by index. Users with fewer than ``min_items_for_split`` items
    are absent (all train).
    """
    first_met = indexed_events_df.groupBy(S.USER_IDX, S.ITEM_IDX).agg(F.min(S.EVENT_TS).alias(S.FIRST_TS),
                                                                       _tie_of_pair())
    latest = F.sort_array(F.collect_list(F.struct(S.FIRST_TS, S.TIE_BREAK, S.ITEM_IDX)), asc=False)
    return (
        first_met.groupBy(S.USER_IDX).agg(latest.alias("_latest"))
        .filter(F.size("_latest") >= min_items_for_split)
        .select(
            S.USER_IDX,
            F.col("_latest")[0][S.ITEM_IDX].alias(_TEST_ITEM),
            F.col("_latest")[1][S.ITEM_IDX].alias(_VALIDATION_ITEM),
            F.col("_latest")[1][S.FIRST_TS].alias(CUTOFF),
        )
    )


def leave_last_out_interactions(indexed_events_df: DataFrame, min_items_for_split: int) -> DataFrame:
    """Interactions with a per-user leave-last-out split; train pairs aggregate events up to the cut-off only.

    Each event takes its pair's split from its user's cut-offs (a small per-user table), train events after
    the cut-off are dropped, and one aggregation by (user, item, split) does the rest.
    """
    item = F.col(S.ITEM_IDX)
    split = (F.when(item == F.col(_TEST_ITEM), F.lit(S.SPLIT_TEST))
             .when(item == F.col(_VALIDATION_ITEM), F.lit(S.SPLIT_VALIDATION))
             .otherwise(F.lit(S.SPLIT_TRAIN)))
    kept = (F.col(S.SPLIT) != S.SPLIT_TRAIN) | F.col(CUTOFF).isNull() | (F.col(S.EVENT_TS) <= F.col(CUTOFF))
    events = indexed_events_df.join(user_cutoffs(indexed_events_df, min_items_for_split), S.USER_IDX, "left")
    return aggregate_pairs(events.withColumn(S.SPLIT, split).filter(kept), S.SPLIT).select(
        *S.INTERACTIONS_SCHEMA.fieldNames())


def time_cut_bounds(ds: str, test_days: int, validation_days: int):
    """(validation_start, test_start) as naive UTC datetimes: the last days of the window up to ds."""
    end = dt.datetime.fromisoformat(ds) + dt.timedelta(days=1)
    test_start = end - dt.timedelta(days=test_days)
    return test_start - dt.timedelta(days=validation_days), test_start


def time_cut_interactions(indexed_events_df: DataFrame, validation_start: dt.datetime,
                          test_start: dt.datetime) -> DataFrame:
    """Interactions split by each pair's first time against global cut times, in one aggregation.

    A pair first met before ``validation_start`` is train and aggregates only its events before it; later
    pairs are validation or test with all their events.
    """
    before_cut = F.col(S.EVENT_TS) < F.lit(validation_start)
    pairs = indexed_events_df.groupBy(S.USER_IDX, S.ITEM_IDX).agg(
        *_pair_aggregates(), *_pair_aggregates(before_cut, suffix="_train"), _tie_of_pair())
    first = F.col(S.FIRST_TS)
    is_train = first < F.lit(validation_start)
    split = (F.when(first >= F.lit(test_start), F.lit(S.SPLIT_TEST))
             .when(~is_train, F.lit(S.SPLIT_VALIDATION))
             .otherwise(F.lit(S.SPLIT_TRAIN)))
    values = [F.when(is_train, F.col(name + "_train")).otherwise(F.col(name)).alias(name) for name in _PAIR_VALUES]
    return pairs.select(S.USER_IDX, S.ITEM_IDX, *values, S.TIE_BREAK, split.alias(S.SPLIT)).select(
        *S.INTERACTIONS_SCHEMA.fieldNames())


def interactions(indexed_events_df: DataFrame, cfg: BuildConfig, ds: str) -> DataFrame:
    """The interactions table of ``cfg.split_mode``; nothing after a user's cut-off reaches train rows."""
    if cfg.split_mode == "time_cut":
        return time_cut_interactions(indexed_events_df, *time_cut_bounds(ds, cfg.test_days, cfg.validation_days))
    return leave_last_out_interactions(indexed_events_df, cfg.min_items_for_split)


def select_pairs(interactions_df: DataFrame, split: str) -> DataFrame:
    return interactions_df.filter(F.col(S.SPLIT) == split).select(
        S.USER_IDX, S.ITEM_IDX, S.WEIGHT, F.col(S.LAST_RATING).cast("float").alias(S.RATING))


def lookback_start(ds: str, lookback_days: int) -> str:
    return (dt.date.fromisoformat(ds) - dt.timedelta(days=lookback_days - 1)).isoformat()


def run_build_tables(spark, lake, cfg: BuildConfig, train_cfg: TrainConfig, ds: str) -> Dict:
    """Builds vocabularies, interactions, splits, sequences, graph and item features for ``ds``."""
    from recsys_spark.etl import features

    first_ds = lookback_start(ds, cfg.lookback_days)
    if not lake.has_partition(S.EVENTS_CLEAN, ds):
        raise MissingInputError(
            f"no {S.EVENTS_CLEAN} partition for ds={ds} at {lake.partition_path(S.EVENTS_CLEAN, ds)}: "
            f"run `python -m jobs.clean_events --ds {ds} --lake {lake.root}` first."
        )
    timings: Dict[str, float] = {}

    def timed(name, fn):
        started = time.time()
        out = fn()
        timings[name] = round(time.time() - started, 2)
        log.info("%s for ds=%s written in %.1f s", name, ds, timings[name])
        return out

    events_df = lake.read_window(S.EVENTS_CLEAN, first_ds, ds)
    cached = len([d for d in lake.list_partitions(S.EVENTS_CLEAN) if first_ds <= d <= ds]) > 1
    window_rows = events_df.count()  # (Parquet footers)
    dropped = {deliveries.REDELIVERED: 0, deliveries.REUSED_EVENT_ID: 0}
    if cached:
        # clean_events already made ids unique per day. Across days the de-duplication is a sort, worth
        # caching for the reads below; one day alone is read from Parquet each time (4 scans), which costs
        # less than building an in-memory copy (8 s against 2 s per scan on 2 M events).
        flagged_df = deliveries.flag_later_deliveries(events_df).persist()
        dropped = deliveries.dropped_by_reason(flagged_df)
        events_df = deliveries.kept(flagged_df)
    used_rows = events_df.count() if cached else window_rows
    if used_rows + sum(dropped.values()) != window_rows:
        raise DataQualityError(f"build_tables for ds={ds}: {window_rows} events in the window, but {used_rows} used "
                               f"and {dropped} left out do not add up; nothing was written. Please report this.")

    # The day's catalogue: items in it without any event yet enter the item vocabulary too (new items, which
    # models that read content can recommend).
    catalog_ds = lake.latest_partition_before(S.RAW_ITEMS, _next_day(ds))
    catalog_df = features.read_catalog(spark, lake.partition_path(S.RAW_ITEMS, catalog_ds)) if catalog_ds else None
    vocabs = {}
    for table, id_col, idx_col, extra_df in ((S.USER_VOCAB, S.USER_ID, S.USER_IDX, None),
                                             (S.ITEM_VOCAB, S.ITEM_ID, S.ITEM_IDX, catalog_df)):
        previous_ds = lake.latest_partition_before(table, ds)
        previous_df = lake.read_table(table, previous_ds, "") if previous_ds else None
        timed(table, lambda: lake.write_table(extend_vocab(events_df, previous_df, id_col, idx_col, ds, extra_df),
                                              table, ds, files=1))
        vocabs[table] = lake.read_table(table, ds, "")

    indexed_df = with_indices(events_df, vocabs[S.USER_VOCAB], vocabs[S.ITEM_VOCAB], cfg.event_weights,
                              cfg.tie_seed)
    timed(S.INTERACTIONS, lambda: lake.write_table(interactions(indexed_df, cfg, ds), S.INTERACTIONS, ds))
    if cached:
        flagged_df.unpersist()
    interactions_df = lake.read_table(S.INTERACTIONS, ds, "")

    # Equal-sized files (round-robin), a multiple of the number of ranks, so that Petastorm shards evenly.
    train_files = train_cfg.num_proc * cfg.train_files_per_rank
    timed(S.TRAIN, lambda: lake.write_table(
        select_pairs(interactions_df, S.SPLIT_TRAIN), S.TRAIN, ds,
        files=train_files, row_group_bytes=cfg.train_row_group_mb * 1024 * 1024,
    ))
    for split, table in ((S.SPLIT_VALIDATION, S.VALIDATION), (S.SPLIT_TEST, S.TEST)):
        timed(table, lambda: lake.write_table(select_pairs(interactions_df, split), table, ds, files=1))
    train_df = lake.read_table(S.TRAIN, ds, "")
    timed(S.SEQUENCES, lambda: lake.write_table(features.sequences(interactions_df, cfg.sequence_length), S.SEQUENCES, ds,
                                                files=train_files, row_group_bytes=cfg.train_row_group_mb * 1024 * 1024))
    timed(S.GRAPH_DEGREES, lambda: lake.write_table(features.graph_degrees(train_df), S.GRAPH_DEGREES, ds, files=1))
    degrees_df = lake.read_table(S.GRAPH_DEGREES, ds, "")
    timed(S.GRAPH_EDGES, lambda: lake.write_table(features.graph_edges(train_df, degrees_df), S.GRAPH_EDGES, ds,
                                                  files=train_cfg.num_proc))
    timed(S.ITEM_COOCCURRENCE, lambda: lake.write_table(
        features.item_cooccurrence(interactions_df, cfg.cooccurrence_top_k, cfg.cooccurrence_max_items_per_user),
        S.ITEM_COOCCURRENCE, ds,
    ))
    timed(S.ITEM_FEATURES, lambda: lake.write_table(
        features.item_features(vocabs[S.ITEM_VOCAB], train_df, catalog_df, cfg.title_hash_features),
        S.ITEM_FEATURES, ds, files=1,
    ))

    counts = {
        r[S.SPLIT]: r["n"]
        for r in interactions_df.groupBy(S.SPLIT).agg(F.count(F.lit(1)).alias("n")).collect()
    }
    report = {
        "ds": ds,
        "window": [first_ds, ds],
        "split_mode": cfg.split_mode,
        "n_users": vocabs[S.USER_VOCAB].count(),
        "n_items": vocabs[S.ITEM_VOCAB].count(),
        "pairs_by_split": counts,
        # every event of the window: used, or left out as a later delivery of an id (deliveries.py)
        "events_in_window": window_rows,
        "events_used": used_rows,
        "events_dropped_by_reason": dropped,
        "catalog_ds": catalog_ds,
        "write_s": timings,
    }
    lake.write_json(f"{S.REPORTS}/build_tables", ds, "report.json", report)
    return report


def _next_day(ds: str) -> str:
    return (dt.date.fromisoformat(ds) + dt.timedelta(days=1)).isoformat()
