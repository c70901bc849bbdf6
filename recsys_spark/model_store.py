"""Model artifacts in the lake: ``<lake>/models/<model>/ds=<ds>/`` holds ``metadata.json`` and either the
embeddings of a deep model or ALS (``user_embeddings``/``item_embeddings`` Parquet) or a baseline's scorer
arrays (``scorer/``: .npy/.npz + params.json). Loading either gives a
:class:`~recsys_spark.evaluate.scorers.Scorer`."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Dict, Optional

from recsys_spark import schemas as S
from recsys_spark.evaluate.scorers import DotScorer, Scorer, scorer_from_arrays
from recsys_spark.io import local

SCORER_DIR = "scorer"


@dataclass
class LoadedModel:
    name: str
    version: str
    ds: str
    scorer: Scorer
    metadata: Dict

    @property
    def scores_new_items(self) -> bool:
        """Items without interactions get a score from their content (models exported before this say no)."""
        return bool(self.metadata.get("scores_new_items", False))


def model_path(lake, model: str, ds: str) -> str:
    return lake.require_partition(
        S.model_table(model), ds, f"train it first: `python -m jobs.train --model {model} --ds {ds} --lake {lake.root}`.")


def read_metadata(lake, model: str, ds: str) -> Dict:
    return json.loads(lake.read_text(f"{model_path(lake, model, ds)}/metadata.json"))


def load_model(lake, model: str, ds: str, n_items: Optional[int] = None) -> LoadedModel:
    """Loads ``models/<model>/ds=<ds>`` as a scorer (``n_items`` rows for the item side of embeddings)."""
    path = model_path(lake, model, ds)
    metadata = json.loads(lake.read_text(f"{path}/metadata.json"))
    local_path = lake.local_path(path)
    if os.path.isdir(os.path.join(local_path, SCORER_DIR)):
        arrays, params = local.load_arrays(os.path.join(local_path, SCORER_DIR))
        scorer = scorer_from_arrays(metadata["scorer"], arrays, params)
    else:
        scorer = DotScorer(local.read_embeddings(f"{local_path}/user_embeddings", S.USER_IDX, int(metadata["n_users"])),
                           local.read_embeddings(f"{local_path}/item_embeddings", S.ITEM_IDX,
                                                 int(n_items or metadata["n_items"])))
    return LoadedModel(model, metadata["model_version"], ds, scorer, metadata)


def save_scorer_bundle(lake, model: str, ds: str, scorer: Scorer, metadata: Dict) -> str:
    """Writes a baseline's scorer and metadata as one atomic partition."""
    folder = tempfile.mkdtemp(prefix=f"recsys_{model}_")
    try:
        local.save_arrays(os.path.join(folder, SCORER_DIR), scorer.arrays(), scorer.params())
        metadata = dict(metadata, scorer=scorer.kind)
        return lake.write_bundle(S.model_table(model), ds, {},
                                 files={"metadata.json": json.dumps(metadata, indent=2, sort_keys=True) + "\n"},
                                 dirs={SCORER_DIR: os.path.join(folder, SCORER_DIR)})
    finally:
        shutil.rmtree(folder, ignore_errors=True)
