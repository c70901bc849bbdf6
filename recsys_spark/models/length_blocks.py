"""Histories in blocks of similar length, each cropped to its longest, for SASRec's encoder in TensorFlow
(:meth:`recsys_spark.models.sasrec.SASRec.vectors_for`) and in NumPy
(:class:`recsys_spark.evaluate.sequence_scorer.SequenceScorer`). NumPy only.

Self-attention costs the square of the width and most histories are shorter than the model's window. The
padding cut off at the left is never read by an item's position, so a block encoded from its first kept
position (the positions offset by ``window - width``) gives the full-width result.
"""

from __future__ import annotations

from typing import Iterator, Sequence, Tuple

import numpy as np


def length_blocks(lengths: Sequence[int], window: int, block: int, step: int) -> Iterator[Tuple[np.ndarray, int]]:
    """Yields (rows, width): the rows of ``lengths`` in blocks of ``block`` by increasing length (lengths
    over ``window`` count as ``window``), each block's width its longest length rounded up to ``step``
    columns, at least ``step`` and at most ``window``."""
    lengths = np.minimum(np.asarray(lengths, np.int64), window)
    order = np.argsort(lengths, kind="stable")
    for start in range(0, len(order), block):
        rows = order[start:start + block]
        yield rows, min(window, max(step, -(-int(lengths[rows].max()) // step) * step))
