"""Model families behind one contract (:class:`recsys_spark.models.base.Recommender`)."""

from typing import Dict, Type


def registry() -> Dict[str, Type]:
    """Model name -> class; imports TensorFlow, so call it inside training code only."""
    from recsys_spark.models.graph import GCN, LightGCN
    from recsys_spark.models.mf import MatrixFactorization
    from recsys_spark.models.sasrec import SASRec
    from recsys_spark.models.two_tower import TwoTower

    return {cls.name: cls for cls in (MatrixFactorization, TwoTower, LightGCN, GCN, SASRec)}


DEEP_MODEL_NAMES = ("mf", "two_tower", "lightgcn", "gcn", "sasrec")
BASELINE_NAMES = ("popularity", "popularity_recent", "item_knn", "content", "als", "ease", "markov")
MODEL_NAMES = DEEP_MODEL_NAMES + BASELINE_NAMES


def scores_new_items(model: str, item_content: bool = False) -> bool:
    """Whether a model gives items without any interaction a score from their content (the two-tower item
    tower, SASRec with ``train.item_content``, the content baseline), so they can be recommended."""
    return model in ("two_tower", "content") or (model == "sasrec" and item_content)


def feed_of(model: str, loss: str = "bpr"):
    """(table, columns) a model trains on; TensorFlow-free so that the driver can ask."""
    from recsys_spark import schemas as S

    if model == "sasrec":
        return S.SEQUENCES, [S.USER_IDX, S.HISTORY]
    if loss == "mse":
        return S.TRAIN, [S.USER_IDX, S.ITEM_IDX, S.RATING]
    return S.TRAIN, [S.USER_IDX, S.ITEM_IDX]
