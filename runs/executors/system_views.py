"""The system tables as DuckDB views over our own database, attached read-only: no copy, current
to the second. Pure SQL text and DuckDB, no Django: the web process opens them for the query
page and the API (system_tables/), any other process may too.

``system.lakeflow.*`` and ``system.access.*`` in Databricks' shapes (reference §6.2-6.4), with
our ``system.lakeflow.task_usage`` beside them. DuckDB reserves the catalog ``system``, so the
views live in the schemas ``lakeflow`` and ``access`` of the in-memory catalog, and a query's
``system.lakeflow.x`` is rewritten to ``lakeflow.x`` by runs/executors/system_statements.py,
which also refuses anything but a query of these views.

Where we differ from Databricks, on purpose:
- ids (job_id, run_id, ...) are BIGINT, not STRING: ``WHERE job_id = 5`` and ``= '5'`` both work;
- times are TIMESTAMP in UTC (the connection's time zone), durations seconds (DOUBLE);
- runs and task runs are sliced per clock hour as Databricks slices them: a run from 10:30 to
  12:10 has three rows (10:30-11:00, 11:00-12:00, 12:00-12:10), and only the last slice of a
  finished run carries result_state, termination and the durations (so they count once per
  run: count runs ``WHERE result_state IS NOT NULL``). A running run's last slice ends now;
- ``compute`` says where a task ran: {type WAREHOUSE, warehouse_id} for SQL and dbt tasks,
  {type WORKER, cluster_id: the worker's host name} for other process tasks, none for
  control-flow tasks; a run's compute is what its job version's tasks name (no host);
- ``root_task_run_id`` is the run_job_task run that started the run (as source_task_run_id):
  the chain is not followed further up; a task run's ``parent_run_id`` is its job run, also
  for for-each iterations;
- ``trigger`` is a struct of the JSON blocks (schedule, trigger, continuous, triggers).

The filter is inside every view: ``Scope.job_ids`` (None: every job, for admins) names the jobs
the identity may view, as a list of literals in the view's text, so no query can reach another
job's rows; audit rows are an admin's, or else only the identity's own actions.

Time arithmetic is done on epoch microseconds: DuckDB's time-zone aware functions (ICU) cost
about 4 µs a row, which a million task runs would turn into seconds.
"""

import os
from dataclasses import dataclass, field

from runs.engine.states import FINISHED_LIFE_CYCLES

ALIAS = "lakeflow_db"
"""The attached database. Only these views name it: queries cannot (system_statements.py)."""
PASSWORD_SECRET = "lakeflow_db_password"

WORKSPACE_ID = "0"  # as the lineage API's system rows say
ACCOUNT_ID = "0"

# Result states as the system tables spell them (reference §6.2); NULL while running.
RESULT_STATES = {
    "SUCCESS": "SUCCEEDED",
    "SUCCESS_WITH_FAILURES": "SUCCEEDED",
    "FAILED": "FAILED",
    "TIMEDOUT": "TIMED_OUT",
    "CANCELED": "CANCELLED",
    "UPSTREAM_CANCELED": "CANCELLED",
    "UPSTREAM_FAILED": "SKIPPED",
    "MAXIMUM_CONCURRENT_RUNS_REACHED": "SKIPPED",
    "EXCLUDED": "SKIPPED",
    "DISABLED": "SKIPPED",
}

WAREHOUSE_TASKS = ("sql_task", "dbt_task")
CONTROL_FLOW_TASKS = ("condition_task", "for_each_task", "run_job_task")
HOUR_US = 3_600_000_000
MEMORY_LIMIT = "1GB"  # per connection: a runaway query fails with DuckDB's out-of-memory error


@dataclass(frozen=True)
class Scope:
    """What one identity may see: ``job_ids`` None for admins (every job and every audit row),
    else the jobs it may view and, by ``user_id``, its own audit rows."""

    job_ids: frozenset | None
    user_id: int | None = None

    @property
    def admin(self):
        return self.job_ids is None


TABLES = {
    "system.lakeflow.jobs": "One row per saved version of a job (SCD2): the newest row is the job as it is.",
    "system.lakeflow.job_tasks": "One row per task of each saved version of a job (SCD2).",
    "system.lakeflow.job_run_timeline": "Job runs, sliced per clock hour; the last slice carries the result.",
    "system.lakeflow.job_task_run_timeline": "Task runs, every attempt, sliced per clock hour.",
    "system.lakeflow.task_usage": "What each task attempt consumed and cost (ours).",
    "system.access.audit": "The audit log: admins see all of it, others their own actions.",
    "system.access.table_lineage": "One row per table or path a task attempt read (source) or wrote (target).",
    "system.access.column_lineage": "One row per column an attempt computed (target) from another (source).",
}
"""What the query page lists, in order; view_statements makes a view of each."""


def view_name(table: str) -> str:
    """``lakeflow.jobs`` for ``system.lakeflow.jobs``: where the view lives."""
    return table.removeprefix("system.")


def view_statements(scope: Scope, *, dialect: str, currency: str = "USD", alias: str = ALIAS) -> list[str]:
    """CREATE SCHEMA / CREATE VIEW statements for TABLES over the database attached as ``alias``
    (``dialect`` sqlite or postgres: the same tables and columns, other types)."""
    if dialect not in ("sqlite", "postgres"):
        raise ValueError(f"unknown dialect {dialect!r}")
    sql = _Sql(_quoted(alias), dialect, _in_list(scope.job_ids))
    bodies = {  # one per TABLES entry
        "lakeflow.jobs": sql.jobs(),
        "lakeflow.job_tasks": sql.job_tasks(),
        "lakeflow.job_run_timeline": sql.job_run_timeline(),
        "lakeflow.job_task_run_timeline": sql.job_task_run_timeline(),
        "lakeflow.task_usage": sql.task_usage(_literal(currency)),
        "access.audit": sql.audit(scope),
        "access.table_lineage": sql.table_lineage(),
        "access.column_lineage": sql.column_lineage(),
    }
    return (["CREATE SCHEMA IF NOT EXISTS lakeflow", "CREATE SCHEMA IF NOT EXISTS access"]
            + [f"CREATE OR REPLACE VIEW {view_name(table)} AS {bodies[view_name(table)]}" for table in TABLES])


def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def _in_list(job_ids) -> str | None:
    """The SQL list of the visible job ids; None for every job."""
    if job_ids is None:
        return None
    return "(" + ", ".join(str(int(job_id)) for job_id in sorted(job_ids)) + ")" if job_ids else "(NULL)"


def _tuple(values) -> str:
    return "(" + ", ".join(_literal(value) for value in values) + ")"


def _list(values) -> str:
    return "[" + ", ".join(_literal(value) for value in values) + "]"


_FINISHED = _tuple(sorted(FINISHED_LIFE_CYCLES))
_RESULT_CASES = " ".join(f"WHEN {_literal(k)} THEN {_literal(v)}" for k, v in RESULT_STATES.items())
_IDS = f"{_literal(ACCOUNT_ID)} AS account_id, {_literal(WORKSPACE_ID)} AS workspace_id"
_HEALTH_RULES = """'[{"metric": "VARCHAR", "op": "VARCHAR", "value": "BIGINT"}]'"""


class _Sql:
    """The views' SELECTs over the database ``db`` (a quoted alias) for one dialect and scope."""

    def __init__(self, db, dialect, jobs):
        self.db, self.dialect, self.job_list = db, dialect, jobs

    def visible(self, column):
        return "TRUE" if self.job_list is None else f"{column} IN {self.job_list}"

    def ts(self, column):
        """A UTC TIMESTAMP of a stored time: SQLite's are UTC text already (the scanner reads them
        as TIMESTAMP); Postgres' are TIMESTAMPTZ, whose ICU cast costs; their microseconds do not."""
        return column if self.dialect == "sqlite" else f"make_timestamp(epoch_us({column}))"

    @staticmethod
    def seconds(start, end):
        return f"((epoch_us({end}) - epoch_us({start})) / 1e6)"

    @staticmethod
    def result_state(t):
        """The system tables' result_state of a run or task run row: NULL until it finished."""
        return (f"CASE WHEN {t}.life_cycle_state NOT IN {_FINISHED} THEN NULL "
                f"WHEN {t}.life_cycle_state = 'INTERNAL_ERROR' OR {t}.termination_type = 'INTERNAL_ERROR' THEN 'ERROR' "
                f"WHEN {t}.life_cycle_state = 'SKIPPED' THEN 'SKIPPED' "
                f"ELSE CASE {t}.result_state {_RESULT_CASES} ELSE {t}.result_state END END")

    @staticmethod
    def sliced(rows, columns):
        """``rows`` (a subquery with begin_at, end_at and finished) once per clock hour it spans,
        with period_start_time, period_end_time and ``last`` (the final slice of a finished row);
        ``columns`` are the view's other columns, over ``s``. Single-hour rows (most) build no list."""
        return f"""
SELECT {_IDS}, {columns}
FROM (
  SELECT s.*, h.hour,
    CASE WHEN s.first_hour = s.last_hour THEN s.begin_at
         ELSE greatest(s.begin_at, make_timestamp(h.hour * {HOUR_US})) END AS period_start_time,
    CASE WHEN s.first_hour = s.last_hour THEN s.end_at
         ELSE least(s.end_at, make_timestamp((h.hour + 1) * {HOUR_US})) END AS period_end_time,
    s.finished AND h.hour = s.last_hour AS last
  FROM (
    SELECT s.*, epoch_us(s.begin_at) // {HOUR_US} AS first_hour,
      greatest(epoch_us(s.begin_at), epoch_us(s.end_at) - 1) // {HOUR_US} AS last_hour
    FROM ({rows}) s
  ) s, unnest(CASE WHEN s.first_hour = s.last_hour THEN [s.first_hour]
                   ELSE range(s.first_hour, s.last_hour + 1) END) AS h(hour)
) s"""

    def now(self):
        return "CAST(now() AS TIMESTAMP)"  # one value per query; the connection's zone is UTC

    def versions(self):
        """Job versions with their settings as JSON, of the visible jobs (not runs/submit's)."""
        return (f"SELECT v.id, v.number, v.job_id, {self.ts('v.created_at')} AS created_at, "
                f"CAST(v.settings AS JSON) AS s, j.creator_id, j.current_version_id, "
                f"{self.ts('j.created_at')} AS job_created_at, {self.ts('j.deleted_at')} AS deleted_at "
                f"FROM {self.db}.jobs_jobversion v JOIN {self.db}.jobs_job j ON j.id = v.job_id "
                f"WHERE j.kind = 'JOB' AND {self.visible('j.id')}")

    def jobs(self):
        db = self.db
        run_as_name = ("COALESCE(json_extract_string(v.s, '$.run_as.user_name'), "
                       "json_extract_string(v.s, '$.run_as.service_principal_name'))")
        return f"""
SELECT {_IDS},
  v.job_id,
  json_extract_string(v.s, '$.name') AS name,
  json_extract_string(v.s, '$.description') AS description,
  CAST(v.creator_id AS VARCHAR) AS creator_id,
  CAST(COALESCE(json_extract(v.s, '$.tags'), '{{}}') AS MAP(VARCHAR, VARCHAR)) AS tags,
  v.created_at AS change_time,
  CASE WHEN v.id = v.current_version_id THEN v.deleted_at END AS delete_time,
  CAST(COALESCE(run_as.id, owner.user_id, v.creator_id) AS VARCHAR) AS run_as,
  struct_pack(schedule := json_extract(v.s, '$.schedule'), trigger := json_extract(v.s, '$.trigger'),
              continuous := json_extract(v.s, '$.continuous'), triggers := json_extract(v.s, '$.triggers'))
    AS trigger,
  CASE WHEN json_extract(v.s, '$.triggers') IS NOT NULL THEN 'MULTIPLE'
       WHEN json_extract(v.s, '$.schedule') IS NOT NULL THEN 'CRON'
       WHEN json_extract(v.s, '$.continuous') IS NOT NULL THEN 'CONTINUOUS'
       WHEN json_extract(v.s, '$.trigger.periodic') IS NOT NULL THEN 'PERIODIC'
       WHEN json_extract(v.s, '$.trigger.file_arrival') IS NOT NULL THEN 'FILE_ARRIVAL'
       WHEN json_extract(v.s, '$.trigger.table_update') IS NOT NULL
         OR json_extract(v.s, '$.trigger.table') IS NOT NULL THEN 'TABLE'
       WHEN json_extract(v.s, '$.trigger.job_completion') IS NOT NULL THEN 'JOB_COMPLETION'
  END AS trigger_type,
  COALESCE({run_as_name}, owner_user.username, creator.username) AS run_as_user_name,
  creator.username AS creator_user_name,
  COALESCE(json_extract_string(v.s, '$.schedule.pause_status'), json_extract_string(v.s, '$.trigger.pause_status'),
           json_extract_string(v.s, '$.continuous.pause_status')) = 'PAUSED' AS paused,
  CAST(json_extract(v.s, '$.timeout_seconds') AS BIGINT) AS timeout_seconds,
  json_transform(json_extract(v.s, '$.health.rules'), {_HEALTH_RULES}) AS health_rules,
  json_extract(v.s, '$.deployment') AS deployment,
  v.job_created_at AS create_time,
  v.number AS version
FROM ({self.versions()}) v
LEFT JOIN {db}.auth_user creator ON creator.id = v.creator_id
LEFT JOIN {db}.jobs_jobpermission owner ON owner.job_id = v.job_id AND owner.level = 'IS_OWNER'
LEFT JOIN {db}.auth_user owner_user ON owner_user.id = owner.user_id
LEFT JOIN {db}.auth_user run_as ON run_as.username = {run_as_name}"""

    def job_tasks(self):
        return f"""
SELECT {_IDS},
  v.job_id,
  json_extract_string(t.task, '$.task_key') AS task_key,
  COALESCE(list_transform(CAST(json_extract(t.task, '$.depends_on') AS JSON[]),
                          d -> json_extract_string(d, '$.task_key')), []) AS depends_on_keys,
  v.created_at AS change_time,
  CASE WHEN v.id = v.current_version_id THEN v.deleted_at END AS delete_time,
  CAST(json_extract(t.task, '$.timeout_seconds') AS BIGINT) AS timeout_seconds,
  json_transform(json_extract(t.task, '$.health.rules'), {_HEALTH_RULES}) AS health_rules,
  v.number AS version
FROM ({self.versions()}) v, unnest(CAST(json_extract(v.s, '$.tasks') AS JSON[])) AS t(task)"""

    def version_compute(self):
        """(version id, compute): what a version's tasks run on, for its runs' compute column."""
        warehouses, control_flow = _list(WAREHOUSE_TASKS), _list(CONTROL_FLOW_TASKS)
        return f"""
SELECT v.id AS version_id,
  list_distinct(list_transform(CAST(json_extract(v.settings, '$.tasks') AS JSON[]), task ->
    CASE WHEN list_has_any(json_keys(task), {warehouses})
         THEN struct_pack(type := 'WAREHOUSE', cluster_id := NULL::VARCHAR,
                          warehouse_id := COALESCE(json_extract_string(task, '$.sql_task.warehouse_id'),
                                                   json_extract_string(task, '$.dbt_task.warehouse_id')))
         WHEN list_has_any(json_keys(task), {control_flow}) THEN NULL
         ELSE struct_pack(type := 'WORKER', cluster_id := NULL::VARCHAR, warehouse_id := NULL::VARCHAR) END))
    AS compute
FROM {self.db}.jobs_jobversion v"""

    def job_run_timeline(self):
        runs = f"""
SELECT r.id, r.job_id, r.trigger, r.run_type, r.run_name, r.termination_code, r.termination_type,
  r.parent_task_run_id, r.job_parameters, r.job_version_id, r.life_cycle_state, r.result_state,
  {self.ts('r.created_at')} AS begin_at,
  {self.ts('r.started_at')} AS started_at,
  COALESCE({self.ts('r.ended_at')}, {self.now()}) AS end_at,
  r.life_cycle_state IN {_FINISHED} AS finished
FROM {self.db}.runs_run r
WHERE {self.visible('r.job_id')}"""
        body = self.sliced(runs, f"""
  s.job_id, s.id AS run_id, s.period_start_time, s.period_end_time,
  s.trigger AS trigger_type, s.run_type, s.run_name,
  list_filter(list_transform(c.compute, x -> COALESCE(x.cluster_id, x.warehouse_id)), x -> x IS NOT NULL)
    AS compute_ids,
  CASE WHEN s.last THEN {self.result_state('s')} END AS result_state,
  CASE WHEN s.last THEN s.termination_code END AS termination_code,
  map_from_entries(list_transform(CAST(s.job_parameters AS JSON[]),
    p -> struct_pack(k := json_extract_string(p, '$.name'), v := json_extract_string(p, '$.value'))))
    AS job_parameters,
  s.parent_task_run_id AS source_task_run_id,
  s.parent_task_run_id AS root_task_run_id,
  c.compute,
  CASE WHEN s.last THEN s.termination_type END AS termination_type,
  CASE WHEN s.last THEN 0.0::DOUBLE END AS setup_duration_seconds,  -- a run's own: its tasks have theirs
  CASE WHEN s.last THEN {self.seconds('s.begin_at', 'COALESCE(s.started_at, s.end_at)')} END
    AS queue_duration_seconds,
  CASE WHEN s.last THEN {self.seconds('s.begin_at', 's.end_at')} END AS run_duration_seconds,
  CASE WHEN s.last THEN 0.0::DOUBLE END AS cleanup_duration_seconds,
  CASE WHEN s.last THEN {self.seconds('COALESCE(s.started_at, s.end_at)', 's.end_at')} END
    AS execution_duration_seconds""")
        return body + f"\nLEFT JOIN ({self.version_compute()}) c ON c.version_id = s.job_version_id"

    def attempts(self):
        """Task attempts that began, with their run's job; begin_at is when the attempt started
        (or ended, for one that never started: a skipped task)."""
        return f"""
SELECT t.*, r.job_id, r.run_as_id,
  COALESCE({self.ts('t.started_at')}, {self.ts('t.ended_at')}) AS begin_at,
  COALESCE({self.ts('t.ended_at')}, {self.now()}) AS end_at,
  t.life_cycle_state IN {_FINISHED} AS finished
FROM {self.db}.runs_taskrun t
JOIN {self.db}.runs_run r ON r.id = t.run_id
WHERE (t.started_at IS NOT NULL OR t.ended_at IS NOT NULL) AND {self.visible('r.job_id')}"""

    def task_compute(self, t):
        return f"""CASE
    WHEN {t}.task_type IN {_tuple(WAREHOUSE_TASKS)} THEN [struct_pack(type := 'WAREHOUSE', cluster_id := NULL::VARCHAR,
      warehouse_id := COALESCE(json_extract_string(CAST({t}.data_access AS JSON), '$.sql.warehouse_id'),
                               json_extract_string(CAST({t}.sql_output AS JSON), '$.warehouse_id')))]
    WHEN {t}.task_type IN {_tuple(CONTROL_FLOW_TASKS)} OR {t}.worker_host = '' THEN []
    ELSE [struct_pack(type := 'WORKER', cluster_id := {t}.worker_host, warehouse_id := NULL::VARCHAR)] END"""

    def job_task_run_timeline(self):
        return self.sliced(self.attempts(), f"""
  s.job_id, s.id AS run_id, s.run_id AS job_run_id, s.run_id AS parent_run_id,
  s.period_start_time, s.period_end_time, s.task_key,
  list_filter(list_transform({self.task_compute('s')}, x -> COALESCE(x.cluster_id, x.warehouse_id)),
              x -> x IS NOT NULL) AS compute_ids,
  CASE WHEN s.last THEN {self.result_state('s')} END AS result_state,
  CASE WHEN s.last THEN s.termination_code END AS termination_code,
  {self.task_compute('s')} AS compute,
  CASE WHEN s.last THEN s.termination_type END AS termination_type,
  {self.task_parameters('s.resolved_values')} AS task_parameters,
  CASE WHEN s.last THEN COALESCE(s.setup_duration_ms, 0) / 1e3 END AS setup_duration_seconds,
  CASE WHEN s.last THEN COALESCE(s.cleanup_duration_ms, 0) / 1e3 END AS cleanup_duration_seconds,
  CASE WHEN s.last THEN greatest(0.0::DOUBLE, {self.seconds('s.begin_at', 's.end_at')}
                                 - COALESCE(s.setup_duration_ms, 0) / 1e3 - COALESCE(s.cleanup_duration_ms, 0) / 1e3)
    END AS execution_duration_seconds,
  s.attempt_number""")

    @staticmethod
    def task_parameters(resolved_values):
        """The parameters an attempt ran with (its resolved_values, {task type: block}) as a map:
        an object block (notebook base_parameters, sql_task parameters, wheel named_parameters) by
        name, a list block (script parameters) by position."""
        block = (f"COALESCE(json_extract(CAST({resolved_values} AS JSON), '$.*.base_parameters')[1], "
                 f"json_extract(CAST({resolved_values} AS JSON), '$.*.named_parameters')[1], "
                 f"json_extract(CAST({resolved_values} AS JSON), '$.*.parameters')[1])")
        # A one-element list and a lambda: the block is named once, with no correlated subquery
        # (which DuckDB would plan as a join of its own).
        return f"""list_transform([{block}], b -> CASE json_type(b)
      WHEN 'OBJECT' THEN map_from_entries(list_transform(json_keys(b), k -> struct_pack(k := k, v := b ->> k)))
      WHEN 'ARRAY' THEN map_from_entries(list_transform(range(CAST(json_array_length(b) AS BIGINT)),
                                         i -> struct_pack(k := CAST(i AS VARCHAR), v := b ->> CAST(i AS INTEGER))))
    END)[1]"""

    def task_usage(self, currency):
        return f"""
SELECT {_IDS},
  s.job_id, s.run_id, s.id AS task_run_id, s.task_key, s.attempt_number,
  s.cpu_seconds, s.peak_memory_bytes, s.read_bytes, s.written_bytes, s.cost,
  CASE WHEN s.cost IS NOT NULL THEN {currency} END AS currency,
  s.begin_at AS period_start_time, s.end_at AS period_end_time,
  CAST(s.begin_at AS DATE) AS usage_date,
  {self.result_state('s')} AS result_state
FROM ({self.attempts()}) s"""

    def audit(self, scope):
        who = "TRUE" if scope.admin else (f"a.user_id = {int(scope.user_id)}" if scope.user_id is not None else "FALSE")
        return f"""
SELECT {_IDS},
  'V1' AS version,
  {self.ts('a.at')} AS event_time,
  CAST({self.ts('a.at')} AS DATE) AS event_date,
  CAST(a.id AS VARCHAR) AS event_id,
  a.source_ip_address,
  a.user_agent,
  struct_pack(email := a.user_name, subject_name := a.user_name) AS user_identity,
  a.service_name,
  a.action_name,
  CAST(a.id AS VARCHAR) AS request_id,
  CAST(map_from_entries(list_transform(json_keys(CAST(a.request_params AS JSON)),
    k -> struct_pack(k := k, v := CASE json_type(CAST(a.request_params AS JSON) -> k)
                                 WHEN 'VARCHAR' THEN CAST(a.request_params AS JSON) ->> k
                                 ELSE CAST(CAST(a.request_params AS JSON) -> k AS VARCHAR) END))) AS MAP(VARCHAR, VARCHAR))
    AS request_params,
  struct_pack(status_code := CAST(a.status_code AS INTEGER),
              error_message := NULLIF(a.error_message, ''), result := NULL::VARCHAR) AS response,
  'WORKSPACE_LEVEL' AS audit_level,
  a.user_id, a.credential, a.job_id, a.target, a.outcome, a.method, a.path
FROM {self.db}.audit_auditevent a
WHERE {who}"""

    def lineage_runs(self):
        return (f"SELECT r.id, u.username FROM {self.db}.runs_run r "
                f"LEFT JOIN {self.db}.auth_user u ON u.id = r.creator_id")

    def table_lineage(self):
        # One row per edge, as the lineage API's system rows (api/lineage.py): a read is a source
        # with no target, a write a target with no source.
        def side(name, direction):
            return f"""
  CASE WHEN e.direction = '{direction}' AND d.kind = 'TABLE' THEN d.name END AS {name}_table_full_name,
  CASE WHEN e.direction = '{direction}' AND d.kind = 'TABLE' THEN split_part(d.name, '.', 1) END AS {name}_table_catalog,
  CASE WHEN e.direction = '{direction}' AND d.kind = 'TABLE' THEN split_part(d.name, '.', 2) END AS {name}_table_schema,
  CASE WHEN e.direction = '{direction}' AND d.kind = 'TABLE' THEN split_part(d.name, '.', 3) END AS {name}_table_name,
  CASE WHEN e.direction = '{direction}' AND d.kind = 'PATH' THEN d.name END AS {name}_path,
  CASE WHEN e.direction = '{direction}' THEN d.kind END AS {name}_type,"""
        return f"""
SELECT {_IDS},
  'JOB' AS entity_type, e.job_id AS entity_id, e.run_id AS entity_run_id,
  {side('source', 'read')}{side('target', 'write')}
  r.username AS created_by,
  {self.ts('e.at')} AS event_time,
  CAST({self.ts('e.at')} AS DATE) AS event_date,
  CAST(e.id AS VARCHAR) AS record_id,
  e.task_key, e.task_run_id, e.source AS capture, e.row_count
FROM {self.db}.lineage_edge e
JOIN {self.db}.lineage_dataset d ON d.id = e.dataset_id
LEFT JOIN ({self.lineage_runs()}) r ON r.id = e.run_id
WHERE e.job_id IS NULL OR {self.visible('e.job_id')}"""

    def column_lineage(self):
        return f"""
SELECT {_IDS},
  'JOB' AS entity_type, e.job_id AS entity_id, e.run_id AS entity_run_id,
  src.name AS source_table_full_name, e.source_column AS source_column_name, src.kind AS source_type,
  tgt.name AS target_table_full_name, e.target_column AS target_column_name, tgt.kind AS target_type,
  r.username AS created_by,
  {self.ts('e.at')} AS event_time,
  CAST({self.ts('e.at')} AS DATE) AS event_date,
  CAST(e.id AS VARCHAR) AS record_id,
  e.task_run_id
FROM {self.db}.lineage_columnedge e
JOIN {self.db}.lineage_dataset src ON src.id = e.source_id
JOIN {self.db}.lineage_dataset tgt ON tgt.id = e.target_id
LEFT JOIN ({self.lineage_runs()}) r ON r.id = e.run_id
WHERE e.job_id IS NULL OR {self.visible('e.job_id')}"""


# --- the connection ------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """The database to attach: ``dialect`` sqlite (``location`` a file path) or postgres
    (``location`` a libpq connection string without the password, which comes apart)."""

    dialect: str
    location: str
    password: str = field(default="", repr=False)


class SystemTablesUnavailable(Exception):
    """The views cannot be made here (no scanner extension, no database file)."""


def extension_path(dialect: str) -> str:
    """The scanner extension shipped in its wheel (duckdb-extension-sqlite-scanner /
    -postgres-scanner): nothing is downloaded."""
    import importlib.util

    import duckdb

    package = f"duckdb_extension_{dialect}_scanner"
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SystemTablesUnavailable(f"the system tables need the Python package {package.replace('_', '-')}")
    base = list(spec.submodule_search_locations)[0]
    path = os.path.join(base, "extensions", f"v{duckdb.__version__}", f"{dialect}_scanner.duckdb_extension")
    if not os.path.isfile(path):
        raise SystemTablesUnavailable(f"{path} is missing: the {package} wheel does not match DuckDB {duckdb.__version__}")
    return path


def connect(target: Target, scope: Scope, *, currency: str = "USD", threads: int | None = None):
    """An in-memory DuckDB connection with the views, the database attached READ_ONLY, and locked:
    no file access (COPY, read_csv, INSTALL, LOAD, ATTACH of a DuckDB file) and no setting that can
    change. Queries must still pass system_statements.checked: the sqlite scanner's ATTACH ...
    (TYPE sqlite) and sqlite_scan, and the postgres scanner's postgres_query, ignore these settings."""
    import duckdb

    config = {"autoinstall_known_extensions": False, "autoload_known_extensions": False,
              "allow_community_extensions": False,
              "python_enable_replacements": False,  # no Python variable answers for an unknown table name
              # A bound for what one query may hold, and no spilling: an in-memory database's
              # spill files would land in the server's working directory.
              "memory_limit": MEMORY_LIMIT, "temp_directory": ""}
    if threads:
        config["threads"] = threads
    connection = duckdb.connect(":memory:", config=config)
    try:
        connection.execute(f"LOAD {_literal(extension_path(target.dialect))}")
        secret = ""
        if target.password:  # in a secret, not in the connection string that duckdb_databases shows
            connection.execute(f"CREATE SECRET {PASSWORD_SECRET} (TYPE postgres, PASSWORD {_literal(target.password)})")
            secret = f", SECRET {PASSWORD_SECRET}"
        connection.execute(f"ATTACH {_literal(target.location)} AS {_quoted(ALIAS)} "
                           f"(TYPE {target.dialect}{secret}, READ_ONLY)")
        connection.execute("SET TimeZone = 'UTC'")
        for statement in view_statements(scope, dialect=target.dialect, currency=currency):
            connection.execute(statement)
        connection.execute("SET enable_external_access = false")
        connection.execute("SET lock_configuration = true")
    except Exception:
        connection.close()
        raise
    return connection
