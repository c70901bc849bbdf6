import json

from recsys_spark import schemas as S
from recsys_spark.config_sections import GenerateConfig
from recsys_spark.data.synthetic import generate_catalog, generate_events, make_world, write_raw

CFG = GenerateConfig(seed=3, n_users=30, n_items=25, n_categories=3, mean_events_per_user=10, history_days=5, files=2)


def test_deterministic_by_seed_and_day():
    a = list(generate_events(CFG, "2026-11-27"))
    assert a == list(generate_events(CFG, "2026-11-27"))
    assert a != list(generate_events(GenerateConfig(**{**CFG.__dict__, "seed": 4}), "2026-11-27"))
    assert [e[S.EVENT_ID] for e in a] != [e[S.EVENT_ID] for e in generate_events(CFG, "2026-11-28")]


def test_events_follow_the_raw_schema():
    events = list(generate_events(CFG, "2026-11-27"))
    assert len(events) >= CFG.n_users * CFG.min_events_per_user
    assert {tuple(sorted(e)) for e in events} == {tuple(sorted(S.RAW_FIELDS))}
    assert {e[S.EVENT_TYPE] for e in events} <= {"view", "click", "add_to_cart", "purchase", "rating"}
    for e in events:
        assert (e[S.RATING] is not None) == (e[S.EVENT_TYPE] == "rating")
        assert isinstance(e[S.TS], int) or e[S.TS][-1] == "Z" or e[S.TS][-6] in "+-"
    assert len({e[S.EVENT_ID] for e in events}) == len(events)


def test_preferences_follow_planted_factors():
    world = make_world(CFG)
    events = list(generate_events(CFG, "2026-11-27"))
    users = [int(e[S.USER_ID][1:]) for e in events]
    items = [int(e[S.ITEM_ID][1:]) for e in events]
    affinity = (world.user_factors[users] * world.item_factors[items]).sum(1)
    random_affinity = (world.user_factors[users] * world.item_factors[::-1][items]).sum(1)
    assert affinity.mean() > random_affinity.mean() + 0.2


def test_write_raw_counts_match_files(tmp_path):
    cfg = GenerateConfig(**{**CFG.__dict__, "duplicate_rate": 0.1, "malformed_rate": 0.05})
    counts = write_raw(cfg, str(tmp_path), "2026-11-27")
    folder = tmp_path / S.RAW_EVENTS / "ds=2026-11-27"
    lines = [l for f in sorted(folder.iterdir()) for l in f.read_text().splitlines()]
    assert len(lines) == counts["lines"] == counts["events"] + counts["exact_duplicates"]  # malformed replace events
    bad = 0
    for line in lines:
        try:
            json.loads(line)
        except ValueError:
            bad += 1
    assert bad == counts["malformed"] > 0
    assert len(lines) - len(set(lines)) == counts["exact_duplicates"] > 0
    assert len(generate_catalog(cfg)) == cfg.n_items == counts["items"]
