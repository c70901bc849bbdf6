"""Real Horovod over Gloo: two ranks launched on the shared local[2] Spark session with horovod.spark.run."""

import re

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recsys_spark import schemas as S
from recsys_spark.training import TrainSpec, train_distributed

pytestmark = pytest.mark.slow


def write_uneven_train_table(path, n_users=40, n_items=20):
    """Three files of 300, 60 and 12 rows: rank 0 reads files 0 and 2, rank 1 file 1 (uneven shards)."""
    rng = np.random.default_rng(0)
    path.mkdir()
    for k, n in enumerate((300, 60, 12)):
        users = rng.integers(0, n_users, n).astype(np.int32)
        items = ((users % 4) * 5 + rng.integers(0, 5, n)).astype(np.int32)  # 4 user groups, 5 items each
        table = pa.table({S.USER_IDX: users, S.ITEM_IDX: items, S.WEIGHT: np.ones(n, np.float32)})
        pq.write_table(table, str(path / f"part-{k}.parquet"))
    return 372


def test_two_ranks_end_with_identical_weights_on_uneven_shards(spark, tmp_path):
    n_rows = write_uneven_train_table(tmp_path / "train")
    spec = TrainSpec(train_url=f"file://{tmp_path / 'train'}", n_rows=n_rows, n_users=40, n_items=20, model="mf",
                     embedding_dim=8, l2=0.0, epochs=4, batch_size=32, learning_rate=0.02, seed=5,
                     shuffle_buffer=100, reader_workers=1, return_weights_from_all_ranks=True)
    result = train_distributed(spark, spec, num_proc=2)
    assert len(result.digests) == 2 and result.digests[0] == result.digests[1]
    rank0, rank1 = result.all_rank_weights
    assert len(rank0) == len(rank1) == 3
    for w0, w1 in zip(rank0, rank1):
        np.testing.assert_array_equal(w0, w1)
    assert result.steps_per_epoch == 372 // (32 * 2)
    assert result.epoch_losses[-1] < result.epoch_losses[0] - 0.05
    # The planted groups are learned: each user's top items are its own group's.
    scores = result.user_vectors @ result.item_vectors.T
    top_group = np.argsort(-scores, axis=1)[:, :3] // 5
    assert np.mean(top_group == (np.arange(40) % 4)[:, None]) > 0.8


def _validation_table(path, n_users=40):
    path.mkdir()
    users = np.arange(n_users, dtype=np.int32)
    items = ((users % 4) * 5 + 4).astype(np.int32)  # each user's own group, last item of it
    pq.write_table(pa.table({S.USER_IDX: users, S.ITEM_IDX: items, S.WEIGHT: np.ones(n_users, np.float32)}),
                   str(path / "part-0.parquet"))


def _spec(tmp_path, **overrides):
    base = dict(train_url=f"file://{tmp_path / 'train'}", n_rows=372, n_users=40, n_items=20, model="mf",
                embedding_dim=8, l2=0.0, epochs=4, batch_size=32, learning_rate=0.02, seed=5, shuffle_buffer=100,
                reader_workers=1, train_path=str(tmp_path / "train"), validation_path=str(tmp_path / "validation"),
                validation_k=5, patience=10)
    base.update(overrides)
    return TrainSpec(**base)


def test_resume_after_an_interruption_matches_an_uninterrupted_run(spark, tmp_path):
    write_uneven_train_table(tmp_path / "train")
    _validation_table(tmp_path / "validation")
    full = train_distributed(spark, _spec(tmp_path, checkpoint_dir=str(tmp_path / "ck_full")), num_proc=2)
    cut = train_distributed(spark, _spec(tmp_path, checkpoint_dir=str(tmp_path / "ck_cut"), stop_after_epochs=2),
                            num_proc=2)
    assert cut.epochs_run == 2 and len(cut.validation) == 2
    resumed = train_distributed(spark, _spec(tmp_path, checkpoint_dir=str(tmp_path / "ck_cut"), resume=True),
                                num_proc=2)
    assert resumed.resumed_from_epoch == 2 and resumed.epochs_run == 4
    assert [v["epoch"] for v in resumed.validation] == [1, 2, 3, 4]  # history carried over
    assert resumed.epoch_losses == pytest.approx(full.epoch_losses[2:], abs=1e-3)
    np.testing.assert_allclose(resumed.user_vectors, full.user_vectors, atol=1e-3)
    np.testing.assert_allclose(resumed.item_vectors, full.item_vectors, atol=1e-3)
    assert resumed.validation[-1]["ndcg"] == pytest.approx(full.validation[-1]["ndcg"], abs=1e-6)
    assert full.validation[-1]["n_users"] == 40


def test_early_stopping_keeps_the_best_epoch(spark, tmp_path, capfd):
    write_uneven_train_table(tmp_path / "train")
    _validation_table(tmp_path / "validation")
    # A vanishing learning rate cannot improve on epoch 1, so patience 1 stops after epoch 2, and the
    # epoch without improvement halves the (size-scaled) learning rate on both ranks.
    result = train_distributed(spark, _spec(tmp_path, learning_rate=1e-9, patience=1, epochs=6, lr_decay=0.5,
                                            checkpoint_dir=str(tmp_path / "ck")), num_proc=2)
    assert result.stopped_early and result.epochs_run == 2 and result.best_epoch == 1
    assert len(result.validation) == 2 and result.digests[0] == result.digests[1]
    assert result.final_learning_rates == pytest.approx([1e-9 * 2 * 0.5] * 2, rel=1e-5)
    # progress: rank 0 logs one line per epoch, with the validation metric and the time left
    epochs = re.findall(r"INFO \[recsys_spark\.training\.worker\] mf epoch (\d)/6: loss [\d.]+, validation NDCG@5 "
                        r"([\d.]+) \(best ([\d.]+) at epoch 1\), [\d.]+ s; ETA \d+\S* at the 6-epoch cap, "
                        r"ETA (\S+) if validation stops improving", capfd.readouterr().out)
    assert [e[0] for e in epochs] == ["1", "2"] and epochs[0][1] == epochs[0][2] == f"{result.validation[0]['ndcg']:.4f}"
    assert epochs[1][3] == "0s"  # (patience 1: the epoch without a gain is the last)


def test_a_refit_replays_the_learning_rate_schedule_of_the_validated_run(spark, tmp_path):
    write_uneven_train_table(tmp_path / "train")
    _validation_table(tmp_path / "validation")
    # learning rate halved after each epoch without validation gain; each epoch's scale is in the history
    first = train_distributed(spark, _spec(tmp_path, epochs=6, learning_rate=0.5, lr_decay=0.5), num_proc=2)
    schedule = [v["lr_scale"] for v in first.validation]
    assert schedule[0] == 1.0 and min(schedule) < 1.0, schedule  # (this data and seed decay at least once)
    assert all(later in (earlier, earlier * 0.5) for earlier, later in zip(schedule, schedule[1:]))
    # the same epochs given that schedule and no validation: the very same weights (and without it, others)
    replay = train_distributed(spark, _spec(tmp_path, epochs=6, learning_rate=0.5, lr_schedule=schedule,
                                            validation_path=None), num_proc=2)
    assert replay.digests == first.digests
    assert replay.final_learning_rates == pytest.approx([0.5 * 2 * schedule[-1]] * 2, rel=1e-6)
    constant = train_distributed(spark, _spec(tmp_path, epochs=6, learning_rate=0.5, validation_path=None),
                                 num_proc=2)
    assert constant.digests != first.digests


def test_warmup_ramps_the_learning_rate_over_the_first_steps_on_every_rank(spark, tmp_path):
    write_uneven_train_table(tmp_path / "train")
    # 2 epochs of 372 // (32 x 2) = 5 steps: the last step (index 9) of a 20-step warm-up runs at 10/20 of
    # the size-scaled rate, and the rate is left there.
    result = train_distributed(spark, _spec(tmp_path, epochs=2, learning_rate=0.02, warmup_steps=20,
                                            validation_path=None), num_proc=2)
    assert result.steps_per_epoch == 5 and result.digests[0] == result.digests[1]
    assert result.final_learning_rates == pytest.approx([0.02 * 2 * 10 / 20] * 2, rel=1e-6)
    # a warm-up shorter than the run ends at the full rate, and trains other weights than none at all
    short = train_distributed(spark, _spec(tmp_path, epochs=2, learning_rate=0.02, warmup_steps=3,
                                           validation_path=None), num_proc=2)
    none = train_distributed(spark, _spec(tmp_path, epochs=2, learning_rate=0.02, validation_path=None), num_proc=2)
    assert short.final_learning_rates == pytest.approx([0.02 * 2] * 2, rel=1e-6)
    assert short.digests[0] == short.digests[1] and short.digests != none.digests


def _descends_from_this_test(pid: str) -> bool:
    import os

    while pid not in ("0", "1"):
        if int(pid) == os.getpid():
            return True
        pid = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1]
    return False


def _rank_pids():
    """{Horovod rank: pid} of this test's rank processes (``python -m horovod.spark.task.gloo_exec_fn``)."""
    import os

    pids = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
            if b"horovod.spark.task.gloo_exec_fn" not in argv or not _descends_from_this_test(pid):
                continue
            env = dict(kv.split(b"=", 1) for kv in open(f"/proc/{pid}/environ", "rb").read().split(b"\0") if b"=" in kv)
            pids[int(env[b"HOROVOD_RANK"])] = int(pid)
        except (OSError, KeyError, ValueError):
            continue
    return pids


def test_a_rank_killed_mid_training_fails_within_a_bounded_time_and_the_retry_resumes(spark, tmp_path):
    """Fault (a): SIGKILL of rank 1 after epoch 2's checkpoint. The run ends with one RetryableFailure
    naming the checkpoints (rank 0's Gloo connection breaks; it does not wait forever), and the retry
    continues from the last checkpoint to the end, with both ranks in sync."""
    import os
    import signal
    import threading
    import time

    from recsys_spark.errors import RetryableFailure

    write_uneven_train_table(tmp_path / "train")
    _validation_table(tmp_path / "validation")
    ck = tmp_path / "ck"
    spec = _spec(tmp_path, checkpoint_dir=str(ck), epochs=40, patience=100)
    seen = {}

    def kill_rank_1_after_epoch_2():  # Horovod's launcher needs the main thread, so the killer is the helper
        deadline = time.time() + 300
        while not (ck / "ckpt-2.index").exists() and time.time() < deadline:
            time.sleep(0.2)
        seen["pids"] = _rank_pids()
        if 1 in seen["pids"]:
            os.kill(seen["pids"][1], signal.SIGKILL)
            seen["killed_at"] = time.time()

    killer = threading.Thread(target=kill_rank_1_after_epoch_2, daemon=True)
    killer.start()
    with pytest.raises(RetryableFailure) as failure:
        train_distributed(spark, spec, num_proc=2)
    failed_after = time.time() - seen["killed_at"]
    killer.join(timeout=10)
    assert set(seen["pids"]) == {0, 1}
    assert failed_after < 120, failed_after
    error = failure.value
    print(f"fault (a): failed {failed_after:.1f} s after the kill: {error}")
    assert "distributed training failed" in str(error) and f"resumes from the last checkpoint in {ck}" in str(error)
    assert not _rank_pids()  # no rank left behind
    last = max(int(p.name[len("ckpt-"):-len(".index")]) for p in ck.glob("ckpt-*.index"))
    assert 2 <= last < 40
    resumed = train_distributed(spark, _spec(tmp_path, checkpoint_dir=str(ck), epochs=40, patience=100, resume=True),
                                num_proc=2)
    assert resumed.resumed_from_epoch == last and resumed.epochs_run == 40
    assert [v["epoch"] for v in resumed.validation] == list(range(1, 41))
    assert resumed.digests[0] == resumed.digests[1]


def test_the_same_sasrec_spec_trains_the_same_weights_run_after_run(spark, tiny_cfg, tmp_path):
    """SASRec's attention dropout has no seed of its own (Keras gives MultiHeadAttention's none): it draws
    from the global seed the ranks set, so a second run from scratch repeats the first bit for bit."""
    import shutil

    from recsys_spark.config import load_config
    from recsys_spark.data.synthetic import write_raw
    from recsys_spark.etl.build import run_build_tables
    from recsys_spark.etl.clean_events import run_clean_events
    from recsys_spark.lake import Lake
    from recsys_spark.training import train_model

    from .conftest import TEST_CONF

    ds = "2026-11-27"
    write_raw(tiny_cfg.generate, str(tmp_path), ds)
    lake = Lake(spark, str(tmp_path))
    run_clean_events(spark, lake, tiny_cfg.clean, ds)
    run_build_tables(spark, lake, tiny_cfg.build, tiny_cfg.train, ds)
    cfg = load_config(TEST_CONF, ["train.model=sasrec", "train.loss=full", "train.epochs=2", "train.patience=5",
                                  "train.embedding_dim=16", "train.n_layers=1", "train.dropout=0.3"])
    runs = []
    for _ in range(2):
        shutil.rmtree(tmp_path / "_checkpoints", ignore_errors=True)
        runs.append(train_model(spark, lake, cfg, ds))
    assert runs[0]["resumed_from_epoch"] == runs[1]["resumed_from_epoch"] == 0
    assert runs[0]["epoch_losses"] == runs[1]["epoch_losses"]
    assert runs[0]["weights_digest"] == runs[1]["weights_digest"]


def test_a_horovod_start_up_that_cannot_get_its_ranks_fails_within_start_timeout(spark):
    """Fault (e): one of the two task slots is held by another job, so rank 1 never starts. The launch
    fails after train.start_timeout_s with one RetryableFailure instead of waiting forever."""
    import threading
    import time

    from recsys_spark import distributed
    from recsys_spark.errors import RetryableFailure

    sc = spark.sparkContext
    hold = threading.Thread(target=lambda: (sc.setJobGroup("slot-holder", "holds one slot"),
                                            _swallow(lambda: sc.parallelize([0], 1).map(lambda x: time.sleep(90)).collect())),
                            daemon=True)
    hold.start()
    time.sleep(5)  # the holder's task is running
    started = time.time()
    with pytest.raises(RetryableFailure, match=r"could not start 2 ranks within train.start_timeout_s=10 s.*task slots"):
        distributed.run_on_spark(spark, lambda: 0, [], num_proc=2, start_timeout_s=10)
    waited = time.time() - started
    sc.cancelJobGroup("slot-holder")
    hold.join(timeout=60)
    print(f"fault (e): failed after {waited:.1f} s")
    assert 10 <= waited < 60, waited


def _swallow(fn):
    try:
        fn()
    except Exception:  # noqa: BLE001 - the holder job is cancelled on purpose
        pass
