"""What a new version of ``recommendations`` must satisfy before it is published, checked on the files
written (``recsys_spark/publication.py`` calls :func:`validate_version` between writing and switching).

The executors read the new files with pyarrow (``recsys_spark/publication_lists.py``) and turn them into
each user's list of item numbers (the catalogue's order), with counts of the rows that break a rule on
their own; Spark then merges a user's partial lists (a user's rows may lie in several files), meets each
list with the user's history once and counts every problem: coverage, length, repeats, seen and
unavailable items, items outside the catalogue, model versions, reasons, nulls. Nulls are looked for only
in the columns that a file's footer does not declare REQUIRED. Every check is exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from recsys_spark import schemas as S
from recsys_spark.errors import DataQualityError
from recsys_spark.fallback import CONTENT_FALLBACK, MODEL, POPULARITY_FALLBACK
from recsys_spark.publication_lists import CODE, per_user_lists

REASONS = (MODEL, CONTENT_FALLBACK, POPULARITY_FALLBACK)


@dataclass
class Expectations:
    """What a valid table for one day holds.

    Args:
        seen_df: (user_id, item_id) pairs that may not be recommended (every active user's history up to
            ds, or its interactions of ``score.exclude_event_types``); or (user_id, item_idx), item numbers
            into ``item_ids``.
        top_n: list length, unless the user has fewer unseen candidates.
        n_candidates: how many items can be recommended at all.
        model_version: the version the gate approved; every row must carry it.
        unavailable_df: (item_id) of items that must not be recommended today (not among the candidates).
        active_df: (user_id) of every active user, who must get a list (default: the users of ``seen_df``).
        item_ids: the catalogue, item id by item number; a recommended item outside it is refused
            (default: every item of the table and of ``seen_df``).
    """

    seen_df: DataFrame
    top_n: int
    n_candidates: int
    model_version: str
    unavailable_df: Optional[DataFrame] = None
    active_df: Optional[DataFrame] = None
    item_ids: Optional[np.ndarray] = None


def validate_version(spark, path: str, expect: Expectations) -> Dict:
    """Checks a written version; raises DataQualityError listing every failed check. Returns
    ``{"users", "rows", "users_by_reason"}``."""
    item_ids = expect.item_ids
    if item_ids is None:
        item_ids = np.array(sorted(r[0] for r in spark.read.parquet(path).select(S.ITEM_ID).union(
            expect.seen_df.select(S.ITEM_ID)).distinct().collect()), dtype=object)
    number = {item: i for i, item in enumerate(item_ids)}
    unavailable = [] if expect.unavailable_df is None else sorted(
        {number.get(r[0], -1) for r in expect.unavailable_df.distinct().collect()} - {-1})
    lists = per_user_lists(spark, path, item_ids, np.array(unavailable, np.int64))
    found = checks(lists, seen_numbers(spark, expect, item_ids), expect, unavailable)
    problems = []
    if found["nulls"]:
        problems.append(f"{found['nulls']} row(s) with a null")
    if found["outside"]:
        problems.append(f"{found['outside']} recommended item(s) outside the catalogue")
    if found["seen"]:
        problems.append(f"{found['seen']} recommended item(s) already in the user's history")
    if found["unavailable"]:
        problems.append(f"{found['unavailable']} recommended item(s) marked unavailable")
    if found["versions"] != [expect.model_version]:
        problems.append(f"model_version {found['versions']} instead of the approved {expect.model_version}")
    for key, text in (("uncovered", "active user(s) without a list"), ("unknown", "user(s) who are not active"),
                      ("duplicated", "user(s) with a repeated item"),
                      ("wrong_length", f"user(s) whose list is not {expect.top_n} long (or every unseen item)"),
                      ("unknown_reason", f"user(s) whose reason is not one of {', '.join(REASONS)}"),
                      ("mixed_reasons", "user(s) whose rows give more than one reason")):
        if found[key]:
            problems.append(f"{found[key]} {text}")
    if problems:
        raise DataQualityError(f"the new recommendations at {path} failed validation: {'; '.join(problems)}. "
                               f"Nothing was published: the current version stays; the next run removes this one.")
    return {"users": found["users"], "rows": found["rows"],
            "users_by_reason": {reason: found[reason] for reason in REASONS if found[reason]}}


def seen_numbers(spark, expect: Expectations, item_ids: np.ndarray) -> DataFrame:
    """(user_id, item number) of ``expect.seen_df``; seen items outside the catalogue are no candidates
    and are left out."""
    if S.ITEM_IDX in expect.seen_df.columns:
        return expect.seen_df.select(S.USER_ID, F.col(S.ITEM_IDX).alias(CODE))
    catalogue = spark.createDataFrame([(str(item), i) for i, item in enumerate(item_ids) if item is not None],
                                      f"{S.ITEM_ID} string, {CODE} int")
    return expect.seen_df.join(F.broadcast(catalogue), S.ITEM_ID).select(S.USER_ID, CODE)


def checks(lists: DataFrame, seen_df: DataFrame, expect: Expectations, unavailable) -> Dict:
    """Counts of rows and users by problem: each user's list (merged over the files) met with each active
    user's history."""
    per_user = lists.groupBy(S.USER_ID).agg(
        F.flatten(F.collect_list("items")).alias("items"), F.sum("rows").alias("rows"),
        F.sum("outside").alias("outside"), F.sum("unavailable").alias("unavailable"), F.sum("nulls").alias("nulls"),
        F.array_distinct(F.flatten(F.collect_list("reasons"))).alias("reasons"),
        F.array_distinct(F.flatten(F.collect_list("versions"))).alias("versions"))
    histories = seen_df.groupBy(S.USER_ID).agg(F.collect_set(CODE).alias("seen"))
    active = histories.select(S.USER_ID) if expect.active_df is None else expect.active_df.distinct()
    joined = (active.withColumn("active", F.lit(True)).join(histories, S.USER_ID, "left")
              .join(per_user, S.USER_ID, "full_outer"))

    def size(column):  # (0 for a missing array)
        return F.coalesce(F.size(column), F.lit(0))

    def users(condition):
        return F.sum(condition.cast("long"))

    listed = F.col("items").isNotNull()
    seen = F.coalesce(F.col("seen"), F.array().cast("array<int>"))
    unavailable_items = F.array(*[F.lit(int(i)) for i in unavailable]).cast("array<int>")
    # how many candidates the (active) user has already seen: the list is shorter only when few are left
    left = F.lit(expect.n_candidates) - size(F.array_except(seen, unavailable_items))
    expected_n = F.when(F.col("active"), F.least(F.lit(expect.top_n), left))
    reason = F.col("reasons")[0]
    out = joined.agg(
        users(~listed & (expected_n > 0)).alias("uncovered"),  # (0: nothing left)
        users(F.col("active").isNull()).alias("unknown"),
        users(listed & (size("items") != size(F.array_distinct("items")))).alias("duplicated"),
        users(listed & (F.col("rows") != expected_n)).alias("wrong_length"),
        # (distinct items of a list: a repeat is counted as such)
        F.sum(size(F.array_intersect("items", seen))).alias("seen"),
        F.sum("unavailable").alias("unavailable"), F.sum("outside").alias("outside"),
        users(listed).alias("users"), F.sum("rows").alias("rows"), F.sum("nulls").alias("nulls"),
        F.array_distinct(F.flatten(F.collect_list("versions"))).alias("versions"),
        users(listed & (size("reasons") == 1) & ~F.coalesce(reason.isin(*REASONS), F.lit(False))).alias("unknown_reason"),
        users(listed & (size("reasons") > 1)).alias("mixed_reasons"),
        *[users(listed & (size("reasons") == 1) & (reason == r)).alias(r) for r in REASONS],
    ).first().asDict()
    versions = sorted(out.pop("versions") or [])
    return dict({key: int(value or 0) for key, value in out.items()}, versions=versions)
