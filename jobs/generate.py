"""Writes one day of synthetic raw events and the item catalog into the lake (the demo's input)."""

from recsys_spark.cli import JobContext, main


def run(ctx: JobContext) -> None:
    from recsys_spark.data.synthetic import write_raw

    counts = write_raw(ctx.cfg.generate, ctx.lake_root, ctx.ds)
    print(f"[generate] wrote {counts['lines']} raw lines ({counts['events']} events, "
          f"{counts['exact_duplicates']} exact duplicates, {counts['malformed']} malformed) "
          f"and {counts['items']} catalog items for ds={ctx.ds}")


if __name__ == "__main__":
    main("generate", __doc__, run, needs_spark=False)
