"""The checkpoint folder of one (model, ds), a local path or a URL: whether a run resumes it, and rank 0's
side files next to the TensorFlow checkpoints (the best epoch's weights and the validation history)."""

from __future__ import annotations

import io
import json

import numpy as np

from recsys_spark.io import fs

IDENTITY_FILE = "identity.json"


def save_best(folder: str, best_weights, history) -> None:
    if best_weights is not None:
        buffer = io.BytesIO()
        np.savez(buffer, *best_weights)
        fs.write_bytes(fs.join(folder, "best.npz"), buffer.getvalue())
    fs.write_bytes(fs.join(folder, "validation.json"), json.dumps(history).encode())


def load_best(folder: str):
    best = None
    if fs.exists(fs.join(folder, "best.npz")):
        data = np.load(io.BytesIO(fs.read_bytes(fs.join(folder, "best.npz"))))
        best = [data[f"arr_{k}"] for k in range(len(data.files))]
    history = []
    if fs.exists(fs.join(folder, "validation.json")):
        history = json.loads(fs.read_bytes(fs.join(folder, "validation.json")))
    return best, history


def inputs_digest(locations) -> str:
    """A digest of the input files' names and sizes: a rebuilt table (new part files) changes it."""
    import hashlib

    h = hashlib.sha256()
    for location in locations:
        for name, size in fs.list_files(location):
            if not name.split("/")[-1].startswith((".", "_")):
                h.update(f"{name}:{size};".encode())
    return h.hexdigest()[:16]


def prepare(folder: str, identity: dict, fresh: bool = False) -> bool:
    """Makes ``folder`` ready for a run of ``identity`` (model version and inputs); returns True when the run
    resumes the checkpoints already there (same identity, not ``fresh``), False when it starts over (the
    folder is emptied first). A retried task thus continues where the failed attempt stopped, while a run
    on rebuilt tables or changed settings never picks up stale weights."""
    path = fs.join(folder, IDENTITY_FILE)
    if not fresh and fs.exists(path) and json.loads(fs.read_bytes(path)) == identity:
        return True
    fs.recreate_dir(folder)
    fs.write_bytes(path, json.dumps(identity, sort_keys=True).encode())
    return False
