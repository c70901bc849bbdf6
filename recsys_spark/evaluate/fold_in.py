"""Fold-in: fresh user vectors for embedding models (MF, two-tower, graph models, ALS) without retraining.

A user's history at scoring time is what the model was trained on (the first ``trained_len[u]`` items, in
time order) followed by the events since. The user vector is refitted to those new events, staying close
to the trained one:

    u' = argmin_u  sum_{i new} (t_u - u . v_i)^2 + lambda ||u - u_0||^2
       = (V_new^T V_new + lambda I)^{-1} (t_u V_new^T 1 + lambda u_0)

where ``t_u`` is the mean score the trained vector gives the user's trained items (new items should score
as the user's known items do) and ``lambda = l2 * mean ||v_i||^2`` (scale-free). A small ``l2`` (the
default 0.01, chosen on validation) moves the vector just enough that the new items score as the known
ones, and leaves it unchanged in every direction the new items do not span. A user with no new event
keeps ``u_0`` exactly.
"""

from __future__ import annotations

import numpy as np

from recsys_spark.evaluate.scorer_views import View
from recsys_spark.evaluate.scorers import DotScorer, Scorer


class FoldInScorer(View):
    """A :class:`DotScorer` whose user vectors take in the events after ``trained_len`` [n_users]."""

    kind = "fold_in"
    needs_trained_user = True

    def __init__(self, inner: DotScorer, trained_len: np.ndarray, l2: float = 0.01):
        super().__init__(inner, inner.n_items)
        self.trained_len = np.asarray(trained_len, np.int64)
        items = inner.item_matrix
        self.l2 = float(l2) * float(np.mean(np.sum(items * items, axis=1))) if len(items) else float(l2)

    def user_vectors(self, users: np.ndarray, histories) -> np.ndarray:
        users = np.asarray(users, np.int64)
        dim = self.inner.item_matrix.shape[1]
        vectors = np.zeros((len(users), dim), np.float32)
        known = users < self.inner.user_matrix.shape[0]
        vectors[known] = self.inner.user_matrix[users[known]]
        trained = np.zeros(len(users), np.int64)
        in_range = users < len(self.trained_len)
        trained[in_range] = self.trained_len[users[in_range]]
        items = self.inner.item_matrix
        for row, history in enumerate(histories):
            history = np.asarray(history, np.int64)
            new = history[trained[row]:]
            if len(new) == 0 or trained[row] == 0:
                continue
            u0 = vectors[row].astype(np.float64)
            target = float(np.mean(items[history[:trained[row]]] @ u0))
            v_new = items[new].astype(np.float64)
            system = v_new.T @ v_new + self.l2 * np.eye(dim)
            vectors[row] = np.linalg.solve(system, target * v_new.sum(axis=0) + self.l2 * u0)
        return vectors

    def scores(self, users, histories):
        return self.user_vectors(users, histories) @ self.inner.item_matrix.T

    def scores_into(self, users, histories, out):
        return np.matmul(self.user_vectors(users, histories), self.inner.item_matrix.T, out=out)



def with_fold_in(scorer: Scorer, trained_len: np.ndarray, l2: float) -> Scorer:
    """``scorer`` with fold-in when it is an embedding model's (``dot``); any other scorer reads the whole
    history already (item-item, content, sequence) and is returned as it is."""
    if isinstance(scorer, DotScorer) and l2 > 0:
        return FoldInScorer(scorer, trained_len, l2)
    return scorer
