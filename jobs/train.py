"""Trains models on one ds's lake tables and exports them to <lake>/models/<model>/ds=<ds>/.

Deep models (mf, two_tower, lightgcn, gcn, sasrec) train on Horovod ranks fed by Petastorm
(horovod.spark.run); traditional baselines (popularity, popularity_recent, item_knn, content, als, ease,
markov) fit in the driver (als in Spark MLlib). Without --model every model of train.models is trained
(the nightly competition). Each model's settings come from conf/models/<model>.yaml between --conf and --set."""

from recsys_spark.cli import JobContext, main
from recsys_spark.models import BASELINE_NAMES, DEEP_MODEL_NAMES, MODEL_NAMES


def add_args(parser) -> None:
    parser.add_argument("--model", default=None, metavar="NAME",
                        help=f"one model to train: deep {', '.join(DEEP_MODEL_NAMES)}; traditional "
                             f"{', '.join(BASELINE_NAMES)} (default: every model of train.models)")
    parser.add_argument("--fresh", action="store_true",
                        help="start over even where checkpoints of the same model version and inputs exist "
                             "(by default a re-run, e.g. an Airflow retry, resumes from them)")


def run(ctx: JobContext) -> None:
    from recsys_spark.config import load_model_config
    from recsys_spark.errors import ConfigError
    from recsys_spark.training import train_model

    if ctx.args.model is not None and ctx.args.model not in MODEL_NAMES:
        raise ConfigError(f"unknown model {ctx.args.model!r}; choose one of {', '.join(MODEL_NAMES)}")
    for model in [ctx.args.model] if ctx.args.model else ctx.cfg.train.models:
        cfg = load_model_config(ctx.args.conf, ctx.args.overrides, model)
        meta = train_model(ctx.spark, ctx.lake, cfg, ctx.ds, fresh=ctx.args.fresh)
        ctx.log.info(f"{meta['model']} {meta['model_version']}: {meta['num_proc']} process(es), {meta['train_rows']} "
              f"rows, {meta['epochs_run']} epoch(s) in {meta['train_time_s']} s; best validation NDCG@{cfg.evaluate.k} "
              f"{meta['validation_ndcg'] or 0:.4f}{' (stopped early)' if meta['stopped_early'] else ''}; "
              f"exported to {meta['path']}")


if __name__ == "__main__":
    main("train", __doc__, run, add_args)
