"""The ``clean_events`` job: classify one day's raw lines once, account for every row, write the clean
and quarantine tables (user ids pseudonymised first when ``privacy.pseudonymize`` is on), check what was
written against the accounting, and write the report."""

from __future__ import annotations

import time
import uuid
from typing import Dict, Optional

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from recsys_spark import privacy
from recsys_spark import schemas as S
from recsys_spark.config_sections import CleanConfig, PrivacyConfig
from recsys_spark.errors import DataQualityError, MissingInputError
from recsys_spark.etl import raw_lines
from recsys_spark.etl.clean import (CLEAN, DUPLICATE, MALFORMED_JSON, OUTCOME, QUARANTINED, REASONS, classify,
                                    classify_parsed, select_clean, select_outcomes, select_quarantine)
from recsys_spark.lake import STAGING


def pseudonymized(outcomes_df: DataFrame, key: bytes, keep_raw_ids: bool = False) -> DataFrame:
    """Outcomes with every user id replaced by its pseudonym and quarantine's raw lines encrypted (a raw
    line may hold a raw user id anywhere, valid JSON or not); ``keep_raw_ids`` keeps the raw id in
    ``raw_user_id`` for the id map."""
    df = privacy.with_secrets(outcomes_df, key)
    replaced = {S.USER_ID: privacy.pseudonym_column(S.USER_ID),
                **privacy.encrypted_instead(S.RAW_VALUE, S.RAW_VALUE_ENCRYPTED)}
    if keep_raw_ids:
        replaced[S.RAW_USER_ID] = F.col(S.USER_ID)
    return privacy.drop_secrets(df.withColumns(replaced))


def select_id_map(outcomes_df: DataFrame) -> DataFrame:
    return (outcomes_df.filter((F.col(OUTCOME) == CLEAN)).select(S.USER_ID, S.RAW_USER_ID).distinct())


def build_report(outcome_counts: Dict[tuple, int], input_rows: int, ds: str, input_path: str) -> Dict:
    """The accounting report; raises DataQualityError if the outcomes do not add up to the input."""
    by_outcome = {CLEAN: 0, QUARANTINED: 0, DUPLICATE: 0}
    by_reason = {reason: 0 for reason in REASONS}
    for (outcome, reason), n in outcome_counts.items():
        by_outcome[outcome] += n
        if outcome == QUARANTINED:
            by_reason[reason] = by_reason.get(reason, 0) + n
    accounted = sum(by_outcome.values())
    report = {
        "ds": ds,
        "input_path": input_path,
        "input_rows": input_rows,
        "clean": by_outcome[CLEAN],
        "quarantined": by_outcome[QUARANTINED],
        "duplicates": by_outcome[DUPLICATE],
        "quarantined_by_reason": by_reason,
        "is_balanced": accounted == input_rows,
    }
    if accounted != input_rows:
        raise DataQualityError(
            f"clean_events cannot account for every row of {input_path}: input {input_rows} != clean "
            f"{by_outcome[CLEAN]} + quarantined {by_outcome[QUARANTINED]} + duplicates {by_outcome[DUPLICATE]}"
        )
    return report


def run_clean_events(spark, lake, cfg: CleanConfig, ds: str, input_path: Optional[str] = None,
                     privacy_cfg: PrivacyConfig = PrivacyConfig()) -> Dict:
    """Cleans one day's raw events into ``events_clean`` and ``events_quarantine`` and writes a report.

    Returns:
        The report (also written to ``_reports/clean_events/ds=<ds>/report.json``).
    """
    key = privacy.pseudonym_key(privacy_cfg)  # a missing key fails before anything is read or written
    path = input_path or lake.partition_path(S.RAW_EVENTS, ds)
    if not lake.exists(path):
        raise MissingInputError(
            f"no raw events for ds={ds}: {path} does not exist. Write that day's JSON lines there "
            f"(python -m jobs.generate --ds {ds} --lake {lake.root} makes synthetic ones) or pass --input PATH."
        )
    timings: Dict[str, float] = {}
    started = time.time()

    def lap(name: str) -> None:
        nonlocal started
        timings[name] = round(time.time() - started, 2)
        started = time.time()

    raw_df = spark.read.text(path)
    input_rows, irregular_rows = raw_lines.count_lines(raw_df)
    # The JSON source parses faster, but only lines it reads one row each keep the text's row numbers.
    by_json_source = irregular_rows == 0
    lap("count_input")
    # Classify once into a staged, columnar copy (cheaper than caching wide rows), then split it.
    staged = f"{lake.table_path(S.EVENTS_CLEAN)}/{STAGING}/classified-ds={ds}-{uuid.uuid4().hex[:12]}"
    try:
        outcomes_df = select_outcomes(classify_parsed(raw_lines.read_json_fields(spark, path), cfg, ds)
                                      if by_json_source else classify(raw_df, cfg, ds))
        if key:
            outcomes_df = pseudonymized(outcomes_df, key, keep_raw_ids=privacy_cfg.write_id_map)
        outcomes_df.write.mode("overwrite").parquet(staged)
        lap("classify")
        outcomes_df = spark.read.parquet(staged)
        counts = {
            (r[OUTCOME], r[S.REASON]): r["n"]
            for r in outcomes_df.groupBy(OUTCOME, S.REASON).agg(F.count(F.lit(1)).alias("n")).collect()
        }
        report = build_report(counts, input_rows, ds, path)
        if report["clean"] == 0:
            raise MissingInputError(f"no valid events for ds={ds} in {path}: all {input_rows} rows were rejected "
                                    f"({report['quarantined_by_reason']}). Check the input's format.")
        lap("account")
        clean_path = lake.write_table(select_clean(outcomes_df), S.EVENTS_CLEAN, ds)
        lap(S.EVENTS_CLEAN)
        quarantined_df = outcomes_df.filter(F.col(OUTCOME) == QUARANTINED)
        if by_json_source:
            needing = report["quarantined"] - report["quarantined_by_reason"][MALFORMED_JSON]
            quarantined_df = raw_lines.with_raw_lines(spark, path, quarantined_df, key,
                                                      broadcast=needing <= raw_lines.MAX_BROADCAST_ROWS)
        quarantine_path = lake.write_table(select_quarantine(quarantined_df), S.EVENTS_QUARANTINE, ds, files=1)
        lap(S.EVENTS_QUARANTINE)
        if key and privacy_cfg.write_id_map:
            lake.write_table(select_id_map(outcomes_df), S.USER_PSEUDONYMS, ds, files=1)
            lap(S.USER_PSEUDONYMS)
    finally:
        lake.delete(staged)
    written_clean = spark.read.parquet(clean_path).count()
    written_quarantine = spark.read.parquet(quarantine_path).count()
    if (written_clean, written_quarantine) != (report["clean"], report["quarantined"]):
        raise DataQualityError(
            f"written rows differ from the accounting: clean {written_clean} vs {report['clean']}, "
            f"quarantined {written_quarantine} vs {report['quarantined']}"
        )
    lap("check_written")
    report["user_ids"] = "pseudonymized" if key else "raw"
    # how the lines were parsed: Spark's JSON source, or the text lines one by one when some line is
    # irregular (blank, an array or another non-object, leading whitespace other than spaces, not UTF-8)
    report["parsed_by"] = "json_source" if by_json_source else f"text_lines (irregular lines: {irregular_rows})"
    report["step_s"] = timings
    report["outputs"] = {S.EVENTS_CLEAN: clean_path, S.EVENTS_QUARANTINE: quarantine_path}
    lake.write_json(f"{S.REPORTS}/clean_events", ds, "report.json", report)
    return report
