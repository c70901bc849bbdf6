"""Trains a model on one ds's train table with Petastorm + Horovod (horovod.spark.run) and exports
its user/item embeddings and metadata to <lake>/models/<model>/ds=<ds>/."""

from recsys_spark.cli import JobContext, main


def add_args(parser) -> None:
    parser.add_argument("--model", default=None, help="model to train (default: train.model from --conf)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the last checkpoint of this model and ds instead of starting over")


def run(ctx: JobContext) -> None:
    from recsys_spark.training import run_train

    cfg = ctx.cfg
    if ctx.args.model:
        import os

        from recsys_spark.config import load_config

        # The model's own hyper-parameters (conf/models/<model>.yaml) sit between --conf and --set.
        model_conf = os.path.join(os.path.dirname(os.path.abspath(ctx.args.conf)), "models", f"{ctx.args.model}.yaml")
        layers = [model_conf] if os.path.exists(model_conf) else []
        cfg = load_config(ctx.args.conf, [f"train.model={ctx.args.model}", f"score.model={ctx.args.model}"]
                          + ctx.args.overrides, layers=layers)
    meta = run_train(ctx.spark, ctx.lake, cfg, ctx.ds, resume=ctx.args.resume)
    print(f"[train] {meta['model']} {meta['model_version']}: {meta['num_proc']} Horovod ranks, "
          f"{meta['train_rows']} rows, {len(meta['epoch_losses'])} epochs in {meta['train_time_s']} s, "
          f"loss {meta['epoch_losses'][0]:.4f} -> {meta['epoch_losses'][-1]:.4f}; best validation NDCG "
          f"{meta['validation_ndcg']:.4f} at epoch {meta['best_epoch']}"
          f"{' (stopped early)' if meta['stopped_early'] else ''}; exported to {meta['path']}")


if __name__ == "__main__":
    main("train", __doc__, run, add_args)
