import pytest

from recsys_spark import schemas as S
from recsys_spark.config import load_config
from recsys_spark.errors import DataQualityError, MissingInputError
from recsys_spark.serving import check_gate, run_score

DS = "2026-11-27"


def metrics(spark, lake, mf, popularity):
    rows = [("mf", "v1", "ndcg@10", 10, mf, 100), ("popularity", "p", "ndcg@10", 10, popularity, 100)]
    lake.write_table(spark.createDataFrame(rows, S.METRICS_SCHEMA), S.METRICS, DS)


def test_gate_blocks_a_model_that_does_not_beat_the_baseline(spark, lake):
    cfg = load_config(None)
    with pytest.raises(MissingInputError, match="run `python -m jobs.evaluate"):
        check_gate(lake, cfg, DS, "mf")
    metrics(spark, lake, 0.10, 0.05)
    assert check_gate(lake, cfg, DS, "mf") == {"mf": 0.10, "popularity": 0.05}
    metrics(spark, lake, 0.05, 0.05)
    with pytest.raises(DataQualityError, match=r"publication gate: mf NDCG@10 0.0500 does not beat popularity 0.0500"):
        run_score(spark, lake, cfg, DS)
    assert not lake.has_partition(S.RECOMMENDATIONS, DS)  # nothing was published
