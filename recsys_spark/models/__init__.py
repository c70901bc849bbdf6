"""Model families behind one contract (:class:`recsys_spark.models.base.Recommender`)."""

from typing import Dict, Type


def registry() -> Dict[str, Type]:
    """Model name -> class; imports TensorFlow, so call it inside training code only."""
    from recsys_spark.models.mf import MatrixFactorization

    return {MatrixFactorization.name: MatrixFactorization}
