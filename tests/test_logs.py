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


def test_eta_follows_the_pace_so_far():
    assert logs.eta(2, 10, 30.0) == "ETA 2m00s"
    assert logs.eta(3, 4, 12.0) == "ETA 4s"
    assert logs.eta(0, 4, 0.0) == logs.eta(4, 4, 9.0) == "ETA 0s"
