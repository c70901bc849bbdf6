"""The I/O layer: the only module that knows the lake layout and how a partition is replaced.

Layout: ``<root>/<table>/ds=YYYY-MM-DD/``. A partition is written into
``<root>/<table>/_staging/<uuid>/`` (hidden from Spark's partition discovery by the leading underscore)
and then swapped into place with two renames, so a reader sees either the whole old partition or the
whole new one, never a half-written one; other days are never touched. Paths go through Hadoop's
FileSystem API, so the same code works on a local disk, HDFS or an object store that Hadoop supports.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import uuid
from typing import Any, Dict, Iterator, List, Optional

from pyspark.sql import DataFrame, SparkSession

from recsys_spark.errors import MissingInputError, UserError
from recsys_spark.lake_pointers import STAGING, Pointers

SUCCESS = "_SUCCESS"


def parse_ds(ds: str) -> dt.date:
    """Parses a ``YYYY-MM-DD`` run date.

    Raises:
        UserError: the text is not such a date.
    """
    try:
        if len(ds) == 10:
            return dt.date.fromisoformat(ds)
    except ValueError:
        pass
    raise UserError(f"--ds {ds!r} is not a date: give the run date as YYYY-MM-DD, e.g. --ds 2026-11-27")


def normalize_root(root: str) -> str:
    """Makes a local path absolute and leaves URIs (``hdfs://``, ``s3a://``, ``file:/``) as given."""
    if "://" in root or root.startswith("file:"):
        return root.rstrip("/")
    return os.path.abspath(root)


class Lake(Pointers):
    """Reads and atomically writes ``<root>/<table>/ds=<ds>/`` partitions (and keeps the pointers of
    :class:`~recsys_spark.lake_pointers.Pointers`).

    Args:
        spark: the session whose Hadoop configuration resolves the root's filesystem.
        root: the lake root, a local path or a Hadoop URI.
    """

    def __init__(self, spark: SparkSession, root: str):
        self.spark = spark
        self.root = normalize_root(root)
        jvm = spark.sparkContext._jvm
        self._jvm = jvm
        self._Path = jvm.org.apache.hadoop.fs.Path
        self._conf = spark.sparkContext._jsc.hadoopConfiguration()
        self._fs = self._Path(self.root).getFileSystem(self._conf)

    # ---- paths -----------------------------------------------------------------------------------
    @property
    def is_local(self) -> bool:
        """Whether the lake is on the local (or a mounted) filesystem, where POSIX renames and symlinks work."""
        return "://" not in self.root or self.root.startswith("file:")

    def table_path(self, table: str) -> str:
        return f"{self.root}/{table}"

    def partition_path(self, table: str, ds: str) -> str:
        return f"{self.table_path(table)}/ds={ds}"

    def local_path(self, path: str) -> str:
        """The local filesystem path of ``path``, for readers outside Spark (Petastorm, pandas)."""
        if path.startswith("file://"):
            return path[len("file://"):]
        if path.startswith("file:"):
            return path[len("file:"):]
        if "://" in path:
            raise UserError(f"{path!r} is not on the local filesystem; this reader needs a local or mounted lake")
        return path

    def url(self, path: str) -> str:
        """A URL for Petastorm/pyarrow: ``file://`` for local paths, unchanged for other schemes."""
        return path if "://" in path else f"file://{path}"

    # ---- filesystem primitives -------------------------------------------------------------------
    def exists(self, path: str) -> bool:
        return bool(self._fs.exists(self._Path(path)))

    def delete(self, path: str) -> None:
        self._fs.delete(self._Path(path), True)

    def write_text(self, path: str, text: str) -> None:
        stream = self._fs.create(self._Path(path), True)
        try:
            stream.write(bytearray(text.encode("utf-8")))
        finally:
            stream.close()

    def read_text(self, path: str) -> str:
        if not self.exists(path):
            raise MissingInputError(f"{path} does not exist")
        stream = self._fs.open(self._Path(path))
        reader = self._jvm.java.io.BufferedReader(self._jvm.java.io.InputStreamReader(stream, "UTF-8"))
        try:
            lines = []
            line = reader.readLine()
            while line is not None:
                lines.append(line)
                line = reader.readLine()
            return "\n".join(lines)
        finally:
            reader.close()

    def list_partitions(self, table: str) -> List[str]:
        """The ``ds`` values of a table's complete partitions, sorted."""
        path = self._Path(self.table_path(table))
        if not self._fs.exists(path):
            return []
        out = []
        for status in self._fs.listStatus(path):
            name = status.getPath().getName()
            if status.isDirectory() and name.startswith("ds="):
                out.append(name[3:])
        return sorted(out)

    def has_partition(self, table: str, ds: str) -> bool:
        return self.exists(self.partition_path(table, ds))

    def require_partition(self, table: str, ds: str, hint: str) -> str:
        """Returns the partition's path, or raises MissingInputError that says which job to run."""
        path = self.partition_path(table, ds)
        if not self.exists(path):
            have = self.list_partitions(table)
            have_text = f"it has {have[-5:]}" if have else "the table is empty"
            raise MissingInputError(f"no {table} data for ds={ds} at {path} ({have_text}). {hint}")
        return path

    # ---- atomic partition writes -----------------------------------------------------------------
    @contextlib.contextmanager
    def overwrite_partition(self, table: str, ds: str) -> Iterator[str]:
        """Yields a staging path to write into; on success it replaces ``<table>/ds=<ds>`` atomically.

        If the block raises, the staging folder is removed and the old partition is left as it was.
        """
        staging = f"{self.table_path(table)}/{STAGING}/ds={ds}-{uuid.uuid4().hex[:12]}"
        try:
            yield staging
        except BaseException:
            self.delete(staging)
            raise
        self._swap_in(staging, self.partition_path(table, ds))

    def _swap_in(self, staging: str, final: str) -> None:
        fs, P = self._fs, self._Path
        if not fs.exists(P(staging)):
            raise RuntimeError(f"nothing was written to {staging}")
        parent = P(final).getParent()
        fs.mkdirs(parent)
        trash = None
        if fs.exists(P(final)):
            trash = f"{staging}.old"
            if not fs.rename(P(final), P(trash)):
                raise RuntimeError(f"could not move the old partition {final} aside")
        if not fs.rename(P(staging), P(final)):
            if trash is not None:
                fs.rename(P(trash), P(final))
            raise RuntimeError(f"could not move {staging} to {final}")
        if trash is not None:
            fs.delete(P(trash), True)
        staging_root = P(staging).getParent()
        if fs.exists(staging_root) and len(fs.listStatus(staging_root)) == 0:
            fs.delete(staging_root, True)

    def write_table(self, df: DataFrame, table: str, ds: str, *, files: Optional[int] = None,
                    row_group_bytes: Optional[int] = None) -> str:
        """Overwrites ``<table>/ds=<ds>`` with ``df`` as Parquet; returns the partition path.

        Args:
            files: if given, the number of Parquet files (``coalesce``/``repartition``).
            row_group_bytes: Parquet row-group size, for readers that shard by row group (Petastorm).
        """
        with self.overwrite_partition(table, ds) as staging:
            self._write_parquet(df, staging, files=files, row_group_bytes=row_group_bytes)
        return self.partition_path(table, ds)

    def write_bundle(self, table: str, ds: str, frames: Dict[str, DataFrame],
                     files: Optional[Dict[str, str]] = None, dirs: Optional[Dict[str, str]] = None) -> str:
        """Overwrites ``<table>/ds=<ds>`` with several Parquet sub-tables, small text files and copies of
        folders (a SavedModel; local paths or Hadoop URLs) at once."""
        with self.overwrite_partition(table, ds) as staging:
            for name, df in frames.items():
                self._write_parquet(df, f"{staging}/{name}")
            for name, text in (files or {}).items():
                self.write_text(f"{staging}/{name}", text)
            for name, folder in (dirs or {}).items():
                source = self._Path(folder if "://" in folder else f"file://{folder}")
                self._jvm.org.apache.hadoop.fs.FileUtil.copy(source.getFileSystem(self._conf), source, self._fs,
                                                             self._Path(f"{staging}/{name}"), False, True, self._conf)
            self.write_text(f"{staging}/{SUCCESS}", "")
        return self.partition_path(table, ds)

    def write_json(self, table: str, ds: str, name: str, payload: Dict[str, Any]) -> str:
        """Overwrites ``<table>/ds=<ds>/<name>`` holding one JSON document (reports)."""
        with self.overwrite_partition(table, ds) as staging:
            self.write_text(f"{staging}/{name}", json.dumps(payload, indent=2, sort_keys=True) + "\n")
        return f"{self.partition_path(table, ds)}/{name}"

    @staticmethod
    def _write_parquet(df: DataFrame, path: str, *, files: Optional[int] = None,
                       row_group_bytes: Optional[int] = None) -> None:
        if files is not None:
            # each file's rows in an order fixed by their content (a seeded hash of every column): the
            # shuffle hands a partition its blocks in the order they arrive (on a cluster, the executor's
            # own first), and Petastorm feeds the ranks rows in file order, so the weights depend on it
            from pyspark.sql import functions as F

            df = df.repartition(files).sortWithinPartitions(F.xxhash64(*[F.col(c) for c in df.columns]))
        writer = df.write.mode("overwrite")
        if row_group_bytes is not None:
            writer = writer.option("parquet.block.size", str(row_group_bytes))
        writer.parquet(path)

    def write_parquet(self, df: DataFrame, path: str, plain_columns: List[str] = ()) -> None:
        """Writes ``df`` to a new folder ``path`` (a published table's version; not a partition swap).
        ``plain_columns``: column paths written without a dictionary (e.g. ``because.list.element``)."""
        options = {f"parquet.enable.dictionary#{column}": "false" for column in plain_columns}
        df.write.mode("overwrite").options(**options).parquet(path)

    # ---- reads -----------------------------------------------------------------------------------
    def read_table(self, table: str, ds: str, hint: str, sub: Optional[str] = None) -> DataFrame:
        """Reads one partition (or one sub-table of a bundle) as a DataFrame."""
        path = self.require_partition(table, ds, hint)
        if sub:
            path = f"{path}/{sub}"
        return self.spark.read.parquet(path)

    def read_window(self, table: str, first_ds: str, last_ds: str) -> Optional[DataFrame]:
        """Reads every partition with ``first_ds <= ds <= last_ds``, adding a string ``ds`` column."""
        wanted = [d for d in self.list_partitions(table) if first_ds <= d <= last_ds]
        if not wanted:
            return None
        paths = [self.partition_path(table, d) for d in wanted]
        return (
            self.spark.read.option("basePath", self.table_path(table))
            .parquet(*paths)
            .withColumn("ds", _ds_as_string())
        )

    def latest_partition_before(self, table: str, ds: str) -> Optional[str]:
        """The newest ``ds`` strictly before the given one, if any."""
        earlier = [d for d in self.list_partitions(table) if d < ds]
        return earlier[-1] if earlier else None


def _ds_as_string():
    from pyspark.sql import functions as F

    return F.date_format(F.col("ds").cast("date"), "yyyy-MM-dd")
