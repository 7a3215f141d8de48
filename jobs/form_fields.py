"""Which field of the job authoring form holds which setting: read by the form (to build and read
settings) and by form_problems (to place the validator's problems next to their fields)."""

from jobs.spec.triggers import TIMERS

# Per trigger kind: form field -> key in its block (schedule, or trigger.<kind>).
TRIGGER_FIELDS = {
    "schedule": {"cron_expression": "quartz_cron_expression", "timezone_id": "timezone_id"},
    "periodic": {"periodic_interval": "interval", "periodic_unit": "unit"},
    "file_arrival": {"file_arrival_url": "url", **{timer: timer for timer in TIMERS}},
    "table_update": {"table_names": "table_names", "table_condition": "condition",
                     **{timer: timer for timer in TIMERS}},
    "continuous": {},
}
COMMON_TASK_FIELDS = ("task_key", "description", "depends_on", "run_if", "timeout_seconds", "max_retries",
                      "min_retry_interval_millis", "retry_on_timeout")
# Per task type: form field -> key inside the task-type block (dotted where it is nested).
TYPE_FIELDS = {
    "notebook_task": {"notebook_path": "notebook_path", "notebook_base_parameters": "base_parameters"},
    "spark_python_task": {"python_file": "python_file", "python_parameters": "parameters"},
    "python_wheel_task": {"wheel_package_name": "package_name", "wheel_entry_point": "entry_point",
                          "wheel_parameters": "parameters", "wheel_named_parameters": "named_parameters"},
    "sql_task": {"sql_warehouse_id": "warehouse_id", "sql_file_path": "file.path",
                 "sql_query_text": "query.query_text", "sql_parameters": "parameters"},
    "shell_command_task": {"shell_command": "command", "shell_parameters": "parameters"},
    "condition_task": {"condition_left": "left", "condition_op": "op", "condition_right": "right"},
    "run_job_task": {"run_job_id": "job_id", "run_job_parameters": "job_parameters"},
    "for_each_task": {"for_each_inputs": "inputs", "for_each_concurrency": "concurrency", "for_each_task": "task"},
    "dbt_task": {"dbt_commands": "commands", "dbt_project_directory": "project_directory",
                 "dbt_warehouse_id": "warehouse_id", "dbt_schema": "schema"},
}
SQL_KIND_FIELDS = {"file": "sql_file_path", "query": "sql_query_text"}
