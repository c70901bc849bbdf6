"""Who the champion cannot score and which fallback they get, and the recent-popularity fallback."""

import datetime as dt

import numpy as np

from recsys_spark import fallback
from recsys_spark import schemas as S


def routes(spark, min_history, needs_trained_user):
    # u0 trained, 2 items; u1 untrained, item 2 has content; u2 untrained, item 3 has none; u3 trained, 1 item.
    users = spark.createDataFrame([(0, [0, 1]), (1, [2]), (2, [3]), (3, [0])], f"{S.USER_IDX} int, {S.HISTORY} array<int>")
    trained = spark.createDataFrame([(0,), (3,)], f"{S.USER_IDX} int")
    content = spark.createDataFrame([(0,), (2,)], f"{S.ITEM_IDX} int")
    out = fallback.route_users(users, trained, content, min_history, needs_trained_user)
    return {r[S.USER_IDX]: r[fallback.ROUTE] for r in out.collect()}


def test_users_without_a_trained_vector_or_enough_history_get_a_fallback(spark):
    assert routes(spark, 1, True) == {0: "model", 1: "content_fallback", 2: "popularity_fallback", 3: "model"}
    assert routes(spark, 2, True) == {0: "model", 1: "content_fallback", 2: "popularity_fallback",
                                      3: "content_fallback"}
    # A model that reads the history (item-item, content, a sequence encoder) scores untrained users.
    assert routes(spark, 1, False) == {0: "model", 1: "model", 2: "model", 3: "model"}


def test_recent_popularity_counts_the_last_days_and_breaks_ties_by_all_time(spark):
    day = dt.datetime(2026, 11, 27, 12)
    rows = [(0, 0, day - dt.timedelta(days=30)), (1, 0, day - dt.timedelta(days=30)), (2, 0, day),
            (0, 1, day - dt.timedelta(days=1)), (1, 2, day), (2, 2, day - dt.timedelta(days=2))]
    interactions = spark.createDataFrame(rows, f"{S.USER_IDX} int, {S.ITEM_IDX} int, {S.LAST_TS} timestamp")
    prior = fallback.recent_popularity(interactions, 4, recent_days=1.5)
    # In the last 1.5 days: item 0 has 1 user, item 1 has 1, item 2 has 1 (user 2's is 2 days old), item 3 none;
    # all-time counts (3, 1, 2, 0) over 4 order the ties.
    np.testing.assert_allclose(prior, [1 + 3 / 4, 1 + 1 / 4, 1 + 2 / 4, 0.0], rtol=1e-6)
