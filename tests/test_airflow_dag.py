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
    assert "publication_approved" in dag["doc_md"] and "--py-files" in dag["doc_md"]
    tasks = dag["tasks"]
    assert sorted(tasks) == sorted(ORDER + ["raw_input", "publication_approved"])
    # raw input -> the jobs in order, with the gate's decision checked between report and score
    wired = ["raw_input"] + ORDER[:-1] + ["publication_approved", "score"]
    for task, nxt in zip(wired, wired[1:] + [None]):
        assert tasks[task]["downstream"] == ([nxt] if nxt else []), task
    assert tasks["raw_input"]["type"] == "PythonSensor" and tasks["raw_input"]["mode"] == "reschedule"
    assert tasks["publication_approved"]["type"] == "ShortCircuitOperator"
    for stage in ORDER:
        task = tasks[stage]
        assert task["type"] == "SparkSubmitOperator" and task["conn_id"] == "spark_default"
        assert task["application"] == os.path.join(REPO, "jobs", f"{stage}.py")
        assert task["application_args"] == ["--ds", "{{ ds }}", "--lake", str(tmp_path / "lake"), "--conf", TEST_CONF]
        assert task["env_vars"]["PYSPARK_PYTHON"] == os.path.join(REPO, ".venv", "bin", "python")
        # the package reaches the executors, Spark settings come from conf/
        assert task["py_files"] == os.path.join(REPO, "dist", "recsys_spark.zip")
        assert task["properties_file"] == os.path.join(REPO, "conf", "spark-defaults.conf")
    # policy: every task has a time limit; jobs retry with exponential back-off up to an hour apart
    for name, task in tasks.items():
        assert task["execution_timeout_s"] and task["execution_timeout_s"] <= 7 * 3600, name
        if task["type"] == "SparkSubmitOperator":
            assert task["retries"] == 2 and task["retry_exponential_backoff"] and task["max_retry_delay_s"] == 3600


def test_the_package_the_dag_ships_holds_every_module():
    import zipfile

    shipped = set(zipfile.ZipFile(os.path.join(REPO, "dist", "recsys_spark.zip")).namelist())
    modules = {os.path.relpath(os.path.join(root, name), REPO) for root, _, names in os.walk(os.path.join(REPO, "recsys_spark"))
               for name in names if name.endswith(".py") and "__pycache__" not in root}
    assert shipped == modules
    # every folder is a regular package: zipimport (how executors import --py-files) has no namespace packages
    assert {os.path.dirname(m) for m in modules} <= {os.path.dirname(m) for m in modules if m.endswith("__init__.py")}


@pytest.mark.slow
def test_airflow_dags_test_runs_two_nights_in_a_row(tmp_path, tiny_cfg, spark):
    """A backfill of two consecutive dates with `airflow dags test`: each night runs every task for real
    (the package shipped with --py-files) and writes its own partitions; the second night keeps every id
    the first one gave. The first night publishes; on the second the new champion (mf) is worse than the
    published item_knn by more than evaluate.max_regression, so the gate refuses, publication_approved
    skips score, the run still succeeds and readers keep the first night's table."""
    days = ["2026-11-26", "2026-11-27"]
    lake_root = str(tmp_path / "lake")
    env = airflow_env(tmp_path, lake_root)
    airflow = os.path.join(AIRFLOW_BIN, "airflow")
    migrate = subprocess.run([airflow, "db", "migrate"], env=env, capture_output=True, text=True, timeout=300)
    assert migrate.returncode == 0, migrate.stdout[-2000:] + migrate.stderr[-2000:]
    logs = {}
    for ds in days:
        write_raw(tiny_cfg.generate, lake_root, ds)
        proc = subprocess.run([airflow, "dags", "test", "recsys_nightly", ds], env=env, capture_output=True,
                              text=True, timeout=1800)
        logs[ds] = proc.stdout + proc.stderr
        assert proc.returncode == 0, logs[ds][-4000:]
        assert "state=success" in logs[ds] and "new_state=failed" not in logs[ds]
        for table in (S.EVENTS_CLEAN, S.TRAIN, S.METRICS, S.GATE_DECISIONS, f"{S.REPORTS}/report"):
            assert os.path.isdir(os.path.join(lake_root, table, f"ds={ds}")), table
    assert f"gate for ds={days[0]}: approved item_knn" in logs[days[0]]
    recs = spark.read.parquet(os.path.join(lake_root, S.RECOMMENDATIONS, f"ds={days[0]}"))
    assert recs.count() == tiny_cfg.generate.n_users * tiny_cfg.score.top_n
    assert f"gate for ds={days[1]}: refused mf" in logs[days[1]] and "by more than evaluate.max_regression" in logs[days[1]]
    assert not os.path.exists(os.path.join(lake_root, S.RECOMMENDATIONS, f"ds={days[1]}"))  # score was skipped
    with open(os.path.join(lake_root, S.RECOMMENDATIONS, "_LATEST")) as fh:
        assert json.load(fh)["ds"] == days[0]  # readers keep the last approved night
    vocab = {ds: {r[S.USER_ID]: r[S.USER_IDX] for r in spark.read.parquet(
        os.path.join(lake_root, S.USER_VOCAB, f"ds={ds}")).collect()} for ds in days}
    assert vocab[days[0]] and all(vocab[days[1]][user] == idx for user, idx in vocab[days[0]].items())
