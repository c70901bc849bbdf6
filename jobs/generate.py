"""Writes one day of synthetic raw events and the item catalog into the lake (the demo's input)."""

import json

from recsys_spark.cli import JobContext, main


def add_args(parser) -> None:
    parser.add_argument("--corrupt-rate", type=float, default=None,
                        help="share of events replaced or joined by bad rows of every kind (generate.corrupt_rate)")


def run(ctx: JobContext) -> None:
    from recsys_spark.data.synthetic import write_raw

    cfg = ctx.cfg.generate
    if ctx.args.corrupt_rate is not None:
        from recsys_spark.config import load_config

        overrides = ctx.args.overrides + [f"generate.corrupt_rate={ctx.args.corrupt_rate}"]
        cfg = load_config(ctx.args.conf, overrides).generate
    counts = write_raw(cfg, ctx.lake_root, ctx.ds)
    ctx.log.info(f"wrote {counts['lines']} raw lines ({counts['events']} events) and {counts['items']} "
          f"catalog items for ds={ctx.ds}; expected cleaning outcomes: {json.dumps(counts['expected'], sort_keys=True)}")


if __name__ == "__main__":
    main("generate", __doc__, run, add_args, needs_spark=False)
