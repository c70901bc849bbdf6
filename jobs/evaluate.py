"""Evaluates every model of train.models, the popularity baseline and the currently published version on
the same split (full ranking, history masked; Recall, NDCG, HR, MRR, MAP, Precision at evaluate.ks,
coverage, popularity, novelty; slices all/cold/heavy/long_tail); writes <lake>/metrics/ds=<ds>/."""

from recsys_spark.cli import JobContext, main


def run(ctx: JobContext) -> None:
    from recsys_spark.evaluate.offline import run_evaluate
    from recsys_spark.report import metrics_table

    rows = run_evaluate(ctx.spark, ctx.lake, ctx.cfg, ctx.ds)
    ctx.log.info("metrics (validation and test):\n%s", metrics_table(rows, ctx.cfg.evaluate.k))


if __name__ == "__main__":
    main("evaluate", __doc__, run)
