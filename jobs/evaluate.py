"""Full-ranking Recall@K and NDCG@K of the trained model and the popularity baseline on the test
split (history masked); writes <lake>/metrics/ds=<ds>/ and prints the table."""

from recsys_spark.cli import JobContext, main


def run(ctx: JobContext) -> None:
    from recsys_spark.report import metrics_table
    from recsys_spark.serving import run_evaluate

    rows = run_evaluate(ctx.spark, ctx.lake, ctx.cfg, ctx.ds)
    print(metrics_table(rows))


if __name__ == "__main__":
    main("evaluate", __doc__, run)
