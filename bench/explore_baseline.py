"""Fast settings exploration for a traditional baseline: one process, the lake's split in memory, validation
only, optionally on the ``--top-items`` most popular train items (where one fit on the whole catalogue costs
too much to sweep a grid, as EASE's dense inversion does on Gowalla's 41k items: the cost grows with the
cube of the catalogue). Every point of the model's grid (``conf/datasets/<dataset>.yaml`` and ``--set``) is
fit on train and scored by the validation core; test figures are never printed.

    .venv/bin/python bench/explore_baseline.py --dataset gowalla --model ease --top-items 16000 \\
        --set "ease.l2=[30.0,100.0,200.0,500.0]"

The lake is the one ``bench/quality.py`` builds (``--lake``, one sub-folder per dataset).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "bench"))

DS = "2026-11-27"  # bench/quality.py's date


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, choices=["ml-100k", "beauty", "gowalla"])
    parser.add_argument("--model", required=True)
    parser.add_argument("--top-items", type=int, default=None, help="keep only the N most popular train items")
    parser.add_argument("--lake", default="/tmp/recsys_quality_lake")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    explore(args.dataset, args.model, args.overrides, args.top_items, os.path.join(args.lake, args.dataset))


def keep_top_items(data, n_top: int):
    """The split restricted to the ``n_top`` items with the most train users, renumbered 0..n_top-1 (ties by
    index); validation targets outside them are dropped, so figures are comparable only among themselves."""
    from recsys_spark.io.local import Histories, SplitData

    counts = data.train_item_users()
    top = np.argsort(-counts, kind="stable")[:n_top]
    remap = np.full(data.n_items, -1, np.int64)
    remap[top] = np.arange(len(top))

    def restrict(histories):
        keep = remap[histories.items] >= 0
        return Histories.from_sorted(histories.user_of_each()[keep], histories.n_users, remap[histories.items[keep]])

    share = counts[top].sum() / max(1, counts.sum())
    return SplitData(data.n_users, len(top), restrict(data.train), restrict(data.validation),
                     restrict(data.test)), share


def explore(dataset, model_name, overrides, n_top, lake_root) -> None:
    from quality import DATASETS

    from recsys_spark import schemas as S
    from recsys_spark.baselines import grid_of, registry
    from recsys_spark.config import load_config
    from recsys_spark.evaluate.offline import validation_metrics
    from recsys_spark.io.local import read_split, vocab_size

    k = DATASETS[dataset].k
    cfg = load_config(os.path.join(REPO, "conf", "datasets", f"{dataset}.yaml"),
                      [f"evaluate.k={k}", f"evaluate.ks=[{k}]", f"train.model={model_name}"] + list(overrides))
    folders = {t: os.path.join(lake_root, t, f"ds={DS}") for t in (S.INTERACTIONS, S.USER_VOCAB, S.ITEM_VOCAB)}
    for folder in folders.values():
        if not os.path.isdir(folder):
            raise SystemExit(f"no {folder}: build the lake first with bench/quality.py --datasets {dataset}")
    data = read_split(folders[S.INTERACTIONS], vocab_size(folders[S.USER_VOCAB], S.USER_IDX),
                      vocab_size(folders[S.ITEM_VOCAB], S.ITEM_IDX))
    if model_name in ("als", "content"):
        raise SystemExit(f"{model_name} needs Spark or item features: explore it through bench/quality.py")
    if n_top:
        data, share = keep_top_items(data, n_top)
        print(f"{dataset}: the {data.n_items} most popular items, {share:.0%} of train interactions", flush=True)
    extra = {"seed": cfg.train.seed, "max_items": cfg.ease.max_items}
    for params in grid_of(model_name, cfg):
        started = time.time()
        scorer = registry()[model_name].fit(data, params, **extra)
        scores = validation_metrics(scorer, data, k, cfg.train.validation_max_users, cfg.train.seed)
        del scorer
        print(f"{dataset} {model_name} {params}: validation NDCG@{k} {scores['ndcg']:.4f} Recall@{k} "
              f"{scores['recall']:.4f} ({scores['n_users']} users, {time.time() - started:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
