"""Shared fixtures: one local[2] Spark session for the whole run, tiny configs, scratch lakes."""

from __future__ import annotations

import os
import sys

import pytest

from recsys_spark.config import PipelineConfig, load_config
from recsys_spark.session import quiet_known_noise

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEST_CONF = os.path.join(REPO, "conf", "test.yaml")
PACKAGE = os.path.join(REPO, "dist", "recsys_spark.zip")  # what spark-submit ships to executors (make package)

quiet_known_noise()


@pytest.fixture(scope="session")
def spark():
    from recsys_spark.session import build_session

    cfg = load_config(TEST_CONF)
    session = build_session(cfg.spark, app_suffix="tests")
    yield session
    session.stop()


def package_differences() -> list:
    """Modules of ``recsys_spark/`` missing from ``dist/recsys_spark.zip``, left over in it, or different."""
    import zipfile

    here = {}
    for root, _, names in os.walk(os.path.join(REPO, "recsys_spark")):
        if "__pycache__" not in root:
            for name in names:
                if name.endswith(".py"):
                    path = os.path.join(root, name)
                    with open(path, "rb") as fh:
                        here[os.path.relpath(path, REPO)] = fh.read()
    if not os.path.exists(PACKAGE):
        return sorted(here)
    with zipfile.ZipFile(PACKAGE) as zf:
        shipped = {name: zf.read(name) for name in zf.namelist()}
    return sorted(name for name in set(here) | set(shipped) if here.get(name) != shipped.get(name))


@pytest.fixture(scope="session")
def package() -> str:
    """The package zip, checked against the sources: a job submitted with a stale zip runs old code on the
    executors (and in the driver, whose path puts --py-files first), which fails far from the cause."""
    stale = package_differences()
    if stale:
        pytest.fail(f"{PACKAGE} does not match recsys_spark/ ({len(stale)} module(s) differ, e.g. {stale[0]}): "
                    f"run `make package` (make test, test-slow and test-all build it first)", pytrace=False)
    return PACKAGE


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
