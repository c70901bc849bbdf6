"""Is folding in the events since training worth it, and how firmly (``score.fold_in_l2``)? Chosen on
validation only: ALS (the dataset's chosen setting) is fit on train without each user's last train item;
that item is then the "event since training", folded into the user's vector (recsys_spark/evaluate/fold_in.py)
while the history holds all of train, and validation is ranked. Compared with the stale vectors (no
fold-in) and with a refit on the whole train (what retraining would give).

    .venv/bin/python bench/fold_in.py --dataset ml-100k

The lake is the one ``bench/quality.py`` builds. Prints one line per setting; the last line is the ratio of
the chosen fold-in's validation NDCG to the stale vectors'.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "bench"))

DS = "2026-11-27"  # bench/quality.py's date
ALS = {"ml-100k": {"alpha": 10.0, "rank": 128, "reg": 0.1},  # the settings ALS's validation grid chose
       "beauty": {"alpha": 40.0, "rank": 128, "reg": 0.1}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, choices=sorted(ALS))
    parser.add_argument("--l2", default="0.001,0.003,0.01,0.03,0.1,0.3,1,3")
    parser.add_argument("--lake", default="/tmp/recsys_quality_lake")
    args = parser.parse_args()
    run(args.dataset, [float(x) for x in args.l2.split(",")], os.path.join(args.lake, args.dataset))


def run(dataset: str, l2_values, root: str) -> None:
    from quality import DATASETS

    from recsys_spark import schemas as S
    from recsys_spark.baselines import als
    from recsys_spark.evaluate import metrics as M
    from recsys_spark.evaluate.fold_in import FoldInScorer
    from recsys_spark.evaluate.offline import rank_split
    from recsys_spark.io.local import Histories, SplitData, read_split, vocab_size
    from recsys_spark.config_sections import SparkConfig
    from recsys_spark.session import build_session

    k = DATASETS[dataset].k
    data = read_split(f"{root}/{S.INTERACTIONS}/ds={DS}", vocab_size(f"{root}/{S.USER_VOCAB}/ds={DS}", S.USER_IDX),
                      vocab_size(f"{root}/{S.ITEM_VOCAB}/ds={DS}", S.ITEM_IDX))
    lengths = data.train.lengths()
    keep = np.ones(len(data.train.items), bool)
    keep[(data.train.indptr[1:] - 1)[lengths >= 2]] = False  # each user's last train item, when they have 2+
    owner = np.repeat(np.arange(data.n_users), lengths)
    prefix = Histories.from_sorted(owner[keep], data.n_users, data.train.items[keep])
    spark = build_session(SparkConfig(driver_memory="6g"), "bench-fold-in")

    def ndcg(scorer) -> float:
        users, ranked = rank_split(scorer, data, False, k)
        return float(M.per_user(ranked, data.validation.rows(users), [k])["ndcg"].mean())

    stale = als.fit(SplitData(data.n_users, data.n_items, prefix, data.validation, data.test), ALS[dataset],
                    spark=spark)
    base = ndcg(stale)
    print(f"{dataset} validation NDCG@{k}: stale vectors {base:.4f}", flush=True)
    results = {}
    for l2 in l2_values:
        results[l2] = ndcg(FoldInScorer(stale, prefix.lengths(), l2))
        print(f"  fold-in l2 {l2:g}: {results[l2]:.4f}", flush=True)
    print(f"  refit on the whole train: {ndcg(als.fit(data, ALS[dataset], spark=spark)):.4f}", flush=True)
    best = max(results, key=results.get)
    print(f"fold-in (l2 {best:g}) over stale vectors: {results[best] / base:.2f}x")


if __name__ == "__main__":
    main()
