"""Batch scoring against what a Spark user would run instead, on the same factors in one run:

(a) our scoring job end to end (`recsys_spark.scoring.run_score`: read the factors and histories, score in
    blocks inside the executors, exclude each user's seen items, explain (`because`), validate, publish);
(b) `ALSModel.recommendForAllUsers(N)` with those factors, written to Parquet (it excludes nothing and
    explains nothing, so it does less work than (a));
(c) the floor: the blocked user x item products alone in one process, nothing selected or written;
(d) for scale, not a target: (c) plus each block's top-N selection, one process.

Random factors (d = --dim), --seen random history items per user. Prints each wall time and rows/s and the
peak memory of (a); the last line reads `speed-up over ALS: <b/a>x; ratio to floor: <a/c>x`.

    .venv/bin/python bench/score.py                                   # 200k users x 50k items, N = 100
    .venv/bin/python bench/score.py --users 20000 --items 10000       # smaller
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

DS = "2026-11-27"
VERSION = "bench-v1"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--top-n", type=int, default=100)
    parser.add_argument("--seen", type=int, default=5, help="history items per user")
    parser.add_argument("--workdir", default=None, help="default: a temporary folder, removed at the end")
    args = parser.parse_args()

    from recsys_spark.config import load_config
    from recsys_spark.lake import Lake
    from recsys_spark.session import build_session

    cfg = load_config(os.path.join(REPO, "conf", "nightly.yaml"), [f"score.top_n={args.top_n}"])
    spark = build_session(cfg.spark, app_suffix="bench-score")
    work = args.workdir or tempfile.mkdtemp(prefix="recsys_bench_score_")
    try:
        lake = Lake(spark, os.path.join(work, "lake"))
        users, items = write_inputs(spark, lake, args)
        print(f"{args.users} users x {args.items} items, d={args.dim}, N={args.top_n}, {args.seen} seen items per "
              f"user; spark {cfg.spark.master}", flush=True)

        from recsys_spark.scoring import run_score

        started = time.time()
        with PeakMemory() as peak:
            ours = run_score(spark, lake, cfg, DS)
        ours_s = time.time() - started
        print(f"(a) recsys_spark score job: {ours['rows']} rows in {ours_s:.1f} s "
              f"({ours['rows'] / ours_s:,.0f} rows/s); peak memory of the driver JVM and Python workers "
              f"{peak.peak_mb:,.0f} MB (idle before: {peak.start_mb:,.0f} MB)", flush=True)

        als_s, als_rows = run_als(spark, users, items, args.top_n, work)
        print(f"(b) ALSModel.recommendForAllUsers({args.top_n}) + Parquet: {als_rows} rows in {als_s:.1f} s "
              f"({als_rows / als_s:,.0f} rows/s)", flush=True)
        floor_s = products_alone(users, items, cfg.score.users_per_batch)
        print(f"(c) floor: the user x item products alone, blocks of {cfg.score.users_per_batch} users, one "
              f"process: {floor_s:.1f} s", flush=True)
        select_s = products_alone(users, items, cfg.score.users_per_batch, select_top=args.top_n)
        print(f"(d) the products and the top-{args.top_n} selection alone (numpy, `top_k_from_scores`), one "
              f"process: {select_s:.1f} s; (a) is {ours_s / select_s:.2f}x this", flush=True)
        print(f"speed-up over ALS: {als_s / ours_s:.2f}x; ratio to floor: {ours_s / floor_s:.2f}x")
    finally:
        spark.stop()
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


def products_alone(users: np.ndarray, items: np.ndarray, block: int, select_top: int = 0) -> float:
    """Seconds for the blocked products users x items^T alone (nothing selected or written), into one
    reused output block as the scoring job does (a fresh block each time would add page faults). With
    ``select_top``, also each block's top-N (nothing excluded, explained or written; the selection runs on
    one core, the products on BLAS's threads): the two steps any job that ranks every item for every user
    takes, for scale."""
    from recsys_spark.evaluate.ranking import top_k_from_scores

    out = np.empty((block, len(items)), np.float32)
    everything, nothing = np.ones(len(items), bool), [None] * block
    started = time.time()
    for start in range(0, len(users), block):
        chunk = users[start:start + block]
        scores = np.matmul(chunk, items.T, out=out[:len(chunk)])
        if select_top:
            top_k_from_scores(scores, nothing[:len(chunk)], everything, select_top)
    return time.time() - started


class PeakMemory:
    """Samples the resident memory of this process and its children (the Spark driver JVM and the Python
    workers of local mode) every 0.2 s."""

    def __enter__(self):
        import threading

        import psutil

        self.root = psutil.Process()
        self.start_mb = self.peak_mb = self._total_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _total_mb(self) -> float:
        import psutil

        total = 0
        for process in [self.root] + self.root.children(recursive=True):
            try:
                total += process.memory_info().rss
            except psutil.Error:
                pass
        return total / 2 ** 20

    def _sample(self):
        while not self._stop.wait(0.2):
            self.peak_mb = max(self.peak_mb, self._total_mb())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def write_inputs(spark, lake, args):
    """A lake with vocabularies, interactions, (empty) item features, an `mf` model holding the factors
    and an approving gate decision."""
    import pandas as pd

    from recsys_spark import schemas as S

    rng = np.random.default_rng(0)
    users = rng.normal(0, 0.1, (args.users, args.dim)).astype(np.float32)
    items = rng.normal(0, 0.1, (args.items, args.dim)).astype(np.float32)
    ts = pd.Timestamp("2026-11-26")

    def frame(pdf, schema):
        return spark.createDataFrame(pdf, schema)

    vocab = {S.USER_VOCAB: (S.USER_ID, S.USER_IDX, args.users, "u"), S.ITEM_VOCAB: (S.ITEM_ID, S.ITEM_IDX, args.items, "i")}
    for table, (id_col, idx_col, n, prefix) in vocab.items():
        pdf = pd.DataFrame({id_col: [f"{prefix}{i}" for i in range(n)], idx_col: np.arange(n, dtype=np.int32),
                            S.FIRST_DS: DS})
        lake.write_table(frame(pdf, S.VOCAB_SCHEMAS[table]), table, DS)
    seen = np.stack([rng.choice(args.items, args.seen, replace=False) for _ in range(args.users)])
    n = seen.size
    interactions = pd.DataFrame({
        S.USER_IDX: np.repeat(np.arange(args.users, dtype=np.int32), args.seen), S.ITEM_IDX: seen.ravel().astype(np.int32),
        S.WEIGHT: np.ones(n, np.float32), S.EVENT_COUNT: np.ones(n, np.int32), S.LAST_RATING: np.full(n, np.nan),
        S.FIRST_TS: ts, S.LAST_TS: ts, S.TIE_BREAK: rng.integers(0, 2**62, n), S.SPLIT: S.SPLIT_TRAIN,
        S.EVENT_TYPES: [["view"]] * n})
    lake.write_table(frame(interactions, S.INTERACTIONS_SCHEMA), S.INTERACTIONS, DS)
    features = pd.DataFrame({S.ITEM_IDX: np.arange(args.items, dtype=np.int32)})
    for column in (S.CATEGORY_MULTI_HOT, S.TAG_IDS, S.TITLE_TFIDF_INDICES, S.TITLE_TFIDF_VALUES):
        features[column] = [[] for _ in range(args.items)]
    features[S.PRICE], features[S.TRAIN_USERS] = None, np.zeros(args.items, np.int32)
    lake.write_table(frame(features, S.ITEM_FEATURES_SCHEMA), S.ITEM_FEATURES, DS)

    def embeddings(idx_col, matrix, side):
        pdf = pd.DataFrame({idx_col: np.arange(len(matrix), dtype=np.int32), S.EMBEDDING: list(matrix)})
        return frame(pdf, S.EMBEDDINGS_SCHEMAS[side])

    metadata = {"model": "mf", "model_version": VERSION, "n_users": args.users, "n_items": args.items, "ds": DS}
    lake.write_bundle(S.model_table("mf"), DS, {"user_embeddings": embeddings(S.USER_IDX, users, "user"),
                                                "item_embeddings": embeddings(S.ITEM_IDX, items, "item")},
                      files={"metadata.json": json.dumps(metadata)})
    lake.write_json(S.GATE_DECISIONS, DS, "decision.json", {"passed": True, "champion": "mf", "champion_version": VERSION,
                                                            "champion_ds": DS, "reasons": []})
    return users, items


def run_als(spark, users, items, top_n, work):
    """recommendForAllUsers with the given factors: a rank-d ALSModel fitted on a toy set, saved, its factor
    tables replaced by ours, loaded back."""
    import pandas as pd
    from pyspark.ml.recommendation import ALS, ALSModel

    toy = spark.createDataFrame([(0, 0, 1.0), (1, 1, 1.0)], "user int, item int, rating float")
    path = os.path.join(work, "als_model")
    ALS(rank=users.shape[1], maxIter=1, implicitPrefs=True, userCol="user", itemCol="item").fit(toy).save(path)
    for name, matrix in (("userFactors", users), ("itemFactors", items)):
        shutil.rmtree(os.path.join(path, name))
        pdf = pd.DataFrame({"id": np.arange(len(matrix), dtype=np.int32), "features": list(matrix)})
        spark.createDataFrame(pdf, "id int, features array<float>").write.parquet(os.path.join(path, name))
    started = time.time()
    model = ALSModel.load(path)
    out = os.path.join(work, "als_recommendations")
    model.recommendForAllUsers(top_n).write.parquet(out)
    seconds = time.time() - started
    rows = spark.read.parquet(out).selectExpr("size(recommendations) AS n").groupBy().sum("n").first()[0]
    return seconds, int(rows)


if __name__ == "__main__":
    main()
