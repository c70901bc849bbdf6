"""Training reaches its lake through URLs: Petastorm, the ranks' table reads, checkpoints and the exported
encoder all go through ``file://`` URLs of a lake whose path holds spaces (a stand-in for hdfs:// or s3://,
which cannot be reached here; the README says what they need)."""

import json
import os

import pytest

from recsys_spark import schemas as S
from recsys_spark.config import load_config
from recsys_spark.data.synthetic import write_raw
from recsys_spark.etl.build import run_build_tables
from recsys_spark.etl.clean_events import run_clean_events
from recsys_spark.lake import Lake
from recsys_spark.training import train_model

from .conftest import TEST_CONF

pytestmark = pytest.mark.slow
DS = "2026-11-27"


def test_training_goes_through_file_urls_of_a_lake_path_with_spaces(spark, tiny_cfg, tmp_path):
    folder = tmp_path / "shared lake" / "recsys lake"
    write_raw(tiny_cfg.generate, str(folder), DS)
    lake = Lake(spark, f"file://{folder}")
    run_clean_events(spark, lake, tiny_cfg.clean, DS)
    run_build_tables(spark, lake, tiny_cfg.build, tiny_cfg.train, DS)
    cfg = load_config(TEST_CONF, ["train.model=sasrec", "train.loss=full", "train.epochs=2", "train.patience=5",
                                  "train.embedding_dim=16", "train.n_layers=1"])
    meta = train_model(spark, lake, cfg, DS)
    spec = meta["train_spec"]
    for key in ("train_url", "train_path", "validation_path", "sequences_path", "item_features_path", "checkpoint_dir"):
        assert spec[key].startswith(f"file://{folder}/"), (key, spec[key])
    checkpoints = folder / "_checkpoints" / "sasrec" / f"ds={DS}"
    assert (checkpoints / "identity.json").exists() and (checkpoints / "validation.json").exists()
    assert [v["epoch"] for v in json.loads((checkpoints / "validation.json").read_text())] == [1, 2]
    export = folder / S.model_table("sasrec") / f"ds={DS}"
    assert (export / "encoder" / "saved_model.pb").exists() and (export / "scorer" / "params.json").exists()
    visible = lambda folder: sorted(n for n in os.listdir(folder) if not n.startswith("."))  # noqa: E731 (not .crc)
    assert visible(export / "scorer") == visible(checkpoints / "scorer") and "params.json" in visible(export / "scorer")
    # The same run again (a retry) resumes from those checkpoints, through the same URLs.
    again = train_model(spark, lake, cfg, DS)
    assert again["resumed_from_epoch"] == 2 and again["weights_digest"] == meta["weights_digest"]
