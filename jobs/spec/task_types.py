"""Which type a task is: the one rule for the validator, the worker, the task processes' launcher
and the pages (a task has exactly one of these keys). Pure, standard library only."""

EXECUTABLE_TASK_TYPES = (
    "spark_python_task", "python_wheel_task", "shell_command_task", "notebook_task",
    "sql_task", "condition_task", "for_each_task", "run_job_task", "dbt_task",
)
# Databricks task types we recognise (so a task is not "typeless") but cannot run.
UNSUPPORTED_TASK_TYPES = (
    "spark_jar_task", "spark_submit_task", "pipeline_task", "dbt_cloud_task",
    "dbt_platform_task", "dashboard_task", "alert_task", "power_bi_task",
    "clean_rooms_notebook_task", "python_operator_task", "ai_runtime_task",
    "gen_ai_compute_task", "ai_function_task",
)
TASK_TYPES = EXECUTABLE_TASK_TYPES + UNSUPPORTED_TASK_TYPES


def not_supported(kind: str) -> str:
    """What a task of a type this server cannot run says, at start and on the pages."""
    return f"{kind} is not supported by this server"


# sql_task kinds Databricks runs that need its SQL objects (saved queries, alerts, dashboards).
UNSUPPORTED_SQL_KINDS = {"alert": "sql_task.alert", "dashboard": "sql_task.dashboard"}
SAVED_QUERY = "sql_task.query.query_id"


def unsupported_kind(task: dict) -> str | None:
    """What of ``task`` this server cannot run (its type, or a kind of sql_task), or None."""
    kind = task_type_of(task)
    if kind in UNSUPPORTED_TASK_TYPES:
        return kind
    if kind == "sql_task" and isinstance(task[kind], dict):
        block = task[kind]
        for name, shown in UNSUPPORTED_SQL_KINDS.items():
            if name in block:
                return shown
        query = block.get("query")
        if isinstance(query, dict) and "query_text" not in query:
            return SAVED_QUERY
    return None


def unsupported_tasks(settings: dict) -> list[tuple[str, str]]:
    """(task key, what cannot run) of the job's tasks (a for-each's inner task too) this server
    cannot run."""
    found = []
    for task in settings.get("tasks") or []:
        inner = (task.get("for_each_task") or {}).get("task") if isinstance(task, dict) else None
        for candidate in (task, inner):
            kind = unsupported_kind(candidate) if isinstance(candidate, dict) else None
            if kind:
                found.append((str(candidate.get("task_key", "")), kind))
    return found


def task_type_of(task: dict) -> str | None:
    """The task-type key of `task`, or None if it has none (or several)."""
    present = [name for name in TASK_TYPES if name in task]
    return present[0] if len(present) == 1 else None
