"""Deterministic synthetic interaction logs with a known structure.

Users and items live in a latent space: items cluster around category centres, users prefer one or two
categories, and each user's taste drifts along a private direction over the history window. Each event
picks an item with probability ``softmax(u_t . v / temperature + skew * log_popularity)``, so a model
that learns the factors beats popularity by a clear margin while popularity still explains part of the
data. Output is raw JSON lines in the event schema the cleaning job reads, plus an item catalog.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from typing import Dict, Iterator, List

import numpy as np

from recsys_spark import schemas as S
from recsys_spark.config_sections import EVENT_TYPES, GenerateConfig
from recsys_spark.errors import UserError

_ADJECTIVES = ["classic", "bold", "gentle", "urban", "vintage", "bright", "silent", "rapid", "golden",
               "wild", "modern", "cosy", "smart", "tiny", "grand", "fresh"]
_NOUNS = ["lamp", "novel", "jacket", "album", "kettle", "serum", "poster", "board game", "sneaker",
          "backpack", "candle", "headset", "mug", "blanket", "watch", "notebook"]
_TYPE_PROBS = np.array([0.55, 0.22, 0.09, 0.06, 0.08])  # view, click, add_to_cart, purchase, rating
SESSION_GAP_S = 30 * 60
MIN_GAP_S = 5


@dataclass
class SyntheticWorld:
    """The planted factors, kept so that tests can check what the models should recover."""

    user_factors: np.ndarray  # [n_users, d]
    user_drift: np.ndarray  # [n_users, d], added in full at the end of the window
    item_factors: np.ndarray  # [n_items, d]
    item_category: np.ndarray  # [n_items] int
    log_popularity: np.ndarray  # [n_items]
    category_centres: np.ndarray  # [n_categories, d]


def user_id(u: int) -> str:
    return f"u{u:06d}"


def item_id(i: int) -> str:
    return f"i{i:05d}"


def make_world(cfg: GenerateConfig) -> SyntheticWorld:
    rng = np.random.default_rng(cfg.seed)
    d = cfg.latent_dim
    centres = rng.normal(size=(cfg.n_categories, d))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    item_category = rng.integers(0, cfg.n_categories, size=cfg.n_items)
    item_factors = centres[item_category] + 0.45 * rng.normal(size=(cfg.n_items, d))
    first = rng.integers(0, cfg.n_categories, size=cfg.n_users)
    second = rng.integers(0, cfg.n_categories, size=cfg.n_users)
    mix = rng.uniform(0.5, 1.0, size=(cfg.n_users, 1))
    user_factors = mix * centres[first] + (1 - mix) * centres[second] + 0.3 * rng.normal(size=(cfg.n_users, d))
    drift = rng.normal(size=(cfg.n_users, d))
    drift *= cfg.drift_scale / np.linalg.norm(drift, axis=1, keepdims=True)
    ranks = rng.permutation(cfg.n_items) + 1
    log_popularity = -np.log(ranks.astype(float))
    return SyntheticWorld(user_factors, drift, item_factors, item_category, log_popularity, centres)


def _choose_items(rng: np.random.Generator, world: SyntheticWorld, cfg: GenerateConfig,
                  users: np.ndarray, t_frac: np.ndarray) -> np.ndarray:
    """Samples one item per event by inverse CDF, in chunks to bound memory."""
    out = np.empty(len(users), dtype=np.int64)
    chunk = max(1, 4_000_000 // cfg.n_items)
    for start in range(0, len(users), chunk):
        sl = slice(start, start + chunk)
        u_t = world.user_factors[users[sl]] + t_frac[sl, None] * world.user_drift[users[sl]]
        logits = u_t @ world.item_factors.T / cfg.preference_temperature
        logits += cfg.popularity_skew * world.log_popularity
        logits -= logits.max(axis=1, keepdims=True)
        cdf = np.cumsum(np.exp(logits), axis=1)
        draws = rng.uniform(size=len(logits)) * cdf[:, -1]
        out[sl] = np.minimum((cdf < draws[:, None]).sum(axis=1), cfg.n_items - 1)
    return out


def generate_events(cfg: GenerateConfig, ds: str) -> Iterator[Dict[str, object]]:
    """Yields raw event records (dicts) for run date ``ds``, spread over the preceding history window.

    Timestamps are ISO-8601 in UTC ('Z'), ISO-8601 with a +HH:MM offset, or epoch milliseconds, as
    real collectors mix them.
    """
    world = make_world(cfg)
    rng = np.random.default_rng([cfg.seed, int(ds.replace("-", ""))])
    end = dt.datetime.fromisoformat(ds).replace(tzinfo=dt.timezone.utc) + dt.timedelta(days=1)
    window_s = cfg.history_days * 86400
    start_epoch = int(end.timestamp()) - window_s

    per_user = rng.poisson(rng.gamma(2.0, cfg.mean_events_per_user / 2.0, size=cfg.n_users))
    per_user = np.maximum(per_user, cfg.min_events_per_user)
    users = np.repeat(np.arange(cfg.n_users), per_user)
    offsets = rng.integers(0, window_s, size=len(users))
    order = np.lexsort((offsets, users))
    users, offsets = users[order], offsets[order]
    # Keep a user's events at least MIN_GAP_S apart, so that natural events are never near-duplicates.
    position = np.arange(len(users)) - np.repeat(np.cumsum(per_user) - per_user, per_user)
    spare_s = window_s - MIN_GAP_S * int(per_user.max())
    offsets = (offsets * (spare_s / window_s)).astype(np.int64) + MIN_GAP_S * position
    items = _choose_items(rng, world, cfg, users, offsets / window_s)
    types = rng.choice(len(EVENT_TYPES), size=len(users), p=_TYPE_PROBS)
    affinity = np.einsum("ij,ij->i", world.user_factors[users], world.item_factors[items])
    ratings = np.clip(np.rint(3.0 + 1.5 * affinity + rng.normal(scale=0.7, size=len(users))), 1, 5)
    ts_style = rng.choice(3, size=len(users), p=[0.8, 0.1, 0.1])
    zone_hours = rng.integers(-8, 10, size=len(users))

    session_no = 0
    prev_user, prev_offset = -1, -SESSION_GAP_S
    day_tag = ds.replace("-", "")
    for n in range(len(users)):
        u, off = int(users[n]), int(offsets[n])
        if u != prev_user or off - prev_offset > SESSION_GAP_S:
            session_no += 1
        prev_user, prev_offset = u, off
        epoch_s = start_epoch + off
        event_type = EVENT_TYPES[types[n]]
        yield {
            S.EVENT_ID: f"e{day_tag}-{n:09d}",
            S.USER_ID: user_id(u),
            S.ITEM_ID: item_id(int(items[n])),
            S.EVENT_TYPE: event_type,
            S.RATING: int(ratings[n]) if event_type == "rating" else None,
            S.TS: _format_ts(epoch_s, int(ts_style[n]), int(zone_hours[n])),
            S.SESSION_ID: f"s{day_tag}-{session_no:08d}",
        }


def _format_ts(epoch_s: int, style: int, zone_hours: int):
    when = dt.datetime.fromtimestamp(epoch_s, tz=dt.timezone.utc)
    if style == 0:
        return when.strftime("%Y-%m-%dT%H:%M:%SZ")
    if style == 1:
        return when.astimezone(dt.timezone(dt.timedelta(hours=zone_hours))).isoformat()
    return epoch_s * 1000


def generate_catalog(cfg: GenerateConfig) -> List[Dict[str, object]]:
    """The item catalog: id, title, category, tags and price, consistent with the planted factors."""
    world = make_world(cfg)
    rng = np.random.default_rng([cfg.seed, 1])
    # ``new_items`` more items arrive in the catalogue with no event yet (new items scored by content)
    arriving = np.random.default_rng([cfg.seed, 2])
    new_category = arriving.integers(0, cfg.n_categories, size=cfg.new_items)
    new_factors = world.category_centres[new_category] + 0.45 * arriving.normal(size=(cfg.new_items, cfg.latent_dim))
    categories = np.concatenate([world.item_category, new_category])
    factors = np.vstack([world.item_factors, new_factors])
    rows = []
    for i in range(cfg.n_items + cfg.new_items):
        top_dims = np.argsort(-factors[i])[:2]
        rows.append(
            {
                S.ITEM_ID: item_id(i),
                "title": f"{_ADJECTIVES[int(top_dims[0]) % len(_ADJECTIVES)].title()} "
                         f"{_NOUNS[int(categories[i]) % len(_NOUNS)]} {i}",
                "category": f"cat_{int(categories[i]):02d}",
                "tags": [f"tag_{int(t)}" for t in top_dims],
                "price": round(float(rng.lognormal(3.0, 0.6)), 2),
            }
        )
    return rows


CORRUPTION_KINDS = ("malformed_json", "missing_field", "bad_id", "unknown_event_type", "unparseable_ts",
                    "ts_out_of_range", "bad_rating", "duplicate_event_id", "near_duplicate", "bot_user")


def _corrupt(kind: str, record: Dict[str, object], variant: int, ds: str) -> Dict[str, object]:
    """A bad version of ``record`` of the given kind (replaces the record)."""
    bad = dict(record)
    if kind == "missing_field":
        del bad[(S.ITEM_ID, S.USER_ID, S.TS)[variant % 3]]
    elif kind == "bad_id":
        bad[S.USER_ID] = ("", "u" * 300, "u\u0007bell")[variant % 3].encode().decode("unicode_escape")
    elif kind == "unknown_event_type":
        bad[S.EVENT_TYPE] = "hover"
    elif kind == "unparseable_ts":
        bad[S.TS] = ("yesterday", "2026-13-45T99:00:00Z", "2026-11-27T10:00:00")[variant % 3]
    elif kind == "ts_out_of_range":
        future = (dt.date.fromisoformat(ds) + dt.timedelta(days=3)).isoformat()
        bad[S.TS] = ("1999-06-01T00:00:00Z", f"{future}T00:00:00Z")[variant % 2]
    elif kind == "bad_rating":
        bad[S.EVENT_TYPE], bad[S.RATING] = "rating", (11, -1, "five")[variant % 3]
    return bad


def generate_raw_lines(cfg: GenerateConfig, ds: str):
    """Raw JSON lines for ``ds`` and, for each line, its expected cleaning outcome ``(outcome, reason)``.

    Mixed in, as real collectors produce them: exact duplicate lines (``duplicate_rate``), truncated lines
    (``malformed_rate``), and with ``corrupt_rate`` > 0 every kind in :data:`CORRUPTION_KINDS` in equal
    shares, replacing good events (row rules) or added beside them (re-used ids, near-duplicates, bots).
    """
    rng = np.random.default_rng([cfg.seed, int(ds.replace("-", "")), 2])
    lines: List[str] = []
    labels: List[tuple] = []
    n_events = 0

    def emit(record, label):
        lines.append(json.dumps(record, separators=(",", ":")))
        labels.append(label)

    bot_quota = 0
    for n, record in enumerate(generate_events(cfg, ds)):
        n_events += 1
        draw = rng.uniform()
        if draw < cfg.corrupt_rate:
            kind = CORRUPTION_KINDS[n % len(CORRUPTION_KINDS)]
            if kind == "malformed_json":
                line = json.dumps(record, separators=(",", ":"))
                lines.append(line[: len(line) // 2])
                labels.append(("quarantined", kind))
            elif kind == "duplicate_event_id":
                emit(record, ("clean", None))
                later = dict(record, item_id=item_id((int(record[S.ITEM_ID][1:]) + 1) % cfg.n_items),
                             ts=_shift_ts(record[S.TS], 3600))
                emit(later, ("quarantined", kind))
            elif kind == "near_duplicate":
                emit(record, ("clean", None))
                emit(dict(record, event_id=f"{record[S.EVENT_ID]}-again", ts=_shift_ts(record[S.TS], 1)),
                     ("quarantined", kind))
            elif kind == "bot_user":
                emit(record, ("clean", None))
                bot_quota += 1
            else:
                emit(_corrupt(kind, record, n // len(CORRUPTION_KINDS), ds), ("quarantined", kind))
        elif draw < cfg.corrupt_rate + cfg.malformed_rate:
            line = json.dumps(record, separators=(",", ":"))
            lines.append(line[: max(1, len(line) // 2)])
            labels.append(("quarantined", "malformed_json"))
        else:
            emit(record, ("clean", None))
            if draw < cfg.corrupt_rate + cfg.malformed_rate + cfg.duplicate_rate:
                emit(record, ("duplicate", None))
    # Bots: bursts of 100 events in 25 seconds (far above a person's rate), one bot per 100 bot draws.
    bot_start = int((dt.datetime.fromisoformat(ds).replace(tzinfo=dt.timezone.utc)).timestamp()) + 3600
    for b in range(-(-bot_quota // 100)):
        for k in range(100):
            emit({S.EVENT_ID: f"bot{b}-{k}", S.USER_ID: f"bot{b:04d}", S.ITEM_ID: item_id(k % cfg.n_items),
                  S.EVENT_TYPE: "view", S.RATING: None,
                  S.TS: _format_ts(bot_start + 600 * b + k // 4, 0, 0), S.SESSION_ID: f"bot{b}"},
                 ("quarantined", "bot_user"))
    return lines, labels, n_events


def _shift_ts(ts, seconds: int) -> str:
    if isinstance(ts, int):
        epoch_s = ts // 1000
    else:
        epoch_s = int(dt.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp())
    return _format_ts(epoch_s + seconds, 0, 0)


def write_raw(cfg: GenerateConfig, lake_root: str, ds: str) -> Dict[str, object]:
    """Writes ``raw_events/ds=<ds>/part-*.jsonl`` and ``raw_items/ds=<ds>/items.jsonl`` atomically.

    Returns counts of what was written, including the expected cleaning outcome of every line.
    """
    if "://" in lake_root:
        raise UserError("the synthetic generator writes to a local lake only; generate locally, then copy")
    lines, labels, n_events = generate_raw_lines(cfg, ds)
    write_lines_atomically(os.path.join(lake_root, S.RAW_EVENTS, f"ds={ds}"), lines, cfg.files, "part")
    catalog = [json.dumps(r, separators=(",", ":")) for r in generate_catalog(cfg)]
    write_lines_atomically(os.path.join(lake_root, S.RAW_ITEMS, f"ds={ds}"), catalog, 1, "items")
    expected: Dict[str, int] = {}
    for outcome, reason in labels:
        key = reason or outcome
        expected[key] = expected.get(key, 0) + 1
    return {"events": n_events, "lines": len(lines), "items": len(catalog),
            "exact_duplicates": expected.get("duplicate", 0), "malformed": expected.get("malformed_json", 0),
            "expected": expected}


def write_lines_atomically(final_dir: str, lines: List[str], files: int, stem: str) -> None:
    parent = os.path.dirname(final_dir)
    os.makedirs(parent, exist_ok=True)
    staging = os.path.join(parent, f"_staging-{uuid.uuid4().hex[:12]}")
    os.makedirs(staging)
    try:
        per_file = -(-len(lines) // files) if lines else 0
        for k in range(files):
            chunk = lines[k * per_file:(k + 1) * per_file]
            name = f"{stem}.jsonl" if files == 1 else f"{stem}-{k:05d}.jsonl"
            with open(os.path.join(staging, name), "w", encoding="utf-8") as fh:
                fh.write("\n".join(chunk) + ("\n" if chunk else ""))
        if os.path.exists(final_dir):
            old = staging + ".old"
            os.rename(final_dir, old)
            os.rename(staging, final_dir)
            shutil.rmtree(old)
        else:
            os.rename(staging, final_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
