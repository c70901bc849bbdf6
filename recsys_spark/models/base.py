"""The contract every model implements: a loss for training, and embeddings for scoring.

Every deep model exports ``user_vectors`` [n_users, d'] and ``item_vectors`` [n_items, d'] whose inner
products rank items the same way as the model does; evaluation and batch scoring wrap them in a
:class:`~recsys_spark.evaluate.scorers.DotScorer`, the same contract the traditional baselines satisfy.
"""

from __future__ import annotations

from typing import Dict

import numpy as np
import tensorflow as tf


class Recommender(tf.keras.Model):
    """Base class of all models.

    Subclasses set ``name`` and implement :meth:`compute_loss`, :meth:`user_vectors` and
    :meth:`item_vectors`.
    """

    name = "base"
    needs_graph = False  # True: the constructor takes graph=(rows, cols, weights, shape) of the train graph
    needs_content = False  # True: the constructor takes content=ItemContent of the item_features table

    def __init__(self, n_users: int, n_items: int, **kwargs):
        super().__init__(name=self.name)
        self.n_users = n_users
        self.n_items = n_items

    def compute_loss(self, batch: Dict[str, tf.Tensor], training: bool = True) -> tf.Tensor:
        """Scalar training loss for a batch of ``{column: [B] tensor}``."""
        raise NotImplementedError

    def user_vectors(self, for_test: bool = True) -> np.ndarray:
        """[n_users, d'] float32. ``for_test=False`` asks for the vectors used on validation (models whose
        user vector depends on the history leave the validation items out of it)."""
        raise NotImplementedError

    def item_vectors(self, for_test: bool = True) -> np.ndarray:
        """[n_items, d'] float32, paired with ``user_vectors(for_test)`` (graph models propagate over
        train + validation edges for test, over train edges alone for validation)."""
        raise NotImplementedError
