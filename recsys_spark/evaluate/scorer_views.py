"""Views of a scorer: the same model over more items (:func:`padded`: a model from an earlier day, items
added since score -inf) or over a block of its items (:class:`Columns`, for :meth:`Scorer.columns`); and
:class:`View`, the base of scorers that wrap another one (also the fold-in)."""

from __future__ import annotations

import numpy as np

from recsys_spark.evaluate.scorers import Scorer


class View(Scorer):
    """A scorer over ``inner``: the same arrays and the same reasons (override what differs)."""

    def __init__(self, inner: Scorer, n_items: int):
        self.inner, self.n_items = inner, n_items
        self.needs_trained_user = inner.needs_trained_user

    def support(self, history, items):
        return self.inner.support(history, items)

    def because_block(self, histories, items, n=3):
        return self.inner.because_block(histories, items, n)

    def arrays(self):
        return self.inner.arrays()


def padded(scorer: Scorer, n_items: int) -> "Scorer":
    """A scorer over ``n_items`` items when it was built for fewer (a model from an earlier ds: items
    added since score -inf)."""
    if scorer.n_items >= n_items:
        return scorer
    return Padded(scorer, n_items)


class Padded(View):
    """``inner`` over ``n_items`` items: the items it never knew score -inf and give no reasons."""

    kind = "padded"

    def support(self, history, items):
        items, history = np.asarray(items, np.int64), np.asarray(history, np.int64)
        out = np.zeros((len(items), len(history)), np.float32)
        old_items, old_history = items < self.inner.n_items, history < self.inner.n_items
        if old_items.any() and old_history.any():
            out[np.ix_(old_items, old_history)] = self.inner.support(history[old_history], items[old_items])
        return out

    def because_block(self, histories, items, n=3):
        inner = self.inner.n_items
        items = np.asarray(items, np.int64)
        return self.inner.because_block([np.asarray(h, np.int64)[np.asarray(h, np.int64) < inner] for h in histories],
                                        np.where(items < inner, items, -1), n)

    def scores(self, users, histories):
        inner = self.inner.n_items
        block = self.inner.scores(users, [h[h < inner] for h in histories])
        out = np.full((len(users), self.n_items), -np.inf, np.float32)
        out[:, :inner] = block
        return out


class Columns(View):
    """Items [start, stop) of ``inner``: its scores sliced; reasons from ``inner`` (global item ids)."""

    kind = "columns"

    def __init__(self, inner: Scorer, start: int, stop: int):
        super().__init__(inner, stop - start)
        self.start = start

    def scores(self, users, histories):
        return self.inner.scores(users, histories)[:, self.start:self.start + self.n_items]
