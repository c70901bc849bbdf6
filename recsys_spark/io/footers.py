"""Parquet footers, read through Hadoop's FileSystem (so on any filesystem the lake can be on) without
reading any data."""

from __future__ import annotations

from typing import Set


def required_columns(spark, path: str) -> Set[str]:
    """The top-level columns that every Parquet file in the folder ``path`` declares REQUIRED: the format
    stores no null for them (a REQUIRED column has no definition levels), so they need no null scan."""
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    folder = jvm.org.apache.hadoop.fs.Path(path)
    required = None
    for status in folder.getFileSystem(conf).listStatus(folder):
        if not status.getPath().getName().endswith(".parquet"):
            continue
        reader = jvm.org.apache.parquet.hadoop.ParquetFileReader.open(
            jvm.org.apache.parquet.hadoop.util.HadoopInputFile.fromPath(status.getPath(), conf))
        try:
            fields = reader.getFooter().getFileMetaData().getSchema().getFields()
        finally:
            reader.close()
        names = {field.getName() for field in fields if field.getRepetition().name() == "REQUIRED"}
        required = names if required is None else required & names
    return required or set()
