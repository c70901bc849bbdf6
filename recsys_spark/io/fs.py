"""Files outside Spark by location: a local path or a URL that pyarrow can open (``file://``, ``hdfs://``,
``s3://``, ``gs://``). Training ranks read their tables and write their side files through this, so that
the lake need not be mounted where the ranks run.

``file://`` URLs are taken literally (a lake path with spaces stays as it is written, as Spark and
Petastorm take it); other URLs go to :func:`pyarrow.fs.FileSystem.from_uri` (libhdfs for HDFS: see the
README's operating guide).
"""

from __future__ import annotations

import posixpath
from typing import List, Optional, Sequence, Tuple
from urllib.parse import quote, urlsplit

_HADOOP_TO_ARROW = {"s3a": "s3", "s3n": "s3", "gcs": "gs"}


def resolve(location: str) -> Tuple["object", str]:
    """(pyarrow filesystem, path on it) of a local path or URL."""
    import pyarrow.fs as pafs

    if location.startswith("file:"):  # file:///a b, file:/a b: literal local paths
        path = location[len("file:"):]
        return pafs.LocalFileSystem(), path[2:] if path.startswith("//") else path
    if "://" not in location:
        return pafs.LocalFileSystem(), location
    parts = urlsplit(location)
    scheme = _HADOOP_TO_ARROW.get(parts.scheme, parts.scheme)
    return pafs.FileSystem.from_uri(quote(f"{scheme}://{location.split('://', 1)[1]}", safe=":/?=&%@"))


def join(location: str, *names: str) -> str:
    return posixpath.join(location, *names)


def parquet_files(location: str) -> List[str]:
    """The data files of a Parquet folder (not ``_SUCCESS``, ``.crc``), sorted, as locations."""
    import pyarrow.fs as pafs

    fs, path = resolve(location)
    infos = fs.get_file_info(pafs.FileSelector(path))
    names = sorted(i.base_name for i in infos if i.type == pafs.FileType.File and i.base_name.endswith(".parquet")
                   and not i.base_name.startswith(("_", ".")))
    return [join(location, name) for name in names]


def read_parquet(location: str, columns: Optional[Sequence[str]] = None):
    """A Parquet file or folder as one pyarrow Table."""
    import pyarrow.parquet as pq

    fs, path = resolve(location)
    return pq.read_table(path, columns=list(columns) if columns else None, filesystem=fs)


def parquet_schema(location: str):
    """The Arrow schema of one Parquet file, from its footer (a REQUIRED column is not nullable)."""
    import pyarrow.parquet as pq

    fs, path = resolve(location)
    with fs.open_input_file(path) as fh:
        return pq.ParquetFile(fh).schema_arrow


def iter_parquet_batches(location: str, columns: Sequence[str], batch_size: int = 1 << 20):
    """The record batches of one Parquet file, ``batch_size`` rows at most each (memory bounded by it)."""
    import pyarrow.parquet as pq

    fs, path = resolve(location)
    with fs.open_input_file(path) as fh:
        yield from pq.ParquetFile(fh).iter_batches(batch_size=batch_size, columns=list(columns))


def parquet_metadata(location: str):
    """Footers of each data file of a Parquet folder."""
    import pyarrow.parquet as pq

    out = []
    for file in parquet_files(location):
        fs, path = resolve(file)
        with fs.open_input_file(path) as fh:
            out.append(pq.ParquetFile(fh).metadata)
    return out


def exists(location: str) -> bool:
    import pyarrow.fs as pafs

    fs, path = resolve(location)
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def read_bytes(location: str) -> bytes:
    fs, path = resolve(location)
    with fs.open_input_stream(path) as fh:
        return fh.read()


def write_bytes(location: str, data: bytes) -> None:
    """Writes a file whole: to a temporary name, then moved over the target (readers never see half)."""
    fs, path = resolve(location)
    fs.create_dir(posixpath.dirname(path), recursive=True)
    with fs.open_output_stream(path + ".tmp") as fh:
        fh.write(data)
    fs.move(path + ".tmp", path)


def recreate_dir(location: str) -> None:
    """An empty folder at ``location`` (what was there is deleted)."""
    fs, path = resolve(location)
    if exists(location):
        fs.delete_dir(path)
    fs.create_dir(path, recursive=True)


def upload_dir(local_dir: str, location: str) -> None:
    """Copies a local folder to ``location`` (replacing what was there)."""
    import pyarrow.fs as pafs

    recreate_dir(location)
    fs, path = resolve(location)
    pafs.copy_files(local_dir, path, source_filesystem=pafs.LocalFileSystem(), destination_filesystem=fs)


def list_files(location: str) -> List[Tuple[str, int]]:
    """(path relative to ``location``, size) of every file below it, sorted."""
    import pyarrow.fs as pafs

    fs, path = resolve(location)
    infos = fs.get_file_info(pafs.FileSelector(path, recursive=True))
    return sorted((posixpath.relpath(i.path, path), i.size) for i in infos if i.type == pafs.FileType.File)
