"""recsys_spark nightly: raw input check -> clean_events -> build_tables -> train (every model of
train.models) -> evaluate -> gate -> report -> publication check -> score, one run per logical date.

- **raw_input**: waits (rescheduling itself, not holding a worker slot) until the day's raw events are in
  ``<lake>/raw_events/ds=<ds>/``; after ``raw_input_timeout`` the run fails with that reason.
- Every job task is a ``spark-submit`` of ``jobs/<stage>.py --ds {{ ds }}`` with the package shipped to the
  executors (``--py-files dist/recsys_spark.zip``, built by ``make package``) and Spark settings from
  ``conf/spark-defaults.conf``. Each job overwrites only its own ``<lake>/<table>/ds=<ds>/`` partition, so
  retries and backfills are safe. Retries back off exponentially; each task has its own time limit.
- **gate** writes the day's decision; **publication_approved** reads it and, when the gate refused, skips
  **score**: yesterday's recommendations stay current and the run still succeeds. **report** runs either
  way and says why.

The scheduler's environment never imports the jobs' stack (TensorFlow, Horovod). The Spark connection
(``spark_default``) says where jobs run: ``local[2]`` on one machine, ``spark://host:7077``, ``yarn`` or
``k8s://...`` on a cluster.

Settings (environment of the scheduler and workers, read when the DAG file is parsed; no I/O here):
    RECSYS_HOME    project checkout holding jobs/, conf/ and dist/ (default: the folder above this file)
    RECSYS_LAKE    lake root, local path or Hadoop URI (default: $RECSYS_HOME/lake); the raw input check and
                   the publication check read it from the worker, so a Hadoop lake needs them swapped for
                   the provider's sensor (e.g. WebHdfsSensor, S3KeySensor)
    RECSYS_CONF    pipeline YAML (default: $RECSYS_HOME/conf/nightly.yaml)
    RECSYS_PYTHON  Python of the jobs' environment, used by the driver and executors
                   (default: $RECSYS_HOME/.venv/bin/python)
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.providers.standard.operators.python import ShortCircuitOperator
from airflow.providers.standard.sensors.python import PythonSensor
from airflow.sdk import DAG

RECSYS_HOME = os.environ.get("RECSYS_HOME", os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAKE = os.environ.get("RECSYS_LAKE", os.path.join(RECSYS_HOME, "lake"))
CONF = os.environ.get("RECSYS_CONF", os.path.join(RECSYS_HOME, "conf", "nightly.yaml"))
JOBS_PYTHON = os.environ.get("RECSYS_PYTHON", os.path.join(RECSYS_HOME, ".venv", "bin", "python"))
PACKAGE = os.path.join(RECSYS_HOME, "dist", "recsys_spark.zip")
SPARK_DEFAULTS = os.path.join(RECSYS_HOME, "conf", "spark-defaults.conf")

# The order of the nightly run; each name is a job module jobs/<name>.py, with its time limit.
STAGES = ("clean_events", "build_tables", "train", "evaluate", "gate", "report", "score")
TIME_LIMITS = {"clean_events": timedelta(hours=1), "build_tables": timedelta(hours=1),
               "train": timedelta(hours=4), "evaluate": timedelta(hours=1), "gate": timedelta(minutes=15),
               "report": timedelta(minutes=15), "score": timedelta(hours=2)}
RAW_INPUT_TIMEOUT = timedelta(hours=6)


def raw_input_arrived(ds: str) -> bool:
    """True once ``<lake>/raw_events/ds=<ds>/`` holds a file (a local or ``file:`` lake)."""
    folder = os.path.join(LAKE.removeprefix("file://").removeprefix("file:"), "raw_events", f"ds={ds}")
    return os.path.isdir(folder) and any(not name.startswith((".", "_")) for name in os.listdir(folder))


def publication_approved(ds: str) -> bool:
    """The gate's decision for ``ds``: False (score is skipped) when it refused publication."""
    import json

    path = os.path.join(LAKE.removeprefix("file://").removeprefix("file:"), "gate_decisions", f"ds={ds}",
                        "decision.json")
    with open(path) as fh:
        decision = json.load(fh)
    print(f"gate for ds={ds}: {'approved' if decision['passed'] else 'refused'} {decision['champion']} "
          f"{decision['champion_version']}; {'; '.join(decision['reasons']) or 'no reservations'}")
    return bool(decision["passed"])


def spark_job(stage: str) -> SparkSubmitOperator:
    return SparkSubmitOperator(
        task_id=stage,
        conn_id="spark_default",
        application=os.path.join(RECSYS_HOME, "jobs", f"{stage}.py"),
        application_args=["--ds", "{{ ds }}", "--lake", LAKE, "--conf", CONF],
        py_files=PACKAGE,
        properties_file=SPARK_DEFAULTS,
        name=f"recsys_{stage}",
        execution_timeout=TIME_LIMITS[stage],
        env_vars={
            "PYSPARK_PYTHON": JOBS_PYTHON,
            "PYSPARK_DRIVER_PYTHON": JOBS_PYTHON,
            "PYTHONPATH": RECSYS_HOME,  # (the driver runs jobs/<stage>.py from the checkout)
        },
    )


with DAG(
    dag_id="recsys_nightly",
    description="Nightly recommender: Spark ETL, Petastorm + Horovod training, evaluation gate, batch scoring",
    doc_md=__doc__,
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5), "retry_exponential_backoff": True,
                  "max_retry_delay": timedelta(hours=1)},
    tags=["recsys", "spark", "horovod"],
) as dag:
    raw_input = PythonSensor(task_id="raw_input", python_callable=raw_input_arrived, op_kwargs={"ds": "{{ ds }}"},
                             mode="reschedule", poke_interval=300, timeout=RAW_INPUT_TIMEOUT.total_seconds(),
                             execution_timeout=RAW_INPUT_TIMEOUT + timedelta(minutes=10), retries=0)
    approved = ShortCircuitOperator(task_id="publication_approved", python_callable=publication_approved,
                                    op_kwargs={"ds": "{{ ds }}"}, ignore_downstream_trigger_rules=True,
                                    execution_timeout=timedelta(minutes=5))
    jobs = {stage: spark_job(stage) for stage in STAGES}
    raw_input >> jobs["clean_events"]
    for stage, following in zip(STAGES[:-2], STAGES[1:-1]):  # ... -> gate -> report
        jobs[stage] >> jobs[following]
    jobs["report"] >> approved >> jobs["score"]
