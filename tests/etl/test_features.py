import datetime as dt
import json
import math

import numpy as np
import pytest
from chispa import assert_df_equality

from recsys_spark import schemas as S
from recsys_spark.etl import build as B
from recsys_spark.etl import splits
from recsys_spark.etl import features as FT

DS = "2026-11-27"


def t(day, hour=0, minute=0):
    return dt.datetime(2026, 11, day, hour, minute)


def interactions(spark, rows):
    """rows: (user, item, first_day, split[, tie_break])"""
    return spark.createDataFrame(
        [(r[0], r[1], 1.0, 1, None, t(r[2]), t(r[2]), r[4] if len(r) > 4 else 0, r[3], ["view"]) for r in rows],
        S.INTERACTIONS_SCHEMA)


def test_sequences_are_left_padded_last_train_items(spark):
    df = interactions(spark, [
        (0, 5, 1, "train"), (0, 3, 2, "train"), (0, 9, 3, "train"), (0, 4, 4, "validation"), (0, 7, 5, "test"),
        (1, 2, 1, "train"),
    ])
    expected = spark.createDataFrame(
        [(0, [3, 9], 2, [4], [7]), (1, [S.PAD_ITEM, 2], 1, [], [])], S.SEQUENCES_SCHEMA)
    assert_df_equality(FT.sequences(df, 2).orderBy(S.USER_IDX), expected, ignore_nullable=True)


def test_sequences_order_same_time_items_by_the_tie_hash_not_the_index(spark):
    # Items 9, 2 and 5 share a first time; their order follows tie_break (30 < 40 < 50), not the index.
    df = interactions(spark, [(0, 9, 1, "train", 50), (0, 2, 1, "train", 40), (0, 5, 1, "train", 30),
                              (0, 1, 2, "validation", 0)])
    assert FT.sequences(df, 4).first()[S.HISTORY] == [S.PAD_ITEM, 5, 2, 9]


def test_graph_degrees_and_cooccurrence(spark):
    df = interactions(spark, [
        (0, 1, 1, "train"), (0, 2, 2, "train"), (0, 3, 3, "train"),
        (1, 1, 1, "train"), (1, 2, 2, "train"), (1, 3, 9, "test"),
        (2, 1, 1, "train"),
    ])
    train = B.select_pairs(df, S.SPLIT_TRAIN)
    degrees = {(r[S.NODE_TYPE], r[S.NODE_IDX]): r[S.DEGREE] for r in FT.graph_degrees(train).collect()}
    assert degrees == {("user", 0): 3, ("user", 1): 2, ("user", 2): 1, ("item", 1): 3, ("item", 2): 2, ("item", 3): 1}
    co = sorted(tuple(r) for r in FT.item_cooccurrence(df, top_k=1, max_items_per_user=10).collect())
    # item 1 with 2 (users 0, 1) beats 1 with 3 (user 0); the test item 3 of user 1 is not counted.
    assert co == [(1, 2, 2, 1), (2, 1, 2, 1), (3, 1, 1, 1)]


def test_cooccurrence_matches_a_count_by_hand_over_many_users_partitions_and_arrow_batches(spark):
    """Pairs are counted per task from whole users, in Arrow batches of 7 rows here: a user's items may lie in
    several batches, never in several tasks. Each user's latest 4 train items only (first day, then tie hash)."""
    rng = np.random.default_rng(3)
    rows = []
    for user in range(40):
        items = rng.choice(12, size=rng.integers(1, 8), replace=False)
        rows += [(user, int(item), int(rng.integers(1, 20)), "train" if rng.random() < 0.8 else "test",
                  int(rng.integers(-50, 50))) for item in items]
    latest = {}
    for user, item, day, split, tie in rows:
        if split == "train":
            latest.setdefault(user, []).append((day, tie, item))
    counts = {}
    for kept in latest.values():
        kept = [item for _, _, item in sorted(kept, reverse=True)[:4]]
        for a in kept:
            for b in kept:
                if a != b:
                    counts[(a, b)] = counts.get((a, b), 0) + 1
    expected = []
    for item in sorted({a for a, _ in counts}):
        neighbours = sorted(((-n, b) for (a, b), n in counts.items() if a == item))[:3]
        expected += [(item, b, -n, rank) for rank, (n, b) in enumerate(neighbours, start=1)]
    previous = spark.conf.get("spark.sql.execution.arrow.maxRecordsPerBatch")
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "7")
    try:
        got = FT.item_cooccurrence(interactions(spark, rows).repartition(3), top_k=3, max_items_per_user=4).collect()
    finally:
        spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", previous)
    assert sorted(tuple(r) for r in got) == sorted(expected)


def test_item_features(spark):
    vocab = spark.createDataFrame([("a", 0, DS), ("b", 1, DS), ("c", 2, DS)], S.VOCAB_SCHEMAS[S.ITEM_VOCAB])
    train = spark.createDataFrame([(0, 0, 1.0, None), (1, 0, 1.0, None), (1, 1, 1.0, 4.0)], S.PAIRS_SCHEMA)
    catalog = spark.createDataFrame(
        [("a", "Red Lamp", "home", None, ["x", "y"], 10.0), ("b", "red red kettle", None, ["kitchen", "home"], None, None)],
        S.RAW_ITEM_SCHEMA)
    rows = {r[S.ITEM_IDX]: r for r in FT.item_features(vocab, train, catalog, 64).collect()}
    assert rows[0][S.CATEGORY_MULTI_HOT] == [1.0, 0.0] and rows[1][S.CATEGORY_MULTI_HOT] == [1.0, 1.0]
    assert rows[2][S.CATEGORY_MULTI_HOT] == [0.0, 0.0] and rows[2][S.TITLE_TFIDF_INDICES] == []  # not in catalog
    assert rows[0][S.TAG_IDS] == [0, 1] and rows[1][S.TAG_IDS] == []
    assert [rows[i][S.TRAIN_USERS] for i in range(3)] == [2, 1, 0]
    assert rows[0][S.PRICE] == 10.0 and rows[1][S.PRICE] is None
    # "red" is in both titles: idf ln(3/3) = 0; "lamp" once: ln(3/2); "red" twice in b: tf 2 x 0.
    weights_b = dict(zip(rows[1][S.TITLE_TFIDF_INDICES], rows[1][S.TITLE_TFIDF_VALUES]))
    weights_a = dict(zip(rows[0][S.TITLE_TFIDF_INDICES], rows[0][S.TITLE_TFIDF_VALUES]))
    assert sorted(weights_a.values()) == pytest.approx([0.0, math.log(1.5)])
    assert sorted(weights_b.values()) == pytest.approx([0.0, math.log(1.5)])
    assert rows[0][S.TITLE_TFIDF_INDICES] == sorted(rows[0][S.TITLE_TFIDF_INDICES])


def test_time_cut_split(spark):
    events = spark.createDataFrame(
        [(0, 0, 1.0, None, t(20), 7, "view"), (0, 0, 2.0, None, t(26, 3), 7, "click"),  # train, cut at 26
         (0, 1, 1.0, None, t(26, 5), 8, "view"), (0, 2, 1.0, 4.0, t(27, 23), 9, "rating"),
         (0, 2, 5.0, None, t(27, 23, 30), 9, "purchase"), (1, 0, 1.0, None, t(25), 3, "view"),
         (1, 0, 3.0, None, t(27), 3, "add_to_cart")],
        "user_idx int, item_idx int, weight double, rating double, event_ts timestamp, tie_break long, "
        "event_type string")
    v_start, t_start = splits.time_cut_bounds(DS, test_days=1, validation_days=1)
    assert (v_start, t_start) == (t(26), t(27))
    got = sorted(tuple(r) for r in splits.time_cut_interactions(events, v_start, t_start).collect())
    assert got == [
        (0, 0, 1.0, 1, None, t(20), t(20), 7, "train", ["view"]),  # the click after the cut is not train's
        (0, 1, 1.0, 1, None, t(26, 5), t(26, 5), 8, "validation", ["view"]),
        (0, 2, 6.0, 2, 4.0, t(27, 23), t(27, 23, 30), 9, "test", ["purchase", "rating"]),  # all their events
        (1, 0, 1.0, 1, None, t(25), t(25), 3, "train", ["view"]),
    ]


def test_adjacency_from_parquet_without_spark(spark, lake):
    train = spark.createDataFrame([(0, 0, 1.0, None), (0, 1, 1.0, None), (1, 1, 1.0, None)], S.PAIRS_SCHEMA)
    path = lake.write_table(FT.graph_edges(train), S.GRAPH_EDGES, DS)
    rows, cols, weights, shape = FT.load_adjacency(path, n_users=2, n_items=2)
    dense = np.zeros(shape)
    dense[rows, cols] = weights
    expected = np.zeros((4, 4))
    for u, i, w in [(0, 0, 1 / math.sqrt(2)), (0, 1, 1 / 2), (1, 1, 1 / math.sqrt(2))]:
        expected[u, 2 + i] = expected[2 + i, u] = w
    np.testing.assert_allclose(dense, expected, rtol=1e-6)
    # The same pairs (one repeated) normalised without Spark give the same matrix.
    rows2, cols2, weights2, _ = FT.normalized_adjacency(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), 2, 2)
    np.testing.assert_array_equal(rows2, rows)
    np.testing.assert_array_equal(cols2, cols)
    np.testing.assert_allclose(weights2, weights, rtol=1e-6)


@pytest.mark.slow
def test_nothing_from_validation_or_test_reaches_train_tables(spark, lake, tiny_cfg):
    """Build on generated data, then check every train-side table against the held-out pairs and times."""
    from recsys_spark.data.synthetic import write_raw
    from recsys_spark.etl.clean_events import run_clean_events

    write_raw(tiny_cfg.generate, lake.root, DS)
    run_clean_events(spark, lake, tiny_cfg.clean, DS)
    B.run_build_tables(spark, lake, tiny_cfg.build, tiny_cfg.train, DS)
    inter = lake.read_table(S.INTERACTIONS, DS, "")
    held = {(r[0], r[1]): r[2] for r in inter.filter(f"{S.SPLIT} != 'train'").select(S.USER_IDX, S.ITEM_IDX, S.FIRST_TS).collect()}
    validation_pairs = {(r[0], r[1]) for r in lake.read_table(S.VALIDATION, DS, "").collect()}
    validation_ts = {u: ts for (u, i), ts in held.items() if (u, i) in validation_pairs}
    train_rows = inter.filter(f"{S.SPLIT} = 'train'").collect()
    assert held and train_rows and validation_ts
    for r in train_rows:
        assert (r[S.USER_IDX], r[S.ITEM_IDX]) not in held
        if r[S.USER_IDX] in validation_ts:
            assert r[S.LAST_TS] <= validation_ts[r[S.USER_IDX]]  # no event after the cut-off
    for table in (S.TRAIN, S.GRAPH_EDGES):
        pairs = {(r[0], r[1]) for r in lake.read_table(table, DS, "").select(S.USER_IDX, S.ITEM_IDX).collect()}
        assert not pairs & set(held), table
    for r in lake.read_table(S.SEQUENCES, DS, "").collect():
        assert not {(r[S.USER_IDX], i) for i in r[S.HISTORY]} & set(held)
    train_users = {}
    for r in lake.read_table(S.TRAIN, DS, "").collect():
        train_users.setdefault(r[S.ITEM_IDX], set()).add(r[S.USER_IDX])
    for r in lake.read_table(S.ITEM_FEATURES, DS, "").collect():
        assert r[S.TRAIN_USERS] == len(train_users.get(r[S.ITEM_IDX], ()))
    degrees = {(r[0], r[1]): r[2] for r in lake.read_table(S.GRAPH_DEGREES, DS, "").collect()}
    assert sum(v for (kind, _), v in degrees.items() if kind == "item") == len(train_rows)
    co_users = lake.read_table(S.ITEM_COOCCURRENCE, DS, "").count()
    assert co_users > 0
    report = json.loads(open(f"{lake.root}/_reports/build_tables/ds={DS}/report.json").read())
    assert report["catalog_ds"] == DS and report["pairs_by_split"]["train"] == len(train_rows)
