"""The NumPy SASRec scorer (nightly evaluation, the score job's executors): each history encoded at the
model's full width L against blocks of similar length cropped to their longest (``SequenceScorer.length_blocks``),
for the user vectors and for ``because``. Random weights (d = --dim, --layers blocks of one head) and
history lengths drawn like ml-100k's (log-normal, most shorter than L); both ways give the same vectors
(max difference printed). The last line reads `cropped blocks: <full / cropped>x faster (user vectors)`.

    .venv/bin/python bench/sequence_scorer.py                          # ml-100k-like: 943 users, L = 200
    .venv/bin/python bench/sequence_scorer.py --users 4000 --max-len 50 --items 12101 --mean-log-length 1.8
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def random_scorer(rng, n_items: int, dim: int, max_len: int, layers: int):
    from recsys_spark.evaluate.sequence_scorer import SequenceScorer

    def r(*shape):
        return rng.normal(0, 0.2, shape).astype(np.float32)

    arrays = {"item_table": r(n_items, dim), "position": r(max_len, dim), "final_gamma": 1 + r(dim),
              "final_beta": r(dim)}
    for block in range(layers):
        p = f"b{block}_"
        for part in "qkv":
            arrays[p + part + "_kernel"], arrays[p + part + "_bias"] = r(dim, 1, dim), r(1, dim)
        arrays[p + "o_kernel"], arrays[p + "o_bias"] = r(1, dim, dim), r(dim)
        for norm in ("norm1", "norm2"):
            arrays[p + norm + "_gamma"], arrays[p + norm + "_beta"] = 1 + r(dim), r(dim)
        arrays[p + "ff1_kernel"], arrays[p + "ff1_bias"] = r(dim, dim), r(dim)
        arrays[p + "ff2_kernel"], arrays[p + "ff2_bias"] = r(dim, dim), r(dim)
    return SequenceScorer(arrays, {"n_layers": layers, "heads": 1, "max_len": max_len})


def best_of(repeats: int, fn):
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - started)
    return min(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=943)
    parser.add_argument("--items", type=int, default=1682)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--max-len", type=int, default=200)
    parser.add_argument("--mean-log-length", type=float, default=4.2, help="lengths ~ 18 + lognormal(this, 0.8)")
    parser.add_argument("--block", type=int, default=512, help="users per call, as the scoring blocks")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from recsys_spark.evaluate.sequence_scorer import _reasons

    rng = np.random.default_rng(0)
    scorer = random_scorer(rng, args.items, args.dim, args.max_len, args.layers)
    lengths = rng.lognormal(args.mean_log_length, 0.8, args.users).astype(int) + 18
    histories = [rng.integers(0, args.items, n) for n in lengths]
    blocks = [histories[start:start + args.block] for start in range(0, args.users, args.block)]
    print(f"{args.users} histories, mean length {np.minimum(lengths, args.max_len).mean():.0f} of L = {args.max_len} "
          f"({np.mean(lengths >= args.max_len):.0%} at L), d = {args.dim}, {args.layers} blocks, {args.items} items")

    full_s, full = best_of(args.repeats, lambda: np.concatenate(
        [scorer.encode(scorer.padded_histories(block))[0] for block in blocks]))
    crop_s, cropped = best_of(args.repeats, lambda: np.concatenate([scorer.user_vectors(block) for block in blocks]))
    print(f"user vectors: full width {full_s:.2f} s, cropped blocks {crop_s:.2f} s "
          f"(max difference {np.abs(full - cropped).max():.1e}, largest value {np.abs(full).max():.1f})")

    items = np.argsort(-(full @ scorer.item_table.T), axis=1)[:, :100]
    item_blocks = [items[start:start + args.block] for start in range(0, args.users, args.block)]
    full_because_s, by_full = best_of(args.repeats, lambda: np.concatenate(
        [_reasons(scorer.padded_histories(block), scorer.position_support(block, top)[1], top, 3)
         for block, top in zip(blocks, item_blocks)]))
    because_s, by_crop = best_of(args.repeats, lambda: np.concatenate(
        [scorer.because_block(block, top) for block, top in zip(blocks, item_blocks)]))
    print(f"because (top 100 items each): full width {full_because_s:.2f} s, cropped blocks {because_s:.2f} s "
          f"({np.mean(by_full != by_crop):.1e} of the reasons differ)")
    print(f"cropped blocks: {full_s / crop_s:.2f}x faster (user vectors)")


if __name__ == "__main__":
    main()
