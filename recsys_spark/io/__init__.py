"""Reading and writing outside Spark: local files of the lake and of model artifacts."""
