"""Model quality on a public dataset through the real jobs: load -> clean -> build once, then every model
trained on 2 Horovod ranks (Petastorm feed) and evaluated on the test split (full ranking, history
masked), over several seeds. Prints a table of test NDCG@K / Recall@K (evaluate.k; mean and spread) and wall times.

    .venv/bin/python bench/quality.py --dataset ml-100k --models mf,two_tower,lightgcn,gcn,sasrec --seeds 0,1,2

Datasets are read from ../shared/data (never copied into the repository).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "data")
DATASETS = {
    "ml-100k": ("ml-100k", "ml-100k", None),
    "beauty": ("sequences", "beauty/Beauty.txt", "beauty/Beauty_item2attributes.json"),
    "gowalla": ("lightgcn", "gowalla", None),
}
DS = "2026-11-27"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="ml-100k")
    parser.add_argument("--models", default="mf,two_tower,lightgcn,gcn,sasrec")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--lake", default=None, help="lake folder (default: /tmp/recsys_quality_lake/<dataset>)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="config override for every model")
    args = parser.parse_args()

    from recsys_spark import schemas as S
    from recsys_spark.config import load_config
    from recsys_spark.data.loaders import write_dataset
    from recsys_spark.etl.build import run_build_tables
    from recsys_spark.etl.clean import run_clean_events
    from recsys_spark.lake import Lake
    from recsys_spark.report import format_table
    from recsys_spark.serving import run_evaluate
    from recsys_spark.session import build_session
    from recsys_spark.training import run_train

    fmt, rel, attributes = DATASETS[args.dataset]
    dataset_conf = os.path.join("conf", "datasets", f"{args.dataset}.yaml")
    base = load_config(dataset_conf, args.overrides)
    spark = build_session(base.spark, app_suffix="bench-quality")
    lake = Lake(spark, args.lake or os.path.join("/tmp/recsys_quality_lake", args.dataset))
    started = time.time()
    if not lake.has_partition(S.TRAIN, DS):
        write_dataset(fmt, os.path.join(DATA, rel), lake.root, DS,
                      attributes=os.path.join(DATA, attributes) if attributes else None)
        run_clean_events(spark, lake, base.clean, DS)
        run_build_tables(spark, lake, base.build, base.train, DS)
    print(f"{args.dataset}: lake ready in {time.time() - started:.0f} s at {lake.root}", flush=True)

    results = {}
    popularity = None
    for model in args.models.split(","):
        model_conf = os.path.join("conf", "models", f"{model}.yaml")
        for seed in [int(s) for s in args.seeds.split(",")]:
            cfg = load_config(dataset_conf, [f"train.model={model}", f"score.model={model}", f"train.seed={seed}"]
                              + args.overrides, layers=[model_conf] if os.path.exists(model_conf) else [])
            t0 = time.time()
            meta = run_train(spark, lake, cfg, DS)
            rows = run_evaluate(spark, lake, cfg, DS)
            wall = time.time() - t0
            metrics = {(r[S.MODEL], r[S.METRIC]): r[S.VALUE] for r in rows}
            k = cfg.evaluate.k
            popularity = (metrics[("popularity", f"ndcg@{k}")], metrics[("popularity", f"recall@{k}")])
            results.setdefault(model, []).append(dict(
                ndcg=metrics[(model, f"ndcg@{k}")], recall=metrics[(model, f"recall@{k}")], wall=wall,
                epochs=meta["epochs_run"], cpu=meta["train_cpu_s"]))
            print(f"  {model} seed {seed}: NDCG@{k} {metrics[(model, f'ndcg@{k}')]:.4f} Recall@{k} "
                  f"{metrics[(model, f'recall@{k}')]:.4f} ({meta['epochs_run']} epochs, best {meta['best_epoch']}, "
                  f"{wall:.0f} s wall, training {meta['train_time_s']:.0f} s wall / {meta['train_cpu_s']:.0f} s CPU "
                  f"over {meta['num_proc']} rank(s))", flush=True)

    def spread(values):
        return f"{statistics.mean(values):.4f} ± {statistics.pstdev(values):.4f}" if len(values) > 1 else f"{values[0]:.4f}"

    body = [["popularity", f"{popularity[0]:.4f}", f"{popularity[1]:.4f}", "-", "-", "-"]]
    for model, runs in results.items():
        body.append([model, spread([r["ndcg"] for r in runs]), spread([r["recall"] for r in runs]),
                     f"{statistics.mean(r['wall'] for r in runs):.0f}", f"{statistics.mean(r['cpu'] for r in runs):.0f}",
                     ",".join(str(r["epochs"]) for r in runs)])
    k = base.evaluate.k
    print(format_table(["model", f"NDCG@{k}", f"Recall@{k}", "wall s / run", "train CPU s / run", "epochs"], body))
    mean_ndcg = {m: statistics.mean(r["ndcg"] for r in runs) for m, runs in results.items()}
    best = max(mean_ndcg, key=mean_ndcg.get)
    print(f"best: {best} NDCG@{k} {mean_ndcg[best]:.4f} vs popularity {popularity[0]:.4f}: "
          f"ratio {mean_ndcg[best] / popularity[0]:.2f}")
    spark.stop()


if __name__ == "__main__":
    main()
