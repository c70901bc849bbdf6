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
                    shuffle_buffer: int = 10000, workers: int = 1) -> Iterator["_Batches"]:
    """Yields an endless iterator of dicts ``{field: [batch_size] tensor}`` for this rank, valid inside
    the ``with`` block only.

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
    batches = None
    try:
        dataset = make_petastorm_dataset(reader)
        dataset = dataset.map(lambda batch: {name: getattr(batch, name) for name in fields})
        dataset = (
            dataset.unbatch()
            .shuffle(shuffle_buffer, seed=seed)
            .batch(batch_size, drop_remainder=True)
            .prefetch(2)
        )
        # No tf.data autotuning: tearing down an autotuned iterator at the end of an epoch waited ~4 s on
        # every third epoch or so while training (ml-100k SASRec: 4 s on 6-7 s epochs); a fixed prefetch
        # of two batches gives the same batches (the order is the seeded shuffle's) without that wait.
        options = tf.data.Options()
        options.autotune.enabled = False
        dataset = dataset.with_options(options)
        batches = _Batches(iter(dataset))
        yield batches
    finally:
        # End the tf.data iterator while the reader still runs: left alive past ``reader.stop()`` (the
        # caller's name outlives the block), its teardown later waited on a generator over a stopped
        # reader, 4-17 s on some training epochs.
        if batches is not None:
            batches.close()
        reader.stop()
        reader.join()


class _Batches:
    """The batches of one ``sharded_batches`` block; ``close`` releases the tf.data iterator."""

    def __init__(self, iterator):
        self._iterator = iterator

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        if self._iterator is None:
            raise RuntimeError("sharded_batches: the batches were read after their `with` block ended")
        return dict(next(self._iterator))

    def close(self) -> None:
        self._iterator = None
