"""Versioned, validated, atomic publication of the ``recommendations`` table.

Layout under ``<lake>/recommendations/``::

    _versions/ds=<ds>/v=<version>/   one scoring run's table (Parquet); ``_MANIFEST.json`` once valid
    _versions/ds=<ds>/_CURRENT       JSON manifest of the version that is current for that day
    _LATEST                          JSON manifest of the newest day's current version (what readers follow)
    ds=<ds>                          the current version for Spark readers (a symlink on a local lake)

A run writes a new version, validates it, marks it valid, then switches ``ds=<ds>``, ``_CURRENT`` and
``_LATEST``, each in one rename, and prunes old versions beyond ``score.keep_versions``. A crash at any step
leaves the previous version current and readable; the day's next run removes versions that never became
valid (another day's, whose scoring may be running, are left alone).
``python -m jobs.publish --rollback --ds D`` makes an earlier valid version of D current.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Dict, List, Optional

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from recsys_spark import schemas as S
from recsys_spark.errors import DataQualityError, MissingInputError

VERSIONS = "_versions"
CURRENT = "_CURRENT"
LATEST = "_LATEST"
VALID = "_MANIFEST.json"  # written once a version passed validation: its manifest


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


def day_root(lake, ds: str) -> str:
    return f"{lake.table_path(S.RECOMMENDATIONS)}/{VERSIONS}/ds={ds}"


def version_path(lake, ds: str, version: str) -> str:
    return f"{day_root(lake, ds)}/v={version}"


def new_version() -> str:
    """Sorts by creation time: ``20261130T012345Z-1a2b3c``."""
    return f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{uuid.uuid4().hex[:6]}"


def valid_versions(lake, ds: str) -> List[str]:
    """The day's versions that passed validation, oldest first."""
    root = day_root(lake, ds)
    return [name[2:] for name in lake.list_names(root)
            if name.startswith("v=") and lake.exists(f"{root}/{name}/{VALID}")]


def current(lake, ds: str) -> Optional[Dict]:
    path = f"{day_root(lake, ds)}/{CURRENT}"
    return json.loads(lake.read_text(path)) if lake.exists(path) else None


def latest(lake) -> Optional[Dict]:
    path = f"{lake.table_path(S.RECOMMENDATIONS)}/{LATEST}"
    return json.loads(lake.read_text(path)) if lake.exists(path) else None


def published_days(lake) -> List[str]:
    """Days with a current version, sorted."""
    root = f"{lake.table_path(S.RECOMMENDATIONS)}/{VERSIONS}"
    return [name[3:] for name in lake.list_names(root)
            if name.startswith("ds=") and lake.exists(f"{root}/{name}/{CURRENT}")]


def clean_staging(lake, ds: str, stale_s: float = 3600.0) -> List[str]:
    """Removes the day's versions that never passed validation (left by a crash or a failed check) and
    temporary files of interrupted switches; returns what it removed. Other days are left alone (their
    scoring may be running now), except temporary files of the table's pointers older than ``stale_s``."""
    table = lake.table_path(S.RECOMMENDATIONS)
    removed = [f"{table}/{name}" for name in lake.list_names(table)
               if name.startswith("_tmp-") and lake.age_s(f"{table}/{name}") > stale_s]
    day = day_root(lake, ds)
    for entry in lake.list_names(day):
        path = f"{day}/{entry}"
        if entry.startswith("_tmp-") or (entry.startswith("v=") and not lake.exists(f"{path}/{VALID}")):
            removed.append(path)
    for path in removed:
        lake.delete(path)
    return removed


def write_version(lake, ds: str, version: str, recs_df: DataFrame) -> str:
    path = version_path(lake, ds, version)
    lake.write_parquet(recs_df, path)
    return path


def validate_version(spark, path: str, expect: Expectations) -> Dict:
    """Checks a written version; raises DataQualityError listing every failed check."""
    recs = spark.read.parquet(path)
    columns = S.RECOMMENDATIONS_SCHEMA.fieldNames()
    # One pass over the new table: each user's list as an array, then every check on (list, history) pairs.
    is_null = F.expr(" OR ".join(f"`{c}` IS NULL" for c in columns)).cast("long")
    per_user = recs.groupBy(S.USER_ID).agg(
        F.collect_list(S.ITEM_ID).alias("items"), F.sum(is_null).alias("nulls"),
        F.collect_set(S.MODEL_VERSION).alias("versions"), F.first(S.REASON).alias("reason"))
    histories = expect.seen_df.groupBy(S.USER_ID).agg(F.collect_set(S.ITEM_ID).alias("seen"))
    unavailable = [] if expect.unavailable_df is None else [r[0] for r in expect.unavailable_df.distinct().collect()]
    unavailable_items = F.array(*[F.lit(i) for i in unavailable]).cast("array<string>")
    active = expect.active_df if expect.active_df is not None else expect.seen_df.select(S.USER_ID)
    joined = (active.distinct().withColumn("active", F.lit(True)).join(histories, S.USER_ID, "left")
              .join(per_user, S.USER_ID, "full_outer").cache())

    def size(column):  # (0 for a missing array)
        return F.coalesce(F.size(column), F.lit(0))

    listed = F.col("items").isNotNull()
    seen = F.coalesce(F.col("seen"), F.array().cast("array<string>"))
    # how many candidates the (active) user has already seen: the list is shorter only when few are left
    expected_n = F.when(F.col("active"), F.least(F.lit(expect.top_n),
                                                 F.lit(expect.n_candidates) - size(F.array_except(seen, unavailable_items))))
    counts = joined.agg(
        F.sum((~listed & (expected_n > 0)).cast("long")).alias("uncovered"),  # (0: nothing left)
        F.sum(F.col("active").isNull().cast("long")).alias("unknown"),
        F.sum((listed & (size("items") != size(F.array_distinct("items")))).cast("long")).alias("duplicated"),
        F.sum((listed & (size("items") != expected_n)).cast("long")).alias("wrong_length"),
        F.sum(size(F.filter("items", lambda item: F.array_contains(seen, item)))).alias("seen"),
        F.sum(size(F.filter("items", lambda item: F.array_contains(unavailable_items, item)))).alias("unavailable"),
        F.sum(listed.cast("long")).alias("users"), F.sum(size("items")).alias("rows"), F.sum("nulls").alias("nulls"),
        F.array_distinct(F.flatten(F.collect_list("versions"))).alias("versions"),
    ).first().asDict()
    seen, unavailable = counts["seen"] or 0, counts["unavailable"] or 0
    by_reason = {r["reason"]: r["count"] for r in joined.filter(listed).groupBy("reason").count().collect()}
    joined.unpersist()
    nulls, versions = counts["nulls"] or 0, sorted(counts["versions"] or [])
    problems = []
    if nulls:
        problems.append(f"{nulls} row(s) with a null")
    if seen:
        problems.append(f"{seen} recommended item(s) already in the user's history")
    if unavailable:
        problems.append(f"{unavailable} recommended item(s) marked unavailable")
    if versions != [expect.model_version]:
        problems.append(f"model_version {versions} instead of the approved {expect.model_version}")
    for key, text in (("uncovered", "active user(s) without a list"), ("unknown", "user(s) who are not active"),
                      ("duplicated", "user(s) with a repeated item"),
                      ("wrong_length", f"user(s) whose list is not {expect.top_n} long (or every unseen item)")):
        if counts[key]:
            problems.append(f"{counts[key]} {text}")
    if problems:
        raise DataQualityError(f"the new recommendations at {path} failed validation: {'; '.join(problems)}. "
                               f"Nothing was published: the current version stays; the next run removes this one.")
    return {"users": int(counts["users"] or 0), "rows": int(counts["rows"] or 0), "users_by_reason": by_reason}


def mark_valid(lake, path: str, manifest: Dict) -> None:
    lake.write_text(f"{path}/{VALID}", json.dumps(manifest, indent=2, sort_keys=True))


def switch_partition(lake, ds: str, version: str) -> None:
    lake.point(lake.partition_path(S.RECOMMENDATIONS, ds), version_path(lake, ds, version))


def write_current(lake, ds: str, manifest: Dict) -> None:
    lake.write_text_atomic(f"{day_root(lake, ds)}/{CURRENT}", json.dumps(manifest, indent=2, sort_keys=True))


def write_latest(lake) -> Optional[Dict]:
    """Points ``_LATEST`` at the newest day's current version."""
    days = published_days(lake)
    if not days:
        return None
    manifest = current(lake, days[-1])
    lake.write_text_atomic(f"{lake.table_path(S.RECOMMENDATIONS)}/{LATEST}",
                           json.dumps(manifest, indent=2, sort_keys=True))
    return manifest


def prune_versions(lake, ds: str, keep: int) -> List[str]:
    """Deletes the day's oldest valid versions beyond ``keep``, never the current one."""
    now = (current(lake, ds) or {}).get("version")
    older = [v for v in valid_versions(lake, ds) if v != now]
    doomed = older[:max(0, len(older) - max(keep - 1, 0))]
    for version in doomed:
        lake.delete(version_path(lake, ds, version))
    return doomed


def make_current(lake, ds: str, manifest: Dict, keep: int) -> Dict:
    """Switches the day's pointer, its manifest and ``_LATEST`` to ``manifest``'s version, then prunes."""
    switch_partition(lake, ds, manifest["version"])
    write_current(lake, ds, manifest)
    write_latest(lake)
    manifest = dict(manifest, pruned=prune_versions(lake, ds, keep))
    return manifest


def publish(spark, lake, ds: str, recs_df: DataFrame, expect: Expectations, details: Dict, keep: int) -> Dict:
    """Writes, validates and publishes one scoring run's table; returns its manifest."""
    clean_staging(lake, ds)
    version = new_version()
    path = write_version(lake, ds, version, recs_df)
    summary = validate_version(spark, path, expect)
    manifest = dict(details, ds=ds, version=version, path=path, published_at_utc=time.strftime(
        "%Y-%m-%dT%H:%M:%SZ", time.gmtime()), previous_version=(current(lake, ds) or {}).get("version"), **summary)
    mark_valid(lake, path, manifest)
    return make_current(lake, ds, manifest, keep)


def rollback(lake, ds: str, version: Optional[str], keep: int) -> Dict:
    """Makes ``version`` (default: the newest valid version older than the current one) current for ``ds``."""
    now = current(lake, ds)
    if now is None:
        raise MissingInputError(f"nothing is published for ds={ds}: there is nothing to roll back")
    versions = valid_versions(lake, ds)
    if version is None:
        older = [v for v in versions if v < now["version"]]
        if not older:
            raise MissingInputError(f"ds={ds} has no valid version older than the current {now['version']} "
                                    f"(kept: {versions}); nothing to roll back to")
        version = older[-1]
    elif version not in versions:
        raise MissingInputError(f"ds={ds} has no valid version {version!r}; kept: {versions}")
    manifest = json.loads(lake.read_text(f"{version_path(lake, ds, version)}/{VALID}"))
    manifest = dict(manifest, rolled_back_from=now["version"],
                    rolled_back_at_utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    return make_current(lake, ds, manifest, keep=max(keep, len(versions)))

