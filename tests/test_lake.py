import os

import pytest

from recsys_spark.errors import MissingInputError, UserError
from recsys_spark.lake import parse_ds


def rows(lake, table, ds):
    return sorted(r[0] for r in lake.spark.read.parquet(lake.partition_path(table, ds)).collect())


def test_rewrite_replaces_one_day_only(spark, lake):
    lake.write_table(spark.createDataFrame([(1,), (2,)], "x int"), "t", "2026-11-26")
    lake.write_table(spark.createDataFrame([(3,)], "x int"), "t", "2026-11-27")
    lake.write_table(spark.createDataFrame([(4,), (5,)], "x int"), "t", "2026-11-27")
    assert rows(lake, "t", "2026-11-26") == [1, 2]
    assert rows(lake, "t", "2026-11-27") == [4, 5]
    assert lake.list_partitions("t") == ["2026-11-26", "2026-11-27"]
    assert sorted(os.listdir(lake.table_path("t"))) == ["ds=2026-11-26", "ds=2026-11-27"]  # no staging left


def test_failed_write_leaves_the_old_partition(spark, lake):
    lake.write_table(spark.createDataFrame([(1,)], "x int"), "t", "2026-11-27")
    with pytest.raises(RuntimeError, match="boom"):
        with lake.overwrite_partition("t", "2026-11-27") as staging:
            spark.createDataFrame([(9,)], "x int").write.parquet(staging)
            raise RuntimeError("boom")
    assert rows(lake, "t", "2026-11-27") == [1]
    assert not os.path.exists(os.path.join(lake.table_path("t"), "_staging", "ds=2026-11-27"))


def test_success_marker_and_bundle(spark, lake):
    path = lake.write_bundle("models/m", "2026-11-27", {"a": spark.createDataFrame([(1,)], "x int")},
                             files={"metadata.json": "{}"})
    assert sorted(f for f in os.listdir(path) if not f.startswith(".")) == ["_SUCCESS", "a", "metadata.json"]
    assert lake.read_text(f"{path}/metadata.json") == "{}"
    assert os.path.exists(os.path.join(path, "a", "_SUCCESS"))


def test_a_table_of_given_files_keeps_one_row_order_whatever_order_the_rows_come_in(spark, lake):
    """Files written with ``files=`` hold their rows in an order fixed by the rows themselves: the same rows
    handed over in another order (as a cluster's shuffle can) give the same file, row for row."""
    import pyarrow.parquet as pq

    data = [(u, i, [u, i]) for u in range(30) for i in range(u % 4)]
    orders = []
    for ds, given in (("2026-11-26", data), ("2026-11-27", data[::-1])):
        path = lake.write_table(spark.createDataFrame(given, "u int, i int, a array<int>").coalesce(1), "t", ds, files=1)
        orders.append(pq.read_table(path).to_pylist())
    assert orders[0] == orders[1] and len(orders[0]) == len(data)
    assert orders[0] != sorted(orders[0], key=lambda r: (r["u"], r["i"]))  # (a hash order, not the ids')


def test_missing_partition_and_bad_ds(lake):
    with pytest.raises(MissingInputError, match=r"no train data for ds=2026-11-27 .*\(the table is empty\)\. run build"):
        lake.require_partition("train", "2026-11-27", "run build")
    with pytest.raises(UserError, match="give the run date as YYYY-MM-DD"):
        parse_ds("27/11/2026")
    assert str(parse_ds("2026-11-27")) == "2026-11-27"
