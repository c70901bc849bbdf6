"""From clean events to model-ready tables: stable id vocabularies, interactions and leakage-free splits
(``splits.py``), then sequences, graph and item statistics (``features.py``), all from train alone, so
nothing from validation or test reaches what a model learns from."""

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
from recsys_spark.etl.splits import interactions

log = logging.getLogger(__name__)


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
    of the earlier ones (a running sum over the small table of bucket sizes). One query: the bucket sizes
    and the numbering read the same shuffle of ``df``. Deterministic for the same input.
    """
    df = df.withColumn("_bucket", F.floor(F.unix_seconds(F.col(ts_col)) / 3600))
    # One partition holds the bucket sizes (one row per hour of the window). Its key is 0 on every row, but
    # computed: Spark folds a literal key away, then warns of a window without partitions.
    one_partition = F.coalesce(F.col("_bucket") * 0, F.lit(0))
    earlier = Window.partitionBy(one_partition).orderBy("_bucket").rowsBetween(Window.unboundedPreceding, -1)
    starts_df = df.groupBy("_bucket").agg(F.count(F.lit(1)).alias("_size")).select(
        "_bucket", (F.lit(offset) + F.coalesce(F.sum("_size").over(earlier), F.lit(0))).alias("_start"))
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
    left_out = features.train_pairs_left_out(interactions_df, cfg.sequence_length, cfg.cooccurrence_max_items_per_user)
    in_sequences = lake.read_table(S.SEQUENCES, ds, "").agg(F.sum(S.HISTORY_LENGTH)).first()[0] or 0
    if in_sequences + left_out["sequence_length"] != left_out["train_pairs"]:
        raise DataQualityError(f"build_tables for ds={ds}: {left_out['train_pairs']} train pairs, but the sequences "
                               f"hold {in_sequences} and {left_out['sequence_length']} were left out by "
                               "build.sequence_length; please report this.")
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
        # train pairs a derived table leaves out (the oldest of a long history), by the setting that caps it;
        # sequences hold exactly train_pairs - sequence_length of them
        "train_pairs_left_out_by_reason": {k: v for k, v in left_out.items() if k != "train_pairs"},
        "catalog_ds": catalog_ds,
        "write_s": timings,
    }
    lake.write_json(f"{S.REPORTS}/build_tables", ds, "report.json", report)
    return report


def _next_day(ds: str) -> str:
    return (dt.date.fromisoformat(ds) + dt.timedelta(days=1)).isoformat()
