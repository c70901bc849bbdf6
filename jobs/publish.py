"""Publication of <lake>/recommendations: show which version is current for a day and which are kept, or
make an earlier kept version current again (--rollback). `score` publishes each new version itself.

    python -m jobs.publish --ds 2026-11-27 --lake /data/lake              # list the day's versions
    python -m jobs.publish --ds 2026-11-27 --lake /data/lake --rollback   # back to the previous version
    python -m jobs.publish --ds 2026-11-27 --lake /data/lake --rollback --version 20261127T031500Z-1a2b3c"""

from recsys_spark.cli import JobContext, main


def add_args(parser) -> None:
    parser.add_argument("--rollback", action="store_true",
                        help="make an earlier kept version of --ds current (default: the one before the current)")
    parser.add_argument("--version", default=None, help="with --rollback: the version to make current")


def run(ctx: JobContext) -> None:
    from recsys_spark import publication
    from recsys_spark.errors import ConfigError

    if ctx.args.version and not ctx.args.rollback:
        raise ConfigError("--version only goes with --rollback")
    if ctx.args.rollback:
        manifest = publication.rollback(ctx.lake, ctx.ds, ctx.args.version, ctx.cfg.score.keep_versions)
        ctx.log.info(f"ds={ctx.ds}: version {manifest['version']} ({manifest['model']} "
              f"{manifest['model_version']}) is current again, instead of {manifest['rolled_back_from']}")
    now = publication.current(ctx.lake, ctx.ds)
    for version in publication.valid_versions(ctx.lake, ctx.ds):
        mark = "*" if now and version == now["version"] else " "
        ctx.log.info(f"{mark} {version}")
    latest = publication.latest(ctx.lake)
    if latest:
        ctx.log.info(f"_LATEST: ds={latest['ds']} version {latest['version']} at {latest['path']}")


if __name__ == "__main__":
    main("publish", __doc__, run, add_args)
