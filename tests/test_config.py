import os

import pytest

from recsys_spark.config import PipelineConfig, load_config, parse_override
from recsys_spark.errors import ConfigError


def write(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return str(path)


def test_defaults_then_file_then_overrides(tmp_path):
    path = write(tmp_path, "train:\n  epochs: 3\n  learning_rate: 1\nbuild:\n  event_weights: {view: 0.5}\n")
    cfg = load_config(path, ["train.epochs=5", "score.top_n=7"])
    assert cfg.train.epochs == 5  # CLI beats file
    assert cfg.train.learning_rate == 1.0 and isinstance(cfg.train.learning_rate, float)  # int accepted as float
    assert cfg.score.top_n == 7
    assert cfg.train.batch_size == PipelineConfig().train.batch_size  # default kept
    # A partial mapping updates the default mapping instead of replacing it.
    assert cfg.build.event_weights["view"] == 0.5 and cfg.build.event_weights["purchase"] == 5.0


def test_unknown_key_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"train\.epoch'?\]? .*known keys"):
        load_config(write(tmp_path, "train:\n  epoch: 3\n"))
    with pytest.raises(ConfigError, match=r"unknown config key.*'trian'"):
        load_config(write(tmp_path, "trian:\n  epochs: 3\n"))


def test_wrong_types_are_named(tmp_path):
    with pytest.raises(ConfigError, match=r"'train.epochs' must be of type int, got str 'three'"):
        load_config(write(tmp_path, "train:\n  epochs: three\n"))
    with pytest.raises(ConfigError, match=r"'evaluate.require_beats_baseline' must be true or false"):
        load_config(None, ["evaluate.require_beats_baseline=1"])
    with pytest.raises(ConfigError, match=r"'train' must be a mapping"):
        load_config(write(tmp_path, "train: 3\n"))


def test_missing_file_and_bad_values():
    with pytest.raises(ConfigError, match=r"config file not found: 'nope.yaml'"):
        load_config("nope.yaml")
    with pytest.raises(ConfigError, match=r"train.model: unknown model\(s\) \['bert4rec'\]"):
        load_config(None, ["train.model=bert4rec"])
    with pytest.raises(ConfigError, match=r"score.top_n=0: must be > 0"):
        load_config(None, ["score.top_n=0"])
    with pytest.raises(ConfigError, match=r"unknown event types \['like'\]"):
        load_config(None, ["build.event_weights={like: 1.0}"])
    with pytest.raises(ConfigError, match=r"train.negatives=0: must be >= 1"):
        load_config(None, ["train.negatives=0"])
    with pytest.raises(ConfigError, match=r"train.lr_decay=1.5: must be in \(0, 1\]"):
        load_config(None, ["train.lr_decay=1.5"])
    with pytest.raises(ConfigError, match=r"train.warmup_steps=-1: must be >= 0 \(0 = no warm-up\)"):
        load_config(None, ["train.warmup_steps=-1"])
    with pytest.raises(ConfigError, match=r"train.loss='sampled' .* is for sasrec"):
        load_config(None, ["train.model=mf", "train.loss=sampled"])
    with pytest.raises(ConfigError, match=r"train.loss='softmax' \(in-batch negatives\) is for mf, two_tower and "
                                          r"sasrec; lightgcn takes 'bpr' or 'sampled'"):
        load_config(None, ["train.model=lightgcn", "train.loss=softmax"])
    with pytest.raises(ConfigError, match=r"train.temperature=0.0: must be > 0"):
        load_config(None, ["train.model=gcn", "train.loss=sampled", "train.temperature=0"])
    assert load_config(None, ["train.model=lightgcn", "train.loss=sampled"]).train.temperature == 0.1
    with pytest.raises(ConfigError, match=r"train.contrastive_weight: the contrastive view is for lightgcn and gcn, not mf"):
        load_config(None, ["train.model=mf", "train.contrastive_weight=0.1"])
    with pytest.raises(ConfigError, match=r"train.contrastive_weight=0.1, contrastive_noise=-0.1, .* the weight and "):
        load_config(None, ["train.model=lightgcn", "train.contrastive_weight=0.1", "train.contrastive_noise=-0.1"])
    assert load_config(None, ["train.model=gcn", "train.contrastive_weight=0.1"]).train.contrastive_temperature == 0.2
    with pytest.raises(ConfigError, match=r"train.sampler='zipf': use 'uniform' or 'popularity'"):
        load_config(None, ["train.model=sasrec", "train.loss=sampled", "train.sampler=zipf"])
    with pytest.raises(ConfigError, match=r"train.sampled_negatives=0: must be > 0"):
        load_config(None, ["train.sampled_negatives=0"])


def test_override_parsing():
    assert parse_override("a.b.c=3") == {"a": {"b": {"c": 3}}}
    assert parse_override("spark.master=local[4]") == {"spark": {"master": "local[4]"}}
    with pytest.raises(ConfigError, match="section.key=value"):
        parse_override("train.epochs")


def test_exponent_numbers_without_a_dot_are_floats(tmp_path):
    # PyYAML reads 1e-5 as a string; a float key takes it as the number, other keys still refuse it
    cfg = load_config(None, ["train.l2=1e-5", "train.learning_rate=+2E-3"])
    assert (cfg.train.l2, cfg.train.learning_rate) == (1e-5, 0.002)
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  l2: 5e-4\n")
    assert load_config(str(path)).train.l2 == 0.0005
    with pytest.raises(ConfigError, match=r"train.l2' must be of type float, got str 'e-5'"):
        load_config(None, ["train.l2=e-5"])
    with pytest.raises(ConfigError, match=r"train.epochs' must be of type int, got str '1e3'"):
        load_config(None, ["train.epochs=1e3"])


def test_fingerprint_tracks_config():
    assert load_config(None).fingerprint() == load_config(None).fingerprint()
    assert load_config(None, ["train.epochs=2"]).fingerprint() != load_config(None).fingerprint()


def test_model_settings_apply_from_any_conf_location(tmp_path):
    from recsys_spark.config import load_model_config

    elsewhere = tmp_path / "site.yaml"
    elsewhere.write_text("train:\n  epochs: 3\n")
    for conf in (str(elsewhere), "conf/datasets/ml-100k.yaml", None):
        cfg = load_model_config(conf, ["train.heads=2"], "sasrec")
        # conf/models/sasrec.yaml sits between --conf and --set, whichever folder --conf is in
        assert (cfg.train.model, cfg.train.loss, cfg.train.embedding_dim, cfg.train.heads) == ("sasrec", "full", 64, 2)
    assert load_model_config(str(elsewhere), [], "markov").train.epochs == 3  # no markov.yaml: --conf alone


def test_a_conf_file_can_change_one_model_beside_it(tmp_path):
    from recsys_spark.config import load_model_config

    site = tmp_path / "site.yaml"
    site.write_text("train:\n  epochs: 3\n  start_timeout_s: 120\n")
    (tmp_path / "site.sasrec.yaml").write_text("train:\n  embedding_dim: 48\n  heads: 4\n  epochs: 7\n")
    cfg = load_model_config(str(site), ["train.heads=2"], "sasrec")
    # --conf < conf/models/sasrec.yaml < site.sasrec.yaml < --set
    assert (cfg.train.loss, cfg.train.embedding_dim, cfg.train.heads, cfg.train.epochs) == ("full", 48, 2, 7)
    assert cfg.train.start_timeout_s == 120  # set by --conf alone
    mf = load_model_config(str(site), [], "mf")  # no site.mf.yaml: conf/models/mf.yaml's values
    assert (mf.train.embedding_dim, mf.train.epochs, mf.train.start_timeout_s) == (32, 60, 120)


def test_a_single_value_is_a_grid_of_one_and_grids_are_checked():
    cfg = load_config(None, ["ease.l2=50", "markov.last_n=[1, 3]"])
    assert cfg.ease.l2 == [50.0] and cfg.markov.last_n == [1, 3]
    with pytest.raises(ConfigError, match=r"ease.l2=\[0.0\]: every value must be > 0"):
        load_config(None, ["ease.l2=0"])
    with pytest.raises(ConfigError, match=r"evaluate.k=7 must be one of evaluate.ks=\[5, 10, 20\]"):
        load_config(None, ["evaluate.k=7"])


def test_conf_shipped_beside_the_package_is_found_as_in_a_yarn_container(tmp_path):
    """YARN cluster mode runs the driver in a container whose working folder holds what --py-files and
    --archives shipped: dist/recsys_spark.zip and conf/ unpacked from an archive (README, Operating guide)."""
    import shutil
    import subprocess
    import sys

    from .conftest import PACKAGE

    shutil.copy(PACKAGE, tmp_path / "recsys_spark.zip")
    (tmp_path / "conf" / "models").mkdir(parents=True)
    (tmp_path / "conf" / "nightly.yaml").write_text("train:\n  epochs: 4\n")
    (tmp_path / "conf" / "models" / "sasrec.yaml").write_text("train:\n  heads: 3\n")
    (tmp_path / "conf" / "nightly.sasrec.yaml").write_text("train:\n  embedding_dim: 24\n")
    code = ("import recsys_spark.config as c; t = c.load_model_config('conf/nightly.yaml', [], 'sasrec').train; "
            "print(c.__file__, c.model_conf_dir(), t.epochs, t.heads, t.embedding_dim)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(tmp_path / "recsys_spark.zip")}).stdout.split()
    assert out == [str(tmp_path / "recsys_spark.zip" / "recsys_spark" / "config.py"),
                   str(tmp_path / "conf" / "models"), "4", "3", "24"]
