"""Builds id vocabularies, interactions, leave-last-out splits and graph edges for one ds from the
events_clean partitions inside the configured look-back window."""

from recsys_spark.cli import JobContext, main


def run(ctx: JobContext) -> None:
    from recsys_spark.etl.build import run_build_tables

    report = run_build_tables(ctx.spark, ctx.lake, ctx.cfg.build, ctx.cfg.train, ctx.ds)
    ctx.log.info(f"window {report['window'][0]}..{report['window'][1]}: {report['n_users']} users, "
          f"{report['n_items']} items, pairs by split {report['pairs_by_split']}")


if __name__ == "__main__":
    main("build_tables", __doc__, run)
