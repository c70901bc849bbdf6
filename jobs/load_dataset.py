"""Converts a public dataset (MovieLens-100K/1M, sequence files, LightGCN train/test) into raw events,
item catalog and users for one ds, so that clean_events, build_tables and the rest run on it."""

from recsys_spark.cli import JobContext, main


def add_args(parser) -> None:
    from recsys_spark.data.loaders import FORMATS

    parser.add_argument("--format", required=True, choices=FORMATS, help="input format")
    parser.add_argument("--path", required=True, help="dataset folder (ml-*, lightgcn) or sequence file")
    parser.add_argument("--attributes", default=None, help="item -> attribute ids JSON (sequences format)")
    parser.add_argument("--validation-fraction", type=float, default=0.1,
                        help="share of each user's train items held for validation (lightgcn format)")


def run(ctx: JobContext) -> None:
    from recsys_spark.data.loaders import write_dataset

    a = ctx.args
    counts = write_dataset(a.format, a.path, ctx.lake_root, ctx.ds, a.attributes, a.validation_fraction,
                           privacy=ctx.cfg.privacy)
    ctx.log.info(f"{a.format} from {a.path}: {counts['events']} events, {counts['items']} catalog items, "
          f"{counts['users']} users written for ds={ctx.ds}")


if __name__ == "__main__":
    main("load_dataset", __doc__, run, add_args, needs_spark=False)
