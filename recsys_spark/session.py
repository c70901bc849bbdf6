"""Builds the Spark session the jobs share, and quiets the stack's known noise."""

from __future__ import annotations

import logging
import os
import sys
import warnings

from recsys_spark.config_sections import SparkConfig


class _DropKnownTensorFlowNotices(logging.Filter):
    """petastorm 0.13 builds its tf.data pipeline with APIs TF 2.15 marks deprecated, on every reader."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        return "from_generator" not in text and "output_types is deprecated" not in text


def quiet_known_noise() -> None:
    """Filters warnings known to be harmless on this stack, so that real ones stay visible.

    * petastorm 0.13 on pyarrow 12 uses the legacy ``ParquetDataset`` API and warns on every read;
    * TensorFlow prints oneDNN and CPU-feature notices at import (hidden by the log level alone: oneDNN itself
      stays on, as TensorFlow ships it; turning it off made a LightGCN training step on Gowalla 1.6x slower);
    * Horovod/Gloo and py4j log at INFO by default.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"pyarrow(\..*)?")
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"petastorm(\..*)?")
    warnings.filterwarnings("ignore", message=r".*ParquetDataset.*", category=FutureWarning)
    warnings.filterwarnings("ignore", message=r".*pyarrow\.filesystem.*", category=FutureWarning)
    warnings.filterwarnings("ignore", message=r".*pyarrow\.localfs.*", category=FutureWarning)
    warnings.filterwarnings("ignore", message=r".*distutils Version classes are deprecated.*")
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"petastorm(\..*)?")
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"horovod(\..*)?")
    warnings.filterwarnings("ignore", message=r"schema_fields behavior has changed")
    logging.getLogger("tensorflow").addFilter(_DropKnownTensorFlowNotices())
    logging.getLogger("py4j").setLevel(logging.WARNING)
    logging.getLogger("petastorm").setLevel(logging.WARNING)


def build_session(cfg: SparkConfig, app_suffix: str = ""):
    """Returns a SparkSession; ``cfg.master`` is used only outside ``spark-submit``.

    Executors' Python is this interpreter unless PYSPARK_PYTHON says otherwise, so that the workers of
    local mode see the same TensorFlow/Horovod as the driver.
    """
    quiet_known_noise()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    existing = SparkSession.getActiveSession()
    if existing is not None:
        return existing
    # Under spark-submit the driver's Python is started by the JVM, which hands it the gateway's port; the
    # master (and every --conf) is then the submission's. (SparkConf() cannot tell before a JVM is up.)
    launched_by_submit = "PYSPARK_GATEWAY_PORT" in os.environ
    if not launched_by_submit and cfg.master.startswith("local"):
        # Local mode talks to itself: bind to loopback rather than guess an interface.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder.appName(f"{cfg.app_name}{'-' + app_suffix if app_suffix else ''}")
    if not launched_by_submit:
        builder = builder.master(cfg.master).config("spark.driver.memory", cfg.driver_memory)
    settings = {
        "spark.sql.shuffle.partitions": str(cfg.shuffle_partitions),
        "spark.sql.session.timeZone": cfg.session_time_zone,
        "spark.sql.sources.partitionColumnTypeInference.enabled": "false",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.ui.showConsoleProgress": "true",
        "spark.ui.enabled": "false",
        "spark.sql.adaptive.enabled": "true",
        # A JSON number or object read into a string field: the JSON source keeps its text as written, from_json
        # writes it anew (1.50 -> 1.5). clean_events parses through either (etl/raw_lines.py) and must give a
        # line the same fields both ways, so the JSON source writes it anew too, as Spark 3 did.
        "spark.sql.json.enableExactStringParsing": "false",
        # the job's --log-level reaches the Python workers (Horovod ranks) of every executor
        "spark.executorEnv.RECSYS_LOG_LEVEL": os.environ.get("RECSYS_LOG_LEVEL", "INFO"),
    }
    settings.update(cfg.extra_conf)
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(cfg.log_level)
    return spark
