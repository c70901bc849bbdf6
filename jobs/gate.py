"""Picks the champion of train.models by validation NDCG@K and decides whether it may be published (it must
beat popularity on test and not regress more than evaluate.max_regression against the published version);
writes <lake>/gate_decisions/ds=<ds>/decision.json. Exits 0 either way; score refuses a refused day."""

from recsys_spark.cli import JobContext, main


def run(ctx: JobContext) -> None:
    from recsys_spark.evaluate.gate import run_gate
    from recsys_spark.report import decision_lines

    decision = run_gate(ctx.spark, ctx.lake, ctx.cfg, ctx.ds)
    for line in decision_lines(decision):
        ctx.log.info(line)


if __name__ == "__main__":
    main("gate", __doc__, run)
