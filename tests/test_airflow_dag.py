"""The DAG in the Airflow environment (.venv-airflow): it imports cleanly, is wired in the nightly order,
and a real `airflow dags test` run executes every job through spark-submit."""

import json
import os
import subprocess

import pytest

from recsys_spark import schemas as S
from recsys_spark.data.synthetic import write_raw

from .conftest import PACKAGE, REPO, TEST_CONF, jobs_env

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
        assert task["py_files"] == PACKAGE
        assert task["properties_file"] == os.path.join(REPO, "conf", "spark-defaults.conf")
    # policy: every task has a time limit; jobs retry with exponential back-off up to an hour apart
    for name, task in tasks.items():
        assert task["execution_timeout_s"] and task["execution_timeout_s"] <= 7 * 3600, name
        if task["type"] == "SparkSubmitOperator":
            assert task["retries"] == 2 and task["retry_exponential_backoff"] and task["max_retry_delay_s"] == 3600


def test_the_package_the_dag_ships_holds_every_module():
    """dist/recsys_spark.zip holds exactly the modules of recsys_spark/, byte for byte."""
    from .conftest import package_differences

    assert package_differences() == []
    modules = {os.path.relpath(os.path.join(root, name), REPO) for root, _, names in os.walk(os.path.join(REPO, "recsys_spark"))
               for name in names if name.endswith(".py") and "__pycache__" not in root}
    # every folder is a regular package: zipimport (how executors import --py-files) has no namespace packages
    assert {os.path.dirname(m) for m in modules} <= {os.path.dirname(m) for m in modules if m.endswith("__init__.py")}


@pytest.mark.slow
def test_airflow_dags_test_runs_two_nights_in_a_row(tmp_path, package, tiny_cfg, spark):
    """A backfill of two consecutive dates with `airflow dags test`: each night runs every task for real
    (the package shipped with --py-files) and writes its own partitions, keeps every id the night before
    gave, and publishes its own table. Then, on a third date whose gate refused, publication_approved
    skips score. The competition is the traditional models (Horovod training is covered end to end, on a
    cluster and under faults, elsewhere), and the gate is set to approve (no baseline rule, a 90 % regression
    allowance): its rules have their own tests, and on tiny data night 2's champion is noise."""
    import yaml

    days = ["2026-11-26", "2026-11-27"]
    lake_root = str(tmp_path / "lake")
    env = airflow_env(tmp_path, lake_root)
    conf = yaml.safe_load(open(TEST_CONF))
    conf["train"]["models"] = ["popularity", "item_knn"]
    conf.setdefault("evaluate", {}).update(max_regression=0.9, require_beats_baseline=False)
    env["RECSYS_CONF"] = str(tmp_path / "backfill.yaml")
    with open(env["RECSYS_CONF"], "w") as fh:
        yaml.safe_dump(conf, fh)
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
        gate = [line for line in logs[ds].splitlines() if f"gate for ds={ds}:" in line]
        assert gate and f"gate for ds={ds}: approved" in gate[0], gate or logs[ds][-4000:]
        for table in (S.EVENTS_CLEAN, S.TRAIN, S.METRICS, S.GATE_DECISIONS, f"{S.REPORTS}/report", S.RECOMMENDATIONS):
            assert os.path.isdir(os.path.join(lake_root, table, f"ds={ds}")), table
        recs = spark.read.parquet(os.path.join(lake_root, S.RECOMMENDATIONS, f"ds={ds}"))
        assert recs.count() == tiny_cfg.generate.n_users * tiny_cfg.score.top_n
        assert {r[S.MODEL_VERSION] for r in recs.select(S.MODEL_VERSION).distinct().collect()} == {
            json.load(open(os.path.join(lake_root, S.GATE_DECISIONS, f"ds={ds}", "decision.json")))["champion_version"]}
    with open(os.path.join(lake_root, S.RECOMMENDATIONS, "_LATEST")) as fh:
        assert json.load(fh)["ds"] == days[1]
    vocab = {ds: {r[S.USER_ID]: r[S.USER_IDX] for r in spark.read.parquet(
        os.path.join(lake_root, S.USER_VOCAB, f"ds={ds}")).collect()} for ds in days}
    assert vocab[days[0]] and all(vocab[days[1]][user] == idx for user, idx in vocab[days[0]].items())
    # A refused gate: publication_approved returns False and skips score.
    refused_day = "2026-11-28"
    decision = dict(json.load(open(os.path.join(lake_root, S.GATE_DECISIONS, f"ds={days[1]}", "decision.json"))),
                    passed=False, reasons=["champion item_knn is worse than the published model by more than "
                                           "evaluate.max_regression"])
    os.makedirs(os.path.join(lake_root, S.GATE_DECISIONS, f"ds={refused_day}"))
    with open(os.path.join(lake_root, S.GATE_DECISIONS, f"ds={refused_day}", "decision.json"), "w") as fh:
        json.dump(decision, fh)
    proc = subprocess.run([airflow, "tasks", "test", "recsys_nightly", "publication_approved", refused_day], env=env,
                          capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert f"gate for ds={refused_day}: refused {decision['champion']}" in out and "Skipping downstream tasks" in out, \
        out[-4000:]
