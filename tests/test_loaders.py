"""Loaders on small excerpts in each format, written by the tests themselves."""

import json

import pytest

from recsys_spark import schemas as S
from recsys_spark.data import loaders as L
from recsys_spark.errors import UserError

DS = "2026-11-27"


def test_movielens_100k(tmp_path):
    (tmp_path / "u.data").write_text("1\t10\t4\t881250949\n2\t10\t5\t881250950\n")
    (tmp_path / "u.genre").write_text("unknown|0\nAction|1\nComedy|2\n\n")
    flags = ["0"] * 19
    flags[1] = flags[2] = "1"
    (tmp_path / "u.item").write_bytes(("10|Caf\xe9 Story (1995)|01-Jan-1995||http://x|" + "|".join(flags) + "\n").encode("latin-1"))
    (tmp_path / "u.user").write_text("1|24|M|technician|85711\n")
    events, items, users = L.movielens_100k(str(tmp_path))
    assert list(events) == [
        {"event_id": "ml100k-1-10", "user_id": "1", "item_id": "10", "event_type": "rating", "rating": 4,
         "ts": 881250949000, "session_id": None},
        {"event_id": "ml100k-2-10", "user_id": "2", "item_id": "10", "event_type": "rating", "rating": 5,
         "ts": 881250950000, "session_id": None},
    ]
    assert items == [{"item_id": "10", "title": "Caf\xe9 Story (1995)", "categories": ["Action", "Comedy"],
                      "tags": ["year_1995"]}]
    assert users == [{"user_id": "1", "age": 24, "gender": "M", "occupation": "technician", "zip": "85711"}]


def test_movielens_1m(tmp_path):
    (tmp_path / "ratings.dat").write_text("1::1193::5::978300760\n")
    (tmp_path / "movies.dat").write_text("1193::One Flew (1975)::Drama|Comedy\n")
    events, items, _ = L.movielens_1m(str(tmp_path))
    assert [(e["user_id"], e["item_id"], e["rating"], e["ts"]) for e in events] == [("1", "1193", 5, 978300760000)]
    assert items[0]["categories"] == ["Drama", "Comedy"]


def test_sequences_keep_order_as_time(tmp_path):
    (tmp_path / "seq.txt").write_text("1 5 6 5\n2 7\n")
    (tmp_path / "attr.json").write_text(json.dumps({"5": [1, 2], "7": []}))
    events, items, _ = L.sequences(str(tmp_path / "seq.txt"), DS, str(tmp_path / "attr.json"))
    events = list(events)
    assert [(e["user_id"], e["item_id"]) for e in events] == [("1", "5"), ("1", "6"), ("1", "5"), ("2", "7")]
    assert [e["ts"] for e in events][:3] == [1795737600000, 1795737630000, 1795737660000]
    assert items == [{"item_id": "5", "tags": ["attr_1", "attr_2"]}, {"item_id": "7", "tags": []}]


def test_lightgcn_keeps_the_given_split_in_time(tmp_path):
    (tmp_path / "train.txt").write_text("0 1 2 3 4 5 6 7 8 9 10\n1 4\n")
    (tmp_path / "test.txt").write_text("0 11 12\n1 5\n")
    events, _, _ = L.lightgcn(str(tmp_path), DS, validation_fraction=0.2, seed=1)
    by_day = {}
    for e in events:
        day = (e["ts"] - L._day_start_ms(DS, 2)) // 86_400_000
        by_day.setdefault(int(day), []).append((e["user_id"], e["item_id"]))
    assert sorted(by_day[2]) == [("0", "11"), ("0", "12"), ("1", "5")]   # test: exactly as given, on ds
    assert len(by_day[1]) == 2 and all(u == "0" for u, _ in by_day[1])  # 20 % of user 0's 10 items
    assert len(by_day[0]) == 9 and ("1", "4") in by_day[0]              # a single train item stays train


def test_write_dataset_and_errors(tmp_path):
    (tmp_path / "seq.txt").write_text("1 5 6\n")
    counts = L.write_dataset("sequences", str(tmp_path / "seq.txt"), str(tmp_path / "lake"), DS, files=1)
    assert counts == {"events": 2, "items": 0, "users": 0}
    lines = (tmp_path / "lake" / S.RAW_EVENTS / f"ds={DS}" / "part.jsonl").read_text().splitlines()
    assert [json.loads(l)["item_id"] for l in lines] == ["5", "6"]
    with pytest.raises(UserError, match="u.genre not found"):
        L.movielens_100k(str(tmp_path))
    with pytest.raises(UserError, match="unknown dataset format"):
        L.load("netflix", str(tmp_path), DS)
