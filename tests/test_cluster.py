"""A real Spark standalone cluster on 127.0.0.1 (a master and 2 one-core workers, started with spark-class):
the nightly submitted to it as the DAG submits it gives the same tables and metrics as local mode, and an
executor killed in the middle of the ETL costs nothing but time. Every process started here is stopped,
also when a test fails."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from recsys_spark import schemas as S
from recsys_spark.data.synthetic import write_raw

from recsys_spark.privacy import KEY_ENV

from .conftest import PACKAGE, REPO, TEST_CONF, jobs_env
from .test_pipeline_e2e import NIGHTLY_OVERRIDES, PSEUDONYM_KEY, nightly, table_checksum  # noqa: F401 - a fixture

pytestmark = pytest.mark.slow

DS = "2026-11-27"
BIN = os.path.dirname(sys.executable)
SPARK_DEFAULTS = os.path.join(REPO, "conf", "spark-defaults.conf")
ETL_TABLES = [S.EVENTS_CLEAN, S.USER_VOCAB, S.ITEM_VOCAB, S.INTERACTIONS, S.TRAIN, S.VALIDATION, S.TEST,
              S.SEQUENCES, S.GRAPH_EDGES, S.ITEM_FEATURES]


def _free_port(preferred=None) -> int:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred or 0))
        except OSError:
            sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _alive_workers(ui_port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/json/", timeout=5) as resp:
            return int(json.load(resp).get("aliveworkers", 0))
    except OSError:
        return 0


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def _stop(procs) -> None:
    for proc in procs:
        if _group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.time() + 8
    while any(_group_alive(p.pid) for p in procs) and time.time() < deadline:
        time.sleep(0.5)
    for proc in procs:
        if _group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """spark://127.0.0.1:7077 (another port if 7077 is taken) with 2 workers of 1 core: 2 task slots, as
    train.num_proc needs. Each daemon is its own process group (its executors too), killed at the end."""
    work = tmp_path_factory.mktemp("standalone")
    env = dict(jobs_env(), SPARK_LOG_DIR=str(work / "logs"), SPARK_NO_DAEMONIZE="1")
    port, ui_port = _free_port(7077), _free_port()
    spark_class = os.path.join(BIN, "spark-class")
    procs = []

    def start(name, args):
        log = open(work / f"{name}.log", "w")
        procs.append(subprocess.Popen([spark_class, *args], env=env, stdout=log, stderr=subprocess.STDOUT,
                                      start_new_session=True))

    try:
        start("master", ["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
                         "--webui-port", str(ui_port)])
        for k in range(2):
            start(f"worker{k}", ["org.apache.spark.deploy.worker.Worker", f"spark://127.0.0.1:{port}", "--host",
                                 "127.0.0.1", "--cores", "1", "--memory", "4g", "--work-dir", str(work / f"w{k}"),
                                 "--webui-port", str(_free_port())])
        deadline = time.time() + 180
        while _alive_workers(ui_port) < 2:
            assert time.time() < deadline, "the standalone cluster did not come up: " + (work / "master.log").read_text()[-2000:]
            assert all(p.poll() is None for p in procs), "a cluster daemon exited"
            time.sleep(1)
        yield {"master": f"spark://127.0.0.1:{port}", "procs": procs, "work": work}
    finally:
        _stop(procs)
        assert not [p.pid for p in procs if _group_alive(p.pid)]


def submit(master, job, lake, *sets, env=None):
    """``spark-submit`` of ``jobs/<job>.py`` as the DAG submits it (the package zip, conf/spark-defaults.conf)."""
    args = [os.path.join(BIN, "spark-submit"), "--master", master, "--py-files", PACKAGE,
            "--properties-file", SPARK_DEFAULTS, "--conf", "spark.executor.memory=1g",
            os.path.join(REPO, "jobs", f"{job}.py"), "--ds", DS, "--lake", lake, "--conf", TEST_CONF]
    for value in sets:
        args += ["--set", value]
    return subprocess.Popen(args, cwd=REPO, env=env or jobs_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def _executor_pids(cluster):
    """pids of the executor JVMs the cluster's workers launched (in the workers' process groups)."""
    groups = {p.pid for p in cluster["procs"][1:]}
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.getpgid(int(pid)) in groups and b"CoarseGrainedExecutorBackend" in open(f"/proc/{pid}/cmdline", "rb").read():
                pids.append(int(pid))
        except OSError:
            continue
    return sorted(pids)


@pytest.fixture(scope="module")
def cluster_run(cluster, package, tiny_cfg, tmp_path_factory):
    """The local-mode nightly's run (same raw data, conf, overrides and pseudonym key), submitted to the
    cluster; one executor is SIGKILLed as soon as build_tables has written its first table (fault b)."""
    root = str(tmp_path_factory.mktemp("cluster") / "lake")
    write_raw(tiny_cfg.generate, root, DS)
    env = dict(jobs_env(), **{KEY_ENV: PSEUDONYM_KEY}, PYTHONUNBUFFERED="1")  # log lines as they happen
    started = time.time()
    proc = submit(cluster["master"], "nightly", root, *NIGHTLY_OVERRIDES, env=env)
    lines, killed = [], {}
    for line in proc.stdout:
        lines.append(f"{time.time() - started:7.1f} {line}")
        if not killed and re.search(r"INFO \[recsys_spark\.etl\.build\] \S+ for ds=\S+ written in", line):
            executors = _executor_pids(cluster)
            if executors:
                os.kill(executors[0], signal.SIGKILL)
                killed.update(pid=executors[0], after=line.strip(), executors_before=executors)
    proc.wait(timeout=60)
    wall = time.time() - started
    out = "".join(lines)
    (cluster["work"] / "nightly.out").write_text(out)
    assert proc.returncode == 0, out[-5000:]
    print(f"standalone-cluster nightly (with an executor killed): {wall:.0f} s")
    logs = "".join((cluster["work"] / f"worker{k}.log").read_text() for k in range(2))
    return {"root": root, "out": out, "killed": killed, "worker_logs": logs}


def test_the_nightly_on_a_standalone_cluster_matches_local_mode(cluster_run, nightly, spark):
    """Point 3: spark-submit --master spark://127.0.0.1:7077 with the package shipped as the DAG ships it;
    Horovod trains on the executors. Tables are identical to local mode and every model's metrics equal to
    within 1e-6 (mf's weights were bit-identical in our runs; the tolerance allows a float reduction in
    another order)."""
    lake, _, _ = nightly
    root = cluster_run["root"]
    assert f"ds={DS} done in" in cluster_run["out"]
    assert cluster_run["worker_logs"].count("Asked to launch executor") >= 2  # it ran on the workers
    for table in ETL_TABLES:
        assert checksum(spark, root, table) == checksum(spark, lake.root, table), table
    for table in (S.TRAIN, S.VALIDATION, S.SEQUENCES):  # what the ranks read in file order: row for row
        assert rows_by_file(root, table) == rows_by_file(lake.root, table), table
    here, there = metrics_of(spark, root), metrics_of(spark, lake.root)
    assert set(here) == set(there) and len(here) > 100
    mf = {r: json.load(open(os.path.join(r, S.model_table("mf"), f"ds={DS}", "metadata.json"))) for r in (root, lake.root)}
    training = {where: _training_of(mf[r]) for where, r in (("cluster", root), ("local", lake.root))}
    for key, value in here.items():
        assert value == pytest.approx(there[key], abs=1e-6 if key[0] == "mf" else 1e-9), (key, training)
    worst = max(abs(v - there[k]) for k, v in here.items())
    assert mf[root]["num_proc"] == 2 and mf[root]["epochs_run"] == mf[lake.root]["epochs_run"]
    same = mf[root]["weights_digest"] == mf[lake.root]["weights_digest"]
    print(f"cluster vs local: largest metric difference {worst:.2e}; mf weights {'bit-identical' if same else 'differ'}")
    gate = [json.load(open(os.path.join(r, S.GATE_DECISIONS, f"ds={DS}", "decision.json"))) for r in (root, lake.root)]
    assert gate[0]["champion"] == gate[1]["champion"] and gate[0]["passed"]
    published = spark.read.parquet(os.path.join(root, S.RECOMMENDATIONS, f"ds={DS}"))
    assert published.count() == 300 * 5


def test_an_executor_killed_mid_etl_costs_only_time(cluster_run, nightly, spark):
    """Fault (b): the executor killed while build_tables wrote its tables was replaced, its tasks ran
    again, and the ETL's tables are those of the undisturbed local run."""
    lake, _, _ = nightly
    killed = cluster_run["killed"]
    assert killed, "no executor was running while build_tables wrote:\n" + cluster_run["out"][-3000:]
    logs = cluster_run["worker_logs"]
    lost = re.search(r"Executor (app-\S+)/(\d+) finished with state (?:FAILED|EXITED) message Command exited with code 137",
                     logs)
    assert lost, logs[-3000:]
    launched = [int(n) for n in re.findall(rf"Asked to launch executor {lost.group(1)}/(\d+)", logs)]
    assert max(launched) > int(lost.group(2)) and len(launched) >= 3  # a replacement took over its tasks
    for table in ETL_TABLES:
        assert checksum(spark, cluster_run["root"], table) == checksum(spark, lake.root, table), table


def _training_of(metadata):
    """What decides mf's weights, for the failure message: the refit's inputs and digests, the reader."""
    refit = metadata["refit_on_train_and_validation"] or {}
    return {"digest": metadata["weights_digest"][:12], "refit_digest": refit.get("weights_digest", "")[:12],
            "refit_losses": refit.get("epoch_losses", [])[:3], "reader_workers": metadata["train_spec"]["reader_workers"]}


def rows_by_file(root, table):
    import pyarrow.parquet as pq

    folder = os.path.join(root, table, f"ds={DS}")
    return [pq.read_table(os.path.join(folder, name)).to_pylist()
            for name in sorted(os.listdir(folder)) if name.endswith(".parquet")]  # (part-<n>-<job uuid>)


def checksum(spark, root, table):
    return table_checksum(spark.read.parquet(os.path.join(root, table, f"ds={DS}")))


def metrics_of(spark, root):
    rows = spark.read.parquet(os.path.join(root, S.METRICS, f"ds={DS}")).collect()
    return {(r[S.MODEL], r[S.SPLIT], r[S.SLICE], r[S.METRIC], r[S.K]): r[S.VALUE] for r in rows}
