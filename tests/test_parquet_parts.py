"""Parquet files written by the tasks themselves (recsys_spark/io/parquet_parts.py): the rows Spark reads
back are the rows given, one file per partition under its fixed name, the declared schema (REQUIRED
columns, no dictionary where asked), and what failed attempts leave is never read and is cleaned."""

import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import types as T

from recsys_spark.io.parquet_parts import ATTEMPT_PREFIX, PartSink, PartWriter, remove_attempts, write_partitions

SCHEMA = T.StructType([
    T.StructField("user_id", T.StringType(), False),
    T.StructField("rank", T.IntegerType(), False),
    T.StructField("model", T.StringType(), False),
    T.StructField("because", T.ArrayType(T.StringType(), False), False),
])
ROWS = [("u1", 1, ["a"]), ("u1", 2, []), ("u2", 1, ["b", "c"]), ("u3", 1, ["a", "b", "c"]), ("u3", 2, ["c"])]


def test_each_partition_becomes_one_file_with_the_rows_given(spark, tmp_path):
    folder = str(tmp_path / "v")
    df = spark.createDataFrame(ROWS, "user_id string, rank int, because array<string>").repartition(2, "user_id")
    sink = PartSink(folder, "model", SCHEMA, {"model": "mf"}, plain_columns=("because",))
    written = sorted((os.path.basename(r["file"]), r["rows"]) for r in write_partitions(df, sink).collect())
    on_disk = sorted(name for name in os.listdir(folder))
    assert [name for name, _ in written] == on_disk  # nothing else (no attempt files) is left
    assert all(name.startswith("part-model-0000") and name.endswith(".parquet") for name in on_disk)
    assert sum(rows for _, rows in written) == len(ROWS)
    back = sorted((r.user_id, r.rank, r.model, list(r.because)) for r in spark.read.parquet(folder).collect())
    assert back == sorted((u, k, "mf", b) for u, k, b in ROWS)
    footer = pq.ParquetFile(os.path.join(folder, on_disk[0]))
    assert all(not field.nullable for field in footer.schema_arrow)  # REQUIRED, as the table declares
    because = footer.metadata.row_group(0).column(3)
    assert because.path_in_schema == "because.list.element" and not because.has_dictionary_page
    assert footer.metadata.row_group(0).column(0).has_dictionary_page


def test_a_failed_attempt_leaves_no_file_and_a_retry_replaces_the_first(spark, tmp_path):
    folder = str(tmp_path / "v")
    schema = PartSink(folder, "x", SCHEMA).arrow_schema()
    batch = pa.RecordBatch.from_pylist([{"user_id": "u1", "rank": 1, "model": "m", "because": ["a"]}], schema=schema)
    failed = PartWriter(folder, "part-x-00000.parquet", schema, rows_per_group=1)
    failed.write(batch)  # (written to its attempt file at once: one row per group)
    assert [n for n in os.listdir(folder) if n.startswith(ATTEMPT_PREFIX)]
    failed.abort()
    assert os.listdir(folder) == []
    for user in ("u1", "u2"):  # the first attempt finished its file, then the task ran again
        writer = PartWriter(folder, "part-x-00000.parquet", schema)
        writer.write(pa.RecordBatch.from_pylist([{"user_id": user, "rank": 1, "model": "m", "because": []}], schema=schema))
        assert writer.close() == (os.path.join(folder, "part-x-00000.parquet"), 1)
    assert pq.read_table(folder).column("user_id").to_pylist() == ["u2"]
    killed = PartWriter(folder, "part-x-00001.parquet", schema, rows_per_group=1)
    killed.write(batch)  # an executor dies here: the attempt file stays, hidden from readers
    assert pq.read_table(folder).num_rows == 1
    left = [n for n in os.listdir(folder) if n.startswith(ATTEMPT_PREFIX)]
    assert len(left) == 1 and remove_attempts(folder) == left
    assert os.listdir(folder) == ["part-x-00000.parquet"]
    assert PartWriter(folder, "part-x-00002.parquet", schema).close() is None  # no row, no file


def test_a_null_where_the_table_declares_none_is_refused(tmp_path):
    sink = PartSink(str(tmp_path / "v"), "x", SCHEMA, {"model": "m"})
    schema = sink.arrow_schema()
    batch = pa.RecordBatch.from_pydict({"user_id": ["u1", None], "rank": [1, 2], "because": [["a"], []]})
    with pytest.raises(ValueError, match=r"1 null\(s\) in column user_id"):
        sink.shape(batch, schema)


def test_a_repeated_constant_is_the_same_array_as_a_list_of_it():
    import pyarrow as pa

    from recsys_spark.io.parquet_parts import repeated

    for value, arrow_type, n in (("model", pa.string(), 5), ("é-v1", pa.string(), 3), ("", pa.string(), 4),
                                 ("x", pa.string(), 0), (7, pa.int32(), 3), (None, pa.string(), 2)):
        array = repeated(value, n, arrow_type)
        array.validate(full=True)
        assert array.type == arrow_type and array.to_pylist() == [value] * n
