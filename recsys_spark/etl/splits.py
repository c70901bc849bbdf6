"""Interactions without leakage: one row per user-item pair (summed weight, event count, latest rating,
first and last time, event types), split per user leave-last-out or by a global time cut, with train pairs
aggregated only from events at or before the cut."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from recsys_spark import schemas as S
from recsys_spark.config_sections import EVENT_TYPES, BuildConfig

CUTOFF = "_cutoff_ts"  # last instant whose events may feed train, per user; NULL = no held-out items
_TYPES_MASK = "_event_types_mask"
_SORTED_TYPES = sorted(EVENT_TYPES)


def _event_type_bit() -> Column:
    """The event's type as one bit (bit k = the k-th type in name order): a pair's types are then one
    ``bit_or``, which Spark aggregates in its fast hash aggregate, where a ``collect_set`` falls back to
    sorting every pair. A type outside EVENT_TYPES (clean_events lets none through) fails the job."""
    bit = F.when(F.lit(False), F.lit(0))
    for k, name in enumerate(_SORTED_TYPES):
        bit = bit.when(F.col(S.EVENT_TYPE) == name, F.lit(1 << k))
    return bit.otherwise(F.raise_error(F.concat(
        F.lit(f"an event type in {S.EVENTS_CLEAN} is not one of {', '.join(_SORTED_TYPES)}: "),
        F.coalesce(F.col(S.EVENT_TYPE), F.lit("NULL")))))


def _event_types_of(mask: Column) -> Column:
    """The sorted type names of a ``bit_or`` of ``_event_type_bit`` (empty when NULL: no event)."""
    return F.array_compact(F.array(*[F.when(mask.bitwiseAND(1 << k) != 0, F.lit(name))
                                     for k, name in enumerate(_SORTED_TYPES)]))


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
        F.bit_or(of(_event_type_bit())).alias(_TYPES_MASK + suffix),
    ]


def _tie_of_pair():
    """The pair's tie break (the same for every event of a pair)."""
    return F.max(S.TIE_BREAK).alias(S.TIE_BREAK)


_PAIR_VALUES = (S.WEIGHT, S.EVENT_COUNT, S.LAST_RATING, S.FIRST_TS, S.LAST_TS, _TYPES_MASK)


def aggregate_pairs(indexed_events_df: DataFrame, *keys: str) -> DataFrame:
    """One row per user-item pair (and ``keys``): summed weight, event count, latest rating, first and last
    time, event types."""
    return (indexed_events_df.groupBy(S.USER_IDX, S.ITEM_IDX, *keys).agg(*_pair_aggregates(), _tie_of_pair())
            .withColumn(S.EVENT_TYPES, _event_types_of(F.col(_TYPES_MASK))).drop(_TYPES_MASK))


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
    return (pairs.select(S.USER_IDX, S.ITEM_IDX, *values, S.TIE_BREAK, split.alias(S.SPLIT))
            .withColumn(S.EVENT_TYPES, _event_types_of(F.col(_TYPES_MASK))).select(*S.INTERACTIONS_SCHEMA.fieldNames()))


def interactions(indexed_events_df: DataFrame, cfg: BuildConfig, ds: str) -> DataFrame:
    """The interactions table of ``cfg.split_mode``; nothing after a user's cut-off reaches train rows."""
    if cfg.split_mode == "time_cut":
        return time_cut_interactions(indexed_events_df, *time_cut_bounds(ds, cfg.test_days, cfg.validation_days))
    return leave_last_out_interactions(indexed_events_df, cfg.min_items_for_split)
