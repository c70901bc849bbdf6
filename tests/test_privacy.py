"""Keyed pseudonymisation: the Spark HMAC equals the standard library's, no raw user id reaches any file
written by clean_events or a loader, quarantined lines stay recoverable with the key, and a missing or
misplaced key is one clear error."""

import hashlib
import hmac
import json
import os
import re

import pyarrow.parquet as pq
import pytest

from recsys_spark import privacy
from recsys_spark import schemas as S
from recsys_spark.config_sections import CleanConfig, PrivacyConfig
from recsys_spark.data import loaders as L
from recsys_spark.errors import ConfigError
from recsys_spark.etl.clean_events import run_clean_events

from .conftest import REPO

DS = "2026-11-27"
KEY = "k" * 20 + "-test-only-secret"
ON = PrivacyConfig(pseudonymize=True)


@pytest.fixture
def keyed(monkeypatch):
    monkeypatch.setenv(privacy.KEY_ENV, KEY)
    return KEY.encode()


def reference(key: bytes, user: str) -> str:
    return hmac.new(key, user.encode("utf-8"), hashlib.sha256).hexdigest()


def tokens_in_files(root, skip=(S.RAW_EVENTS,)):
    """Every word-like token of every file under ``root`` (Parquet read through its columns, since its pages
    are compressed), by file."""
    found = {}
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if os.path.relpath(os.path.join(folder, d), root).split(os.sep)[0] not in skip]
        for name in names:
            path = os.path.join(folder, name)
            if name.endswith(".parquet"):
                text = json.dumps(pq.read_table(path).to_pylist(), default=repr)
            else:
                text = open(path, "rb").read().decode("utf-8", "replace")
            found[os.path.relpath(path, root)] = set(re.findall(r"[A-Za-z0-9_]+", text))
    return found


def test_the_spark_hmac_is_the_standard_one_and_the_key_stays_out_of_the_plan(spark):
    users = ["u1", "Émilie", "0", "x" * 256, None]
    for key in (KEY.encode(), b"L" * 100):  # a key longer than SHA-256's block is hashed first, as in RFC 2104
        df = privacy.with_secrets(spark.createDataFrame([(u,) for u in users], "user_id string"), key)
        df = privacy.drop_secrets(df.withColumn("p", privacy.pseudonym_column("user_id")))
        got = {r["user_id"]: r["p"] for r in df.collect()}
        assert got == {u: (reference(key, u) if u is not None else None) for u in users}
        assert got["u1"] == privacy.pseudonym(key, "u1")
        plan = df._jdf.queryExecution().toString()
        assert KEY not in plan and privacy._pads(key)[privacy._IPAD].hex() not in plan.lower()


# With a line that is not JSON, cleaning parses the text line by line; without, through the JSON source, and
# quarantine's raw lines of valid JSON are fetched back and encrypted afterwards (etl/raw_lines.py).
@pytest.mark.parametrize("with_a_line_not_json", [True, False])
def test_with_pseudonyms_on_no_raw_user_id_reaches_any_file_and_quarantine_decrypts(spark, lake, tmp_path, keyed,
                                                                                   with_a_line_not_json):
    users = [f"rawuser{n:04d}" for n in range(6)]
    lines = [json.dumps({"event_id": f"e{n}", "user_id": users[n % 6], "item_id": f"i{n % 4}", "event_type": "view",
                         "ts": f"2026-11-27T10:{n:02d}:00Z"}) for n in range(24)]
    bad = [lines[0][:55],                                   # truncated JSON, the raw id inside
           f"{users[1]},i1,view",                           # not JSON at all
           json.dumps({"event_id": "e99", "user_id": users[2], "item_id": "i1", "event_type": "hover",
                       "ts": "2026-11-27T10:00:00Z"})]     # valid JSON, unknown type
    reasons = ["malformed_json", "malformed_json", "unknown_event_type"]
    if not with_a_line_not_json:
        del bad[1], reasons[1]
    assert all(any(u in line for u in users) for line in bad)
    raw = tmp_path / "raw" / "in.jsonl"
    raw.parent.mkdir()
    raw.write_text("\n".join(lines + bad) + "\n")
    cfg = PrivacyConfig(pseudonymize=True, write_id_map=True)
    report = run_clean_events(spark, lake, CleanConfig(), DS, str(raw), cfg)
    assert (report["clean"], report["quarantined"], report["user_ids"]) == (24, len(bad), "pseudonymized")
    assert report["parsed_by"] == ("text_lines (irregular lines: 1)" if with_a_line_not_json else "json_source")

    clean = {r[S.USER_ID] for r in spark.read.parquet(lake.partition_path(S.EVENTS_CLEAN, DS)).collect()}
    assert clean == {reference(keyed, u) for u in users}
    ids = {(r[S.USER_ID], r[S.RAW_USER_ID]) for r in spark.read.parquet(lake.partition_path(S.USER_PSEUDONYMS, DS)).collect()}
    assert ids == {(reference(keyed, u), u) for u in users}
    # The id map is the one place raw ids are kept, on request; every other file holds none of them.
    leaks = {path: found & set(users) for path, found in tokens_in_files(lake.root, skip=(S.USER_PSEUDONYMS,)).items()}
    assert any(path.startswith(S.EVENTS_QUARANTINE) for path in leaks)
    assert {path: hit for path, hit in leaks.items() if hit} == {}
    quarantine = spark.read.parquet(lake.partition_path(S.EVENTS_QUARANTINE, DS))
    aes = privacy.quarantine_key(keyed).hex()
    rows = quarantine.selectExpr(f"cast(aes_decrypt({S.RAW_VALUE_ENCRYPTED}, unhex('{aes}'), 'GCM') as string) AS line",
                                 S.RAW_VALUE, S.REASON).collect()
    assert sorted((r["line"], r[S.REASON]) for r in rows) == sorted(zip(bad, reasons))
    assert {r[S.RAW_VALUE] for r in rows} == {None}


def test_without_the_id_map_setting_no_id_map_is_written(spark, lake, tmp_path, keyed):
    raw = tmp_path / "in.jsonl"
    raw.write_text(json.dumps({"event_id": "e1", "user_id": "rawuser1", "item_id": "i1", "event_type": "view",
                               "ts": "2026-11-27T10:00:00Z"}) + "\n")
    run_clean_events(spark, lake, CleanConfig(), DS, str(raw), ON)
    assert not os.path.exists(lake.table_path(S.USER_PSEUDONYMS))
    assert [r[S.USER_ID] for r in spark.read.parquet(lake.partition_path(S.EVENTS_CLEAN, DS)).collect()] == [
        reference(keyed, "rawuser1")]


def test_a_missing_or_misplaced_key_is_one_clear_error_before_anything_is_written(spark, lake, tmp_path, monkeypatch):
    monkeypatch.delenv(privacy.KEY_ENV, raising=False)
    raw = tmp_path / "in.jsonl"
    raw.write_text("{}\n")
    with pytest.raises(ConfigError, match=r"no key was given: export RECSYS_PSEUDONYM_KEY=.*privacy.key_file"):
        run_clean_events(spark, lake, CleanConfig(), DS, str(raw), ON)
    assert not os.path.exists(lake.table_path(S.EVENTS_CLEAN))
    inside = os.path.join(REPO, "conf", "pseudonym.key")
    with pytest.raises(ConfigError, match="inside the repository"):
        privacy.pseudonym_key(PrivacyConfig(pseudonymize=True, key_file=inside))
    with pytest.raises(ConfigError, match="does not exist"):
        privacy.pseudonym_key(PrivacyConfig(pseudonymize=True, key_file=str(tmp_path / "nope")))
    secret = tmp_path / "secret.key"
    secret.write_text("short\n")
    with pytest.raises(ConfigError, match="5 bytes; use at least 16"):
        privacy.pseudonym_key(PrivacyConfig(pseudonymize=True, key_file=str(secret)))
    secret.write_text(KEY + "\n")
    assert privacy.pseudonym_key(PrivacyConfig(pseudonymize=True, key_file=str(secret))) == KEY.encode()
    monkeypatch.setenv(privacy.KEY_ENV, "e" * 32)  # the environment comes first
    assert privacy.pseudonym_key(PrivacyConfig(pseudonymize=True, key_file=str(secret))) == b"e" * 32
    assert privacy.pseudonym_key(PrivacyConfig()) is None


def test_loaders_keep_only_listed_user_attributes_under_pseudonyms(tmp_path, keyed):
    (tmp_path / "u.data").write_text("196\t10\t4\t881250949\n")
    (tmp_path / "u.genre").write_text("unknown|0\n")
    (tmp_path / "u.item").write_text("10|Film (1995)|01-Jan-1995||http://x|" + "|".join(["0"] * 19) + "\n")
    (tmp_path / "u.user").write_text("196|49|M|writer|55105\n")
    lake = tmp_path / "lake"
    L.write_dataset("ml-100k", str(tmp_path), str(lake), DS, files=1,
                    privacy=PrivacyConfig(pseudonymize=True, keep_user_attributes=["age"]))
    users = [json.loads(line) for line in (lake / S.RAW_USERS / f"ds={DS}" / "users.jsonl").read_text().splitlines()]
    assert users == [{"user_id": reference(keyed, "196"), "age": 49}]
    event = json.loads((lake / S.RAW_EVENTS / f"ds={DS}" / "part.jsonl").read_text())
    assert event["user_id"] == "196"  # raw input keeps the raw id; clean_events pseudonymises it
    assert event["event_id"] == f"ml100k-{reference(keyed, '196')}-10"
    L.write_dataset("ml-100k", str(tmp_path), str(tmp_path / "plain"), DS, files=1)  # off: raw id, no attributes
    plain = (tmp_path / "plain" / S.RAW_USERS / f"ds={DS}" / "users.jsonl").read_text()
    assert json.loads(plain) == {"user_id": "196"}
