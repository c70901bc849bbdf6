"""The DAG in the Airflow environment (.venv-airflow): it imports cleanly, is wired in the nightly order,
and a real `airflow dags test` run executes every job through spark-submit."""

import json
import os
import subprocess

import pytest

from recsys_spark import schemas as S
from recsys_spark.data.synthetic import write_raw

from .conftest import REPO, TEST_CONF, jobs_env

AIRFLOW_BIN = os.path.join(REPO, ".venv-airflow", "bin")
DAGS = os.path.join(REPO, "airflow_dags")
ORDER = ["clean_events", "build_tables", "train", "evaluate", "gate", "report", "score"]


def airflow_env(tmp_path, lake_root):
    if not os.path.exists(os.path.join(AIRFLOW_BIN, "airflow")):
        pytest.fail(".venv-airflow is missing: run `make setup` (make test does it for you)")
    env = jobs_env()
    env.update({
        "AIRFLOW_HOME": str(tmp_path / "airflow_home"),
        "AIRFLOW__CORE__DAGS_FOLDER": DAGS,
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps(
            {"conn_type": "spark", "host": "local[2]", "extra": {"deploy-mode": "client"}}),
        "RECSYS_LAKE": lake_root,
        "RECSYS_CONF": TEST_CONF,
        # No conf/models layers: the tiny test settings train every model (tests/test_config.py covers layering).
        "RECSYS_MODEL_CONF_DIR": str(tmp_path / "no_model_conf"),
    })
    env.pop("PYTHONPATH", None)  # the scheduler must not see the jobs' packages
    return env


def test_dag_imports_and_is_wired_in_order(tmp_path):
    env = airflow_env(tmp_path, str(tmp_path / "lake"))
    proc = subprocess.run([os.path.join(AIRFLOW_BIN, "python"), os.path.join(REPO, "tests", "airflow_scripts",
                           "dag_structure.py"), DAGS], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [l for l in proc.stdout.splitlines() if l.startswith("DAG_STRUCTURE_JSON=")][-1]
    out = json.loads(line.split("=", 1)[1])
    assert out["import_errors"] == {}
    dag = out["dags"]["recsys_nightly"]
    assert dag["schedule"] == "@daily" and dag["catchup"] is False and dag["max_active_runs"] == 1
    tasks = dag["tasks"]
    assert sorted(tasks) == sorted(ORDER)
    for stage, nxt in zip(ORDER, ORDER[1:] + [None]):
        task = tasks[stage]
        assert task["type"] == "SparkSubmitOperator" and task["conn_id"] == "spark_default"
        assert task["downstream"] == ([nxt] if nxt else [])
        assert task["application"] == os.path.join(REPO, "jobs", f"{stage}.py")
        assert task["application_args"] == ["--ds", "{{ ds }}", "--lake", str(tmp_path / "lake"), "--conf", TEST_CONF]
        assert task["env_vars"]["PYSPARK_PYTHON"] == os.path.join(REPO, ".venv", "bin", "python")
        assert task["retries"] == 1


@pytest.mark.slow
def test_airflow_dags_test_runs_the_whole_night(tmp_path, tiny_cfg, spark):
    ds = "2026-11-27"
    lake_root = str(tmp_path / "lake")
    write_raw(tiny_cfg.generate, lake_root, ds)
    env = airflow_env(tmp_path, lake_root)
    airflow = os.path.join(AIRFLOW_BIN, "airflow")
    migrate = subprocess.run([airflow, "db", "migrate"], env=env, capture_output=True, text=True, timeout=300)
    assert migrate.returncode == 0, migrate.stdout[-2000:] + migrate.stderr[-2000:]
    proc = subprocess.run([airflow, "dags", "test", "recsys_nightly", ds], env=env, capture_output=True,
                          text=True, timeout=1800)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert "state=success" in log and "new_state=failed" not in log
    for table in (S.EVENTS_CLEAN, S.TRAIN, S.METRICS, S.GATE_DECISIONS, f"{S.REPORTS}/report", S.RECOMMENDATIONS):
        assert os.path.isdir(os.path.join(lake_root, table, f"ds={ds}")), table
    assert os.path.exists(os.path.join(lake_root, S.RECOMMENDATIONS, f"ds={ds}", "_SUCCESS"))
    recs = spark.read.parquet(os.path.join(lake_root, S.RECOMMENDATIONS, f"ds={ds}"))
    assert recs.count() == tiny_cfg.generate.n_users * tiny_cfg.score.top_n
