"""What every job's entry point shares: arguments, config, session, and one clear error on user mistakes."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import dataclass
from typing import Callable, List, Optional

from recsys_spark.config import PipelineConfig, load_config
from recsys_spark.errors import RetryableFailure, UserError
from recsys_spark.lake import parse_ds
from recsys_spark.logs import LEVELS, configure

DEFAULT_CONF = "conf/nightly.yaml"


@dataclass
class JobContext:
    """What a job's ``run`` function receives."""

    spark: object
    cfg: PipelineConfig
    ds: str
    lake_root: str
    args: argparse.Namespace
    log: logging.Logger = logging.getLogger("recsys_spark")

    @property
    def lake(self):
        from recsys_spark.lake import Lake

        return Lake(self.spark, self.lake_root)


def base_parser(job: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m jobs.{job}", description=description)
    parser.add_argument("--ds", required=True, help="run date YYYY-MM-DD (the Airflow logical date, {{ ds }})")
    parser.add_argument("--lake", required=True, help="lake root: a local path or a Hadoop URI")
    parser.add_argument("--conf", default=DEFAULT_CONF, help=f"pipeline YAML (default {DEFAULT_CONF})")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
        help="override one config value, e.g. --set train.epochs=3 (repeatable)",
    )
    parser.add_argument("--log-level", default="INFO", type=str.upper, choices=LEVELS,
                        help="log records at this level and above (default INFO); below WARNING on stdout")
    return parser


def run_job(job: str, description: str, run: Callable[[JobContext], object],
            add_args: Optional[Callable[[argparse.ArgumentParser], None]] = None,
            argv: Optional[List[str]] = None, needs_spark: bool = True) -> int:
    """Parses arguments, loads config, builds the session and calls ``run``.

    Returns the process exit status: 0 on success, 2 on a user error, 1 on a retryable failure (each one
    ERROR record, no traceback).
    """
    parser = base_parser(job, description)
    if add_args:
        add_args(parser)
    args = parser.parse_args(argv)
    configure(args.log_level)
    log = logging.getLogger(job)
    started = time.time()
    try:
        parse_ds(args.ds)
        cfg = load_config(args.conf, args.overrides)
        spark = None
        if needs_spark:
            from recsys_spark.session import build_session

            spark = build_session(cfg.spark, app_suffix=job)
        run(JobContext(spark=spark, cfg=cfg, ds=args.ds, lake_root=args.lake, args=args, log=log))
    except UserError as exc:
        log.error("%s", exc)
        return 2
    except RetryableFailure as exc:
        log.error("%s", exc)
        return 1
    log.info("ds=%s done in %.1f s", args.ds, time.time() - started)
    return 0


def main(job: str, description: str, run: Callable[[JobContext], object],
         add_args: Optional[Callable[[argparse.ArgumentParser], None]] = None, needs_spark: bool = True) -> None:
    sys.exit(run_job(job, description, run, add_args, needs_spark=needs_spark))
