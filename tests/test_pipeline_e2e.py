"""The nightly pipeline end to end on a tiny generated dataset, with the real stack."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from pyspark.sql import functions as F

from recsys_spark import schemas as S
from recsys_spark.config import load_config
from recsys_spark.data.synthetic import write_raw
from recsys_spark.lake import Lake
from recsys_spark.nightly import run_nightly, summary
from recsys_spark.privacy import KEY_ENV

from .conftest import REPO, TEST_CONF, jobs_env

DS = "2026-11-27"
pytestmark = pytest.mark.slow


PSEUDONYM_KEY = "e2e-test-key-not-a-secret-0123456789"


NIGHTLY_OVERRIDES = ["train.epochs=10", "train.embedding_dim=16", "privacy.pseudonymize=true"]


@pytest.fixture(scope="session")
def nightly(spark, tiny_cfg, tmp_path_factory):
    """One nightly run in local mode, with user ids pseudonymised (privacy.pseudonymize): every later stage
    sees pseudonyms. Shared with tests/test_cluster.py, whose cluster run must reproduce it."""
    root = str(tmp_path_factory.mktemp("e2e") / "lake")
    generated = write_raw(tiny_cfg.generate, root, DS)
    lake = Lake(spark, root)
    mp = pytest.MonkeyPatch()
    mp.setenv(KEY_ENV, PSEUDONYM_KEY)
    try:
        cfg = load_config(TEST_CONF, NIGHTLY_OVERRIDES)
        result = run_nightly(spark, lake, cfg, DS, conf_path=TEST_CONF, overrides=NIGHTLY_OVERRIDES)
    finally:
        mp.undo()
    return lake, generated, result


def test_no_raw_user_id_reaches_any_file_but_raw_events(nightly):
    """Every file of the lake after a whole night (tables, quarantine, models, reports, manifests), each
    Parquet file read through its columns, holds no raw user id; the users are there as their pseudonyms."""
    from .test_privacy import reference, tokens_in_files

    lake, _, _ = nightly
    raw_lines = [line for folder, _, names in os.walk(lake.partition_path(S.RAW_EVENTS, DS)) for name in names
                 if not name.startswith((".", "_")) for line in open(os.path.join(folder, name))]
    raw_ids = set(re.findall(r"\b(?:u\d{6}|bot\d{4})\b", "".join(raw_lines)))
    assert len(raw_ids) >= 300
    found = tokens_in_files(lake.root)
    assert sum(1 for path in found if path.startswith(S.EVENTS_QUARANTINE)) and len(found) > 50
    assert {path: hits for path, tokens in found.items() if (hits := tokens & raw_ids)} == {}
    valid = {json.loads(line)[S.USER_ID] for line in raw_lines if line.rstrip().endswith("}")}
    vocab = {r[S.USER_ID] for r in lake.read_table(S.USER_VOCAB, DS, "").collect()}
    assert vocab == {reference(PSEUDONYM_KEY.encode(), u) for u in valid if u.startswith("u")}


def test_every_raw_row_is_accounted_for(nightly):
    _, generated, result = nightly
    report = result["clean_events"]
    assert report["input_rows"] == generated["lines"]
    assert report["duplicates"] == generated["exact_duplicates"]
    assert report["quarantined"] == report["quarantined_by_reason"]["malformed_json"] == generated["malformed"]
    assert report["clean"] == generated["events"] - generated["malformed"]


def test_competition_evaluates_every_model_on_the_same_split(nightly, tiny_cfg):
    lake, _, result = nightly
    rows = [r.asDict() for r in lake.read_table(S.METRICS, DS, "").collect()]
    test = {(r[S.MODEL], r[S.SLICE], r[S.METRIC], r[S.K]): r for r in rows if r[S.SPLIT] == "test"}
    models = set(tiny_cfg.train.models)
    assert {m for m, *_ in test} == models == {"mf", "popularity", "item_knn", "markov"}
    for model in models:
        for metric in ("recall", "ndcg", "hr", "mrr", "map", "precision", "coverage", "mean_popularity", "novelty"):
            for k in tiny_cfg.evaluate.ks:
                assert (model, "all", metric, k) in test, (model, metric, k)
        assert {s for m, s, *_ in test if m == model} >= {"all", "cold", "heavy", "long_tail"}
    users = {r[S.N_USERS] for (m, s, *_), r in test.items() if s == "all"}
    assert users == {result["build_tables"]["pairs_by_split"]["test"]}  # every model ranked the same users
    ndcg = {m: r[S.VALUE] for (m, s, metric, k), r in test.items() if s == "all" and metric == "ndcg" and k == 10}
    assert ndcg["mf"] > 1.15 * ndcg["popularity"] and ndcg["item_knn"] > ndcg["popularity"]
    # The champion is the best on validation; the gate approved it and score published that version.
    validation = {r[S.MODEL]: r[S.VALUE] for r in rows if r[S.SPLIT] == "validation" and r[S.METRIC] == "ndcg"}
    gate = result["gate"]
    assert gate["champion"] == max(validation, key=validation.get) and gate["passed"]
    assert gate["validation_ndcg"] == {m: validation[m] for m in models}
    assert result["score"]["model"] == gate["champion"]
    assert result["score"]["model_version"] == gate["champion_version"]
    text = summary(result, DS)
    assert "| mf " in text and f"champion {gate['champion']}" in text and "recommendations/ds=2026-11-27" in text


def test_report_html_embeds_decodable_plots_and_the_decision(nightly):
    import base64
    import io
    import re

    import matplotlib.image as mpimg

    lake, _, result = nightly
    page = open(result["report"]["html"]).read()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 4
    for data in images:
        pixels = mpimg.imread(io.BytesIO(base64.b64decode(data)), format="png")
        assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 100
    assert page.index("Publication gate") < page.index("<img")  # the decision comes first
    assert f"Champion: {result['gate']['champion']} {result['gate']['champion_version']}" in page
    md = open(result["report"]["md"]).read()
    assert "APPROVED for publication" in md and "| mf |" in md


def test_recommendations_hold_n_distinct_unseen_items(nightly, tiny_cfg, spark):
    lake, _, result = nightly
    n = tiny_cfg.score.top_n
    path = lake.partition_path(S.RECOMMENDATIONS, DS)
    assert os.path.exists(os.path.join(path, "_SUCCESS"))
    recs = spark.read.parquet(path)
    assert recs.schema.fieldNames() == S.RECOMMENDATIONS_SCHEMA.fieldNames()
    per_user = recs.groupBy(S.USER_ID).agg(
        F.count(F.lit(1)).alias("n"), F.countDistinct(S.ITEM_ID).alias("distinct"),
        F.sort_array(F.collect_list(S.RANK)).alias("ranks"),
    ).collect()
    assert len(per_user) == result["build_tables"]["n_users"]
    assert all(r["n"] == n and r["distinct"] == n and r["ranks"] == list(range(1, n + 1)) for r in per_user)
    seen = (
        lake.read_table(S.INTERACTIONS, DS, "")
        .join(lake.read_table(S.USER_VOCAB, DS, ""), S.USER_IDX)
        .join(lake.read_table(S.ITEM_VOCAB, DS, ""), S.ITEM_IDX)
        .select(S.USER_ID, S.ITEM_ID)
    )
    assert recs.join(seen, [S.USER_ID, S.ITEM_ID]).count() == 0
    # because: up to 3 distinct items of the user's own history, for (nearly) every row.
    history = {r[0]: set(r[1]) for r in seen.groupBy(S.USER_ID).agg(F.collect_set(S.ITEM_ID)).collect()}
    reasons = [(r[S.USER_ID], r[S.BECAUSE]) for r in recs.select(S.USER_ID, S.BECAUSE).collect()]
    assert all(len(b) <= 3 and len(set(b)) == len(b) and set(b) <= history[u] for u, b in reasons)
    assert sum(len(b) > 0 for _, b in reasons) > 0.9 * len(reasons)
    # Scores fall with rank within each user.
    bad = recs.alias("a").join(recs.alias("b"), [S.USER_ID]).filter(
        (F.col("a.rank") < F.col("b.rank")) & (F.col("a.score") < F.col("b.score"))).count()
    assert bad == 0
    versions = {r[0] for r in recs.select(S.MODEL_VERSION).distinct().collect()}
    assert versions == {result["gate"]["champion_version"]}


def test_model_export_and_metadata(nightly):
    lake, _, result = nightly
    meta = result["train"]["mf"]
    assert meta["num_proc"] == 2 and len(meta["epoch_losses"]) == 10
    assert meta["epoch_losses"][-1] < meta["epoch_losses"][0]
    path = lake.partition_path(S.model_table("mf"), DS)
    users = lake.spark.read.parquet(f"{path}/user_embeddings")
    assert users.count() == meta["n_users"] and len(users.first()[S.EMBEDDING]) == 16 + 1
    assert meta["config"]["train"]["epochs"] == 10 and meta["ds"] == DS
    # mf's user vectors are parameters: refit on train + validation for the epochs validation chose.
    pairs = result["build_tables"]["pairs_by_split"]
    refit = meta["refit_on_train_and_validation"]
    assert refit["epochs"] == meta["best_epoch"] and refit["rows"] == pairs["train"] + pairs["validation"]
    assert refit["weights_digest"] != meta["weights_digest"]
    exported = lake.spark.read.parquet(f"{path}/item_embeddings").count()
    assert exported == meta["n_items"]


def test_score_runs_under_spark_submit(nightly):
    lake, _, _ = nightly
    spark_submit = os.path.join(os.path.dirname(sys.executable), "spark-submit")
    before = os.path.realpath(lake.partition_path(S.RECOMMENDATIONS, DS))  # the version ds=<ds> points at
    proc = subprocess.run(
        [spark_submit, "--master", "local[2]", os.path.join(REPO, "jobs", "score.py"), "--ds", DS,
         "--lake", lake.root, "--conf", TEST_CONF],
        cwd=REPO, env=jobs_env(), capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "INFO [score] 1500 recommendations for 300 users" in proc.stdout
    assert re.search(r"INFO \[recsys_spark\.publication\] version \S+ valid \(300 users, 1500 rows\)", proc.stdout)
    assert re.search(rf"INFO \[score\] ds={DS} done in [\d.]+ s\n", proc.stdout)
    quiet = run_job("jobs.score", "--ds", DS, "--lake", lake.root, "--conf", TEST_CONF, "--log-level", "warning")
    assert quiet.returncode == 0 and " INFO " not in quiet.stdout
    after = os.path.realpath(lake.partition_path(S.RECOMMENDATIONS, DS))
    assert before != after and os.path.dirname(before) == os.path.dirname(after)  # a new version of the day
    files = [n for n in os.listdir(after) if n.endswith(".parquet")]  # one per scoring task, named by its reason
    assert files and all(re.fullmatch(r"part-model-\d{5}\.parquet", n) for n in files), files


def table_checksum(df) -> str:
    """sha256 over the table's rows, sorted: equal checksums mean the same rows, whatever the files."""
    import hashlib

    rows = sorted(json.dumps(r.asDict(recursive=True), sort_keys=True, default=str) for r in df.collect())
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()


def test_rerunning_the_day_gives_identical_tables_and_an_identical_published_table(nightly, spark, tiny_cfg):
    """Fault (c): the day's ETL and scoring run again over their own outputs; every table they rewrite and
    the published recommendations (a new version) have the same rows, by checksum over sorted rows."""
    from recsys_spark.config import load_config
    from recsys_spark.etl.build import run_build_tables
    from recsys_spark.etl.clean_events import run_clean_events
    from recsys_spark.publication import current
    from recsys_spark.scoring import run_score

    lake, _, _ = nightly
    cfg = load_config(TEST_CONF, ["privacy.pseudonymize=true"])
    tables = [S.EVENTS_CLEAN, S.USER_VOCAB, S.ITEM_VOCAB, S.INTERACTIONS, S.TRAIN, S.VALIDATION, S.TEST,
              S.SEQUENCES, S.ITEM_FEATURES]

    def checksums():
        sums = {t: table_checksum(spark.read.parquet(lake.partition_path(t, DS))) for t in tables}
        sums[S.RECOMMENDATIONS] = table_checksum(spark.read.parquet(lake.partition_path(S.RECOMMENDATIONS, DS)))
        return sums

    before, version = checksums(), current(lake, DS)["version"]
    mp = pytest.MonkeyPatch()
    mp.setenv(KEY_ENV, PSEUDONYM_KEY)
    try:
        run_clean_events(spark, lake, cfg.clean, DS, None, cfg.privacy)
    finally:
        mp.undo()
    run_build_tables(spark, lake, cfg.build, cfg.train, DS)
    run_score(spark, lake, cfg, DS)
    assert current(lake, DS)["version"] != version  # a new version was published...
    assert checksums() == before  # ...with the same rows, and so is every table the re-run rewrote


def run_job(*args):
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, env=jobs_env(), capture_output=True,
                          text=True, timeout=300)


def test_items_marked_unavailable_are_never_recommended(nightly, spark):
    from recsys_spark.config import load_config
    from recsys_spark.scoring import run_score

    lake, _, _ = nightly
    before = spark.read.parquet(lake.partition_path(S.RECOMMENDATIONS, DS))
    top = [r[0] for r in before.groupBy(S.ITEM_ID).count().orderBy(F.desc("count"), S.ITEM_ID).limit(2).collect()]
    rows, users = before.count(), before.select(S.USER_ID).distinct().count()  # (read before the switch)
    availability = spark.createDataFrame([(top[0], False), (top[1], False), ("never-seen", True)],
                                         f"{S.ITEM_ID} string, {S.AVAILABLE} boolean")
    lake.write_table(availability, "item_availability", DS)
    out = run_score(spark, lake, load_config(TEST_CONF, ["score.availability_table=item_availability"]), DS)
    after = spark.read.parquet(lake.partition_path(S.RECOMMENDATIONS, DS))
    assert after.filter(F.col(S.ITEM_ID).isin(top)).count() == 0
    assert out["rows"] == rows and out["users"] == users


def test_users_the_model_cannot_score_get_a_fallback_and_its_reason(nightly, spark):
    import numpy as np

    from recsys_spark.config import load_config
    from recsys_spark.evaluate.scorers import ProfileScorer
    from recsys_spark.io import local
    from recsys_spark.scoring import run_score

    lake, _, result = nightly
    n_users = result["build_tables"]["n_users"]
    assert result["score"]["users_by_reason"] == {"model": n_users}  # every user has a trained vector
    # With a history threshold nobody meets, every user gets the content fallback (the demo items have content).
    out = run_score(spark, lake, load_config(TEST_CONF, ["score.min_history=100000"]), DS)
    assert out["users_by_reason"] == {"content_fallback": n_users} and out["users"] == n_users
    recs = spark.read.parquet(lake.partition_path(S.RECOMMENDATIONS, DS))
    user_idx = {r[S.USER_ID]: r[S.USER_IDX] for r in lake.read_table(S.USER_VOCAB, DS, "").collect()}
    item_id = {r[S.ITEM_IDX]: r[S.ITEM_ID] for r in lake.read_table(S.ITEM_VOCAB, DS, "").collect()}
    user = sorted(user_idx)[0]
    got = [r[S.ITEM_ID] for r in recs.filter(F.col(S.USER_ID) == user).orderBy(S.RANK).collect()]
    # The same list from the content scorer directly: cosine with the history's mean content, seen masked.
    interactions = lake.read_table(S.INTERACTIONS, DS, "")
    history = np.array([r[S.ITEM_IDX] for r in interactions.filter(F.col(S.USER_IDX) == user_idx[user]).collect()])
    candidates = {r[S.ITEM_IDX] for r in interactions.select(S.ITEM_IDX).distinct().collect()}
    features = local.read_item_features(lake.local_path(lake.partition_path(S.ITEM_FEATURES, DS)), len(item_id))
    scores = ProfileScorer(features).scores(np.array([user_idx[user]]), [history])[0]
    eligible = sorted((scores[i] for i in candidates if i not in set(history)), reverse=True)
    index_of = {v: k for k, v in item_id.items()}
    assert len(got) == 5 and not set(index_of[i] for i in got) & set(history.tolist())
    # (ties may be ordered either way: the scores of the list are the top 5 eligible scores, in order)
    np.testing.assert_allclose([scores[index_of[i]] for i in got], eligible[:5], rtol=1e-5)
    assert eligible[0] > eligible[-1]  # not a constant list


def test_lists_take_in_the_events_since_the_model_was_trained(nightly, spark):
    """mf was trained on train + validation; each user's test event (their newest) came after. Scoring folds
    it into the user's vector: those users' lists change, as the fold-in reference says; others' do not."""
    import numpy as np

    from recsys_spark.config import load_config
    from recsys_spark.evaluate.fold_in import FoldInScorer
    from recsys_spark.evaluate.ranking import candidates_of, top_k_from_scores
    from recsys_spark.io import local
    from recsys_spark.model_store import load_model
    from recsys_spark.scoring import histories_of, score_every_user

    lake, _, _ = nightly
    data = local.read_lake_split(lake, DS)
    model = load_model(lake, "mf", DS, data.n_items)
    interactions = lake.read_table(S.INTERACTIONS, DS, "")
    users = histories_of(interactions).join(lake.read_table(S.USER_VOCAB, DS, "").select(S.USER_IDX, S.USER_ID),
                                            S.USER_IDX)
    candidates = candidates_of(data.history(True).items, data.n_items) | candidates_of(data.test.items, data.n_items)

    def lists(fold_in):
        cfg = load_config(TEST_CONF, [f"score.fold_in={str(fold_in).lower()}", "score.fold_in_l2=0.01"])
        rows = score_every_user(lake, cfg, DS, DS, interactions, users, model.scorer, candidates, data.n_items)
        assert not any(row[S.NEW_ITEM] for row in rows.collect())
        out = {}
        for row in rows.orderBy(S.USER_IDX, S.RANK).collect():
            assert row[S.REASON] == "model"
            out.setdefault(row[S.USER_IDX], []).append(row[S.ITEM_IDX])
        return out

    fresh, stale = lists(True), lists(False)
    with_news = set(data.test.users_with_items().tolist())
    assert len(with_news) > 100 and set(fresh) == set(stale) and len(set(fresh) - with_news) > 0
    changed = {u for u in fresh if fresh[u] != stale[u]}
    assert changed <= with_news and len(changed) > 0.5 * len(with_news)
    assert all(fresh[u] == stale[u] for u in set(fresh) - with_news)
    # the published list of a user with news is the fold-in reference's
    trained = data.history(True)
    reference = FoldInScorer(model.scorer, trained.lengths(), 0.01)
    for user in sorted(changed)[:5]:
        history = np.concatenate([trained.rows([user])[0], data.test.rows([user])[0]])
        items, _ = top_k_from_scores(reference.scores(np.array([user]), [history]), [history], candidates, 5)
        assert fresh[user] == items[0].tolist()


def test_new_catalogue_items_are_candidates_for_models_that_read_content(nightly, spark, tiny_cfg):
    """The generated catalogue has new_items items without any event: build_tables gives them indices and
    content; the content model recommends them, marked new_item, and a model without content never does."""
    import numpy as np

    from recsys_spark.baselines.train import run_train_baseline
    from recsys_spark.config import load_config
    from recsys_spark.data.synthetic import item_id
    from recsys_spark.model_store import load_model
    from recsys_spark.scoring import candidate_items, histories_of, read_features, score_every_user

    lake, generated, _ = nightly
    assert generated["items"] == tiny_cfg.generate.n_items + tiny_cfg.generate.new_items == 124
    vocab = {r[S.ITEM_ID]: r[S.ITEM_IDX] for r in lake.read_table(S.ITEM_VOCAB, DS, "").collect()}
    n_items = max(vocab.values()) + 1
    interactions = lake.read_table(S.INTERACTIONS, DS, "")
    seen = np.array(sorted({r[0] for r in interactions.select(S.ITEM_IDX).distinct().collect()}))
    arrived = {vocab[item_id(tiny_cfg.generate.n_items + j)] for j in range(tiny_cfg.generate.new_items)}
    assert arrived and not arrived & set(seen.tolist())
    features = read_features(lake, DS, n_items)
    assert all(features[i].nnz > 0 for i in arrived)
    cfg = load_config(TEST_CONF, ["train.model=content"])
    run_train_baseline(spark, lake, cfg, DS)
    content = load_model(lake, "content", DS, n_items)
    unavailable = np.array([min(arrived)])
    candidates, new = candidate_items(seen, features, content, n_items, unavailable)
    assert set(np.flatnonzero(new).tolist()) == arrived - {min(arrived)} and not candidates[min(arrived)]
    assert set(np.flatnonzero(candidates).tolist()) == set(seen.tolist()) | (arrived - {min(arrived)})
    mf = load_model(lake, "mf", DS, n_items)
    assert not candidate_items(seen, features, mf, n_items, unavailable)[1].any()
    users = histories_of(interactions).join(lake.read_table(S.USER_VOCAB, DS, "").select(S.USER_IDX, S.USER_ID),
                                            S.USER_IDX)
    rows = score_every_user(lake, cfg, DS, DS, interactions, users, content.scorer, candidates, n_items, features,
                            new).collect()
    flagged = {r[S.ITEM_IDX] for r in rows if r[S.NEW_ITEM]}
    assert flagged and flagged <= arrived and all(r[S.NEW_ITEM] == (r[S.ITEM_IDX] in arrived) for r in rows)
    assert min(arrived) not in {r[S.ITEM_IDX] for r in rows}


def test_only_the_excluded_event_types_keep_an_item_from_coming_back(nightly, spark):
    from recsys_spark.config import load_config
    from recsys_spark.scoring import run_score

    lake, _, result = nightly
    out = run_score(spark, lake, load_config(TEST_CONF, ["score.exclude_event_types=[purchase]"]), DS)
    assert out["users"] == result["build_tables"]["n_users"]  # every active user, purchases or not
    recs = {(r[S.USER_ID], r[S.ITEM_ID]) for r in spark.read.parquet(lake.partition_path(S.RECOMMENDATIONS, DS))
            .select(S.USER_ID, S.ITEM_ID).collect()}
    pairs = (lake.read_table(S.INTERACTIONS, DS, "").join(lake.read_table(S.USER_VOCAB, DS, ""), S.USER_IDX)
             .join(lake.read_table(S.ITEM_VOCAB, DS, ""), S.ITEM_IDX).select(S.USER_ID, S.ITEM_ID, S.EVENT_TYPES)
             .collect())
    purchased = {(r[0], r[1]) for r in pairs if "purchase" in r[2]}
    only_other = {(r[0], r[1]) for r in pairs if "purchase" not in r[2]}
    assert purchased and not recs & purchased
    assert recs & only_other  # items the user only viewed, clicked or rated may be recommended again
    run_score(spark, lake, load_config(TEST_CONF), DS)  # back to excluding every event type
    recs = {(r[S.USER_ID], r[S.ITEM_ID]) for r in spark.read.parquet(lake.partition_path(S.RECOMMENDATIONS, DS))
            .select(S.USER_ID, S.ITEM_ID).collect()}
    assert not recs & (purchased | only_other)


@pytest.mark.parametrize("model", ["item_knn", "mf"])
def test_a_scorer_split_in_blocks_of_items_gives_the_same_lists(nightly, spark, model):
    from recsys_spark.config import load_config
    from recsys_spark.evaluate.ranking import candidates_of
    from recsys_spark.io import local
    from recsys_spark.model_store import load_model
    from recsys_spark.scoring import histories_of, score_every_user

    lake, _, _ = nightly
    data = local.read_lake_split(lake, DS)
    loaded = load_model(lake, model, DS, data.n_items)
    interactions = lake.read_table(S.INTERACTIONS, DS, "")
    users = histories_of(interactions).join(lake.read_table(S.USER_VOCAB, DS, "").select(S.USER_IDX, S.USER_ID),
                                            S.USER_IDX)
    candidates = candidates_of(data.history(True).items, data.n_items) | candidates_of(data.test.items, data.n_items)

    def rows(max_mb):
        cfg = load_config(TEST_CONF, [f"score.max_broadcast_mb={max_mb}"])
        out = score_every_user(lake, cfg, DS, DS, interactions, users, loaded.scorer, candidates, data.n_items)
        return sorted((r[S.USER_IDX], r[S.RANK], r[S.ITEM_IDX], r[S.SCORE], tuple(r[S.BECAUSE])) for r in out.collect())

    limit = loaded.scorer.nbytes() / 3.5 / 2 ** 20  # 4 blocks
    whole, blocks = rows(1024.0), rows(limit)
    assert len(whole) == 300 * 5 and [r[:3] for r in blocks] == [r[:3] for r in whole]
    assert [r[4] for r in blocks] == [r[4] for r in whole]
    np.testing.assert_allclose([r[3] for r in blocks], [r[3] for r in whole], rtol=1e-5)


def test_jobs_fail_with_one_clear_message(tmp_path):
    proc = run_job("jobs.build_tables", "--ds", "2026-01-01", "--lake", str(tmp_path), "--conf", TEST_CONF)
    assert proc.returncode == 2
    assert "ERROR [build_tables] no events_clean partition for ds=2026-01-01" in proc.stderr
    assert "run `python -m jobs.clean_events --ds 2026-01-01" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_job("jobs.train", "--ds", "2026-01-01", "--lake", str(tmp_path), "--set", "train.epoch=3")
    assert proc.returncode == 2 and "unknown config key(s) ['train.epoch']" in proc.stderr
    proc = run_job("jobs.score", "--ds", "01/01/2026", "--lake", str(tmp_path))
    assert proc.returncode == 2 and "give the run date as YYYY-MM-DD" in proc.stderr


@pytest.mark.parametrize("model,loss", [("mf", "mse"), ("two_tower", "softmax"), ("lightgcn", "sampled"), ("gcn", "bpr"),
                                        ("sasrec", "full")])
def test_every_model_trains_through_the_same_job_and_exports(nightly, model, loss):
    from recsys_spark.config import load_config
    from recsys_spark.training import run_train

    lake, _, _ = nightly
    cfg = load_config(TEST_CONF, [f"train.model={model}", "train.epochs=2", "train.embedding_dim=8",
                                  f"train.loss={loss}", f"train.negatives={4 if loss == 'bpr' else 1}",
                                  "train.batch_size=64" if model == "sasrec" else "train.batch_size=256",
                                  f"train.item_content={str(model == 'sasrec').lower()}"])  # SASRec with content
    meta = run_train(lake.spark, lake, cfg, DS)
    assert meta["model"] == model and meta["epochs_run"] == 2 and len(meta["validation"]) == 2
    assert meta["train_spec"]["negatives"] == meta["config"]["train"]["negatives"] == (4 if loss == "bpr" else 1)
    assert 0.0 < meta["train_cpu_s"] < meta["train_time_s"] * 2 * os.cpu_count()  # 2 ranks' processes
    assert 0.0 < meta["validation_ndcg"] <= 1.0
    path = lake.partition_path(S.model_table(model), DS)
    users = lake.spark.read.parquet(f"{path}/user_embeddings")
    items = lake.spark.read.parquet(f"{path}/item_embeddings")
    assert users.count() == meta["n_users"] and items.count() == meta["n_items"]
    dim = 8 + (1 if model == "mf" else 0)  # MF folds the item bias into one extra dimension
    assert len(users.first()[S.EMBEDDING]) == len(items.first()[S.EMBEDDING]) == dim
    assert meta["train_spec"]["loss"] == loss
    if loss == "sampled":  # trained on cosines: unit vectors exported
        import numpy as np

        norms = np.linalg.norm(np.stack(items.toPandas()[S.EMBEDDING].to_list()), axis=1)
        np.testing.assert_allclose(norms, 1.0, rtol=1e-4)
    if model == "sasrec":
        import numpy as np
        import tensorflow as tf

        encoder = tf.saved_model.load(os.path.join(path, "encoder"))
        out = encoder.signatures["serving_default"](history=tf.constant(np.full((2, 50), -1, np.int32)))
        assert out["user_vector"].shape == (2, 8)
        assert meta["train_spec"]["item_content"] is True
        # Scoring and evaluation run the encoder on each history (in NumPy): for the histories it was exported
        # with (train then validation items), it gives the exported user vectors.
        from recsys_spark.io import local
        from recsys_spark.model_store import load_model

        scorer = load_model(lake, model, DS).scorer
        assert scorer.kind == "sequence" and meta["scorer"] == "sequence"
        data = local.read_lake_split(lake, DS)
        exported = {r[S.USER_IDX]: r[S.EMBEDDING] for r in users.collect()}
        some = np.array(sorted(exported)[:20])
        np.testing.assert_allclose(scorer.user_vectors(data.history(True).rows(some)),
                                   np.array([exported[u] for u in some]), atol=1e-4)
