"""The distributed runtime: Horovod over Gloo, launched on Spark executors with ``horovod.spark.run``.

This is the only module that imports Horovod. Everything distributed is visible here: the launch,
the rank/size, the first-step broadcast, the gradient averaging and the check that every rank ended
with the same weights.
"""

from __future__ import annotations

import hashlib
import sys
import time
from typing import Any, Callable, List, Optional, Sequence

from recsys_spark.errors import RetryableFailure, UserError


def run_on_spark(spark, fn: Callable[..., Any], args: Sequence[Any], num_proc: int, start_timeout_s: int = 600,
                 checkpoint_dir: Optional[str] = None) -> List[Any]:
    """Runs ``fn(*args)`` on ``num_proc`` Spark task slots as one Horovod job; returns each rank's result.

    Raises:
        UserError: the cluster has fewer task slots than ``num_proc`` (Horovod would wait forever).
        RetryableFailure: the ranks were not all running within ``start_timeout_s``, or a rank died (the
            other ranks' Gloo connections break and Horovod ends them); the message says where the
            checkpoints a retry resumes from are.
    """
    import horovod.spark

    slots = spark.sparkContext.defaultParallelism
    if slots < num_proc:
        raise UserError(
            f"train.num_proc={num_proc} needs {num_proc} Spark task slots but this session has {slots} "
            f"(master {spark.sparkContext.master}). Lower train.num_proc or give Spark more cores "
            f"(local[{num_proc}], or more executors)."
        )
    started = time.time()
    try:
        return horovod.spark.run(fn, args=tuple(args), num_proc=num_proc, use_gloo=True, start_timeout=start_timeout_s,
                                 stdout=sys.stdout, stderr=sys.stderr, verbose=0)
    except Exception as exc:  # noqa: BLE001 - every Horovod failure becomes one message
        waited = time.time() - started
        resume = (f" A retry resumes from the last checkpoint in {checkpoint_dir}." if checkpoint_dir else "")
        if "Timed out waiting for" in str(exc):
            raise RetryableFailure(
                f"Horovod could not start {num_proc} ranks within train.start_timeout_s={start_timeout_s} s: "
                f"{str(exc).split('.')[0]}. Check that {num_proc} task slots are free (master "
                f"{spark.sparkContext.master}) and that the executors can reach each other and the driver.") from exc
        raise RetryableFailure(
            f"distributed training failed after {waited:.0f} s: {type(exc).__name__}: {_one_line(exc)} "
            f"(a rank died or lost its connection; its output is above).{resume}") from exc


def _one_line(exc: BaseException) -> str:
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return text[:400] or "no message"


def init():
    """Initialises Horovod in a worker; returns ``(rank, size)``. One TensorFlow thread pool per rank and, on
    GPU workers, the rank's own GPU (``local_rank``)."""
    import horovod.tensorflow as hvd
    import tensorflow as tf

    hvd.init()
    try:
        tf.config.threading.set_inter_op_parallelism_threads(1)
        gpus = tf.config.list_physical_devices("GPU")
        if gpus:  # GPU workers: one GPU per rank on its host, memory taken as needed
            gpu = gpus[hvd.local_rank() % len(gpus)]
            tf.config.experimental.set_memory_growth(gpu, True)
            tf.config.set_visible_devices(gpu, "GPU")
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
