"""Rank 0's side files next to the TensorFlow checkpoints: the best epoch's weights and the validation history."""

from __future__ import annotations

import json

import numpy as np


def save_best(folder: str, best_weights, history) -> None:
    import os

    if best_weights is not None:
        tmp = os.path.join(folder, "best.tmp.npz")
        np.savez(tmp, *best_weights)
        os.replace(tmp, os.path.join(folder, "best.npz"))
    with open(os.path.join(folder, "validation.json.tmp"), "w") as fh:
        json.dump(history, fh)
    os.replace(os.path.join(folder, "validation.json.tmp"), os.path.join(folder, "validation.json"))


def load_best(folder: str):
    import os

    best = None
    if os.path.exists(os.path.join(folder, "best.npz")):
        data = np.load(os.path.join(folder, "best.npz"))
        best = [data[f"arr_{k}"] for k in range(len(data.files))]
    history = []
    if os.path.exists(os.path.join(folder, "validation.json")):
        with open(os.path.join(folder, "validation.json")) as fh:
            history = json.load(fh)
    return best, history
