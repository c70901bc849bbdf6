"""The Petastorm feed: each rank reads its own row groups, whole batches, and the batches end with the block."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recsys_spark import feed


@pytest.fixture(scope="module")
def table_url(tmp_path_factory):
    folder = tmp_path_factory.mktemp("feed") / "train"
    folder.mkdir()
    # 4 row groups of 8 rows; row r has user r, item 100 + r
    table = pa.table({"user_idx": pa.array(range(32), pa.int32()), "item_idx": pa.array(range(100, 132), pa.int32())})
    pq.write_table(table, folder / "part-0.parquet", row_group_size=8)
    return folder.as_uri()


def _one_pass(url, rank, size):
    rows = []
    with feed.sharded_batches(url, ["user_idx", "item_idx"], rank, size, batch_size=4, seed=3,
                              shuffle_buffer=1) as batches:
        for _ in range(4):  # 16 rows: this rank's two row groups once (the reader loops forever)
            batch = next(batches)
            assert batch["user_idx"].shape == (4,)
            rows += list(zip(batch["user_idx"].numpy().tolist(), batch["item_idx"].numpy().tolist()))
    return rows


def test_two_ranks_read_disjoint_row_groups_that_cover_the_table(table_url):
    rank0, rank1 = _one_pass(table_url, 0, 2), _one_pass(table_url, 1, 2)
    assert all(item == 100 + user for user, item in rank0 + rank1)  # columns stay aligned
    assert len(set(rank0)) == 16 and len(set(rank1)) == 16
    assert sorted(set(rank0) | set(rank1)) == [(u, 100 + u) for u in range(32)]
    # sharded by row group: each rank holds whole groups of 8 consecutive users
    groups0, groups1 = {user // 8 for user, _ in rank0}, {user // 8 for user, _ in rank1}
    assert len(groups0) == len(groups1) == 2 and groups0.isdisjoint(groups1)


def test_batches_read_after_their_block_fail_with_a_clear_error(table_url):
    with feed.sharded_batches(table_url, ["user_idx"], 0, 1, batch_size=4, seed=0) as batches:
        next(batches)
    with pytest.raises(RuntimeError, match="after their `with` block ended"):
        next(batches)
