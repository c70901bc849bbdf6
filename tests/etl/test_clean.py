import datetime as dt
import json

import pytest
from chispa import assert_df_equality
from pyspark.sql import types as T

from recsys_spark import schemas as S
from recsys_spark.config_sections import CleanConfig
from recsys_spark.errors import DataQualityError, MissingInputError
from recsys_spark.etl import clean as C
from recsys_spark.etl import clean_events as CE

DS = "2026-11-27"
UTC = dt.timezone.utc


def ev(event_id="e1", user="u1", item="i1", etype="view", rating=None, ts="2026-11-27T10:00:00Z", session="s1"):
    return json.dumps({"event_id": event_id, "user_id": user, "item_id": item, "event_type": etype,
                       "rating": rating, "ts": ts, "session_id": session})


# (line, expected outcome, expected reason)
CASES = [
    (ev("e1"), C.CLEAN, None),
    (ev("e1"), C.DUPLICATE, None),  # exact copy of the line above
    (ev("e2", etype="RATING", rating=4, ts="2026-11-27T11:00:00+01:00"), C.CLEAN, None),
    (ev("e3", ts=1795780800000), C.CLEAN, None),  # epoch milliseconds
    ('{"event_id": "e4", "user_id": "u1"', C.QUARANTINED, C.MALFORMED_JSON),
    ("", C.QUARANTINED, C.MALFORMED_JSON),
    ("[1, 2]", C.QUARANTINED, C.MALFORMED_JSON),
    (json.dumps({"event_id": "e5", "user_id": "u1", "event_type": "view", "ts": "2026-11-27T10:00:00Z"}),
     C.QUARANTINED, C.MISSING_FIELD),
    (ev("e6", user=""), C.QUARANTINED, C.BAD_ID),
    (ev("e7", item="x" * 300), C.QUARANTINED, C.BAD_ID),
    (ev("e8", user="u\u0001"), C.QUARANTINED, C.BAD_ID),
    (ev("e9", etype="hover"), C.QUARANTINED, C.UNKNOWN_EVENT_TYPE),
    (ev("e10", ts="yesterday"), C.QUARANTINED, C.UNPARSEABLE_TS),
    (ev("e11", ts="2026-11-27T10:00:00"), C.QUARANTINED, C.UNPARSEABLE_TS),  # no zone: ambiguous
    (ev("e12", ts="1999-12-31T23:59:59Z"), C.QUARANTINED, C.TS_OUT_OF_RANGE),
    (ev("e13", ts="2026-11-29T00:00:00Z"), C.QUARANTINED, C.TS_OUT_OF_RANGE),  # after end of ds + 1 day
    (ev("e14", ts="2026-11-28T23:59:59Z"), C.CLEAN, None),  # last second allowed
    (ev("e15", etype="rating", rating=9), C.QUARANTINED, C.BAD_RATING),
    (ev("e16", etype="rating"), C.QUARANTINED, C.BAD_RATING),  # rating event without a rating
    (ev("e17", rating="great"), C.QUARANTINED, C.BAD_RATING),
]


@pytest.fixture
def classified(spark):
    raw_df = spark.createDataFrame([(line,) for line, _, _ in CASES], "value string").coalesce(1)
    return C.classify(raw_df, CleanConfig(), DS)


def test_each_id_is_checked_for_its_length_and_control_characters(spark):
    longest = CleanConfig().max_id_length
    lines = {
        ev("a\u007f"): C.BAD_ID, ev("b", user="u\u0000"): C.BAD_ID, ev("c", item="i\t1"): C.BAD_ID,
        ev(""): C.BAD_ID, ev("d", item=""): C.BAD_ID, ev("e" * (longest + 1)): C.BAD_ID,
        ev("f" * longest, user="u" * longest, item="i" * longest): None,  # each id within its own limit
        ev("g", user="ü\u00e9", item="i 1"): None,  # non-ASCII letters and spaces are not control characters
    }
    raw_df = spark.createDataFrame([(line,) for line in lines], "value string").coalesce(1)
    got = {r["value"]: r[S.REASON] for r in C.classify(raw_df, CleanConfig(), DS).collect()}
    assert got == lines


def test_every_row_gets_the_expected_outcome_and_reason(classified):
    got = {r["value"]: (r[C.OUTCOME], r[S.REASON]) for r in classified.collect() if r["value"] != CASES[0][0]}
    for line, outcome, reason in CASES[2:]:
        assert got[line] == (outcome, reason), line
    first_copies = [r[C.OUTCOME] for r in classified.orderBy("_row_id").collect() if r["value"] == CASES[0][0]]
    assert first_copies == [C.CLEAN, C.DUPLICATE]


def test_clean_rows_are_typed_and_in_utc(spark, classified):
    expected = spark.createDataFrame(
        [
            ("e1", "u1", "i1", "view", None, dt.datetime(2026, 11, 27, 10, 0), "s1"),
            ("e14", "u1", "i1", "view", None, dt.datetime(2026, 11, 28, 23, 59, 59), "s1"),
            ("e2", "u1", "i1", "rating", 4.0, dt.datetime(2026, 11, 27, 10, 0), "s1"),
            ("e3", "u1", "i1", "view", None, dt.datetime(2026, 11, 27, 12, 0), "s1"),
        ],
        S.EVENTS_CLEAN_SCHEMA,
    )
    got = C.select_clean(C.select_outcomes(classified)).orderBy(S.EVENT_ID)
    # The session runs in UTC, so naive datetimes above are UTC wall-clock times.
    assert_df_equality(got, expected.orderBy(S.EVENT_ID), ignore_nullable=True)


def test_parse_ts_formats(spark):
    df = spark.createDataFrame(
        [("2026-11-27T10:00:00Z",), ("2026-11-27T05:00:00-05:00",), ("2026-11-27 10:00:00.250Z",),
         ("1795780800000",), ("2026-11-27T10:00:00+0100",), ("27/11/2026",), (None,)],
        T.StructType([T.StructField("ts", T.StringType(), True)]),
    )
    got = [r[0] for r in df.select(C.parse_ts(df["ts"])).collect()]
    assert got == [
        dt.datetime(2026, 11, 27, 10, 0), dt.datetime(2026, 11, 27, 10, 0),
        dt.datetime(2026, 11, 27, 10, 0, 0, 250000), dt.datetime(2026, 11, 27, 12, 0),
        dt.datetime(2026, 11, 27, 9, 0), None, None,
    ]


def test_quarantine_keeps_raw_line_and_reason(classified):
    rows = sorted((r[S.RAW_VALUE], r[S.REASON]) for r in C.select_quarantine(C.select_outcomes(classified)).collect())
    expected = sorted((line, reason) for line, outcome, reason in CASES if outcome == C.QUARANTINED)
    assert rows == expected


def test_report_must_balance():
    counts = {(C.CLEAN, None): 5, (C.QUARANTINED, C.BAD_ID): 2, (C.DUPLICATE, None): 1}
    report = CE.build_report(counts, 8, DS, "in")
    assert (report["clean"], report["quarantined"], report["duplicates"]) == (5, 2, 1)
    assert report["quarantined_by_reason"][C.BAD_ID] == 2 and report["quarantined_by_reason"][C.MALFORMED_JSON] == 0
    with pytest.raises(DataQualityError, match="cannot account for every row"):
        CE.build_report(counts, 9, DS, "in")


def test_run_clean_events_writes_tables_and_report(spark, lake, tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(line for line, _, _ in CASES) + "\n")
    report = CE.run_clean_events(spark, lake, CleanConfig(), DS, str(path))
    n_quarantined = sum(1 for _, o, _ in CASES if o == C.QUARANTINED)
    assert report["input_rows"] == len(CASES)
    assert (report["clean"], report["quarantined"], report["duplicates"]) == (len(CASES) - n_quarantined - 1, n_quarantined, 1)
    assert report["quarantined_by_reason"][C.MALFORMED_JSON] == 3 and report["quarantined_by_reason"][C.BAD_ID] == 3
    on_disk = json.loads(open(f"{lake.root}/_reports/clean_events/ds={DS}/report.json").read())
    assert on_disk["clean"] == report["clean"] and on_disk["is_balanced"] is True
    assert spark.read.parquet(lake.partition_path(S.EVENTS_CLEAN, DS)).count() == report["clean"]


def test_missing_input_says_what_to_do(spark, lake):
    with pytest.raises(MissingInputError, match=r"no raw events for ds=2026-01-01.*jobs.generate.*--input"):
        CE.run_clean_events(spark, lake, CleanConfig(), "2026-01-01")


def test_every_injected_corruption_is_quarantined_under_its_reason(spark):
    from collections import Counter

    from recsys_spark.config_sections import GenerateConfig
    from recsys_spark.data.synthetic import CORRUPTION_KINDS, generate_raw_lines

    cfg = GenerateConfig(seed=5, n_users=150, n_items=60, mean_events_per_user=20, corrupt_rate=0.05,
                         duplicate_rate=0.02, malformed_rate=0.0)
    lines, labels, _ = generate_raw_lines(cfg, DS)
    assert {reason for _, reason in labels} >= set(CORRUPTION_KINDS)
    raw_df = spark.createDataFrame([(line,) for line in lines], "value string")
    got = Counter((r["value"], r[C.OUTCOME], r[S.REASON])
                  for r in C.classify(raw_df, CleanConfig(), DS).select("value", C.OUTCOME, S.REASON).collect())
    expected = Counter((line, outcome, reason) for line, (outcome, reason) in zip(lines, labels))
    assert got == expected  # every bad row under the right reason, no good row lost or flagged
