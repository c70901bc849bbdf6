"""Item-kNN: cosine similarity of items' train user sets, the ``item_knn.k`` nearest neighbours per item;
a user's score for an item sums its similarity to every history item."""

from __future__ import annotations

from typing import Dict

import numpy as np

from recsys_spark.evaluate.scorers import ItemItemScorer
from recsys_spark.io.local import SplitData


def cosine_top_k(x, k: int, shrink: float = 0.0):
    """x: [n_users, n_items] binary CSR. Returns CSR [n_items, n_items]: row i keeps its ``k`` most similar
    items j != i by cosine |U_i ∩ U_j| / (sqrt(|U_i| |U_j|) + shrink); ties go to the lower index."""
    from scipy import sparse

    co = (x.T @ x).tocsr().astype(np.float32)
    norms = np.sqrt(co.diagonal())
    co = (co - sparse.diags(co.diagonal())).tocsr()
    co.eliminate_zeros()
    co = co.tocoo()
    values = co.data / (norms[co.row] * norms[co.col] + shrink)
    order = np.lexsort((co.col, -values, co.row))
    rows, cols, values = co.row[order], co.col[order], values[order]
    starts = np.searchsorted(rows, np.arange(co.shape[0]))
    rank = np.arange(len(rows)) - starts[rows]
    keep = rank < k
    return sparse.csr_matrix((values[keep], (rows[keep], cols[keep])), shape=co.shape)


def fit(data: SplitData, params: Dict, **_) -> ItemItemScorer:
    x = data.train.to_csr(data.n_items)
    return ItemItemScorer(cosine_top_k(x, int(params["k"]), float(params["shrink"])))
