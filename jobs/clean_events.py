"""Parses, validates and de-duplicates one day of raw JSON-lines events into events_clean,
routing bad rows to events_quarantine with a reason, and accounting for every input row."""

import json

from recsys_spark.cli import JobContext, main


def add_args(parser) -> None:
    parser.add_argument("--input", default=None,
                        help="raw JSON-lines file or folder (default <lake>/raw_events/ds=<ds>/)")


def run(ctx: JobContext) -> None:
    from recsys_spark.etl.clean_events import run_clean_events

    report = run_clean_events(ctx.spark, ctx.lake, ctx.cfg.clean, ctx.ds, ctx.args.input, ctx.cfg.privacy)
    ctx.log.info(f"input {report['input_rows']} rows -> clean {report['clean']}, "
          f"quarantined {report['quarantined']}, duplicates {report['duplicates']}")
    reasons = {k: v for k, v in report["quarantined_by_reason"].items() if v}
    if reasons:
        ctx.log.info(f"quarantine reasons: {json.dumps(reasons, sort_keys=True)}")


if __name__ == "__main__":
    main("clean_events", __doc__, run, add_args)
