"""One scorer contract for every model, deep or traditional: ``scores(users, histories) -> [B, n_items]``.

Ranking code (validation, evaluation, batch scoring) calls only :meth:`Scorer.scores` on blocks of users,
so it never branches on the model family, and memory is bounded by the block size times the catalogue.
Scorers are TensorFlow-free (NumPy/scipy) so that Spark executors and the evaluation can load them.

- :class:`DotScorer`: user vector . item vector (MF, two-tower, graph models, SASRec, ALS).
- :class:`ItemPriorScorer`: one score per item for everybody (popularity).
- :class:`ProfileScorer`: a user profile built from the history's item features (content-based).
- :class:`ItemItemScorer`: history items times an item-item matrix, optionally only the last few items
  with decaying weights, plus a prior (item-kNN, EASE, Markov chain).
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence

import numpy as np

from recsys_spark.evaluate.reasons import because_arrays, newest_first_matrix


class Scorer:
    """Scores every item for a block of users. ``histories[b]`` is user ``users[b]``'s items, oldest first."""

    kind = "base"
    n_items: int
    needs_trained_user = False  # True when a user's scores come from a vector learned on their interactions

    def scores(self, users: np.ndarray, histories: Sequence[np.ndarray]) -> np.ndarray:
        """users [B] int; histories: B arrays of item indices. Returns [B, n_items] float32."""
        raise NotImplementedError

    def scores_into(self, users: np.ndarray, histories: Sequence[np.ndarray], out: np.ndarray) -> np.ndarray:
        """:meth:`scores` written into ``out`` [B, n_items] float32, a buffer the caller reuses block after
        block (a fresh [B, n_items] array per block costs about as much in page faults as the products)."""
        out[...] = self.scores(users, histories)
        return out

    def arrays(self) -> Dict[str, object]:
        """Arrays to persist (dense ndarray or scipy CSR)."""
        raise NotImplementedError

    def support(self, history: np.ndarray, items: np.ndarray) -> np.ndarray:
        """[len(items), len(history)]: how much each history item supports each item (higher is more); all
        zero for a model with no notion of item-to-item similarity (popularity)."""
        return np.zeros((len(items), len(history)), np.float32)

    def params(self) -> Dict:
        return {}

    def nbytes(self) -> int:
        """Bytes of the arrays a broadcast of this scorer carries."""
        return sum(_nbytes(value) for value in self.arrays().values())

    def columns(self, start: int, stop: int) -> "Scorer":
        """A scorer of items [start, stop) only (histories, ``support`` and ``because_block`` keep the global
        item ids). Scorers with an items x items matrix hold only those columns; the others hold their
        arrays in full (n_items x d at most) and slice the scores."""
        from recsys_spark.evaluate.scorer_views import Columns

        return Columns(self, start, stop)

    def because_block(self, histories: Sequence[np.ndarray], items: np.ndarray, n: int = 3) -> np.ndarray:
        """``because`` for a block: [B, k, n] history item ids; for user b and ``items[b, j]`` (-1 = no item),
        up to ``n`` history items that support it most, most supportive first, then -1s."""
        items = np.asarray(items, np.int64)
        out = np.full(items.shape + (n,), -1, np.int64)
        for row, history in enumerate(histories):
            ids, keep = because_arrays(self, history, np.maximum(items[row], 0), n)
            ids = np.where(keep & (items[row] >= 0)[:, np.newaxis], ids, -1)
            out[row, :, :ids.shape[1]] = ids
        return out


class DotScorer(Scorer):
    """score(u, i) = user_matrix[u] . item_matrix[i]; users beyond ``user_matrix`` score zero."""

    kind = "dot"
    needs_trained_user = True

    def __init__(self, user_matrix: np.ndarray, item_matrix: np.ndarray):
        self.user_matrix = np.asarray(user_matrix, np.float32)
        self.item_matrix = np.asarray(item_matrix, np.float32)
        self.n_items = self.item_matrix.shape[0]

    def user_vectors(self, users, histories) -> np.ndarray:
        users = np.asarray(users, np.int64)
        known = users < self.user_matrix.shape[0]
        block = np.zeros((len(users), self.user_matrix.shape[1]), np.float32)
        block[known] = self.user_matrix[users[known]]
        return block

    def scores(self, users, histories):
        return self.user_vectors(users, histories) @ self.item_matrix.T

    def scores_into(self, users, histories, out):
        return np.matmul(self.user_vectors(users, histories), self.item_matrix.T, out=out)

    def arrays(self):
        return {"user_matrix": self.user_matrix, "item_matrix": self.item_matrix}

    def support(self, history, items):
        return _cosine(self.item_matrix[np.asarray(items, np.int64)], self.item_matrix[np.asarray(history, np.int64)])

    def unit_items(self) -> np.ndarray:
        """The item vectors scaled to unit length (computed once per process)."""
        if getattr(self, "_unit", None) is None:
            norms = np.linalg.norm(self.item_matrix, axis=1, keepdims=True)
            self._unit = self.item_matrix / np.maximum(norms, 1e-12)
        return self._unit

    def __getstate__(self):  # (the unit vectors are rebuilt where they are needed, never shipped)
        return {key: value for key, value in self.__dict__.items() if key != "_unit"}

    def because_block(self, histories, items, n=3):
        """As :meth:`Scorer.because_block`, for the whole block at once (one batched product of unit vectors)."""
        items = np.asarray(items, np.int64)
        width = max((len(h) for h in histories), default=0)
        if width == 0 or items.size * width > 16_000_000:  # (a very long history: user by user)
            return super().because_block(histories, items, n)
        history = newest_first_matrix(histories, width)
        unit = self.unit_items()
        support = np.matmul(unit[np.maximum(items, 0)], np.swapaxes(unit[np.maximum(history, 0)], 1, 2))
        support = np.where(history[:, np.newaxis, :] >= 0, support, -np.inf)
        ids = np.full(items.shape + (n,), -1, np.int64)
        rows = np.arange(len(history))[:, np.newaxis]
        for slot in range(min(n, width)):  # the best left, n times (argmax: ties to the newer history item)
            best = np.argmax(support, axis=2)
            top = np.take_along_axis(support, best[..., np.newaxis], axis=2)[..., 0]
            ids[..., slot] = np.where((top > 0) & (items >= 0), history[rows, best], -1)
            np.put_along_axis(support, best[..., np.newaxis], -np.inf, axis=2)
        return ids


class ItemPriorScorer(Scorer):
    """The same score per item for every user (popularity counts)."""

    kind = "prior"

    def __init__(self, prior: np.ndarray):
        self.prior = np.asarray(prior, np.float32)
        self.n_items = len(self.prior)

    def scores(self, users, histories):
        return np.broadcast_to(self.prior, (len(users), self.n_items)).copy()

    def arrays(self):
        return {"prior": self.prior}


def history_weights(histories: Sequence[np.ndarray], n_items: int, last_n: Optional[int] = None,
                    decay: float = 1.0):
    """A [B, n_items] CSR of history weights: 1 per item, or ``decay**j`` for the j-th most recent of the
    last ``last_n`` items (a repeated item adds up)."""
    from scipy import sparse

    rows, cols, vals = [], [], []
    for b, items in enumerate(histories):
        items = np.asarray(items, np.int64)
        if last_n is not None:
            items = items[::-1][:last_n]
            weights = decay ** np.arange(len(items))
        else:
            weights = np.ones(len(items))
        rows.append(np.full(len(items), b))
        cols.append(items)
        vals.append(weights)
    if not rows:
        return sparse.csr_matrix((0, n_items), dtype=np.float32)
    return sparse.csr_matrix((np.concatenate(vals).astype(np.float32), (np.concatenate(rows), np.concatenate(cols))),
                             shape=(len(histories), n_items))


class ProfileScorer(Scorer):
    """Content-based: the user profile is the mean of the history items' (normalised) feature rows, and an
    item scores its cosine with it. ``features`` is a scipy CSR [n_items, n_features]."""

    kind = "profile"

    def __init__(self, features):
        self.features = features.tocsr().astype(np.float32)
        self.n_items = self.features.shape[0]

    def scores(self, users, histories):
        profile = history_weights(histories, self.n_items) @ self.features  # [B, F] sparse
        norms = np.sqrt(np.asarray(profile.multiply(profile).sum(axis=1)).ravel())
        profile = profile.multiply(1.0 / np.maximum(norms, 1e-12)[:, None]).tocsr()
        return np.asarray((profile @ self.features.T).todense(), np.float32)

    def arrays(self):
        return {"features": self.features}

    def support(self, history, items):  # feature rows are L2-normalised: the product is their cosine
        rows = self.features[np.asarray(items, np.int64)] @ self.features[np.asarray(history, np.int64)].T
        return np.asarray(rows.todense(), np.float32)


class ItemItemScorer(Scorer):
    """score(u, ·) = Σ_j w_j matrix[h_j] + prior_weight · prior.

    Args:
        matrix: [n_items, n_items] dense ndarray or scipy CSR (row = the history item).
        last_n: use only the last ``last_n`` history items (None: all, each with weight 1).
        decay: weight of the j-th most recent item is ``decay**j`` (with ``last_n``).
        prior: [n_items] back-off scores (e.g. popularity shares); prior_weight its weight.
    """

    kind = "item_item"

    def __init__(self, matrix, last_n: Optional[int] = None, decay: float = 1.0,
                 prior: Optional[np.ndarray] = None, prior_weight: float = 0.0):
        from scipy import sparse

        self.matrix = matrix.tocsr().astype(np.float32) if sparse.issparse(matrix) else matrix
        self.n_items = matrix.shape[1]  # scored items (columns); rows are the history items
        self.offset = 0  # the global id of column 0 (a block of columns: see columns())
        self.last_n = last_n
        self.decay = float(decay)
        self.prior = None if prior is None else np.asarray(prior, np.float32)
        self.prior_weight = float(prior_weight)

    def scores(self, users, histories):
        from scipy import sparse

        weights = history_weights(histories, self.matrix.shape[0], self.last_n, self.decay)
        if sparse.issparse(self.matrix):
            out = np.asarray((weights @ self.matrix).todense(), np.float32)
        else:
            out = np.asarray(weights @ self.matrix, np.float32)
        if self.prior is not None and self.prior_weight:
            out += self.prior_weight * self.prior
        return out

    def arrays(self):
        out = {"matrix": self.matrix}
        if self.prior is not None:
            out["prior"] = self.prior
        return out

    def params(self):
        return {"last_n": self.last_n, "decay": self.decay, "prior_weight": self.prior_weight}

    def columns(self, start, stop):
        part = ItemItemScorer(self.matrix[:, start:stop], self.last_n, self.decay,
                              None if self.prior is None else self.prior[start:stop], self.prior_weight)
        part.offset = self.offset + start
        return part

    def support(self, history, items):  # the matrix entry from each history item to each item
        from scipy import sparse

        block = self.matrix[np.asarray(history, np.int64)][:, np.asarray(items, np.int64) - self.offset]
        return np.asarray(block.todense() if sparse.issparse(block) else block, np.float32).T


def _nbytes(value) -> int:
    from scipy import sparse

    if sparse.issparse(value):
        return int(value.data.nbytes + value.indices.nbytes + value.indptr.nbytes)
    return int(np.asarray(value).nbytes)


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return (a @ b.T).astype(np.float32)


KINDS = {cls.kind: cls for cls in (DotScorer, ItemPriorScorer, ProfileScorer, ItemItemScorer)}


def scorer_from_arrays(kind: str, arrays: Dict[str, object], params: Dict) -> Scorer:
    """Rebuilds a scorer saved as (kind, arrays, params)."""
    if kind == "dot":
        return DotScorer(arrays["user_matrix"], arrays["item_matrix"])
    if kind == "prior":
        return ItemPriorScorer(arrays["prior"])
    if kind == "profile":
        return ProfileScorer(arrays["features"])
    if kind == "sequence":
        from recsys_spark.evaluate.sequence_scorer import SequenceScorer

        return SequenceScorer(arrays, params)
    if kind == "item_item":
        return ItemItemScorer(arrays["matrix"], params.get("last_n"), params.get("decay", 1.0), arrays.get("prior"),
                              params.get("prior_weight", 0.0))
    raise ValueError(f"unknown scorer kind {kind!r}; known: {sorted(KINDS)}")
