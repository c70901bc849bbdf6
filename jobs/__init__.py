"""Thin entry points: `python -m jobs.<name>` or `spark-submit jobs/<name>.py`, each taking --ds, --lake, --conf."""
