"""recsys_spark nightly: clean_events -> build_tables -> train (every model of train.models) -> evaluate -> gate
-> report -> score, one run per logical date. score publishes the champion the gate approved, and fails
(keeping yesterday's recommendations) when the gate refused.

Every task is a ``spark-submit`` of a job in ``jobs/`` with ``--ds {{ ds }}``: each overwrites only its own
``<lake>/<table>/ds=<ds>/`` partition, so retries and backfills are safe. The scheduler's environment never
imports the jobs' stack (TensorFlow, Horovod); the Spark connection (``spark_default``) says where jobs run:
``local[2]`` on one machine, ``spark://host:7077``, ``yarn`` or ``k8s://...`` on a cluster.

Settings (environment of the scheduler and workers, read when the DAG file is parsed; no I/O here):
    RECSYS_HOME    project checkout holding jobs/ and conf/ (default: the folder above this file)
    RECSYS_LAKE    lake root, local path or Hadoop URI (default: $RECSYS_HOME/lake)
    RECSYS_CONF    pipeline YAML (default: $RECSYS_HOME/conf/nightly.yaml)
    RECSYS_PYTHON  Python of the jobs' environment, used by the driver and executors
                   (default: $RECSYS_HOME/.venv/bin/python)
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import DAG

RECSYS_HOME = os.environ.get("RECSYS_HOME", os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAKE = os.environ.get("RECSYS_LAKE", os.path.join(RECSYS_HOME, "lake"))
CONF = os.environ.get("RECSYS_CONF", os.path.join(RECSYS_HOME, "conf", "nightly.yaml"))
JOBS_PYTHON = os.environ.get("RECSYS_PYTHON", os.path.join(RECSYS_HOME, ".venv", "bin", "python"))

# The order of the nightly run; each name is a job module jobs/<name>.py.
STAGES = ("clean_events", "build_tables", "train", "evaluate", "gate", "report", "score")

with DAG(
    dag_id="recsys_nightly",
    description="Nightly recommender: Spark ETL, Petastorm + Horovod training, evaluation gate, batch scoring",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 1, "retry_delay": timedelta(minutes=5)},
    tags=["recsys", "spark", "horovod"],
) as dag:
    previous = None
    for stage in STAGES:
        task = SparkSubmitOperator(
            task_id=stage,
            conn_id="spark_default",
            application=os.path.join(RECSYS_HOME, "jobs", f"{stage}.py"),
            application_args=["--ds", "{{ ds }}", "--lake", LAKE, "--conf", CONF],
            name=f"recsys_{stage}",
            env_vars={
                "PYSPARK_PYTHON": JOBS_PYTHON,
                "PYSPARK_DRIVER_PYTHON": JOBS_PYTHON,
                "PYTHONPATH": RECSYS_HOME,
            },
        )
        if previous is not None:
            previous >> task
        previous = task
