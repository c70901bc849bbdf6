"""Parquet files written by Spark tasks themselves, with pyarrow, where the task runs.

Batch scoring produces its rows as Arrow in Python; handing 20M rows back to the JVM only for Spark's
Parquet writer costs more than ranking them. A task instead writes its own file into the destination
folder (a local path or a URL :mod:`recsys_spark.io.fs` opens) and returns one line about it.

What Spark's commit protocol gives a job, this gives a folder that is only read once the job succeeded
(a publication version, validated before anyone follows it): a task writes to a hidden attempt file
(``_attempt-...``: Spark and pyarrow readers skip names starting with ``_``) and moves it to its final
name, fixed by the task's partition, only when it is complete. A retried task writes the same final name
again; attempts that died leave hidden files, which :func:`remove_attempts` deletes after the job.
"""

from __future__ import annotations

import posixpath
import uuid
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from recsys_spark.io import fs

ATTEMPT_PREFIX = "_attempt-"
WRITTEN_FILE, WRITTEN_ROWS = "file", "rows"
WRITTEN_SCHEMA = f"{WRITTEN_FILE} string, {WRITTEN_ROWS} long"  # what a writing task returns: one row per file


class PartWriter:
    """One task's Parquet file: batches gathered into row groups of about ``rows_per_group`` rows.

    Args:
        folder: the destination folder (created if missing).
        name: the final file name (unique per task and job: e.g. its partition number).
        schema: the file's Arrow schema; batches are cast to it (a non-nullable field is REQUIRED).
        plain_columns: top-level columns written without a dictionary (the others use one).
    """

    def __init__(self, folder: str, name: str, schema, plain_columns: Sequence[str] = (),
                 rows_per_group: int = 1 << 19):
        self.folder, self.name, self.schema = folder, name, schema
        self.plain = set(plain_columns)
        self.rows_per_group = rows_per_group
        self.rows = 0
        self._pending: List = []
        self._pending_rows = 0
        self._writer = None
        self._fs = self._attempt_path = None

    def write(self, batch) -> None:
        """Adds a record batch (its columns in the schema's order and types)."""
        if batch.num_rows == 0:
            return
        self._pending.append(batch)
        self._pending_rows += batch.num_rows
        if self._pending_rows >= self.rows_per_group:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self._pending:
            return
        if self._writer is None:
            self._fs, path = fs.resolve(self.folder)
            self._fs.create_dir(path, recursive=True)
            self._attempt_path = posixpath.join(path, f"{ATTEMPT_PREFIX}{uuid.uuid4().hex[:12]}-{self.name}")
            dictionary = [field.name for field in self.schema if field.name not in self.plain]
            self._writer = pq.ParquetWriter(self._fs.open_output_stream(self._attempt_path), self.schema,
                                            use_dictionary=dictionary, compression="snappy",
                                            use_compliant_nested_type=True)  # lists as Spark writes them
        table = pa.Table.from_batches(self._pending).cast(self.schema)
        self._writer.write_table(table, row_group_size=len(table))
        self.rows += len(table)
        self._pending, self._pending_rows = [], 0

    def close(self) -> Optional[Tuple[str, int]]:
        """Writes what is left and moves the file to its final name; returns (location, rows), or None when
        no row was written (no file)."""
        self._flush()
        if self._writer is None:
            return None
        self._writer.close()
        import pyarrow.fs as pafs

        final = posixpath.join(posixpath.dirname(self._attempt_path), self.name)
        if self._fs.get_file_info(final).type != pafs.FileType.NotFound:
            self._fs.delete_file(final)  # an earlier attempt of the task finished its file (HDFS does not replace)
        self._fs.move(self._attempt_path, final)
        return fs.join(self.folder, self.name), self.rows

    def abort(self) -> None:
        """Drops the attempt file (a task that fails)."""
        if self._writer is not None:
            self._writer.close()
            self._fs.delete_file(self._attempt_path)
            self._writer = None


def remove_attempts(folder: str) -> List[str]:
    """Deletes the attempt files tasks that died left in ``folder``; returns their names."""
    import pyarrow.fs as pafs

    filesystem, path = fs.resolve(folder)
    infos = filesystem.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    left = [info for info in infos if info.type == pafs.FileType.File and info.base_name.startswith(ATTEMPT_PREFIX)]
    for info in left:
        filesystem.delete_file(info.path)
    return [info.base_name for info in left]


@dataclass(frozen=True)
class PartSink:
    """Where and how tasks write their rows: ``<folder>/part-<prefix>-<partition>.parquet`` with ``schema``
    (a Spark StructType, the table's), ``constants`` filling the columns a batch does not hold."""

    folder: str
    prefix: str
    schema: Any
    constants: Dict[str, Any] = field(default_factory=dict)
    plain_columns: Tuple[str, ...] = ()

    def arrow_schema(self):
        from pyspark.sql.pandas.types import to_arrow_schema

        return to_arrow_schema(self.schema)

    def writer(self, partition: int, arrow_schema=None) -> PartWriter:
        return PartWriter(self.folder, f"part-{self.prefix}-{partition:05d}.parquet",
                          arrow_schema or self.arrow_schema(), self.plain_columns)

    def shape(self, batch, arrow_schema):
        """The table's columns from ``batch`` (by name) and the constants, in the schema's order."""
        import pyarrow as pa

        columns = []
        for f in arrow_schema:
            if f.name in self.constants:
                columns.append(repeated(self.constants[f.name], batch.num_rows, f.type))
                continue
            column = batch.column(batch.schema.get_field_index(f.name))
            if not f.nullable and column.null_count:
                raise ValueError(f"{column.null_count} null(s) in column {f.name}, which the table declares not null")
            columns.append(column if column.type == f.type else column.cast(f.type))
        return pa.RecordBatch.from_arrays(columns, schema=arrow_schema)


def repeated(value, n: int, arrow_type):
    """``value`` ``n`` times as an Arrow array of ``arrow_type``; a string is laid out in its buffers
    directly (a list of ``n`` Python strings costs ~4 ms per 50k rows, per column)."""
    import numpy as np
    import pyarrow as pa

    if isinstance(value, str) and pa.types.is_string(arrow_type):
        data = value.encode()
        if n * len(data) < 2 ** 31:  # (int32 offsets)
            offsets = np.arange(n + 1, dtype=np.int32) * np.int32(len(data))
            return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data * n))
    return pa.array([value] * n, arrow_type)


def write_batches(sink: PartSink, batches: Iterator) -> Iterator:
    """Inside a task: writes ``batches`` (Arrow, holding the sink's columns but its constants) to the task's
    file; yields the one Arrow batch (file, rows) that says so (none when there was no row)."""
    import pyarrow as pa
    from pyspark import TaskContext

    schema = sink.arrow_schema()
    writer = sink.writer(TaskContext.get().partitionId(), schema)
    try:
        for batch in batches:
            writer.write(sink.shape(batch, schema))
        written = writer.close()
    except BaseException:
        writer.abort()
        raise
    if written is not None:
        yield pa.RecordBatch.from_arrays([pa.array([written[0]]), pa.array([written[1]], pa.int64())],
                                         names=[WRITTEN_FILE, WRITTEN_ROWS])


def write_partitions(df, sink: PartSink):
    """A DataFrame whose action writes each partition of ``df`` to its own file (Arrow from the JVM, written
    by pyarrow in the task); its rows say which files were written and how many rows each holds."""
    return df.mapInArrow(lambda batches: write_batches(sink, batches), schema=WRITTEN_SCHEMA)
