"""Cleaning through Spark's JSON source gives every line the text path's outcome and raw line."""

import json

import pytest
from pyspark.sql import functions as F

from recsys_spark import schemas as S
from recsys_spark.config_sections import CleanConfig, GenerateConfig
from recsys_spark.data.synthetic import generate_raw_lines
from recsys_spark.etl import clean as C
from recsys_spark.etl import clean_events as CE
from recsys_spark.etl import raw_lines as R

from .test_clean import CASES, DS, ev

# Lines both paths read as one row each, chosen where the two parsers could part: a nested value and a
# number in string fields, escapes, a repeated key, leading spaces, text after the object, truncation.
TRICKY = [
    '{"event_id": 31, "user_id": "u3", "item_id": "i1", "event_type": "view", "ts": "2026-11-27T10:00:00Z"}',
    '{"event_id": "e32", "user_id": {"k": [1, 2]}, "item_id": "i1", "event_type": "view", '
    '"ts": "2026-11-27T10:00:00Z", "extra": [1, {"a": null}]}',
    '{"event_id": "e33", "user_id": "\\u00e9t\\u00e9", "item_id": "i\\"2", "event_type": "click", "ts": 1795780800000}',
    '{"event_id": "e34", "event_id": "e35", "user_id": "u3", "item_id": "i1", "event_type": "view", '
    '"ts": "2026-11-27T10:00:00Z"}',
    "   " + ev("e36", user="u4"),
    ev("e37", user="u4") + ' {"event_id": "e38"}',
    '{"event_id": "e39", "user_id": "u4", "item_id"',
    '{}',
    ev("e40", user="\u00fc\u4e2d", rating=3.50, etype="rating"),
]


def _regular_lines():
    cfg = GenerateConfig(seed=11, n_users=60, n_items=30, mean_events_per_user=12, corrupt_rate=0.08,
                         duplicate_rate=0.03, malformed_rate=0.02)
    generated, _, _ = generate_raw_lines(cfg, DS)
    cases = [line for line, _, _ in CASES if line.lstrip(" ").startswith("{")]
    return cases + TRICKY + generated


def _write_files(tmp_path, lines, files=3):
    folder = tmp_path / "raw"
    folder.mkdir()
    step = -(-len(lines) // files)
    for k in range(files):
        (folder / f"part-{k}.jsonl").write_text("\n".join(lines[k * step:(k + 1) * step]) + "\n", encoding="utf-8")
    return str(folder)


def _rows(df):
    return sorted(tuple(r) for r in df.select(sorted(df.columns)).collect())


def test_json_source_gives_every_line_the_text_paths_outcome_and_raw_line(spark, tmp_path):
    lines = _regular_lines()
    path = _write_files(tmp_path, lines)
    text_df = spark.read.text(path)
    assert R.count_lines(text_df) == (len(lines), 0)
    by_text = C.select_outcomes(C.classify(text_df, CleanConfig(), DS)).cache()
    by_json = C.select_outcomes(C.classify_parsed(R.read_json_fields(spark, path), CleanConfig(), DS)).cache()
    assert by_text.filter(F.col(C.OUTCOME) == C.QUARANTINED).select(S.REASON).distinct().count() >= 8
    # Clean rows and duplicates are the same rows, line numbers included.
    not_quarantined = F.col(C.OUTCOME) != C.QUARANTINED
    assert _rows(by_json.filter(not_quarantined)) == _rows(by_text.filter(not_quarantined))
    # Quarantined rows: the JSON source keeps the raw line of malformed lines only; the others are fetched.
    quarantined = F.col(C.OUTCOME) == C.QUARANTINED
    kept = [(r[S.REASON], r[S.RAW_VALUE] is not None) for r in by_json.filter(quarantined).collect()]
    assert all(has_line == (reason == C.MALFORMED_JSON) for reason, has_line in kept)
    filled = R.with_raw_lines(spark, path, by_json.filter(quarantined), None)
    assert _rows(filled) == _rows(by_text.filter(quarantined))
    # Without the broadcast (a day with more than MAX_BROADCAST_ROWS such rows): the same rows.
    assert _rows(R.with_raw_lines(spark, path, by_json.filter(quarantined), None, broadcast=False)) == _rows(filled)
    line_at = {r[0]: r[1] for r in text_df.select(F.monotonically_increasing_id(), "value").collect()}
    assert all(line_at[r[C._ROW_ID]] == r[S.RAW_VALUE] for r in filled.collect())


def test_irregular_lines_are_counted_and_clean_events_parses_them_line_by_line(spark, lake, tmp_path):
    good = ev("e1")
    irregular = ["", "   ", "[1, 2]", ' [{"event_id": "e2"}]', "\t" + good, "\ufeff" + good, "42", "u1,i1,view"]
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "a.jsonl").write_bytes(("\n".join([good, "  " + ev("e3", item="i3")] + irregular) + "\n").encode("utf-8")
                                     + ev("e4", user="uXX").replace("XX", "\xff").encode("latin-1") + b"\n")
    assert R.count_lines(spark.read.text(str(folder))) == (11, len(irregular) + 1)

    report = CE.run_clean_events(spark, lake, CleanConfig(), DS, str(folder))
    assert report["parsed_by"] == f"text_lines (irregular lines: {len(irregular) + 1})"
    assert (report["input_rows"], report["clean"], report["quarantined_by_reason"][C.MALFORMED_JSON]) == (11, 3, 8)


def test_clean_events_through_the_json_source_writes_the_raw_lines_to_quarantine(spark, lake, tmp_path):
    lines = [line for line, _, _ in CASES if line.startswith("{")]
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(lines) + "\n")
    report = CE.run_clean_events(spark, lake, CleanConfig(), DS, str(path))
    assert report["parsed_by"] == "json_source"
    quarantine = spark.read.parquet(lake.partition_path(S.EVENTS_QUARANTINE, DS))
    expected = sorted((line, reason) for line, outcome, reason in CASES if outcome == C.QUARANTINED and line in lines)
    assert sorted((r[S.RAW_VALUE], r[S.REASON]) for r in quarantine.collect()) == expected
    assert report["quarantined_by_reason"][C.MALFORMED_JSON] == 1 and report["clean"] == 4


def test_raw_lines_that_changed_while_cleaning_fail_the_job(spark, tmp_path):
    lines = [ev(f"e{n}", user=f"u{n}") for n in range(6)] + [ev("e9", etype="hover")]
    before = tmp_path / "before"
    before.mkdir()
    (before / "in.jsonl").write_text("\n".join(lines) + "\n")
    after = tmp_path / "after"
    after.mkdir()
    (after / "in.jsonl").write_text("\n".join(reversed(lines)) + "\n")
    outcomes = C.select_outcomes(C.classify_parsed(R.read_json_fields(spark, str(before)), CleanConfig(), DS))
    quarantined = outcomes.filter(F.col(C.OUTCOME) == C.QUARANTINED)
    assert [r[S.RAW_VALUE] for r in R.with_raw_lines(spark, str(before), quarantined, None).collect()] == [lines[-1]]
    with pytest.raises(Exception, match="changed while clean_events ran"):
        R.with_raw_lines(spark, str(after), quarantined, None).collect()


def test_the_tricky_lines_parse_alike_in_both_paths(spark, tmp_path):
    # The fields themselves, not only the outcomes: from_json over the text against the JSON source.
    path = _write_files(tmp_path, TRICKY, files=1)
    by_text = [tuple(r) for r in spark.read.text(path).transform(C.with_parsed_fields)
               .select("_is_malformed", *S.RAW_FIELDS).collect()]
    by_json = [tuple(r) for r in R.read_json_fields(spark, path).select("_is_malformed", *S.RAW_FIELDS).collect()]
    assert by_text == by_json
    assert by_text[0][1] == "31" and by_text[1][2] == '{"k":[1,2]}'
    assert by_text[2][2] == json.loads(TRICKY[2])["user_id"]
    assert [malformed for malformed, *_ in by_text] == [False] * 6 + [True, False, False]
