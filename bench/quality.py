"""Model quality on the public datasets through the product's own jobs: load -> clean -> build once per
dataset, then every model (deep on 2 Horovod ranks fed by Petastorm, traditional in the driver) trained by
the train job's code path and evaluated by the evaluation job's (full ranking, history masked, validation
folded into the history at test), over seeds for the seeded models. Prints one table per dataset (mean ±
std where seeded) with the published reference figures of ../shared/data/README.md beside it, and the best
deep against the best traditional model on the last line.

    make benchmark-quality                                    # every dataset and model
    .venv/bin/python bench/quality.py --datasets beauty --models ease,markov,sasrec --seeds 0
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

DATA = os.path.join(REPO, "..", "shared", "data")
Dataset = collections.namedtuple("Dataset", "format path attributes k seeds models")
# name: (loader format, path, attributes, K of the published protocol, default seeds, default models)
# Default models (None: every model): Gowalla runs its published protocol's (LightGCN, EASE and the usual
# baselines). Its files keep no order (each train.txt line is sorted by item id, no times;
# ../shared/data/README.md: not for sequential models), so sasrec, markov and popularity_recent would learn
# the id order, and it has no item content; the other deep models have no run size for its whole-graph steps
# (as conf/datasets/gowalla.lightgcn.yaml gives LightGCN) and were never measured there within 45 minutes.
DATASETS = {
    "ml-100k": Dataset("ml-100k", "ml-100k", None, 10, "0,1,2", None),
    "beauty": Dataset("sequences", "beauty/Beauty.txt", "beauty/Beauty_item2attributes.json", 10, "0", None),
    "gowalla": Dataset("lightgcn", "gowalla", None, 20, "0", ("popularity", "item_knn", "als", "ease", "lightgcn")),
}
# ../shared/data/README.md, measured on exactly these files by an independent harness (same protocol).
REFERENCE = {
    "ml-100k": {"popularity": 0.0390, "ease": 0.0699, "als": 0.0748, "markov": 0.0865},
    "beauty": {"popularity": 0.0063, "ease": 0.0445, "als": 0.0361, "markov": 0.0543, "sasrec": 0.0318},
    "gowalla": {"lightgcn": 0.1554},  # published NDCG@20 (Recall@20 0.1830; EASE Recall@20 0.1765)
}
SEEDED = {"mf", "two_tower", "lightgcn", "gcn", "sasrec", "als"}
DS = "2026-11-27"


def main() -> None:
    from recsys_spark.models import BASELINE_NAMES, DEEP_MODEL_NAMES

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="ml-100k,beauty,gowalla")
    parser.add_argument("--models", default=None, help="comma-separated (default: every model; on Gowalla its "
                                                         "protocol's, as DATASETS says)")
    parser.add_argument("--seeds", default=None, help="comma-separated (default: 0,1,2 on ml-100k, 0 elsewhere)")
    parser.add_argument("--lake", default="/tmp/recsys_quality_lake", help="lake folder, one sub-folder per dataset")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="config override for every model")
    args = parser.parse_args()
    lines = []
    for dataset in args.datasets.split(","):
        models = (args.models.split(",") if args.models
                  else DATASETS[dataset].models or BASELINE_NAMES + DEEP_MODEL_NAMES)
        lines.append(run_dataset(dataset, list(models), args.seeds, args.lake, args.overrides))
    print("\n".join(lines))


def run_dataset(dataset: str, models, seeds_arg, lake_root: str, overrides) -> str:
    from recsys_spark import schemas as S
    from recsys_spark.config import load_config, load_model_config
    from recsys_spark.data.loaders import write_dataset
    from recsys_spark.etl.build import run_build_tables
    from recsys_spark.etl.clean_events import run_clean_events
    from recsys_spark.evaluate.offline import run_evaluate
    from recsys_spark.lake import Lake
    from recsys_spark.models import DEEP_MODEL_NAMES
    from recsys_spark.report import format_table
    from recsys_spark.session import build_session
    from recsys_spark.training import train_model

    fmt, rel, attributes, k, default_seeds, _ = DATASETS[dataset]
    conf = os.path.join(REPO, "conf", "datasets", f"{dataset}.yaml")
    base_overrides = [f"evaluate.k={k}", f"evaluate.ks=[{k}]"] + list(overrides)
    base = load_config(conf, base_overrides)
    spark = build_session(base.spark, app_suffix="bench-quality")
    lake = Lake(spark, os.path.join(lake_root, dataset))
    started = time.time()
    if not lake.has_partition(S.INTERACTIONS, DS) or "tie_break" not in lake.read_table(S.INTERACTIONS, DS, "").columns:
        write_dataset(fmt, os.path.join(DATA, rel), lake.root, DS,
                      attributes=os.path.join(DATA, attributes) if attributes else None)
        run_clean_events(spark, lake, base.clean, DS)
        run_build_tables(spark, lake, base.build, base.train, DS)
    print(f"{dataset}: lake ready in {time.time() - started:.0f} s at {lake.root}", flush=True)
    results = {}
    for model in models:
        seeds = (seeds_arg or default_seeds).split(",") if model in SEEDED else ["0"]
        for seed in seeds:
            cfg = load_model_config(conf, base_overrides + [f"train.seed={seed}", f"train.models=[{model}]"], model)
            t0, cpu0 = time.time(), time.process_time()
            meta = train_model(spark, lake, cfg, DS)
            rows = run_evaluate(spark, lake, cfg, DS)
            wall = time.time() - t0
            got = {(r[S.MODEL], r[S.SPLIT], r[S.SLICE], r[S.METRIC]): r[S.VALUE] for r in rows if r[S.K] == k}
            run = dict(ndcg=got[(model, "test", "all", "ndcg")], recall=got[(model, "test", "all", "recall")],
                       hr=got[(model, "test", "all", "hr")], val=meta["validation_ndcg"] or 0.0, wall=wall,
                       cpu=meta["train_cpu_s"] + (time.process_time() - cpu0 if model not in DEEP_MODEL_NAMES else 0),
                       epochs=meta["epochs_run"], params=meta.get("params"))
            results.setdefault(model, []).append(run)
            print(f"  {dataset} {model} seed {seed}: test NDCG@{k} {run['ndcg']:.4f} Recall@{k} {run['recall']:.4f} "
                  f"(validation NDCG@{k} {run['val']:.4f}; {run['epochs']} epoch(s); {wall:.0f} s wall, "
                  f"{meta['train_cpu_s']:.0f} s train CPU; {run['params'] or ''})", flush=True)
    spark.stop()

    def spread(values):
        return f"{statistics.mean(values):.4f} ± {statistics.pstdev(values):.4f}" if len(values) > 1 else f"{values[0]:.4f}"

    body = []
    for model, runs in results.items():
        ref = REFERENCE.get(dataset, {}).get(model)
        body.append([model, "deep" if model in DEEP_MODEL_NAMES else "traditional",
                     spread([r["val"] for r in runs]), spread([r["ndcg"] for r in runs]),
                     spread([r["recall"] for r in runs]), spread([r["hr"] for r in runs]),
                     "-" if ref is None else f"{ref:.4f}", f"{statistics.mean(r['wall'] for r in runs):.0f}",
                     f"{statistics.mean(r['cpu'] for r in runs):.0f}", len(runs)])
    table = format_table(["model", "family", f"val NDCG@{k}", f"test NDCG@{k}", f"Recall@{k}", f"HR@{k}",
                          f"reference NDCG@{k}", "wall s / run", "CPU s / run", "seeds"], body)
    print(f"\n{dataset} (full ranking, history masked, validation folded in at test):\n{table}", flush=True)
    mean = {m: statistics.mean(r["ndcg"] for r in runs) for m, runs in results.items()}
    deep = {m: v for m, v in mean.items() if m in DEEP_MODEL_NAMES}
    traditional = {m: v for m, v in mean.items() if m not in DEEP_MODEL_NAMES}
    if deep and traditional:
        d, t = max(deep, key=deep.get), max(traditional, key=traditional.get)
        return (f"{dataset}: best deep {d} NDCG@{k} {deep[d]:.4f} vs best traditional {t} {traditional[t]:.4f}: "
                f"ratio {deep[d] / traditional[t]:.2f}x")
    best = max(mean, key=mean.get)
    return f"{dataset}: best {best} NDCG@{k} {mean[best]:.4f} (one family only)"


if __name__ == "__main__":
    main()
