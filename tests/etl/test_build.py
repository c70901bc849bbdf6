import datetime as dt

import pytest
from chispa import assert_df_equality
from pyspark.sql import types as T

from recsys_spark import schemas as S
from recsys_spark.config_sections import BuildConfig, TrainConfig
from recsys_spark.errors import MissingInputError
from recsys_spark.etl import build as B
from recsys_spark.etl import splits
from recsys_spark.etl import features as F_

D1, D2 = "2026-11-26", "2026-11-27"


def t(day, hour):
    return dt.datetime(2026, 11, day, hour)


def events(spark, rows):
    schema = T.StructType(
        list(S.EVENTS_CLEAN_SCHEMA.fields) + [T.StructField(S.DS, T.StringType(), True)])
    return spark.createDataFrame(rows, schema)


def test_extend_vocab_keeps_old_indices_and_appends_new(spark):
    night1 = events(spark, [
        ("e1", "ub", "i1", "view", None, t(26, 9), None, D1),
        ("e2", "ua", "i1", "view", None, t(26, 10), None, D1),
        ("e3", "ub", "i2", "view", None, t(26, 11), None, D1),
    ])
    vocab1 = B.extend_vocab(night1, None, S.USER_ID, S.USER_IDX, D1)
    expected1 = spark.createDataFrame([("ub", 0, D1), ("ua", 1, D1)], S.VOCAB_SCHEMAS[S.USER_VOCAB])
    assert_df_equality(vocab1.orderBy(S.USER_IDX), expected1, ignore_nullable=True)
    # Night 2 sees ua again, plus two new users; ub is absent but keeps its index.
    night2 = events(spark, [
        ("e4", "ua", "i1", "view", None, t(27, 9), None, D2),
        ("e5", "ud", "i1", "view", None, t(27, 8), None, D2),
        ("e6", "uc", "i2", "view", None, t(27, 8), None, D2),
    ])
    vocab2 = B.extend_vocab(night2, vocab1, S.USER_ID, S.USER_IDX, D2)
    expected2 = spark.createDataFrame(
        [("ub", 0, D1), ("ua", 1, D1), ("uc", 2, D2), ("ud", 3, D2)], S.VOCAB_SCHEMAS[S.USER_VOCAB])
    assert_df_equality(vocab2.orderBy(S.USER_IDX), expected2, ignore_nullable=True)


def test_catalogue_items_without_events_join_the_item_vocabulary_after_the_days_items(spark):
    night1 = events(spark, [("e1", "ua", "i9", "view", None, t(26, 9), None, D1),
                            ("e2", "ua", "i1", "view", None, t(26, 10), None, D1)])
    catalog = spark.createDataFrame([("i1",), ("n2",), ("n1",), ("n1",)], f"{S.ITEM_ID} string")
    vocab1 = B.extend_vocab(night1, None, S.ITEM_ID, S.ITEM_IDX, D1, catalog)
    assert [tuple(r) for r in vocab1.orderBy(S.ITEM_IDX).collect()] == [
        ("i9", 0, D1), ("i1", 1, D1), ("n1", 2, D1), ("n2", 3, D1)]
    # n2 gets its first event the next day: it keeps its index, and nothing new is appended for it.
    night2 = events(spark, [("e3", "ub", "n2", "view", None, t(27, 9), None, D2),
                            ("e4", "ub", "i5", "view", None, t(27, 10), None, D2)])
    vocab2 = B.extend_vocab(night2, vocab1, S.ITEM_ID, S.ITEM_IDX, D2, catalog)
    assert [tuple(r) for r in vocab2.orderBy(S.ITEM_IDX).collect()] == [
        ("i9", 0, D1), ("i1", 1, D1), ("n1", 2, D1), ("n2", 3, D1), ("i5", 4, D2)]


def test_interactions_split_and_graph(spark):
    rows = [
        ("e1", "u1", "i1", "view", None, t(20, 1), None, D2),
        ("e2", "u1", "i1", "purchase", None, t(21, 1), None, D2),
        ("e3", "u1", "i2", "rating", 4.0, t(22, 1), None, D2),
        ("e4", "u1", "i3", "click", None, t(23, 1), None, D2),
        ("e5", "u2", "i1", "view", None, t(20, 1), None, D2),
        ("e6", "u2", "i3", "view", None, t(21, 1), None, D2),
        ("e7", "u1", "i1", "click", None, t(24, 1), None, D2),  # after u1's cut-off: must not reach train
        (None, None, None, None, None, None, None, None),  # a null row never matches a vocabulary
    ]
    schema = T.StructType([T.StructField(f.name, f.dataType, True) for f in S.EVENTS_CLEAN_SCHEMA.fields]
                          + [T.StructField(S.DS, T.StringType(), True)])
    events_df = spark.createDataFrame(rows, schema)
    users = spark.createDataFrame([("u1", 0, D2), ("u2", 1, D2)], S.VOCAB_SCHEMAS[S.USER_VOCAB])
    items = spark.createDataFrame([("i1", 0, D2), ("i2", 1, D2), ("i3", 2, D2)], S.VOCAB_SCHEMAS[S.ITEM_VOCAB])
    indexed = B.with_indices(events_df, users, items, BuildConfig().event_weights)
    interactions = splits.leave_last_out_interactions(indexed, 3)
    expected = spark.createDataFrame(
        [
            (0, 0, 6.0, 2, None, t(20, 1), t(21, 1), 0, "train", ["purchase", "view"]),   # view 1 + purchase 5; the day-24 click is cut (not in event_types either)
            (0, 1, 4.0, 1, 4.0, t(22, 1), t(22, 1), 0, "validation", ["rating"]),
            (0, 2, 2.0, 1, None, t(23, 1), t(23, 1), 0, "test", ["click"]),
            (1, 0, 1.0, 1, None, t(20, 1), t(20, 1), 0, "train", ["view"]),   # u2 has 2 items < 3: all train
            (1, 2, 1.0, 1, None, t(21, 1), t(21, 1), 0, "train", ["view"]),
        ],
        S.INTERACTIONS_SCHEMA,
    )
    got = interactions.select(*S.INTERACTIONS_SCHEMA.fieldNames()).orderBy(S.USER_IDX, S.ITEM_IDX)
    assert_df_equality(got.drop(S.TIE_BREAK), expected.drop(S.TIE_BREAK), ignore_nullable=True)
    # tie_break is the seeded hash of the ids, the same for every event of a pair
    hashes = {(r[0], r[1]): r[2] for r in spark.createDataFrame([("u1", "i1"), ("u1", "i2"), ("u1", "i3"), ("u2", "i1"),
                                                                   ("u2", "i3")], "user_id string, item_id string")
              .select(S.USER_ID, S.ITEM_ID, B.tie_break(0)).collect()}
    ids = {0: "u1", 1: "u2"}, {0: "i1", 1: "i2", 2: "i3"}
    assert {(r[0], r[1]): r[2] for r in got.select(S.USER_IDX, S.ITEM_IDX, S.TIE_BREAK).collect()} == {
        (u, i): hashes[(ids[0][u], ids[1][i])] for u, i in [(0, 0), (0, 1), (0, 2), (1, 0), (1, 2)]}

    train = B.select_pairs(interactions, S.SPLIT_TRAIN)
    edges = {(r[S.USER_IDX], r[S.ITEM_IDX]): r[S.WEIGHT] for r in F_.graph_edges(train).collect()}
    # deg(u1)=1, deg(u2)=2, deg(i1)=2, deg(i3)=1
    assert edges == pytest.approx({(0, 0): 1 / 2 ** 0.5, (1, 0): 1 / 2.0, (1, 2): 1 / 2 ** 0.5})


def test_an_event_type_outside_the_known_ones_fails_the_interactions_with_its_name(spark):
    """A pair's event types are aggregated as bits of the known types; a type clean_events would have
    quarantined is not silently dropped from ``event_types``."""
    events = spark.createDataFrame(
        [(0, 0, 1.0, None, t(20, 1), 7, "view"), (0, 1, 1.0, None, t(21, 1), 8, "hover")],
        "user_idx int, item_idx int, weight double, rating double, event_ts timestamp, tie_break long, "
        "event_type string")
    with pytest.raises(Exception, match="is not one of add_to_cart, click, purchase, rating, view: hover"):
        splits.aggregate_pairs(events).collect()


def test_user_cutoffs_take_the_two_latest_items_and_break_ties_by_the_hash(spark):
    indexed = spark.createDataFrame([
        (0, 5, t(20, 1), 1), (0, 5, t(25, 1), 1),   # item 5: first met on day 20, its later event does not count
        (0, 7, t(21, 1), 1),
        (0, 3, t(22, 1), 80), (0, 9, t(22, 1), 20),   # a tie on first time: the larger hash (item 3) is later
        (0, 4, t(21, 1), 1),
        (1, 1, t(20, 1), 1), (1, 2, t(20, 2), 1), (1, 3, t(20, 3), 1),   # exactly 3 items: split
        (2, 1, t(20, 1), 1), (2, 2, t(20, 2), 1),   # 2 items: all train, absent
    ], "user_idx int, item_idx int, event_ts timestamp, tie_break long")
    got = sorted(tuple(r) for r in splits.user_cutoffs(indexed, 3).collect())
    assert got == [(0, 3, 9, t(22, 1)), (1, 3, 2, t(20, 2))]


def test_duplicate_event_ids_across_days_are_kept_once_and_counted_by_reason(spark):
    from recsys_spark.etl import deliveries

    events_df = events(spark, [
        ("e1", "u1", "i1", "view", None, t(26, 9), None, D1),
        ("e1", "u1", "i1", "view", None, t(26, 9), None, D2),  # the same event re-sent
        ("e2", "u1", "i2", "view", None, t(27, 9), None, D2),
        ("e3", "u2", "i1", "view", None, t(26, 8), None, D1),
        ("e3", "u2", "i1", "purchase", None, t(27, 8), None, D2),  # another event under e3
        ("e3", "u2", "i1", "view", 4.0, t(26, 8), None, D2),  # e3 again, now with a rating
    ])
    flagged = deliveries.flag_later_deliveries(events_df)
    got = sorted((r[S.EVENT_ID], r[S.DS]) for r in deliveries.kept(flagged).collect())
    assert got == [("e1", D1), ("e2", D2), ("e3", D1)]
    assert sorted((r[S.EVENT_ID], r[S.EVENT_TYPE], r[deliveries.DROP_REASON]) for r in flagged.collect()
                  if r[deliveries.DROP_REASON]) == [("e1", "view", "redelivered"), ("e3", "purchase", "reused_event_id"),
                                                    ("e3", "view", "reused_event_id")]
    assert deliveries.dropped_by_reason(flagged) == {"redelivered": 1, "reused_event_id": 2}


def test_run_build_tables_uses_the_lookback_window_and_keeps_ids(spark, lake):
    def day(ds, rows):
        lake.write_table(events(spark, [r + (ds,) for r in rows]).drop(S.DS), S.EVENTS_CLEAN, ds)

    day("2026-11-01", [("e0", "u_old", "i_old", "view", None, t(1, 1), None)])
    day(D1, [("e1", "u1", "i1", "view", None, t(26, 1), None),
             ("e2", "u1", "i2", "view", None, t(26, 2), None),
             ("e3", "u1", "i3", "view", None, t(26, 3), None)])
    report1 = B.run_build_tables(spark, lake, BuildConfig(lookback_days=3), TrainConfig(num_proc=2), D1)
    assert report1["window"] == ["2026-11-24", D1] and report1["n_users"] == 1
    day(D2, [("e4", "u2", "i2", "view", None, t(27, 1), None),
             ("e5", "u2", "i4", "view", None, t(27, 2), None),
             ("e3", "u2", "i9", "view", None, t(27, 3), None)])
    report2 = B.run_build_tables(spark, lake, BuildConfig(lookback_days=3), TrainConfig(num_proc=2), D2)
    assert report2["pairs_by_split"] == {"train": 3, "validation": 1, "test": 1}
    # e3 re-used on D2 for another event: left out, and counted (the window's rows add up)
    assert (report2["events_in_window"], report2["events_used"], report2["events_dropped_by_reason"]) == (
        6, 5, {"redelivered": 0, "reused_event_id": 1})
    assert (report1["events_in_window"], report1["events_used"]) == (3, 3)
    items = {r[S.ITEM_ID]: r[S.ITEM_IDX] for r in lake.read_table(S.ITEM_VOCAB, D2, "").collect()}
    assert items == {"i1": 0, "i2": 1, "i3": 2, "i4": 3}  # i_old is outside both windows
    # Train files: num_proc x train_files_per_rank, so each rank gets the same number of files.
    assert len([f for f in lake.spark.read.parquet(lake.partition_path(S.TRAIN, D2)).inputFiles()]) == 4
    # Re-running D1 rebuilds D1 from the vocabulary before D1 (none), touching nothing of D2.
    before = sorted(map(tuple, lake.read_table(S.TEST, D2, "").collect()))
    B.run_build_tables(spark, lake, BuildConfig(lookback_days=3), TrainConfig(num_proc=2), D1)
    assert sorted(map(tuple, lake.read_table(S.TEST, D2, "").collect())) == before
    with pytest.raises(MissingInputError, match="run `python -m jobs.clean_events --ds 2026-11-28"):
        B.run_build_tables(spark, lake, BuildConfig(), TrainConfig(), "2026-11-28")


def test_train_pairs_a_derived_table_leaves_out_are_counted_by_reason(spark, lake):
    """One user, 6 items: leave-last-out gives 4 train pairs. sequences keep the last 2 (2 left out by
    build.sequence_length), item_cooccurrence the last 3 (1 left out by cooccurrence_max_items_per_user)."""
    rows = [(f"e{k}", "u1", f"i{k}", "view", None, t(26, k + 1), None, D1) for k in range(6)]
    lake.write_table(events(spark, rows).drop(S.DS), S.EVENTS_CLEAN, D1)
    report = B.run_build_tables(spark, lake, BuildConfig(sequence_length=2, cooccurrence_max_items_per_user=3),
                                TrainConfig(num_proc=2), D1)
    assert report["pairs_by_split"] == {"train": 4, "validation": 1, "test": 1}
    assert report["train_pairs_left_out_by_reason"] == {"sequence_length": 2, "cooccurrence_max_items_per_user": 1}
    (history,) = [r[S.HISTORY] for r in lake.read_table(S.SEQUENCES, D1, "").collect()]
    items = {r[S.ITEM_ID]: r[S.ITEM_IDX] for r in lake.read_table(S.ITEM_VOCAB, D1, "").collect()}
    assert history == [items["i2"], items["i3"]]  # the two latest train items
    pairs = {tuple(sorted((r[S.ITEM_IDX], r[S.NEIGHBOR_IDX]))) for r in lake.read_table(S.ITEM_COOCCURRENCE, D1, "").collect()}
    assert pairs == {tuple(sorted((items[a], items[b]))) for a, b in (("i1", "i2"), ("i1", "i3"), ("i2", "i3"))}
