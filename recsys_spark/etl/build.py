"""From clean events to model-ready tables: stable id vocabularies, interactions, time splits, graph edges."""

from __future__ import annotations

import datetime as dt
from typing import Dict, Optional

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from recsys_spark import schemas as S
from recsys_spark.config import BuildConfig, TrainConfig
from recsys_spark.errors import MissingInputError


def filter_latest_copy_of_event(events_df: DataFrame) -> DataFrame:
    """Keeps one row per ``event_id`` across days (the earliest delivery), as re-sent logs repeat."""
    first = Window.partitionBy(S.EVENT_ID).orderBy(F.col(S.DS), F.col(S.EVENT_TS))
    return events_df.withColumn("_copy", F.row_number().over(first)).filter(F.col("_copy") == 1).drop("_copy")


def extend_vocab(events_df: DataFrame, previous_vocab_df: Optional[DataFrame], id_col: str, idx_col: str,
                 ds: str) -> DataFrame:
    """Returns the vocabulary ``(id, idx, first_ds)``: every earlier index kept, new ids appended.

    New ids get contiguous indices after the largest existing one, ordered by first event time then id,
    so the result is deterministic for the same input.
    """
    seen_df = events_df.groupBy(id_col).agg(F.min(S.EVENT_TS).alias("_first_ts"))
    if previous_vocab_df is None:
        offset = 0
        new_df = seen_df
    else:
        offset_row = previous_vocab_df.agg(F.max(idx_col)).first()[0]
        offset = 0 if offset_row is None else int(offset_row) + 1
        new_df = seen_df.join(previous_vocab_df.select(id_col), on=id_col, how="left_anti")
    # zipWithIndex numbers a sorted RDD without pulling every row into one partition.
    spark = events_df.sparkSession
    ordered = new_df.orderBy(F.col("_first_ts"), F.col(id_col)).select(id_col).rdd.zipWithIndex()
    appended_df = spark.createDataFrame(
        ordered.map(lambda pair: (pair[0][0], int(pair[1]) + offset, ds)),
        schema=S.VOCAB_SCHEMAS[S.USER_VOCAB if id_col == S.USER_ID else S.ITEM_VOCAB],
    )
    if previous_vocab_df is None:
        return appended_df
    return previous_vocab_df.select(id_col, idx_col, S.FIRST_DS).unionByName(appended_df)


def with_event_weight(events_df: DataFrame, event_weights: Dict[str, float]) -> DataFrame:
    pairs = []
    for name, weight in sorted(event_weights.items()):
        pairs += [F.lit(name), F.lit(float(weight))]
    return events_df.withColumn(S.WEIGHT, F.create_map(*pairs)[F.col(S.EVENT_TYPE)])


def aggregate_interactions(events_df: DataFrame, user_vocab_df: DataFrame, item_vocab_df: DataFrame,
                           event_weights: Dict[str, float]) -> DataFrame:
    """One row per user-item pair: summed event weight, event count, max rating, first and last time."""
    return (
        events_df.transform(with_event_weight, event_weights)
        .join(user_vocab_df.select(S.USER_ID, S.USER_IDX), on=S.USER_ID)
        .join(item_vocab_df.select(S.ITEM_ID, S.ITEM_IDX), on=S.ITEM_ID)
        .groupBy(S.USER_IDX, S.ITEM_IDX)
        .agg(
            F.sum(S.WEIGHT).cast("float").alias(S.WEIGHT),
            F.count(F.lit(1)).cast("int").alias(S.EVENT_COUNT),
            F.max(S.RATING).alias(S.MAX_RATING),
            F.min(S.EVENT_TS).alias(S.FIRST_TS),
            F.max(S.EVENT_TS).alias(S.LAST_TS),
        )
    )


def with_leave_last_out_split(interactions_df: DataFrame, min_items_for_split: int) -> DataFrame:
    """Adds ``split``: per user, the item first met last is test, the one before it validation.

    Users with fewer than ``min_items_for_split`` items keep everything in train. Ties on time are
    broken by item index so the split is deterministic.
    """
    latest_first = Window.partitionBy(S.USER_IDX).orderBy(F.col(S.FIRST_TS).desc(), F.col(S.ITEM_IDX).desc())
    per_user = Window.partitionBy(S.USER_IDX)
    position = F.row_number().over(latest_first)
    n_items = F.count(F.lit(1)).over(per_user)
    split = (
        F.when((n_items >= min_items_for_split) & (position == 1), F.lit(S.SPLIT_TEST))
        .when((n_items >= min_items_for_split) & (position == 2), F.lit(S.SPLIT_VALIDATION))
        .otherwise(F.lit(S.SPLIT_TRAIN))
    )
    return interactions_df.withColumn(S.SPLIT, split)


def select_pairs(interactions_df: DataFrame, split: str) -> DataFrame:
    return interactions_df.filter(F.col(S.SPLIT) == split).select(S.USER_IDX, S.ITEM_IDX, S.WEIGHT)


def graph_edges(train_df: DataFrame) -> DataFrame:
    """User-item edges of the train graph with symmetric normalised weight 1/sqrt(deg_u * deg_i)."""
    deg_u = F.count(F.lit(1)).over(Window.partitionBy(S.USER_IDX))
    deg_i = F.count(F.lit(1)).over(Window.partitionBy(S.ITEM_IDX))
    return train_df.select(
        S.USER_IDX, S.ITEM_IDX, (F.lit(1.0) / F.sqrt(deg_u * deg_i)).cast("float").alias(S.WEIGHT)
    )


def lookback_start(ds: str, lookback_days: int) -> str:
    return (dt.date.fromisoformat(ds) - dt.timedelta(days=lookback_days - 1)).isoformat()


def run_build_tables(spark, lake, cfg: BuildConfig, train_cfg: TrainConfig, ds: str) -> Dict:
    """Builds vocabularies, interactions, splits and graph edges for ``ds`` from the look-back window."""
    first_ds = lookback_start(ds, cfg.lookback_days)
    if not lake.has_partition(S.EVENTS_CLEAN, ds):
        raise MissingInputError(
            f"no {S.EVENTS_CLEAN} partition for ds={ds} at {lake.partition_path(S.EVENTS_CLEAN, ds)}: "
            f"run `python -m jobs.clean_events --ds {ds} --lake {lake.root}` first."
        )
    events_df = lake.read_window(S.EVENTS_CLEAN, first_ds, ds).transform(filter_latest_copy_of_event).persist()

    vocabs = {}
    for table, id_col, idx_col in ((S.USER_VOCAB, S.USER_ID, S.USER_IDX), (S.ITEM_VOCAB, S.ITEM_ID, S.ITEM_IDX)):
        previous_ds = lake.latest_partition_before(table, ds)
        previous_df = lake.read_table(table, previous_ds, "") if previous_ds else None
        vocab_df = extend_vocab(events_df, previous_df, id_col, idx_col, ds)
        lake.write_table(vocab_df, table, ds, files=1)
        vocabs[table] = lake.read_table(table, ds, "")

    interactions_df = (
        aggregate_interactions(events_df, vocabs[S.USER_VOCAB], vocabs[S.ITEM_VOCAB], cfg.event_weights)
        .transform(with_leave_last_out_split, cfg.min_items_for_split)
        .select(*S.INTERACTIONS_SCHEMA.fieldNames())
    )
    lake.write_table(interactions_df, S.INTERACTIONS, ds)
    events_df.unpersist()
    interactions_df = lake.read_table(S.INTERACTIONS, ds, "")

    # Equal-sized files, a multiple of the number of ranks, so that Petastorm shards evenly.
    train_files = train_cfg.num_proc * cfg.train_files_per_rank
    lake.write_table(
        select_pairs(interactions_df, S.SPLIT_TRAIN), S.TRAIN, ds,
        files=train_files, row_group_bytes=cfg.train_row_group_mb * 1024 * 1024,
    )
    lake.write_table(select_pairs(interactions_df, S.SPLIT_VALIDATION), S.VALIDATION, ds, files=1)
    lake.write_table(select_pairs(interactions_df, S.SPLIT_TEST), S.TEST, ds, files=1)
    train_df = lake.read_table(S.TRAIN, ds, "")
    lake.write_table(graph_edges(train_df), S.GRAPH_EDGES, ds, files=train_cfg.num_proc)

    counts = {
        r[S.SPLIT]: r["n"]
        for r in interactions_df.groupBy(S.SPLIT).agg(F.count(F.lit(1)).alias("n")).collect()
    }
    report = {
        "ds": ds,
        "window": [first_ds, ds],
        "n_users": vocabs[S.USER_VOCAB].count(),
        "n_items": vocabs[S.ITEM_VOCAB].count(),
        "pairs_by_split": counts,
    }
    lake.write_json(f"{S.REPORTS}/build_tables", ds, "report.json", report)
    return report
