"""The champion is chosen on validation, the gate checks test against popularity and the published
version, and a refused day keeps yesterday's table."""

import pytest

from recsys_spark import publication
from recsys_spark import schemas as S
from recsys_spark.config import load_config
from recsys_spark.errors import DataQualityError, MissingInputError
from recsys_spark.evaluate.gate import decide, published_model, run_gate
from recsys_spark.scoring import run_score

D1, D2 = "2026-11-26", "2026-11-27"


def rows(values, split="test"):
    """values: {(model, version): ndcg@10}"""
    return [{S.MODEL: m, S.MODEL_VERSION: v, S.SPLIT: split, S.SLICE: "all", S.METRIC: "ndcg", S.K: 10,
             S.VALUE: x, S.N_USERS: 100} for (m, v), x in values.items()]


def cfg(*overrides):
    return load_config(None, ["train.models=[mf, markov, popularity]"] + list(overrides))


def test_champion_is_chosen_on_validation_not_test():
    metrics = rows({("mf", "m1"): 0.20, ("markov", "k1"): 0.30, ("popularity", "p1"): 0.05}, "validation") + rows(
        {("mf", "m1"): 0.25, ("markov", "k1"): 0.10, ("popularity", "p1"): 0.04})
    decision = decide(metrics, cfg(), D2, None)
    assert (decision["champion"], decision["champion_version"], decision["passed"]) == ("markov", "k1", True)
    assert decision["champion_test_ndcg"] == 0.10 and decision["baseline_test_ndcg"] == 0.04
    assert decision["validation_ndcg"] == {"mf": 0.20, "markov": 0.30, "popularity": 0.05}


def test_gate_refuses_a_champion_that_does_not_beat_popularity_or_regresses():
    validation = rows({("mf", "m1"): 0.3, ("markov", "k1"): 0.2, ("popularity", "p1"): 0.1}, "validation")
    refused = decide(validation + rows({("mf", "m1"): 0.05, ("markov", "k1"): 0.1, ("popularity", "p1"): 0.05}),
                     cfg(), D2, None)
    assert not refused["passed"] and "does not beat popularity 0.0500" in refused["reasons"][0]
    assert decide(validation + rows({("mf", "m1"): 0.05, ("popularity", "p1"): 0.05, ("markov", "k1"): 0.1}),
                  cfg("evaluate.require_beats_baseline=false"), D2, None)["passed"]
    published = {"model": "markov", "model_version": "old", "model_ds": D1, "published_ds": D1}
    test = {("mf", "m1"): 0.190, ("markov", "k1"): 0.1, ("popularity", "p1"): 0.05, ("markov", "old"): 0.2}
    assert decide(validation + rows(test), cfg("evaluate.max_regression=0.1"), D2, published)["passed"]  # 0.19 >= 0.18
    worse = decide(validation + rows(test), cfg("evaluate.max_regression=0.01"), D2, published)
    assert not worse["passed"] and "below the published markov old's 0.2000" in worse["reasons"][1]
    assert worse["published_test_ndcg"] == 0.2


def test_a_refused_gate_keeps_yesterdays_recommendations(spark, lake):
    config = cfg()
    with pytest.raises(MissingInputError, match="run `python -m jobs.evaluate"):
        run_gate(spark, lake, config, D2)
    # Yesterday: published by an approved gate.
    lake.write_json(S.GATE_DECISIONS, D1, "decision.json", {"passed": True, "champion": "mf", "champion_version": "v1",
                                                            "champion_ds": D1})
    yesterday = spark.createDataFrame([("u1", "i1", 1, 0.5, "mf", "v1", "model", ["i0"], False)], S.RECOMMENDATIONS_SCHEMA)
    seen = spark.createDataFrame([("u1", "i0")], [S.USER_ID, S.ITEM_ID])
    publication.publish(spark, lake, D1, yesterday, publication.Expectations(seen, 1, 2, "v1"),
                        {"model": "mf", "model_version": "v1", "model_ds": D1}, keep=3)
    assert published_model(lake, D2) == {"model": "mf", "model_version": "v1", "model_ds": D1, "published_ds": D1}
    # Today: the champion loses to popularity on test.
    today = rows({("mf", "v2"): 0.3, ("markov", "k2"): 0.2, ("popularity", "p"): 0.1}, "validation") + rows(
        {("mf", "v2"): 0.04, ("markov", "k2"): 0.03, ("popularity", "p"): 0.05})
    lake.write_table(spark.createDataFrame(today, S.METRICS_SCHEMA), S.METRICS, D2)
    decision = run_gate(spark, lake, config, D2)
    assert not decision["passed"] and decision["published"]["model_version"] == "v1"
    with pytest.raises(DataQualityError, match=r"publication gate refused mf v2 for ds=2026-11-27: mf test NDCG@10 "
                                               r"0.0400 does not beat popularity 0.0500"):
        run_score(spark, lake, config, D2)
    assert not lake.has_partition(S.RECOMMENDATIONS, D2)
    assert [tuple(r) for r in lake.read_table(S.RECOMMENDATIONS, D1, "").collect()] == [
        ("u1", "i1", 1, 0.5, "mf", "v1", "model", ["i0"], False)]
    assert published_model(lake, "2026-11-28")["model_version"] == "v1"  # still the current version
