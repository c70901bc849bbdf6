"""What a new version of ``recommendations`` must satisfy before it is published, checked on the files
written (``recsys_spark/publication.py`` calls :func:`validate_version` between writing and switching).

One scan of the new table builds each user's list, which meets the user's history once: coverage, length,
repeats, seen and unavailable items, model versions, reasons. Nulls are looked for only in the columns
that the files' footers do not declare REQUIRED. Every check is exact.
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
    from recsys_spark.io.footers import required_columns

    recs = spark.read.parquet(path)
    unavailable = [] if expect.unavailable_df is None else [r[0] for r in expect.unavailable_df.distinct().collect()]
    # a column the files declare REQUIRED holds no null by format: only the others are scanned for nulls
    nullable = [c for c in S.RECOMMENDATIONS_SCHEMA.fieldNames() if c not in required_columns(spark, path)]
    found = checks(recs, nullable, expect, unavailable)
    problems = []
    if found["nulls"]:
        problems.append(f"{found['nulls']} row(s) with a null")
    if found["seen"]:
        problems.append(f"{found['seen']} recommended item(s) already in the user's history")
    if found["unavailable"]:
        problems.append(f"{found['unavailable']} recommended item(s) marked unavailable")
    if found["versions"] != [expect.model_version]:
        problems.append(f"model_version {found['versions']} instead of the approved {expect.model_version}")
    for key, text in (("uncovered", "active user(s) without a list"), ("unknown", "user(s) who are not active"),
                      ("duplicated", "user(s) with a repeated item"),
                      ("wrong_length", f"user(s) whose list is not {expect.top_n} long (or every unseen item)"),
                      ("unknown_reason", f"user(s) whose reason is not one of {', '.join(REASONS)}")):
        if found[key]:
            problems.append(f"{found[key]} {text}")
    if problems:
        raise DataQualityError(f"the new recommendations at {path} failed validation: {'; '.join(problems)}. "
                               f"Nothing was published: the current version stays; the next run removes this one.")
    return {"users": found["users"], "rows": found["rows"],
            "users_by_reason": {reason: found[reason] for reason in REASONS if found[reason]}}


def checks(recs: DataFrame, nullable, expect: Expectations, unavailable) -> Dict:
    """Counts of rows and users by problem: one scan of the table into per-user lists, met with each
    active user's history."""
    is_null = F.expr(" OR ".join(f"`{c}` IS NULL" for c in nullable) or "false").cast("long")
    per_user = recs.groupBy(S.USER_ID).agg(
        F.collect_list(S.ITEM_ID).alias("items"), F.first(S.REASON).alias("reason"), F.sum(is_null).alias("nulls"),
        F.collect_set(S.MODEL_VERSION).alias("versions"))
    histories = expect.seen_df.groupBy(S.USER_ID).agg(F.collect_set(S.ITEM_ID).alias("seen"))
    active = histories.select(S.USER_ID) if expect.active_df is None else expect.active_df.distinct()
    joined = (active.withColumn("active", F.lit(True)).join(histories, S.USER_ID, "left")
              .join(per_user, S.USER_ID, "full_outer"))

    def size(column):  # (0 for a missing array)
        return F.coalesce(F.size(column), F.lit(0))

    def users(condition):
        return F.sum(condition.cast("long"))

    listed = F.col("items").isNotNull()
    seen = F.coalesce(F.col("seen"), F.array().cast("array<string>"))
    unavailable_items = F.array(*[F.lit(i) for i in unavailable]).cast("array<string>")
    # how many candidates the (active) user has already seen: the list is shorter only when few are left
    left = F.lit(expect.n_candidates) - size(F.array_except(seen, unavailable_items))
    expected_n = F.when(F.col("active"), F.least(F.lit(expect.top_n), left))
    out = joined.agg(
        users(~listed & (expected_n > 0)).alias("uncovered"),  # (0: nothing left)
        users(F.col("active").isNull()).alias("unknown"),
        users(listed & (size("items") != size(F.array_distinct("items")))).alias("duplicated"),
        users(listed & (size("items") != expected_n)).alias("wrong_length"),
        # (distinct items of a list: a repeat is counted as such)
        F.sum(size(F.array_intersect("items", seen))).alias("seen"),
        F.sum(size(F.array_intersect("items", unavailable_items))).alias("unavailable"),
        users(listed).alias("users"), F.sum(size("items")).alias("rows"), F.sum("nulls").alias("nulls"),
        F.array_distinct(F.flatten(F.collect_list("versions"))).alias("versions"),
        users(listed & ~F.col("reason").isin(*REASONS)).alias("unknown_reason"),
        *[users(listed & (F.col("reason") == reason)).alias(reason) for reason in REASONS],
    ).first().asDict()
    versions = sorted(out.pop("versions") or [])
    return dict({key: int(value or 0) for key, value in out.items()}, versions=versions)
