"""EASE (Steck, 2019): a dense item-item matrix B = argmin ||X - XB||² + λ||B||², diag(B) = 0, in closed
form B = -P / diag(P) with P = (XᵀX + λI)⁻¹, in float32 and in place (Cholesky factor and inverse
overwrite the Gram matrix), so the peak is one n_items² float32 matrix (6.7 GB for Gowalla's 41k items).
Catalogues above ``ease.max_items`` are refused."""

from __future__ import annotations

from typing import Dict

import numpy as np

from recsys_spark.errors import ConfigError, NumericalBreakdown
from recsys_spark.evaluate.scorers import ItemItemScorer
from recsys_spark.io.local import SplitData


def ease_matrix(x, l2: float, block: int = 2048) -> np.ndarray:
    """x: [n_users, n_items] binary CSR. Returns B [n_items, n_items] float32 (C order)."""
    from scipy.linalg import lapack

    dense = (x.T @ x).astype(np.float32).toarray()  # scipy gives XᵀX in CSC, so this is Fortran order
    # XᵀX is symmetric: its transpose view is the same matrix in C order (copying it into C order instead
    # is a strided pass over n² floats, minutes at Gowalla's size, with two matrices held meanwhile).
    gram = dense if dense.flags.c_contiguous else dense.T
    del dense
    n = gram.shape[0]
    gram[np.diag_indices(n)] += np.float32(l2)
    # gram.T is the same symmetric matrix in Fortran order, so LAPACK works on it without a copy.
    factor, info = lapack.spotrf(gram.T, lower=1, overwrite_a=1, clean=0)
    if info != 0:
        # XᵀX + λI is positive definite in exact arithmetic for λ > 0; a breakdown is float32 rounding in
        # the last, smallest pivots (or λ <= 0), so a larger λ is the remedy.
        raise NumericalBreakdown(
            f"EASE: the Cholesky factorisation of XᵀX + {l2:g} I broke down in float32 at column {info} of {n} "
            f"(λ too small for single precision at this size); add a larger value to ease.l2, e.g. {2 * max(l2, 1.0):g}")
    _, info = lapack.spotri(factor, lower=1, overwrite_c=1)
    if info != 0:
        raise NumericalBreakdown(f"EASE: inverting XᵀX + {l2:g} I failed (LAPACK info {info}); add a larger value to ease.l2")
    # The inverse sits in the upper triangle (row-major view): mirror it block by block, without a copy.
    for start in range(0, n, block):
        stop = min(n, start + block)
        gram[start:stop, :start] = gram[:start, start:stop].T
        diagonal = gram[start:stop, start:stop]
        diagonal[:] = np.triu(diagonal) + np.triu(diagonal, 1).T
    diag = gram.diagonal().copy()
    gram /= -diag[np.newaxis, :]
    gram[np.diag_indices(n)] = 0.0
    return gram


def check_size(n_items: int, max_items: int) -> None:
    if n_items > max_items:
        gb = n_items * n_items * 4 / 1e9
        raise ConfigError(
            f"ease: the catalogue has {n_items} items, above ease.max_items={max_items}; EASE needs one dense "
            f"{n_items}x{n_items} float32 matrix ({gb:.1f} GB). Raise ease.max_items if the machine has the memory, "
            f"or leave ease out of train.models.")


def fit(data: SplitData, params: Dict, max_items: int = 50000, **_) -> ItemItemScorer:
    check_size(data.n_items, max_items)
    return ItemItemScorer(ease_matrix(data.train.to_csr(data.n_items), float(params["l2"])))
