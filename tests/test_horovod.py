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
                        r"([\d.]+) \(best ([\d.]+) at epoch 1\), [\d.]+ s; ETA \d+", capfd.readouterr().out)
    assert [e[0] for e in epochs] == ["1", "2"] and epochs[0][1] == epochs[0][2] == f"{result.validation[0]['ndcg']:.4f}"
