"""Batch scoring: top-N unseen items per user from the model version the gate approved, written atomically
to <lake>/recommendations/ds=<ds>/ (user_id, item_id, rank, score, model, model_version)."""

from recsys_spark.cli import JobContext, main


def run(ctx: JobContext) -> None:
    from recsys_spark.scoring import run_score

    out = run_score(ctx.spark, ctx.lake, ctx.cfg, ctx.ds)
    ctx.log.info(f"{out['rows']} recommendations for {out['users']} users (top {out['top_n']}, "
          f"{out['model']} {out['model_version']}) at {out['path']}")


if __name__ == "__main__":
    main("score", __doc__, run)
