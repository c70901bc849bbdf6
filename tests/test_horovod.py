"""Real Horovod over Gloo: two ranks launched on the shared local[2] Spark session with horovod.spark.run."""

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
