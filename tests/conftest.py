"""Shared fixtures: one local[2] Spark session for the whole run, tiny configs, scratch lakes."""

from __future__ import annotations

import os
import sys

import pytest

from recsys_spark.config import PipelineConfig, load_config
from recsys_spark.session import quiet_known_noise

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEST_CONF = os.path.join(REPO, "conf", "test.yaml")

quiet_known_noise()


@pytest.fixture(scope="session")
def spark():
    from recsys_spark.session import build_session

    cfg = load_config(TEST_CONF)
    session = build_session(cfg.spark, app_suffix="tests")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def tiny_cfg() -> PipelineConfig:
    return load_config(TEST_CONF)


@pytest.fixture
def lake(spark, tmp_path):
    from recsys_spark.lake import Lake

    return Lake(spark, str(tmp_path / "lake"))


def jobs_env() -> dict:
    """Environment for running jobs as subprocesses with this interpreter."""
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    env["PYSPARK_PYTHON"] = sys.executable
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    return env
