"""The data feed: Petastorm readers over the lake's Parquet tables, turned into ``tf.data`` batches.

This is the only module that imports Petastorm, so a later move to a pyarrow.dataset-based feed
touches one place. Readers are sharded by Horovod rank (Petastorm shards by row group) and loop
forever; the trainer takes the same number of steps on every rank, so uneven shards cannot hang an
allreduce.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Sequence


def count_rows(location: str) -> int:
    """Rows of a Parquet folder (a local path or URL), from the footers only."""
    from recsys_spark.io import fs

    return sum(m.num_rows for m in fs.parquet_metadata(location))


def count_row_groups(location: str) -> int:
    from recsys_spark.io import fs

    return sum(m.num_row_groups for m in fs.parquet_metadata(location))


def parquet_files(location: str) -> list:
    from recsys_spark.io import fs

    return fs.parquet_files(location)


@contextlib.contextmanager
def sharded_batches(url: str, fields: Sequence[str], rank: int, size: int, batch_size: int, seed: int,
                    shuffle_buffer: int = 10000, workers: int = 1) -> Iterator["object"]:
    """Yields an endless ``tf.data.Dataset`` of dicts ``{field: [batch_size] tensor}`` for this rank.

    Args:
        url: ``file://`` (or other pyarrow-supported) URL of a Parquet folder.
        fields: columns to read.
        rank, size: this worker's shard and the number of shards (Horovod rank and size).
        batch_size: rows per batch (per rank); batches are full (the last partial one is dropped).
        seed: shuffling seed (row groups and rows).
    """
    import tensorflow as tf
    from petastorm import make_batch_reader
    from petastorm.tf_utils import make_petastorm_dataset

    reader = make_batch_reader(
        url,
        schema_fields=list(fields),
        cur_shard=rank,
        shard_count=size,
        num_epochs=None,
        shuffle_row_groups=True,
        seed=seed,
        workers_count=workers,
        reader_pool_type="thread",
    )
    try:
        dataset = make_petastorm_dataset(reader)
        dataset = dataset.map(lambda batch: {name: getattr(batch, name) for name in fields})
        dataset = (
            dataset.unbatch()
            .shuffle(shuffle_buffer, seed=seed)
            .batch(batch_size, drop_remainder=True)
            .prefetch(tf.data.AUTOTUNE)
        )
        yield dataset
    finally:
        reader.stop()
        reader.join()
