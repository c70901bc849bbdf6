"""A written version of ``recommendations`` read back in the executors as each user's list of item
numbers, for the checks of ``recsys_spark/publication_checks.py``.

Each Spark task reads one Parquet file with pyarrow, batch by batch (memory bounded by the batch), and
returns one row per user and batch: the numbers of the user's items in the catalogue, how many rows the
user has, and how many of them name an item outside the catalogue, an unavailable item or hold a null,
with the user's distinct reasons and model versions. A user's rows may lie in several batches or files:
the caller merges the partial rows by user. Strings are turned into numbers once, in Arrow, so that Spark
then moves a few hundred thousand int lists instead of every row's strings.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import types as T

from recsys_spark import schemas as S

CODE = "_item_number"
LISTS_SCHEMA = T.StructType([
    T.StructField(S.USER_ID, T.StringType()),
    T.StructField("items", T.ArrayType(T.IntegerType(), False), False),  # catalogue numbers, file order
    T.StructField("rows", T.LongType(), False),
    T.StructField("outside", T.LongType(), False),  # rows whose item is not in the catalogue
    T.StructField("unavailable", T.LongType(), False),
    T.StructField("nulls", T.LongType(), False),  # rows with a null in one of the scanned columns
    T.StructField("reasons", T.ArrayType(T.StringType()), False),
    T.StructField("versions", T.ArrayType(T.StringType()), False),
])


def per_user_lists(spark, path: str, item_ids: np.ndarray, unavailable: np.ndarray,
                   batch_rows: int = 1 << 20) -> DataFrame:
    """The partial per-user rows (:data:`LISTS_SCHEMA`) of the Parquet folder ``path``, one task per file.
    Nulls are looked for in the columns of the table that the file does not declare REQUIRED (the format
    stores no null in a REQUIRED column)."""
    from recsys_spark.io import fs

    files = fs.parquet_files(path)
    shared = spark.sparkContext.broadcast((files, item_ids, np.asarray(unavailable, np.int64)))

    def read_files(batches: Iterator) -> Iterator:
        import pyarrow as pa

        names, catalogue, not_available = shared.value
        catalogue = pa.array(catalogue, pa.string())
        for batch in batches:
            for file in batch.column(0).to_numpy():
                schema = fs.parquet_schema(names[file])
                nullable = [c for c in S.RECOMMENDATIONS_SCHEMA.fieldNames()
                            if c in schema.names and schema.field(c).nullable]
                columns = sorted({S.USER_ID, S.ITEM_ID, S.REASON, S.MODEL_VERSION} | set(nullable))
                for part in fs.iter_parquet_batches(names[file], columns, batch_rows):
                    if part.num_rows:
                        yield lists_of(part, catalogue, not_available, nullable)

    if not files:
        return spark.createDataFrame([], LISTS_SCHEMA)
    return spark.range(len(files), numPartitions=len(files)).mapInArrow(read_files, LISTS_SCHEMA)


def lists_of(part, catalogue, not_available: np.ndarray, nullable: Sequence[str]):
    """One record batch of the table -> one partial row per user in it (:data:`LISTS_SCHEMA`)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    users = pc.dictionary_encode(part.column(S.USER_ID), null_encoding="encode")  # (a null id: its own user)
    user = users.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    n_users = len(users.dictionary)
    number = pc.index_in(part.column(S.ITEM_ID), value_set=catalogue).fill_null(-1).to_numpy(
        zero_copy_only=False).astype(np.int64)
    order = np.argsort(user, kind="stable")  # each user's rows together, in file order
    known = number[order] >= 0
    listed = np.bincount(user[order][known], minlength=n_users)
    null = np.zeros(part.num_rows, bool)
    for column in nullable:
        null |= part.column(column).is_null().to_numpy(zero_copy_only=False)

    def per_user(flags):
        return pa.array(np.bincount(user, weights=flags, minlength=n_users).astype(np.int64))

    rows = np.bincount(user, minlength=n_users)
    starts = np.concatenate([[0], np.cumsum(rows)[:-1]])  # each user's first row in ``order``
    arrays = [users.dictionary, pa.ListArray.from_arrays(pa.array(_offsets(listed)),
                                                         pa.array(number[order][known].astype(np.int32))),
              pa.array(rows.astype(np.int64)), pa.array((rows - listed).astype(np.int64)),
              per_user(np.isin(number, not_available) & (number >= 0)), per_user(null),
              _distinct_per_user(user[order], starts, part.column(S.REASON), order),
              _distinct_per_user(user[order], starts, part.column(S.MODEL_VERSION), order)]
    return pa.RecordBatch.from_arrays(arrays, names=LISTS_SCHEMA.fieldNames())


def _offsets(counts: np.ndarray) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)


def _distinct_per_user(user: np.ndarray, starts: np.ndarray, column, order: np.ndarray):
    """Each user's distinct values of a string column (a null is a value: it is also counted as a null).
    ``user``: the users of the rows in ``order`` (0..n-1, each present, sorted); ``starts``: each user's
    first row there."""
    import pyarrow as pa
    import pyarrow.compute as pc

    encoded = pc.dictionary_encode(column, null_encoding="encode")
    value = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)[order]
    low, high = np.minimum.reduceat(value, starts), np.maximum.reduceat(value, starts)
    mixed = np.flatnonzero(low != high)  # (rare: one value per user is the rule)
    owners, values = np.flatnonzero(low == high), low[low == high]
    if len(mixed):
        width = len(encoded.dictionary)
        rows = np.isin(user, mixed)
        keys = np.unique(user[rows] * width + value[rows])
        owners, values = np.concatenate([owners, keys // width]), np.concatenate([values, keys % width])
        by_user = np.argsort(owners, kind="stable")
        owners, values = owners[by_user], values[by_user]
    return pa.ListArray.from_arrays(pa.array(_offsets(np.bincount(owners, minlength=len(starts)))),
                                    encoded.dictionary.take(pa.array(values)))
