"""Run with the Airflow environment's Python: prints the DAG folder's import errors and structure as JSON."""

import json
import sys

try:
    from airflow.dag_processing.dagbag import DagBag
except ImportError:  # older layout
    from airflow.models.dagbag import DagBag

bag = DagBag(dag_folder=sys.argv[1])
out = {"import_errors": {k: str(v) for k, v in bag.import_errors.items()}, "dags": {}}
for dag_id, dag in bag.dags.items():
    out["dags"][dag_id] = {
        "schedule": str(getattr(dag, "schedule", None) or getattr(dag, "timetable_summary", None)),
        "catchup": dag.catchup,
        "max_active_runs": dag.max_active_runs,
        "doc_md": dag.doc_md,
        "tasks": {
            t.task_id: {
                "type": type(t).__name__,
                "downstream": sorted(t.downstream_task_ids),
                "application": getattr(t, "application", None),
                "application_args": list(getattr(t, "application_args", None) or []),
                "py_files": getattr(t, "py_files", None),
                "properties_file": getattr(t, "properties_file", None),
                "conn_id": getattr(t, "_conn_id", None),
                "env_vars": getattr(t, "env_vars", None),
                "retries": t.retries,
                "retry_exponential_backoff": bool(t.retry_exponential_backoff),
                "max_retry_delay_s": t.max_retry_delay.total_seconds() if t.max_retry_delay else None,
                "execution_timeout_s": t.execution_timeout.total_seconds() if t.execution_timeout else None,
                "mode": getattr(t, "mode", None),
            }
            for t in dag.tasks
        },
    }
print("DAG_STRUCTURE_JSON=" + json.dumps(out))
