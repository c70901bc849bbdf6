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
        "tasks": {
            t.task_id: {
                "type": type(t).__name__,
                "downstream": sorted(t.downstream_task_ids),
                "application": t.application,
                "application_args": list(t.application_args),
                "conn_id": t._conn_id,
                "env_vars": t.env_vars,
                "retries": t.retries,
            }
            for t in dag.tasks
        },
    }
print("DAG_STRUCTURE_JSON=" + json.dumps(out))
