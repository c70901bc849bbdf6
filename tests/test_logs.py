"""Jobs log through the standard library: INFO on stdout, warnings and errors on stderr, --log-level."""

import logging

import pytest

from recsys_spark import logs


def test_records_go_to_stdout_or_stderr_by_level_and_the_level_filters(capsys, monkeypatch):
    monkeypatch.delenv(logs.ENV, raising=False)
    logs.configure("info")
    job = logging.getLogger("score")
    job.debug("not shown")
    job.info("1500 recommendations")
    job.warning("gate refused")
    out, err = capsys.readouterr()
    assert [line.split(" ", 2)[2] for line in out.splitlines()] == ["INFO [score] 1500 recommendations"]
    assert [line.split(" ", 2)[2] for line in err.splitlines()] == ["WARNING [score] gate refused"]
    logs.configure("WARNING")  # replaces the handlers: nothing is printed twice
    job.info("hidden")
    job.error("shown once")
    out, err = capsys.readouterr()
    assert out == "" and err.count("ERROR [score] shown once") == 1
    assert logs.os.environ[logs.ENV] == "WARNING"  # what the Horovod ranks read
    with pytest.raises(ValueError, match="choose one of DEBUG, INFO, WARNING, ERROR"):
        logs.configure("loud")
    logs.configure("INFO")


def test_py4j_retries_are_not_shown_but_its_failures_are(capsys, monkeypatch):
    """py4j logs a command it retries on a new connection at INFO, with a traceback, on the root logger."""
    monkeypatch.delenv(logs.ENV, raising=False)
    logs.configure("INFO")

    def py4j_record(level):
        return logging.LogRecord("root", level, "/venv/site-packages/py4j/java_gateway.py", 1056,
                                 "Exception while sending command.", None, None)

    root = logging.getLogger()
    root.handle(py4j_record(logging.INFO))
    root.handle(py4j_record(logging.ERROR))
    logging.info("Exception while sending command.")  # (not py4j's: shown)
    out, err = capsys.readouterr()
    assert [line.split(" ", 2)[2] for line in out.splitlines()] == ["INFO [root] Exception while sending command."]
    assert [line.split(" ", 2)[2] for line in err.splitlines()] == ["ERROR [root] Exception while sending command."]


def test_eta_follows_the_pace_so_far():
    assert logs.eta(2, 10, 30.0) == "ETA 2m00s"
    assert logs.eta(3, 4, 12.0) == "ETA 4s"
    assert logs.eta(0, 4, 0.0) == logs.eta(4, 4, 9.0) == "ETA 0s"
