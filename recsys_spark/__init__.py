"""recsys_spark: a nightly recommender pipeline on PySpark, Petastorm, Horovod and TensorFlow."""

__version__ = "0.1.0"
