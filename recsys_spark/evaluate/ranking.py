"""Top-K ranking of any :class:`~recsys_spark.evaluate.scorers.Scorer`, in blocks of users.

The same block ranking serves training-time validation, the nightly evaluation (in the driver) and batch
scoring (inside Spark executors), so the lists that are evaluated are produced exactly as the published
ones. Memory is bounded by ``block x n_items`` scores at a time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator, Optional, Sequence, Tuple

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import types as T

from recsys_spark import schemas as S
from recsys_spark.evaluate.scorers import Scorer

if TYPE_CHECKING:
    from recsys_spark.io.parquet_parts import PartSink

TOP_K_SCHEMA = T.StructType(
    [
        T.StructField(S.USER_IDX, T.IntegerType(), False),
        T.StructField(S.ITEM_IDX, T.IntegerType(), False),
        T.StructField(S.RANK, T.IntegerType(), False),
        T.StructField(S.SCORE, T.FloatType(), False),
    ]
)
EXPLAINED_FIELDS = [T.StructField(S.ITEM_ID, T.StringType(), False),
                    T.StructField(S.BECAUSE, T.ArrayType(T.StringType(), False), False),
                    T.StructField(S.NEW_ITEM, T.BooleanType(), False)]


def top_k_from_scores(scores: np.ndarray, seen: Sequence, is_candidate: np.ndarray, k: int):
    """Top-``k`` of a block of scores, seen items and non-candidates excluded.

    Args:
        scores: [B, n_items] (modified in place).
        seen: B arrays of item indices to exclude.
        is_candidate: [n_items] bool, items that may be recommended at all.

    Returns:
        (items [B, k'] int, scores [B, k'] float) with k' = min(k, n_items), best first; ties go to the
        lower item index; NaN counts as -inf. Slots with no eligible item hold -1 and -inf.
    """
    scores = np.asarray(scores, np.float32)
    if not is_candidate.all():
        scores[:, ~is_candidate] = -np.inf
    lengths = [0 if items is None else len(items) for items in seen]
    if sum(lengths):  # one scatter for the whole block
        columns = [np.asarray(items, np.int64) for items in seen if items is not None and len(items)]
        scores[np.repeat(np.arange(len(lengths)), lengths), np.concatenate(columns)] = -np.inf
    n_rows, n_items = scores.shape
    k = min(k, n_items)
    rows, cols = _at_or_above_kth(scores, k)  # grouped by row, ascending items within a row
    # one int64 key per kept score, larger = better: the score's order-preserving bits above the item's
    # complement, so that equal scores rank the lower item first; each row's keys side by side (padded
    # with the smallest key), its k largest partitioned out, then sorted
    keys = _order_bits(scores[rows, cols]) << 32 | (_LOW - cols)
    counts = np.bincount(rows, minlength=n_rows)
    width = max(int(counts.max(initial=0)), k)
    position = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)
    table = np.full((n_rows, width), _PAD, np.int64)
    table[rows, position] = keys
    if width > k:
        table = np.partition(table, width - k, axis=1)[:, width - k:]
    table = np.sort(table, axis=1)[:, ::-1]  # best first
    listed = table != _PAD
    items = np.where(listed, _LOW - (table & _LOW), -1)
    top_scores = np.full((n_rows, k), -np.inf, np.float32)
    top_scores[listed] = scores[np.nonzero(listed)[0], items[listed]]
    return items, top_scores


_LOW = np.int64(0xFFFFFFFF)
_PAD = np.iinfo(np.int64).min


def _order_bits(values: np.ndarray) -> np.ndarray:
    """int64 with the order of the float32 ``values`` (finite, or inf): larger float, larger int; -0.0
    and 0.0 equal."""
    bits = (np.asarray(values, np.float32) + np.float32(0)).view(np.int32)  # (+ 0: -0.0 becomes 0.0)
    return (bits ^ ((bits >> 31) & np.int32(0x7FFFFFFF))).astype(np.int64)


def _at_or_above_kth(scores: np.ndarray, k: int):
    """(rows, cols) of every score above -inf (NaN excluded) at or above its row's k-th largest (ties at it
    included).

    A threshold from a sample of the columns (its ~3k-th share) keeps a few times k items per row
    in one comparison pass; rows where it keeps fewer than k (or whose sample has no finite threshold) are
    partitioned exactly. Three passes over the block in all (sample, compare, collect): the scores are
    large, so passes, not arithmetic, are what cost.
    """
    n_rows, n_items = scores.shape
    step = max(1, n_items // max(16 * k, 1024))
    if k >= n_items or step == 1:
        keep = np.zeros(0, bool)
    else:
        # one column in ``step``: runs of 16 adjacent columns (a cache line), evenly spread, copied at once
        spread = n_items // (16 * step)
        sample = (scores[:, :spread * 16 * step].reshape(n_rows, spread, 16 * step)[:, :, :16].reshape(n_rows, -1)
                  if spread else scores[:, ::step].copy())
        above = min(sample.shape[1] - 1, 3 * k // step + 1)  # expect ~3k items at or above the threshold
        sample.partition(sample.shape[1] - above, axis=1)
        threshold = sample[:, sample.shape[1] - above].copy()
        threshold[~(threshold > -np.inf)] = np.nan  # (-inf or NaN: the row is ranked exactly; NaN keeps nothing)
        keep = scores >= threshold[:, np.newaxis]  # a finite threshold keeps no -inf and no NaN
    flat = np.flatnonzero(keep)  # (4x faster than np.nonzero on a 2-D mask)
    rows = flat // n_items
    cols = flat - rows * n_items
    short = np.flatnonzero(np.bincount(rows, minlength=n_rows) < k)
    if len(short):  # exact k-th largest for the rows the sample missed
        exact = scores[short]
        exact[np.isnan(exact)] = -np.inf
        finite = exact > -np.inf
        kth = np.full(len(short), -np.inf, np.float32)
        full = np.count_nonzero(finite, axis=1) > k
        if full.any():
            kth[full] = np.partition(exact[full], n_items - k, axis=1)[:, n_items - k]
        exact_flat = np.flatnonzero((exact >= kth[:, np.newaxis]) & finite)
        exact_rows = exact_flat // n_items
        fine = np.ones(n_rows, bool)
        fine[short] = False
        fine = fine[rows]
        rows = np.concatenate([rows[fine], short[exact_rows]])
        cols = np.concatenate([cols[fine], exact_flat - exact_rows * n_items])
        order = np.argsort(rows.astype(np.int16 if n_rows < 2 ** 15 else np.int64), kind="stable")  # (radix sort)
        rows, cols = rows[order], cols[order]
    return rows, cols


def rank_blocks(scorer: Scorer, users: np.ndarray, score_histories: Sequence, seen: Sequence,
                is_candidate: np.ndarray, k: int, block: int = 1024) -> Iterator[Tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Yields (users [b], items [b, k'], scores [b, k']) for consecutive blocks of ``users``.

    ``score_histories[i]`` is what the scorer reads for ``users[i]``; ``seen[i]`` what is masked.
    """
    buffer = np.empty((min(block, len(users)), scorer.n_items), np.float32)  # (one per call: no page faults per block)
    for start in range(0, len(users), block):
        chunk = np.asarray(users[start:start + block])
        scores = scorer.scores_into(chunk, score_histories[start:start + block], buffer[:len(chunk)])
        items, top = top_k_from_scores(scores, seen[start:start + block], is_candidate, k)
        yield chunk, items, top


def top_k_spark(users_df: DataFrame, scorer: Scorer, is_candidate: np.ndarray, k: int,
                users_per_batch: int = 512, history_col: str = S.HISTORY,
                explain_names: Optional[np.ndarray] = None, carry: Sequence[str] = (),
                new_items: Optional[np.ndarray] = None, seen_col: Optional[str] = None,
                item_offset: int = 0, sink: Optional["PartSink"] = None) -> DataFrame:
    """Top-``k`` per user in Spark executors: (user_idx, history array<int>) -> (user_idx, item_idx, rank, score).

    The scorer (broadcast) reads each user's history, which is also masked (or ``seen_col``'s items, when
    given). Fewer than ``k`` rows for a
    user only when fewer than ``k`` eligible items exist. With ``explain_names`` (item id per index) the
    rows also hold ``item_id``, ``because`` (the ids of up to 3 history items that support the item most)
    and ``new_item`` (``new_items`` [n_items] bool: items without any interaction). ``carry``: columns of
    ``users_df`` repeated on each of the user's rows (e.g. ``user_id``). ``item_offset``: the scorer scores
    the items from this global id on (a block of :meth:`Scorer.columns`; ``is_candidate`` is that block's).
    With ``sink`` each task writes its rows to its own Parquet file there instead (pyarrow, in the task:
    the rows never go through the JVM) and the DataFrame holds one row (file, rows) per file written.
    """
    spark = users_df.sparkSession
    if explain_names is not None and new_items is None:
        new_items = np.zeros(len(explain_names), bool)
    broadcast = spark.sparkContext.broadcast((scorer, np.asarray(is_candidate, bool), explain_names, new_items))
    carry = list(carry)

    fields = TOP_K_SCHEMA.fields + (EXPLAINED_FIELDS if explain_names is not None else [])
    schema = T.StructType(fields + [users_df.schema[c] for c in carry])

    def ranked(batches: Iterator) -> Iterator:
        # Arrow in, Arrow out: the rows (and their because lists) are built from arrays and offsets, never
        # as Python objects one by one.
        import pyarrow as pa
        import pyarrow.compute as pc

        model, candidates, names, is_new = broadcast.value
        names = None if names is None else pa.array(names, pa.string())  # (ids are taken by index, in Arrow)
        for batch in batches:
            if batch.num_rows == 0:
                continue
            histories = _lists(batch.column(history_col))
            seen = histories if seen_col is None else _lists(batch.column(seen_col))
            # the items of this scorer's (block's) range, at their positions in it
            largest = pc.max(batch.column(seen_col or history_col).flatten()).as_py()
            if item_offset or (largest is not None and largest >= len(candidates)):
                seen = [h[(h >= item_offset) & (h < item_offset + len(candidates))] - item_offset for h in seen]
            all_users = batch.column(S.USER_IDX).to_numpy(zero_copy_only=False)
            for start, (users, items, scores) in zip(
                    range(0, len(histories), users_per_batch),
                    rank_blocks(model, all_users, histories, seen, candidates, k, users_per_batch)):
                keep = items >= 0
                items = np.where(keep, items + item_offset, -1)
                per_user = keep.sum(axis=1)
                ranks = np.broadcast_to(np.arange(1, items.shape[1] + 1), items.shape)
                arrays = [pa.array(np.repeat(users, per_user).astype(np.int32)), pa.array(items[keep].astype(np.int32)),
                          pa.array(ranks[keep].astype(np.int32)), pa.array(scores[keep].astype(np.float32))]
                if names is not None:
                    reasons = model.because_block(histories[start:start + len(users)], items)[keep]  # [rows, 3]
                    listed = reasons >= 0  # reasons come first, then -1s
                    offsets = np.concatenate([[0], np.cumsum(listed.sum(axis=1))]).astype(np.int32)
                    arrays += [names.take(pa.array(items[keep])),
                               pa.ListArray.from_arrays(pa.array(offsets), names.take(pa.array(reasons[listed]))),
                               pa.array(is_new[items[keep]])]
                rows_of = pa.array(np.repeat(np.arange(start, start + len(users)), per_user))
                arrays += [batch.column(column).take(rows_of) for column in carry]
                yield pa.RecordBatch.from_arrays(arrays, names=schema.fieldNames())

    inputs = [S.USER_IDX, history_col] + ([seen_col] if seen_col else []) + carry
    if sink is not None:
        from recsys_spark.io.parquet_parts import WRITTEN_SCHEMA, write_batches

        return users_df.select(*inputs).mapInArrow(lambda batches: write_batches(sink, ranked(batches)),
                                                   schema=WRITTEN_SCHEMA)
    return users_df.select(*inputs).mapInArrow(ranked, schema=schema)


def _lists(column) -> list:
    """An Arrow list<int> column as one int64 NumPy array per row (a null list: empty)."""
    offsets = column.offsets.to_numpy()
    values = column.values.to_numpy(zero_copy_only=False).astype(np.int64)
    return [values[offsets[row]:offsets[row + 1]] for row in range(len(column))]


def top_k_spark_in_item_blocks(users_df: DataFrame, scorer: Scorer, is_candidate: np.ndarray, k: int,
                               max_broadcast_bytes: float, sink: Optional["PartSink"] = None, **kwargs) -> DataFrame:
    """:func:`top_k_spark` with the scorer's items split into blocks when the scorer is larger than
    ``max_broadcast_bytes``: each block (:meth:`Scorer.columns`) is broadcast and ranked on its own, then
    each user's best ``k`` over the blocks are kept (ties to the lower item index, as in one pass).
    ``sink``: as in :func:`top_k_spark` (after the merge, when there are several blocks)."""
    import functools
    import math

    from pyspark.sql import Window
    from pyspark.sql import functions as F

    n_blocks = max(1, math.ceil(scorer.nbytes() / max(max_broadcast_bytes, 1.0)))
    if n_blocks == 1:
        return top_k_spark(users_df, scorer, is_candidate, k, sink=sink, **kwargs)
    size = math.ceil(scorer.n_items / n_blocks)
    parts = [top_k_spark(users_df, scorer.columns(start, min(start + size, scorer.n_items)),
                         is_candidate[start:start + size], k, item_offset=start, **kwargs)
             for start in range(0, scorer.n_items, size)]
    best = Window.partitionBy(S.USER_IDX).orderBy(F.desc(S.SCORE), F.asc(S.ITEM_IDX))
    merged = (functools.reduce(DataFrame.unionByName, parts).withColumn(S.RANK, F.row_number().over(best))
              .filter(F.col(S.RANK) <= k))
    if sink is None:
        return merged
    from recsys_spark.io.parquet_parts import write_partitions

    return write_partitions(merged, sink)


def candidates_of(history_items: np.ndarray, n_items: int) -> np.ndarray:
    """[n_items] bool: items met in the given history (what a model can have learned about)."""
    return np.bincount(np.asarray(history_items, np.int64), minlength=n_items)[:n_items] > 0
