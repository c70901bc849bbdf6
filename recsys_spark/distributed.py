"""The distributed runtime: Horovod over Gloo, launched on Spark executors with ``horovod.spark.run``.

This is the only module that imports Horovod. Everything distributed is visible here: the launch,
the rank/size, the first-step broadcast, the gradient averaging and the check that every rank ended
with the same weights.
"""

from __future__ import annotations

import hashlib
import sys
from typing import Any, Callable, List, Sequence

from recsys_spark.errors import UserError


def run_on_spark(spark, fn: Callable[..., Any], args: Sequence[Any], num_proc: int) -> List[Any]:
    """Runs ``fn(*args)`` on ``num_proc`` Spark task slots as one Horovod job; returns each rank's result.

    Raises:
        UserError: the cluster has fewer task slots than ``num_proc`` (Horovod would wait forever).
    """
    import horovod.spark

    slots = spark.sparkContext.defaultParallelism
    if slots < num_proc:
        raise UserError(
            f"train.num_proc={num_proc} needs {num_proc} Spark task slots but this session has {slots} "
            f"(master {spark.sparkContext.master}). Lower train.num_proc or give Spark more cores "
            f"(local[{num_proc}], or more executors)."
        )
    return horovod.spark.run(fn, args=tuple(args), num_proc=num_proc, use_gloo=True,
                             stdout=sys.stdout, stderr=sys.stderr, verbose=0)


def init():
    """Initialises Horovod in a worker; returns ``(rank, size)``. One TensorFlow thread pool per rank."""
    import horovod.tensorflow as hvd
    import tensorflow as tf

    hvd.init()
    try:
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass  # already initialised in this process
    return hvd.rank(), hvd.size()


def distributed_tape(tape, sparse_as_dense: bool):
    """Wraps a GradientTape so that ``gradient`` averages over ranks (allreduce)."""
    import horovod.tensorflow as hvd

    return hvd.DistributedGradientTape(tape, sparse_as_dense=sparse_as_dense)


def broadcast_from_rank0(variables) -> None:
    """Makes every rank start from rank 0's variables (model and optimizer slots)."""
    import horovod.tensorflow as hvd

    hvd.broadcast_variables(variables, root_rank=0)


def mean_over_ranks(value: float) -> float:
    import horovod.tensorflow as hvd
    import tensorflow as tf

    return float(hvd.allreduce(tf.constant(value, tf.float64), op=hvd.Average).numpy())


def weights_digest(arrays) -> str:
    """A hash of arrays' exact bytes: equal digests mean bit-identical weights."""
    h = hashlib.sha256()
    for array in arrays:
        h.update(array.tobytes())
    return h.hexdigest()


def value_from_rank0(value: float) -> float:
    """Rank 0's ``value`` on every rank (decisions such as early stopping are taken on rank 0)."""
    import horovod.tensorflow as hvd
    import tensorflow as tf

    return float(hvd.broadcast(tf.constant(value, tf.float64), root_rank=0).numpy())
