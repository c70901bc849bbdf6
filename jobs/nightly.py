"""The nightly pipeline for one ds: clean_events -> build_tables -> train -> evaluate -> score."""

from recsys_spark.cli import JobContext, main


def add_args(parser) -> None:
    parser.add_argument("--input", default=None,
                        help="raw JSON-lines file or folder (default <lake>/raw_events/ds=<ds>/)")


def run(ctx: JobContext) -> None:
    from recsys_spark.nightly import run_nightly, summary

    result = run_nightly(ctx.spark, ctx.lake, ctx.cfg, ctx.ds, ctx.args.input)
    print(summary(result, ctx.ds), flush=True)


if __name__ == "__main__":
    main("nightly", __doc__, run, add_args)
