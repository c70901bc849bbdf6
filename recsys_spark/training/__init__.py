"""Training: ``driver`` (Spark side, refit, export), ``worker`` (per-rank loop), ``checkpoints``, ``spec``.

Deep models train on Horovod ranks; ``train_model`` also dispatches the traditional baselines."""

from recsys_spark.training.driver import model_version, run_train, train_distributed, train_model, vectors_df
from recsys_spark.training.spec import TrainResult, TrainSpec, steps_per_epoch

__all__ = ["TrainResult", "TrainSpec", "model_version", "run_train", "steps_per_epoch", "train_distributed",
           "train_model", "vectors_df"]
