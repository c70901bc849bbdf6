"""Writes the nightly report (report.html with embedded plots, and report.md) for one ds from its metrics
and gate decision, under <lake>/_reports/report/ds=<ds>/."""

from recsys_spark.cli import JobContext, main


def run(ctx: JobContext) -> None:
    from recsys_spark.report import run_report

    out = run_report(ctx.lake, ctx.cfg, ctx.ds)
    ctx.log.info(f"{out['html']}")
    ctx.log.info(f"{out['md']}")


if __name__ == "__main__":
    main("report", __doc__, run)
