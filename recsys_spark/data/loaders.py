"""Loaders that turn public dataset formats into the raw event schema, so the same jobs run on them.

Each loader yields raw event records (the fields of ``schemas.RAW_FIELDS``) and, where the format has
them, item catalog records (``schemas.RAW_ITEM_SCHEMA``) and user records. :func:`write_dataset` writes
them into ``<lake>/raw_events|raw_items|raw_users/ds=<ds>/`` like the synthetic generator does.

Formats:
    ml-100k     ``u.data`` (user, item, rating, unix time; tab-separated), ``u.item`` (latin-1, genre flags),
                ``u.genre``, ``u.user``.
    ml-1m       ``ratings.dat``, ``movies.dat``, ``users.dat`` (``::``-separated, latin-1).
    sequences   one line per user, ``user item item ...`` in time order (S3-Rec/SASRec style), with an
                optional item -> attribute ids JSON. Order becomes timestamps 30 s apart on the run day.
    lightgcn    ``train.txt`` and ``test.txt`` (``user item item ...``, no order). The given split is kept by
                time: train on ds-2 (minus a validation share carved out of it, on ds-1) and test on ds, for
                ``build.split_mode: time_cut`` with one test and one validation day.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from typing import Dict, List, Optional, Tuple

import numpy as np

from recsys_spark import schemas as S
from recsys_spark.config_sections import PrivacyConfig
from recsys_spark.errors import UserError
from recsys_spark.privacy import pseudonym, pseudonym_key, user_rows

FORMATS = ("ml-100k", "ml-1m", "sequences", "lightgcn")


def _need(path: str, what: str) -> str:
    if not os.path.exists(path):
        raise UserError(f"{what} not found at {path!r}: check --path (and the format)")
    return path


def _event(event_id: str, user: str, item: str, event_type: str, ts_ms: int, rating=None) -> Dict:
    return {S.EVENT_ID: event_id, S.USER_ID: user, S.ITEM_ID: item, S.EVENT_TYPE: event_type,
            S.RATING: rating, S.TS: ts_ms, S.SESSION_ID: None}


def _keyed_event_ids(events, key: Optional[bytes]):
    """With a pseudonym key, the user id inside each event id (``<source>-<user>-<n>``) becomes the user's
    pseudonym, so that event ids carry no raw user id into the clean tables; raw_events keep the raw
    ``user_id`` field, which clean_events pseudonymises."""
    if key is None:
        yield from events
        return
    cache: Dict[str, str] = {}
    for event in events:
        user = event[S.USER_ID]
        if user not in cache:
            cache[user] = pseudonym(key, user)
        source, _, rest = event[S.EVENT_ID].partition("-")
        event[S.EVENT_ID] = f"{source}-{cache[user]}-{rest[len(user) + 1:]}"
        yield event


def _day_start_ms(ds: str, days_before: int = 0) -> int:
    day = dt.datetime.fromisoformat(ds).replace(tzinfo=dt.timezone.utc) - dt.timedelta(days=days_before)
    return int(day.timestamp()) * 1000


# ---- MovieLens ------------------------------------------------------------------------------------------
def movielens_100k(folder: str):
    """(events, items, users) of MovieLens-100K."""
    genres = {}
    with open(_need(os.path.join(folder, "u.genre"), "u.genre"), encoding="latin-1") as fh:
        for line in fh:
            if line.strip():
                name, code = line.strip().split("|")
                genres[int(code)] = name

    def events():
        with open(_need(os.path.join(folder, "u.data"), "u.data"), encoding="latin-1") as fh:
            for line in fh:
                user, item, rating, ts = line.split()
                yield _event(f"ml100k-{user}-{item}", user, item, "rating", int(ts) * 1000, int(rating))

    items = []
    with open(_need(os.path.join(folder, "u.item"), "u.item"), encoding="latin-1") as fh:
        for line in fh:
            parts = line.rstrip("\n").split("|")
            if len(parts) < 24:
                continue
            flags = parts[5:24]
            year = parts[2][-4:] if len(parts[2]) >= 4 else None
            items.append({S.ITEM_ID: parts[0], S.TITLE: parts[1],
                          S.CATEGORIES: [genres[k] for k, f in enumerate(flags) if f == "1"],
                          S.TAGS: [f"year_{year}"] if year else []})
    return events(), items, _movielens_users(os.path.join(folder, "u.user"), "|", ("uid", "age", "gender"))


def movielens_1m(folder: str):
    """(events, items, users) of MovieLens-1M."""
    def events():
        with open(_need(os.path.join(folder, "ratings.dat"), "ratings.dat"), encoding="latin-1") as fh:
            for line in fh:
                user, item, rating, ts = line.strip().split("::")
                yield _event(f"ml1m-{user}-{item}", user, item, "rating", int(ts) * 1000, int(rating))

    items = []
    movies = os.path.join(folder, "movies.dat")
    if os.path.exists(movies):
        with open(movies, encoding="latin-1") as fh:
            for line in fh:
                item, title, genre_text = line.rstrip("\n").split("::")
                items.append({S.ITEM_ID: item, S.TITLE: title, S.CATEGORIES: genre_text.split("|"), S.TAGS: []})
    return events(), items, _movielens_users(os.path.join(folder, "users.dat"), "::", ("uid", "gender", "age"))


def _movielens_users(path: str, separator: str, leading: tuple) -> List[Dict]:
    """User records of u.user (id|age|gender|...) or users.dat (id::gender::age::...); [] if absent."""
    users = []
    if os.path.exists(path):
        with open(path, encoding="latin-1") as fh:
            for line in fh:
                fields = dict(zip(leading + ("occupation", "zip"), line.rstrip("\n").split(separator)))
                users.append({S.USER_ID: fields["uid"], "age": int(fields["age"]), "gender": fields["gender"],
                              "occupation": fields["occupation"], "zip": fields["zip"]})
    return users


# ---- sequence files -------------------------------------------------------------------------------------
SEQUENCE_STEP_MS = 30_000


def sequences(path: str, ds: str, attributes_path: Optional[str] = None, event_type: str = "purchase"):
    """(events, items, users) of a ``user item item ...`` file; order becomes time on day ``ds``."""
    _need(path, "sequence file")
    base = _day_start_ms(ds)

    def events():
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) < 2:
                    continue
                user = parts[0]
                for k, item in enumerate(parts[1:]):
                    yield _event(f"seq-{user}-{k}", user, item, event_type, base + k * SEQUENCE_STEP_MS)

    items = []
    if attributes_path:
        with open(_need(attributes_path, "attributes JSON"), encoding="utf-8") as fh:
            attributes = json.load(fh)
        items = [{S.ITEM_ID: str(item), S.TAGS: [f"attr_{a}" for a in attrs]} for item, attrs in attributes.items()]
    return events(), items, []


# ---- LightGCN train/test --------------------------------------------------------------------------------
LIGHTGCN_STEP_MS = 10_000


def _read_adjacency_lines(path: str) -> List[Tuple[str, List[str]]]:
    rows = []
    with open(_need(path, os.path.basename(path)), encoding="utf-8") as fh:
        for line in fh:
            parts = line.split()
            if parts:
                rows.append((parts[0], parts[1:]))
    return rows


def lightgcn(folder: str, ds: str, validation_fraction: float = 0.1, seed: int = 0):
    """(events, items, users) of LightGCN's train.txt/test.txt, keeping their split (see module doc).

    A seeded ``validation_fraction`` of each user's train items (at least one when the user has two or
    more) goes to the validation day, for early stopping; the test items stay exactly as given.
    """
    train = _read_adjacency_lines(os.path.join(folder, "train.txt"))
    test = _read_adjacency_lines(os.path.join(folder, "test.txt"))
    rng = np.random.default_rng(seed)

    def events():
        for user, items in train:
            n_val = 0 if len(items) < 2 else max(1, int(round(validation_fraction * len(items))))
            held = set(rng.choice(len(items), size=n_val, replace=False).tolist()) if n_val else set()
            base_train, base_val = _day_start_ms(ds, 2), _day_start_ms(ds, 1)
            for k, item in enumerate(items):
                base = base_val if k in held else base_train
                yield _event(f"lgcn-{user}-tr{k}", user, item, "click", base + k * LIGHTGCN_STEP_MS)
        for user, items in test:
            for k, item in enumerate(items):
                yield _event(f"lgcn-{user}-te{k}", user, item, "click", _day_start_ms(ds) + k * LIGHTGCN_STEP_MS)

    return events(), [], []


def load(fmt: str, path: str, ds: str, attributes: Optional[str] = None, validation_fraction: float = 0.1):
    if fmt == "ml-100k":
        return movielens_100k(path)
    if fmt == "ml-1m":
        return movielens_1m(path)
    if fmt == "sequences":
        return sequences(path, ds, attributes)
    if fmt == "lightgcn":
        return lightgcn(path, ds, validation_fraction)
    raise UserError(f"unknown dataset format {fmt!r}: use one of {list(FORMATS)}")


def write_dataset(fmt: str, path: str, lake_root: str, ds: str, attributes: Optional[str] = None,
                  validation_fraction: float = 0.1, files: int = 4,
                  privacy: PrivacyConfig = PrivacyConfig()) -> Dict[str, int]:
    """Writes the dataset's raw events (and catalog/users when present) for ``ds``; returns counts.

    Users keep only the attributes ``privacy.keep_user_attributes`` lists, under their pseudonym when
    ``privacy.pseudonymize`` is on (raw_users is not raw input: it is written here).
    """
    from recsys_spark.data.synthetic import write_lines_atomically

    if "://" in lake_root:
        raise UserError("dataset loaders write to a local lake only; load locally, then copy")
    key = pseudonym_key(privacy)
    events, items, users = load(fmt, path, ds, attributes, validation_fraction)
    lines = [json.dumps(e, separators=(",", ":")) for e in _keyed_event_ids(events, key)]
    users = user_rows(users, key, privacy.keep_user_attributes)
    write_lines_atomically(os.path.join(lake_root, S.RAW_EVENTS, f"ds={ds}"), lines, files, "part")
    if items:
        write_lines_atomically(os.path.join(lake_root, S.RAW_ITEMS, f"ds={ds}"),
                                [json.dumps(i, separators=(",", ":")) for i in items], 1, "items")
    if users:
        write_lines_atomically(os.path.join(lake_root, S.RAW_USERS, f"ds={ds}"),
                                [json.dumps(u, separators=(",", ":")) for u in users], 1, "users")
    return {"events": len(lines), "items": len(items), "users": len(users)}
