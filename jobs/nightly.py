"""The nightly pipeline for one ds: clean_events -> build_tables -> train (every model of train.models)
-> evaluate -> gate -> score (when the gate approves) -> report."""

from recsys_spark.cli import JobContext, main


def add_args(parser) -> None:
    parser.add_argument("--input", default=None,
                        help="raw JSON-lines file or folder (default <lake>/raw_events/ds=<ds>/)")


def run(ctx: JobContext) -> None:
    from recsys_spark.nightly import run_nightly, summary

    result = run_nightly(ctx.spark, ctx.lake, ctx.cfg, ctx.ds, ctx.args.input, ctx.args.conf, ctx.args.overrides)
    ctx.log.info("%s", summary(result, ctx.ds))


if __name__ == "__main__":
    main("nightly", __doc__, run, add_args)
