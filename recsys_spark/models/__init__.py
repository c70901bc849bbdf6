"""Model families behind one contract (:class:`recsys_spark.models.base.Recommender`)."""

from typing import Dict, Type


def registry() -> Dict[str, Type]:
    """Model name -> class; imports TensorFlow, so call it inside training code only."""
    from recsys_spark.models.graph import GCN, LightGCN
    from recsys_spark.models.mf import MatrixFactorization

    return {cls.name: cls for cls in (MatrixFactorization, LightGCN, GCN)}


MODEL_NAMES = ("mf", "lightgcn", "gcn")
