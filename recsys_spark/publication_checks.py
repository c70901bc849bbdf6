"""What a new version of ``recommendations`` must satisfy before it is published, checked on the files
written (``recsys_spark/publication.py`` calls :func:`validate_version` between writing and switching).

Two passes over the new table: one over its rows (count, nulls, model versions, unavailable items; no
shuffle), one over each user's list (coverage, length, repeats, seen items, reason), which meets each
user's history once. Every check is exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from recsys_spark import schemas as S
from recsys_spark.errors import DataQualityError
from recsys_spark.fallback import CONTENT_FALLBACK, MODEL, POPULARITY_FALLBACK

REASONS = (MODEL, CONTENT_FALLBACK, POPULARITY_FALLBACK)


@dataclass
class Expectations:
    """What a valid table for one day holds.

    Args:
        seen_df: (user_id, item_id) pairs that may not be recommended (every active user's history up to
            ds, or its interactions of ``score.exclude_event_types``).
        top_n: list length, unless the user has fewer unseen candidates.
        n_candidates: how many items can be recommended at all.
        model_version: the version the gate approved; every row must carry it.
        unavailable_df: (item_id) of items that must not be recommended today (not among the candidates).
        active_df: (user_id) of every active user, who must get a list (default: the users of ``seen_df``).
    """

    seen_df: DataFrame
    top_n: int
    n_candidates: int
    model_version: str
    unavailable_df: Optional[DataFrame] = None
    active_df: Optional[DataFrame] = None


def validate_version(spark, path: str, expect: Expectations) -> Dict:
    """Checks a written version; raises DataQualityError listing every failed check. Returns
    ``{"users", "rows", "users_by_reason"}``."""
    recs = spark.read.parquet(path)
    unavailable = [] if expect.unavailable_df is None else [r[0] for r in expect.unavailable_df.distinct().collect()]
    rows = row_checks(recs, unavailable)
    lists = list_checks(recs, expect, unavailable)
    problems = []
    if rows["nulls"]:
        problems.append(f"{rows['nulls']} row(s) with a null")
    if lists["seen"]:
        problems.append(f"{lists['seen']} recommended item(s) already in the user's history")
    if rows["unavailable"]:
        problems.append(f"{rows['unavailable']} recommended item(s) marked unavailable")
    if rows["versions"] != [expect.model_version]:
        problems.append(f"model_version {rows['versions']} instead of the approved {expect.model_version}")
    for key, text in (("uncovered", "active user(s) without a list"), ("unknown", "user(s) who are not active"),
                      ("duplicated", "user(s) with a repeated item"),
                      ("wrong_length", f"user(s) whose list is not {expect.top_n} long (or every unseen item)"),
                      ("unknown_reason", f"user(s) whose reason is not one of {', '.join(REASONS)}")):
        if lists[key]:
            problems.append(f"{lists[key]} {text}")
    if problems:
        raise DataQualityError(f"the new recommendations at {path} failed validation: {'; '.join(problems)}. "
                               f"Nothing was published: the current version stays; the next run removes this one.")
    return {"users": lists["users"], "rows": rows["rows"],
            "users_by_reason": {reason: lists[reason] for reason in REASONS if lists[reason]}}


def row_checks(recs: DataFrame, unavailable) -> Dict:
    """Rows, rows with a null, distinct model versions (sorted) and rows of unavailable items: one scan."""
    is_null = F.expr(" OR ".join(f"`{c}` IS NULL" for c in S.RECOMMENDATIONS_SCHEMA.fieldNames())).cast("long")
    is_unavailable = F.col(S.ITEM_ID).isin(unavailable) if unavailable else F.lit(False)
    out = recs.agg(F.count(F.lit(1)).alias("rows"), F.sum(is_null).alias("nulls"),
                   F.sum(is_unavailable.cast("long")).alias("unavailable"),
                   F.collect_set(S.MODEL_VERSION).alias("versions")).first().asDict()
    return {"rows": int(out["rows"]), "nulls": int(out["nulls"] or 0), "unavailable": int(out["unavailable"] or 0),
            "versions": sorted(out["versions"] or [])}


def list_checks(recs: DataFrame, expect: Expectations, unavailable) -> Dict:
    """Counts of users by problem over (active user, history, list) triples, and listed users by reason."""
    per_user = recs.groupBy(S.USER_ID).agg(F.collect_list(S.ITEM_ID).alias("items"), F.first(S.REASON).alias("reason"))
    histories = expect.seen_df.groupBy(S.USER_ID).agg(F.collect_set(S.ITEM_ID).alias("seen"))
    active = histories.select(S.USER_ID) if expect.active_df is None else expect.active_df.distinct()
    joined = (active.withColumn("active", F.lit(True)).join(histories, S.USER_ID, "left")
              .join(per_user, S.USER_ID, "full_outer"))

    def size(column):  # (0 for a missing array)
        return F.coalesce(F.size(column), F.lit(0))

    listed = F.col("items").isNotNull()
    seen = F.coalesce(F.col("seen"), F.array().cast("array<string>"))
    unavailable_items = F.array(*[F.lit(i) for i in unavailable]).cast("array<string>")
    # how many candidates the (active) user has already seen: the list is shorter only when few are left
    expected_n = F.when(F.col("active"), F.least(F.lit(expect.top_n),
                                                 F.lit(expect.n_candidates) - size(F.array_except(seen, unavailable_items))))

    def users(condition):
        return F.sum(condition.cast("long"))

    out = joined.agg(
        users(~listed & (expected_n > 0)).alias("uncovered"),  # (0: nothing left)
        users(F.col("active").isNull()).alias("unknown"),
        users(listed & (size("items") != size(F.array_distinct("items")))).alias("duplicated"),
        users(listed & (size("items") != expected_n)).alias("wrong_length"),
        F.sum(size(F.array_intersect("items", seen))).alias("seen"),  # (distinct items; repeats are counted apart)
        users(listed).alias("users"),
        users(listed & ~F.col("reason").isin(*REASONS)).alias("unknown_reason"),
        *[users(listed & (F.col("reason") == reason)).alias(reason) for reason in REASONS],
    ).first().asDict()
    return {key: int(value or 0) for key, value in out.items()}
