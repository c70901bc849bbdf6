"""Traditional baselines behind the same scorer contract as the deep models: one module per method, one
registry line each. Every baseline fits in the driver (ALS in Spark MLlib) on the train history."""

from __future__ import annotations

import itertools
from typing import Callable, Dict, List, NamedTuple


class Baseline(NamedTuple):
    fit: Callable
    grid: Callable  # PipelineConfig -> {param: [values]}


def _grid(**axes) -> List[Dict]:
    names = sorted(axes)
    return [dict(zip(names, values)) for values in itertools.product(*(axes[n] for n in names))]


def registry() -> Dict[str, Baseline]:
    from recsys_spark.baselines import als, content, ease, item_knn, markov, popularity

    return {
        "popularity": Baseline(popularity.fit, lambda cfg: {}),
        "popularity_recent": Baseline(popularity.fit_recent, lambda cfg: {"recent_days": cfg.popularity.recent_days}),
        "item_knn": Baseline(item_knn.fit, lambda cfg: {"k": cfg.item_knn.k, "shrink": cfg.item_knn.shrink}),
        "content": Baseline(content.fit, lambda cfg: {}),
        "als": Baseline(als.fit, lambda cfg: {"rank": cfg.als.rank, "reg": cfg.als.reg, "alpha": cfg.als.alpha}),
        "ease": Baseline(ease.fit, lambda cfg: {"l2": cfg.ease.l2}),
        "markov": Baseline(markov.fit, lambda cfg: {"last_n": cfg.markov.last_n, "decay": cfg.markov.decay,
                                                    "normalize": cfg.markov.normalize}),
    }


def grid_of(name: str, cfg) -> List[Dict]:
    return _grid(**registry()[name].grid(cfg))
