"""Versioned publication of recommendations: validation before the switch, the pointer and manifests that
readers follow, a crash at each step leaving the previous version readable, pruning and rollback."""

import json
import os

import numpy as np
import pytest

from recsys_spark import publication
from recsys_spark import schemas as S
from recsys_spark.errors import DataQualityError, MissingInputError

from .conftest import TEST_CONF
from .test_pipeline_e2e import run_job

D1, D2 = "2026-11-26", "2026-11-27"
# Catalogue i0..i3; u1 has seen i0, u2 has seen i0..i2 (so u2 has 1 unseen item left at top_n 2).
SEEN = [("u1", "i0"), ("u2", "i0"), ("u2", "i1"), ("u2", "i2")]


def recs(spark, rows, version="v1"):
    """rows: [(user, item, rank)]"""
    return spark.createDataFrame([(u, i, r, 1.0 / r, "mf", version, "model", ["i0"], False) for u, i, r in rows],
                                 S.RECOMMENDATIONS_SCHEMA)


def good(spark, first="i1", version="v1"):
    return recs(spark, [("u1", first, 1), ("u1", "i3", 2), ("u2", "i3", 1)], version)


def expect(spark, version="v1"):
    return publication.Expectations(spark.createDataFrame(SEEN, [S.USER_ID, S.ITEM_ID]), 2, 4, version)


def publish(spark, lake, df, ds=D1, version="v1", keep=3):
    details = {"model": "mf", "model_version": version, "model_ds": ds, "top_n": 2}
    return publication.publish(spark, lake, ds, df, expect(spark, version), details, keep)


def rows_at(spark, path):
    return sorted((r[S.USER_ID], r[S.ITEM_ID], r[S.RANK]) for r in spark.read.parquet(path).collect())


def test_publish_switches_the_partition_and_the_manifests(spark, lake):
    first = publish(spark, lake, good(spark, "i1"))
    second = publish(spark, lake, good(spark, "i2"))
    link = lake.partition_path(S.RECOMMENDATIONS, D1)
    assert os.path.islink(link) and lake.pointed_at(link) == os.path.realpath(second["path"])
    assert rows_at(spark, link) == [("u1", "i2", 1), ("u1", "i3", 2), ("u2", "i3", 1)]
    # Spark readers of the whole table see the current version only, with ds as a partition column.
    table = spark.read.parquet(lake.table_path(S.RECOMMENDATIONS))
    assert sorted((r[S.ITEM_ID], str(r["ds"])) for r in table.filter("user_id = 'u1'").collect()) == [
        ("i2", D1), ("i3", D1)]
    latest = publication.latest(lake)
    assert latest == publication.current(lake, D1)
    assert (latest["version"], latest["previous_version"], latest["users"], latest["rows"]) == (
        second["version"], first["version"], 2, 3)
    assert rows_at(spark, latest["path"]) == rows_at(spark, link)
    assert publication.valid_versions(lake, D1) == sorted([first["version"], second["version"]])
    # A backfill of an earlier day does not move _LATEST off the newest day.
    publish(spark, lake, good(spark), ds=D2)
    publish(spark, lake, good(spark), ds=D1)
    assert publication.latest(lake)["ds"] == D2


def test_an_invalid_table_is_not_published_and_every_problem_is_named(spark, lake):
    before = publish(spark, lake, good(spark))
    seen_twice = [("u1", "i0", 1), ("u1", "i0", 2)]  # seen (one item), and repeated; u2 left out; u9 is not active
    with pytest.raises(DataQualityError) as refused:
        publish(spark, lake, recs(spark, seen_twice + [("u9", "i3", 1)], "v0"))
    assert str(refused.value).split("failed validation: ")[1].split(". Nothing")[0] == (
        "1 recommended item(s) already in the user's history; model_version ['v0'] instead of the approved v1; "
        "1 active user(s) without a list; 1 user(s) who are not active; 1 user(s) with a repeated item")
    with pytest.raises(DataQualityError, match=r"failed validation: 1 user\(s\) whose list is not 2 long"):
        publish(spark, lake, recs(spark, [("u1", "i1", 1), ("u2", "i3", 1)]))
    assert publication.current(lake, D1)["version"] == before["version"]
    assert rows_at(spark, lake.partition_path(S.RECOMMENDATIONS, D1)) == rows_at(spark, before["path"])
    assert publication.valid_versions(lake, D1) == [before["version"]]
    versions = [n for n in lake.list_names(publication.day_root(lake, D1)) if n.startswith("v=")]
    assert len(versions) == 2  # the last refused one waits for the next run (which removed the first)
    publish(spark, lake, good(spark, "i2"))
    assert len([n for n in lake.list_names(publication.day_root(lake, D1)) if n.startswith("v=")]) == 2


def test_an_item_marked_unavailable_is_refused(spark, lake):
    check = expect(spark)
    check.unavailable_df = spark.createDataFrame([("i3",)], [S.ITEM_ID])
    check.n_candidates = 3  # i0, i1, i2
    details = {"model": "mf", "model_version": "v1", "model_ds": D1}
    with pytest.raises(DataQualityError, match=r"2 recommended item\(s\) marked unavailable"):
        publication.publish(spark, lake, D1, good(spark), check, details, 3)
    # Without i3, u2 has no unseen candidate left: an empty list for u2 is then the right length.
    fine = recs(spark, [("u1", "i1", 1), ("u1", "i2", 2)])
    assert publication.publish(spark, lake, D1, fine, check, details, 3)["users"] == 1


def test_a_run_leaves_another_days_unfinished_version_alone(spark, lake):
    running = publication.write_version(lake, D2, "20261127T000000Z-running", good(spark))  # D2 scoring right now
    publish(spark, lake, good(spark))  # D1
    assert lake.exists(running) and rows_at(spark, running) == rows_at(spark, publication.current(lake, D1)["path"])


STEPS = ["write_version", "validate_version", "mark_valid", "switch_partition", "write_current", "write_latest",
         "prune_versions"]


@pytest.mark.parametrize("step", STEPS)
def test_a_crash_at_any_step_leaves_a_whole_version_readable(spark, lake, monkeypatch, step):
    old = publish(spark, lake, good(spark, "i1"), keep=1)
    old_rows = rows_at(spark, old["path"])
    real = getattr(publication, step)

    def crash(*args, **kwargs):
        if step == "write_version":  # half a table on disk, then the crash
            lake.write_text(f"{publication.version_path(lake, args[1], args[2])}/part-00000.parquet", "half")
        raise RuntimeError(f"crash in {step}")

    monkeypatch.setattr(publication, step, crash)
    with pytest.raises(RuntimeError, match=f"crash in {step}"):
        publish(spark, lake, good(spark, "i2"), keep=1)
    new_rows = [("u1", "i2", 1), ("u1", "i3", 2), ("u2", "i3", 1)]
    switched = STEPS.index(step) > STEPS.index("switch_partition")
    assert rows_at(spark, lake.partition_path(S.RECOMMENDATIONS, D1)) == (new_rows if switched else old_rows)
    latest = publication.latest(lake)
    assert rows_at(spark, latest["path"]) == (new_rows if step == "prune_versions" else old_rows)
    monkeypatch.setattr(publication, step, real)
    # The next run removes what the crash left and publishes.
    third = publish(spark, lake, good(spark, "i2"), keep=1)
    assert publication.valid_versions(lake, D1) == [third["version"]]  # keep=1: only the current
    names = lake.list_names(publication.day_root(lake, D1)) + lake.list_names(lake.table_path(S.RECOMMENDATIONS))
    assert not [n for n in names if n.startswith("_tmp-")]
    assert rows_at(spark, lake.partition_path(S.RECOMMENDATIONS, D1)) == new_rows


def test_keep_versions_and_rollback(spark, lake):
    published = [publish(spark, lake, good(spark, item), keep=3)["version"] for item in ("i1", "i2", "i1", "i2")]
    assert publication.valid_versions(lake, D1) == published[1:]  # the oldest was pruned
    back = publication.rollback(lake, D1, None, keep=3)
    assert (back["version"], back["rolled_back_from"]) == (published[2], published[3])
    assert publication.latest(lake)["version"] == published[2]
    assert rows_at(spark, lake.partition_path(S.RECOMMENDATIONS, D1))[0] == ("u1", "i1", 1)
    with pytest.raises(MissingInputError, match="has no valid version 'nope'"):
        publication.rollback(lake, D1, "nope", keep=3)
    # The job: --rollback --version picks one; without --rollback it lists the kept versions.
    out = run_job("jobs.publish", "--ds", D1, "--lake", lake.root, "--conf", TEST_CONF, "--rollback",
                  "--version", published[1])
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"version {published[1]} (mf v1) is current again, instead of {published[2]}" in out.stdout
    assert f"[publish] * {published[1]}" in out.stdout and f"[publish]   {published[3]}" in out.stdout
    latest = json.loads(open(os.path.join(lake.table_path(S.RECOMMENDATIONS), "_LATEST")).read())
    assert latest["version"] == published[1] and latest["rolled_back_from"] == published[2]
    assert rows_at(spark, lake.partition_path(S.RECOMMENDATIONS, D1))[0] == ("u1", "i2", 1)
    missing = run_job("jobs.publish", "--ds", D2, "--lake", lake.root, "--conf", TEST_CONF, "--rollback")
    assert missing.returncode == 2 and "nothing is published for ds=2026-11-27" in missing.stderr


def required_columns(path):
    """The columns every Parquet file of the folder declares REQUIRED (not nullable in Arrow's terms)."""
    import pyarrow.parquet as pq

    schemas = [pq.read_schema(os.path.join(path, f)) for f in os.listdir(path) if f.endswith(".parquet")]
    return set.intersection(*[{field.name for field in schema if not field.nullable} for schema in schemas])


def test_nulls_are_found_in_the_columns_the_files_do_not_declare_required(spark, lake, tmp_path):
    from pyspark.sql import types as T

    loose = T.StructType([T.StructField(f.name, f.dataType, f.name in (S.USER_ID, S.BECAUSE))
                          for f in S.RECOMMENDATIONS_SCHEMA.fields])
    rows = [("u1", "i1", 1, 1.0, "mf", "v1", "model", None, False),
            ("u1", "i3", 2, 0.5, "mf", "v1", "model", ["i0"], False),
            ("u2", "i3", 1, 1.0, "mf", "v1", "model", None, False)]
    path = str(tmp_path / "loose")
    spark.createDataFrame(rows, loose).write.parquet(path)
    assert required_columns(path) == set(S.RECOMMENDATIONS_SCHEMA.fieldNames()) - {S.USER_ID, S.BECAUSE}
    with pytest.raises(DataQualityError, match=r"failed validation: 2 row\(s\) with a null\. Nothing"):
        publication.validate_version(spark, path, expect(spark))
    # written with the schema's nullability, every column is REQUIRED: no null scan at all
    written = publish(spark, lake, good(spark))["path"]
    assert required_columns(written) == set(S.RECOMMENDATIONS_SCHEMA.fieldNames())


def test_a_users_rows_split_over_files_are_checked_as_one_list(spark, tmp_path):
    """u1's two rows lie in two files and repeat i1: the repeat is found across files, and the lengths
    add up; rows naming an item outside the catalogue or mixing reasons are named."""
    path = str(tmp_path / "split")
    recs(spark, [("u1", "i1", 1), ("u2", "i3", 1)]).coalesce(1).write.parquet(path)
    recs(spark, [("u1", "i1", 2)]).coalesce(1).write.mode("append").parquet(path)
    assert len([f for f in os.listdir(path) if f.endswith(".parquet")]) == 2
    with pytest.raises(DataQualityError, match=r"failed validation: 1 user\(s\) with a repeated item\. Nothing"):
        publication.validate_version(spark, path, expect(spark))
    mixed = str(tmp_path / "mixed")
    rows = [("u1", "i1", 1, 1.0, "mf", "v1", "model", [], False), ("u1", "i9", 2, 0.5, "mf", "v1", "popularity_fallback",
                                                                    [], False), ("u2", "i3", 1, 1.0, "mf", "v1", "x", [], False)]
    spark.createDataFrame(rows, S.RECOMMENDATIONS_SCHEMA).write.parquet(mixed)
    check = expect(spark)
    check.item_ids = np.array(["i0", "i1", "i2", "i3"], dtype=object)
    with pytest.raises(DataQualityError) as refused:
        publication.validate_version(spark, mixed, check)
    assert str(refused.value).split("failed validation: ")[1].split(". Nothing")[0] == (
        "1 recommended item(s) outside the catalogue; 1 user(s) whose reason is not one of model, content_fallback, "
        "popularity_fallback; 1 user(s) whose rows give more than one reason")


def test_per_user_lists_of_one_batch_against_a_hand_count():
    import pyarrow as pa

    from recsys_spark.publication_lists import lists_of

    part = pa.RecordBatch.from_pydict({
        S.USER_ID: ["u2", "u1", "u2", None, "u1"], S.ITEM_ID: ["b", "a", "z", "a", "c"],
        S.REASON: ["model", "model", "model", "model", None], S.MODEL_VERSION: ["v1", "v1", "v2", "v1", "v1"],
        S.SCORE: [1.0, None, 0.5, 0.2, 0.1]})
    out = lists_of(part, pa.array(["a", "b", "c"]), np.array([2]), [S.SCORE, S.REASON]).to_pydict()
    assert out == {S.USER_ID: ["u2", "u1", None], "items": [[1], [0, 2], [0]], "rows": [2, 2, 1],
                   "outside": [1, 0, 0], "unavailable": [0, 1, 0], "nulls": [0, 2, 0],
                   "reasons": [["model"], ["model", None], ["model"]], "versions": [["v1", "v2"], ["v1"], ["v1"]]}
