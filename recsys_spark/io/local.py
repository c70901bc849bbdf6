"""Reading lake tables and model artifacts without Spark (pyarrow and NumPy), for in-process work on the
driver: baselines, evaluation and training-time validation.

Histories are held as CSR-like arrays (``indptr`` by user, items in time order), so that a block of users'
histories is a slice, not a Python dict lookup per user.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Dict, List

import numpy as np

from recsys_spark import schemas as S


@dataclass
class Histories:
    """Each user's items, oldest first: user u's items are ``items[indptr[u]:indptr[u + 1]]``.

    Attributes:
        indptr: [n_users + 1] int64.
        items: [nnz] int32 item indices.
        weights: [nnz] float32 implicit weights (1 where unknown).
        last_ts: [nnz] float64 seconds of the pair's last event (NaN where unknown).
    """

    indptr: np.ndarray
    items: np.ndarray
    weights: np.ndarray
    last_ts: np.ndarray

    @property
    def n_users(self) -> int:
        return len(self.indptr) - 1

    def lengths(self) -> np.ndarray:
        return np.diff(self.indptr)

    def rows(self, users: np.ndarray) -> List[np.ndarray]:
        return [self.items[self.indptr[u]:self.indptr[u + 1]] for u in users]

    def users_with_items(self) -> np.ndarray:
        return np.flatnonzero(self.lengths() > 0)

    def user_of_each(self) -> np.ndarray:
        """[nnz] the user of each entry."""
        return np.repeat(np.arange(self.n_users), self.lengths())

    def to_csr(self, n_items: int, binary: bool = True):
        """scipy.sparse.csr_matrix [n_users, n_items] (1 per pair, or the weights)."""
        from scipy import sparse

        data = np.ones(len(self.items), np.float32) if binary else self.weights.astype(np.float32)
        matrix = sparse.csr_matrix((data, self.items, self.indptr), shape=(self.n_users, n_items))
        matrix.sum_duplicates()
        return matrix

    def followed_by(self, later: "Histories") -> "Histories":
        """Each user's items followed by ``later``'s (validation folded into the history at test time)."""
        users = np.concatenate([self.user_of_each(), later.user_of_each()])
        order = np.argsort(users, kind="stable")
        return Histories.from_sorted(users[order], self.n_users,
                                     np.concatenate([self.items, later.items])[order],
                                     np.concatenate([self.weights, later.weights])[order],
                                     np.concatenate([self.last_ts, later.last_ts])[order])

    @staticmethod
    def from_sorted(users: np.ndarray, n_users: int, items, weights=None, last_ts=None) -> "Histories":
        indptr = np.zeros(n_users + 1, np.int64)
        np.add.at(indptr, np.asarray(users, np.int64) + 1, 1)
        items = np.asarray(items, np.int32)
        return Histories(np.cumsum(indptr), items,
                         np.ones(len(items), np.float32) if weights is None else np.asarray(weights, np.float32),
                         np.full(len(items), np.nan) if last_ts is None else np.asarray(last_ts, np.float64))

    @staticmethod
    def from_pairs(users, items, n_users: int) -> "Histories":
        """Histories of unordered (user, item) pairs, kept in the given order within a user."""
        users = np.asarray(users, np.int64)
        order = np.argsort(users, kind="stable")
        return Histories.from_sorted(users[order], n_users, np.asarray(items)[order])


@dataclass
class SplitData:
    """One ds's split as NumPy arrays: train, validation and test histories in time order."""

    n_users: int
    n_items: int
    train: Histories
    validation: Histories
    test: Histories

    def history(self, for_test: bool) -> Histories:
        """What a model may know when ranking: train for validation; train then validation for test."""
        return self.train.followed_by(self.validation) if for_test else self.train

    def with_validation_in_train(self) -> "SplitData":
        """The same split with validation folded into train (for refitting a model before test)."""
        empty = Histories.from_pairs([], [], self.n_users)
        return SplitData(self.n_users, self.n_items, self.history(True), empty, self.test)

    def targets(self, for_test: bool) -> Histories:
        return self.test if for_test else self.validation

    def train_item_users(self) -> np.ndarray:
        """[n_items] number of distinct train users per item."""
        return np.bincount(self.train.items, minlength=self.n_items)


def read_split(interactions_path: str, n_users: int, n_items: int) -> SplitData:
    """Reads an ``interactions`` partition into :class:`SplitData`.

    Within a user, items are ordered by first time, then by the seeded ``tie_break`` hash.
    """
    from recsys_spark.io import fs

    table = fs.read_parquet(interactions_path, columns=[S.USER_IDX, S.ITEM_IDX, S.WEIGHT, S.FIRST_TS, S.LAST_TS,
                                                        S.TIE_BREAK, S.SPLIT])
    users = table.column(S.USER_IDX).to_numpy().astype(np.int64)
    items = table.column(S.ITEM_IDX).to_numpy()
    weights = table.column(S.WEIGHT).to_numpy()
    first = table.column(S.FIRST_TS).cast("int64").to_numpy()
    last = table.column(S.LAST_TS).cast("int64").to_numpy() / 1e6
    ties = table.column(S.TIE_BREAK).to_numpy()
    split = np.asarray(table.column(S.SPLIT).to_pylist())
    parts = {}
    for name in (S.SPLIT_TRAIN, S.SPLIT_VALIDATION, S.SPLIT_TEST):
        mask = split == name
        order = np.lexsort((ties[mask], first[mask], users[mask]))
        parts[name] = Histories.from_sorted(users[mask][order], n_users, items[mask][order], weights[mask][order],
                                            last[mask][order])
    return SplitData(n_users, n_items, parts[S.SPLIT_TRAIN], parts[S.SPLIT_VALIDATION], parts[S.SPLIT_TEST])


def read_lake_split(lake, ds: str) -> SplitData:
    """The split of ``ds`` from the lake's ``interactions`` and vocabularies (through their URLs)."""
    hint = f"run `python -m jobs.build_tables --ds {ds} --lake {lake.root}` first."
    paths = {t: lake.url(lake.require_partition(t, ds, hint)) for t in (S.INTERACTIONS, S.USER_VOCAB, S.ITEM_VOCAB)}
    return read_split(paths[S.INTERACTIONS], vocab_size(paths[S.USER_VOCAB], S.USER_IDX),
                      vocab_size(paths[S.ITEM_VOCAB], S.ITEM_IDX))


def vocab_size(vocab_path: str, idx_col: str) -> int:
    import pyarrow.compute as pc

    from recsys_spark.io import fs

    column = fs.read_parquet(vocab_path, columns=[idx_col]).column(idx_col)
    return 0 if len(column) == 0 else int(pc.max(column).as_py()) + 1


def read_embeddings(path: str, idx_col: str, n_rows: int) -> np.ndarray:
    """(idx, embedding) Parquet -> [n_rows, d] float32 (rows missing from the file stay zero)."""
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=[idx_col, S.EMBEDDING])
    idx = table.column(idx_col).to_numpy()
    values = table.column(S.EMBEDDING).combine_chunks()
    dim = len(values[0]) if len(values) else 0
    flat = values.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
    matrix = np.zeros((n_rows, dim), np.float32)
    keep = idx < n_rows
    matrix[idx[keep]] = flat.reshape(-1, dim)[keep] if dim else matrix[idx[keep]]
    return matrix


def read_item_features(path: str, n_items: int):
    """The ``item_features`` partition as one scipy CSR [n_items, categories + tags + title buckets], rows
    L2-normalised (each block weighted equally); items without content have an all-zero row."""
    from scipy import sparse

    from recsys_spark.io import fs

    table = fs.read_parquet(path).to_pydict()
    n_categories = max((len(v) for v in table[S.CATEGORY_MULTI_HOT]), default=0)
    n_tags = max((max(v) + 1 for v in table[S.TAG_IDS] if v), default=0)
    n_title = max((max(v) + 1 for v in table[S.TITLE_TFIDF_INDICES] if v), default=0)
    rows, cols, vals = [], [], []
    for idx, cats, tags, t_idx, t_val in zip(table[S.ITEM_IDX], table[S.CATEGORY_MULTI_HOT], table[S.TAG_IDS],
                                            table[S.TITLE_TFIDF_INDICES], table[S.TITLE_TFIDF_VALUES]):
        if idx >= n_items:
            continue
        blocks = [([c for c, v in enumerate(cats) if v], [1.0] * int(sum(1 for v in cats if v)), 0),
                  (list(tags), [1.0] * len(tags), n_categories),
                  (list(t_idx), list(t_val), n_categories + n_tags)]
        for block_cols, block_vals, offset in blocks:
            norm = float(np.sqrt(np.sum(np.square(block_vals)))) if block_vals else 0.0
            if norm > 0:
                rows += [idx] * len(block_cols)
                cols += [offset + c for c in block_cols]
                vals += [v / norm for v in block_vals]
    matrix = sparse.csr_matrix((np.asarray(vals, np.float32), (rows, cols)),
                               shape=(n_items, max(1, n_categories + n_tags + n_title)))
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    return sparse.diags(np.where(norms > 0, 1.0 / np.maximum(norms, 1e-12), 0.0).astype(np.float32)) @ matrix


def save_arrays(folder: str, arrays: Dict[str, object], params: Dict) -> None:
    """Writes a scorer's arrays (NumPy .npy, scipy CSR as .npz) and its parameters (params.json)."""
    from scipy import sparse

    os.makedirs(folder, exist_ok=True)
    for name, value in arrays.items():
        if sparse.issparse(value):
            sparse.save_npz(os.path.join(folder, f"{name}.npz"), value.tocsr())
        else:
            np.save(os.path.join(folder, f"{name}.npy"), np.asarray(value))
    with open(os.path.join(folder, "params.json"), "w") as fh:
        json.dump(params, fh, sort_keys=True)


def load_arrays(folder: str, mmap: bool = True):
    """(arrays, params) written by :func:`save_arrays`; dense arrays are memory-mapped when ``mmap``."""
    from scipy import sparse

    arrays: Dict[str, object] = {}
    for name in sorted(os.listdir(folder)):
        stem, ext = os.path.splitext(name)
        if ext == ".npy":
            arrays[stem] = np.load(os.path.join(folder, name), mmap_mode="r" if mmap else None)
        elif ext == ".npz":
            arrays[stem] = sparse.load_npz(os.path.join(folder, name)).tocsr()
    with open(os.path.join(folder, "params.json")) as fh:
        params = json.load(fh)
    return arrays, params


def load_pairs(location: str):
    """(user_idx, item_idx) int64 arrays of a pairs Parquet folder (train/validation/test), local or a URL."""
    from recsys_spark.io import fs

    table = fs.read_parquet(location, columns=[S.USER_IDX, S.ITEM_IDX])
    return (table.column(S.USER_IDX).to_numpy().astype(np.int64),
            table.column(S.ITEM_IDX).to_numpy().astype(np.int64))


def log_item_shares(items: np.ndarray, n_items: int) -> np.ndarray:
    """log(count_i / total) per item, with unseen items at the log of half an interaction."""
    counts = np.bincount(items, minlength=n_items).astype(np.float64)
    counts[counts == 0] = 0.5
    return np.log(counts / counts.sum()).astype(np.float32)
