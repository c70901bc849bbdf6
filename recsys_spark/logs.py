"""Logging for jobs and training ranks: the standard library's ``logging``, records below WARNING on
stdout and warnings and errors on stderr (what Airflow and spark-submit users expect to read), one format:
``2026-11-30 07:55:01 INFO [score] ...``. The level travels to the Horovod ranks in ``RECSYS_LOG_LEVEL``."""

from __future__ import annotations

import logging
import os
import sys

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
FORMAT = "%(asctime)s %(levelname)s [%(name)s] %(message)s"
ENV = "RECSYS_LOG_LEVEL"


class _Below(logging.Filter):
    def __init__(self, level: int):
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < self.level


class _NotPy4jRetries(logging.Filter):
    """Drops py4j's note that it retries a command on a fresh connection (a pooled one had been closed by
    the other end): py4j logs it on the root logger at INFO with a traceback, though nothing failed. A
    failed retry is logged at ERROR and still shows."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno == logging.INFO and record.getMessage() == "Exception while sending command."
                    and "py4j" in record.pathname)


def configure(level: str = None) -> None:
    """Sends records of ``level`` (default: ``$RECSYS_LOG_LEVEL``, else INFO) and above to stdout/stderr;
    calling it again replaces the handlers it added before."""
    level = (level or os.environ.get(ENV) or "INFO").upper()
    if level not in LEVELS:
        raise ValueError(f"log level {level!r}: choose one of {', '.join(LEVELS)}")
    os.environ[ENV] = level
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_recsys", False)]:
        root.removeHandler(handler)
    formatter = logging.Formatter(FORMAT, datefmt="%Y-%m-%d %H:%M:%S")
    out, err = logging.StreamHandler(sys.stdout), logging.StreamHandler(sys.stderr)
    out.addFilter(_Below(logging.WARNING))
    out.addFilter(_NotPy4jRetries())
    err.setLevel(logging.WARNING)
    for handler in (out, err):
        handler.setFormatter(formatter)
        handler._recsys = True
        root.addHandler(handler)
    root.setLevel(level)


def eta(done: int, total: int, elapsed_s: float) -> str:
    """``"ETA 2m05s"`` for the rest of ``total`` steps at the pace of the ``done`` ones so far."""
    if done <= 0 or total <= done:
        return "ETA 0s"
    left = round(elapsed_s / done * (total - done))
    minutes, seconds = divmod(left, 60)
    return f"ETA {minutes}m{seconds:02d}s" if minutes else f"ETA {seconds}s"
