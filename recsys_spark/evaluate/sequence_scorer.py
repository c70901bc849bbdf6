"""SASRec's encoder in NumPy: a scorer that reads each user's whole history at scoring time.

The trained weights (:func:`arrays_of_sasrec`) are run here without TensorFlow, so Spark executors and
the evaluation score a user from every event up to the day they are scored on (an event after training
moves the list without retraining), and explain a recommendation by the last block's attention.

score(u, i) = encode(last L items of u's history)[last position] . item_table[i], exactly as
:meth:`recsys_spark.models.sasrec.SASRec.encode` computes it (pre-norm blocks, causal attention that
never reads padding, final layer norm).

Support of history item h for item i (``because``): the last block's attention from the last position to
h's position, times what that position's value contributes to i's score:
``sum over heads a[head, p] * ((x_p Wv + bv) Wo) . item_table[i]`` (attention weighted by the value it
carries, not the raw weight alone, so that each recommendation gets its own reasons).
"""

from __future__ import annotations

from typing import Dict, Iterator, Optional, Sequence, Tuple

import numpy as np

from recsys_spark.evaluate.scorers import Scorer
from recsys_spark.models.length_blocks import length_blocks

_PARTS = ("q", "k", "v", "o")  # attention projections: kernels [d, h, k] (o: [h, k, d]) and biases


class SequenceScorer(Scorer):
    """Args:
        arrays: ``item_table`` [n_items, d], ``position`` [L, d], ``final_gamma``/``final_beta`` [d], and per
            block b: ``b{b}_{q,k,v,o}_kernel``/``_bias``, ``b{b}_norm{1,2}_gamma``/``_beta``,
            ``b{b}_ff{1,2}_kernel``/``_bias``.
        params: ``n_layers``, ``heads``, ``max_len``, ``epsilon`` (layer norm).
    """

    kind = "sequence"

    def __init__(self, arrays: Dict[str, np.ndarray], params: Dict):
        self._arrays = {name: np.asarray(value, np.float32) for name, value in arrays.items()}
        self._params = dict(params)
        self.item_table = self._arrays["item_table"]
        self.n_items, self.dim = self.item_table.shape
        self.n_layers, self.heads = int(params["n_layers"]), int(params["heads"])
        self.max_len, self.epsilon = int(params["max_len"]), float(params.get("epsilon", 1e-6))

    def arrays(self):
        return dict(self._arrays)

    def params(self):
        return dict(self._params)

    def padded_histories(self, histories: Sequence[np.ndarray], width: Optional[int] = None) -> np.ndarray:
        """[B, width] int: the last L items of each history, left-padded with -1 (as the ``sequences``
        table); ``width`` (default L) must hold the longest of them."""
        width = self.max_len if width is None else width
        out = np.full((len(histories), width), -1, np.int64)
        for row, items in enumerate(histories):
            items = np.asarray(items, np.int64)[-self.max_len:]
            if len(items):
                out[row, width - len(items):] = items
        return out

    def length_blocks(self, histories: Sequence[np.ndarray], block: int = 128,
                      step: int = 16) -> Iterator[Tuple[np.ndarray, np.ndarray, int]]:
        """Yields (rows, padded [b, W], first position) for ``histories`` in blocks of similar length, each
        cropped to its longest (the last L items; :func:`recsys_spark.models.length_blocks.length_blocks`):
        encoding a block from its first position (:meth:`encode`) gives the full-width result."""
        for rows, width in length_blocks([len(h) for h in histories], self.max_len, block, step):
            yield rows, self.padded_histories([histories[row] for row in rows], width), self.max_len - width

    def encode(self, padded: np.ndarray, first_position: int = 0) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """padded [B, W] -> (last hidden [B, d], last block's attention of the last position [B, heads, W],
        each position's value through the output projection [B, heads, W, d]). The columns are positions
        ``first_position`` to ``first_position + W - 1`` of the model's L (0 and L: the full width)."""
        w = self._arrays
        is_item = padded >= 0
        length = padded.shape[1]
        position = w["position"][first_position:first_position + length]
        x = self.item_table[np.maximum(padded, 0)] * np.float32(self.dim ** 0.5) + position[np.newaxis]
        x = x * is_item[..., np.newaxis]
        causal = np.tril(np.ones((length, length), bool))
        mask = (causal[np.newaxis] & is_item[:, np.newaxis, :]) | np.eye(length, dtype=bool)[np.newaxis]
        for block in range(self.n_layers):
            last = block == self.n_layers - 1
            p = f"b{block}_"
            query_in = _layer_norm(x[:, -1:] if last else x, w[p + "norm1_gamma"], w[p + "norm1_beta"], self.epsilon)
            q = _project(query_in, w[p + "q_kernel"], w[p + "q_bias"])  # [B, h, Lq, k]
            k = _project(x, w[p + "k_kernel"], w[p + "k_bias"])
            v = _project(x, w[p + "v_kernel"], w[p + "v_bias"])
            logits = np.matmul(q, np.swapaxes(k, -1, -2)) / np.float32(np.sqrt(q.shape[-1]))  # [B, h, Lq, L]
            allowed = (mask[:, -1:] if last else mask)[:, np.newaxis]
            logits = np.where(allowed, logits, np.float32(-np.inf))
            attention = np.exp(logits - logits.max(axis=-1, keepdims=True))
            attention /= attention.sum(axis=-1, keepdims=True)
            values_out = np.matmul(v, w[p + "o_kernel"][np.newaxis])  # [B, h, L, d]
            attended = np.matmul(attention, values_out).sum(axis=1) + w[p + "o_bias"]  # [B, Lq, d]
            x = (x[:, -1:] if last else x) + attended
            h = _layer_norm(x, w[p + "norm2_gamma"], w[p + "norm2_beta"], self.epsilon)
            hidden = np.maximum(h @ w[p + "ff1_kernel"] + w[p + "ff1_bias"], 0.0)
            x = x + hidden @ w[p + "ff2_kernel"] + w[p + "ff2_bias"]
            x = x * (is_item[:, -1:] if last else is_item)[..., np.newaxis]
        out = _layer_norm(x[:, -1], w["final_gamma"], w["final_beta"], self.epsilon)
        return out.astype(np.float32), attention[:, :, 0], values_out

    def user_vectors(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        """[B, d]: the last position's hidden state for each history."""
        out = np.zeros((len(histories), self.dim), np.float32)
        for rows, padded, first in self.length_blocks(histories):
            out[rows] = self.encode(padded, first)[0]
        return out

    def scores(self, users, histories):
        return self.user_vectors(histories) @ self.item_table.T

    def scores_into(self, users, histories, out):
        return np.matmul(self.user_vectors(histories), self.item_table.T, out=out)

    def position_support(self, histories: Sequence[np.ndarray], items: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """(padded [B, L], support [B, k, L]) of each history position for each of ``items`` [B, k]."""
        padded = self.padded_histories(histories)
        return padded, self._support(padded, 0, items)

    def _support(self, padded: np.ndarray, first_position: int, items: np.ndarray) -> np.ndarray:
        _, attention, values_out = self.encode(padded, first_position)
        carried = (attention[..., np.newaxis] * values_out).sum(axis=1)  # [B, W, d]: attention-weighted values
        support = np.matmul(self.item_table[np.asarray(items, np.int64)], np.swapaxes(carried, 1, 2))  # [B, k, W]
        return np.where(padded[:, np.newaxis, :] >= 0, support, -np.inf).astype(np.float32)

    def because_block(self, histories: Sequence[np.ndarray], items: np.ndarray, n: int = 3) -> np.ndarray:
        """[B, k, n]: for each user b and each of ``items[b]`` (-1 = no item: all -1), up to ``n`` history
        items with positive support, most supportive first, then -1s (an item met twice counts at its most
        recent position; equal support goes to the more recent position)."""
        items = np.asarray(items, np.int64)
        out = np.full(items.shape + (n,), -1, np.int64)
        for rows, padded, first in self.length_blocks(histories):
            out[rows] = _reasons(padded, self._support(padded, first, np.maximum(items[rows], 0)), items[rows], n)
        return out


def _reasons(padded: np.ndarray, support: np.ndarray, items: np.ndarray, n: int) -> np.ndarray:
    """[B, k, n] history items by ``support`` [B, k, W] of the positions of ``padded`` [B, W]."""
    length = padded.shape[1]
    for row in range(len(padded)):  # earlier occurrences of an item give no reason
        _, newest = np.unique(padded[row, ::-1], return_index=True)
        earlier = np.ones(length, bool)
        earlier[length - 1 - newest] = False
        support[row, :, earlier] = -np.inf
    # the best left, n times, the newest position first (argmax: ties to the first, i.e. the newest)
    newest_first = support[..., ::-1].copy()
    newest_first[np.isnan(newest_first)] = -np.inf
    order = np.empty(support.shape[:2] + (min(n, length),), np.int64)
    top = np.empty(order.shape, np.float32)  # (-inf once a row has no position left)
    for slot in range(order.shape[2]):
        best = np.argmax(newest_first, axis=-1)[..., np.newaxis]
        order[..., slot:slot + 1] = best
        top[..., slot:slot + 1] = np.take_along_axis(newest_first, best, axis=-1)
        np.put_along_axis(newest_first, best, -np.inf, axis=-1)
    order = length - 1 - order
    ids = np.take_along_axis(np.broadcast_to(padded[:, np.newaxis, :], support.shape), order, axis=-1)
    ids = np.where((top > 0) & (items >= 0)[..., np.newaxis], ids, -1)
    if ids.shape[2] < n:
        ids = np.concatenate([ids, np.full(ids.shape[:2] + (n - ids.shape[2],), -1, np.int64)], axis=2)
    return ids


def _project(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """x [B, L, d] through a [d, h, k] kernel and [h, k] bias -> [B, h, L, k]."""
    d, heads, width = kernel.shape
    out = (x @ kernel.reshape(d, heads * width) + bias.reshape(heads * width)).reshape(x.shape[0], x.shape[1],
                                                                                       heads, width)
    return out.transpose(0, 2, 1, 3)


def _layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, epsilon: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    variance = x.var(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + epsilon) * gamma + beta


def arrays_of_sasrec(model) -> Tuple[Dict[str, np.ndarray], Dict]:
    """(arrays, params) of a trained :class:`~recsys_spark.models.sasrec.SASRec` for :class:`SequenceScorer`."""
    arrays = {"item_table": model.item_table()[1:].numpy(),
              "position": model.position_embedding.embeddings.numpy(),
              "final_gamma": model.final_norm.gamma.numpy(), "final_beta": model.final_norm.beta.numpy()}
    for number, block in enumerate(model.blocks):
        p = f"b{number}_"
        attention = block.attention
        for part, layer in zip(_PARTS, (attention._query_dense, attention._key_dense, attention._value_dense,
                                        attention._output_dense)):
            arrays[p + part + "_kernel"], arrays[p + part + "_bias"] = layer.get_weights()
        for name, norm in (("norm1", block.norm1), ("norm2", block.norm2)):
            arrays[p + name + "_gamma"], arrays[p + name + "_beta"] = norm.get_weights()
        for name, dense in (("ff1", block.ff1), ("ff2", block.ff2)):
            arrays[p + name + "_kernel"], arrays[p + name + "_bias"] = dense.get_weights()
    params = {"n_layers": len(model.blocks), "heads": model.blocks[0].attention._num_heads, "max_len": model.max_len,
              "epsilon": float(model.final_norm.epsilon)}
    return {name: np.asarray(value, np.float32) for name, value in arrays.items()}, params
