"""``because``: the history items that support a recommendation most, from any scorer's ``support``
(item-item similarity for embedding, item-item and content models; SASRec explains by attention in
``sequence_scorer.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:
    from recsys_spark.evaluate.scorers import Scorer


def because(scorer: Scorer, history: np.ndarray, items: np.ndarray, n: int = 3):
    """For each of ``items``, up to ``n`` distinct history items that support it most (support > 0), most
    supportive first; equal support goes to the more recent history item."""
    ids, keep = because_arrays(scorer, history, items, n)
    return [row[ok] for row, ok in zip(ids, keep)]


def because_arrays(scorer: Scorer, history: np.ndarray, items: np.ndarray, n: int = 3):
    """:func:`because` as arrays: (history item ids [len(items), n'], which of them count [len(items), n'])."""
    history = np.asarray(history, np.int64)
    if len(history) == 0 or len(items) == 0:
        return np.zeros((len(items), 0), np.int64), np.zeros((len(items), 0), bool)
    distinct = newest_first_distinct(history)
    support = scorer.support(distinct, np.asarray(items, np.int64))
    order = np.argsort(-support, axis=1, kind="stable")[:, :n]
    return distinct[order], np.take_along_axis(support, order, axis=1) > 0


def newest_first_matrix(histories: Sequence[np.ndarray], width: int) -> np.ndarray:
    """[B, width]: each history newest first, an item's older repeats and the padding as -1 (the rows of
    :func:`newest_first_distinct`, in place, for a whole block without a loop over users)."""
    lengths = np.array([len(h) for h in histories], np.int64)
    out = np.full((len(histories), width), -1, np.int64)
    if not lengths.sum():
        return out
    rows = np.repeat(np.arange(len(histories)), lengths)
    position = np.arange(len(rows)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    out[rows, lengths[rows] - 1 - position] = np.concatenate([np.asarray(h, np.int64) for h in histories])
    order = np.argsort(out, axis=1, kind="stable")  # equal items side by side, the newest first
    ordered = np.take_along_axis(out, order, axis=1)
    repeat = np.zeros(out.shape, bool)
    np.put_along_axis(repeat, order[:, 1:], (ordered[:, 1:] == ordered[:, :-1]) & (ordered[:, 1:] >= 0), axis=1)
    out[repeat] = -1
    return out


def newest_first_distinct(history) -> np.ndarray:
    """Each history item once, at its most recent position, newest first (a stable sort of support then
    gives ties to the newer item)."""
    history = np.asarray(history, np.int64)
    _, last = np.unique(history[::-1], return_index=True)
    return history[::-1][np.sort(last)]
