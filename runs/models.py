"""Runs, task attempts, repairs, and the append-only event log.

State columns are a projection of RunEvent rows written in the same transaction
(see runs/dispatch.py); nothing else changes them.
"""

from django.conf import settings as django_settings
from django.db import models
from django.utils import timezone

from jobs.models import Job, JobVersion
from jobs.spec.documents import ReadableJSONDecoder
from runs.engine.states import (
    CancelReason,
    RunLifeCycleState,
    RunResultState,
    TerminationCode,
    TerminationType,
)

LIFE_CYCLE_CHOICES = [(s.value, s.value) for s in RunLifeCycleState]
RESULT_CHOICES = [(s.value, s.value) for s in RunResultState]
CODE_CHOICES = [(s.value, s.value) for s in TerminationCode]
TYPE_CHOICES = [(s.value, s.value) for s in TerminationType]


class Run(models.Model):
    """A job run (run_id). number_in_job equals run_id, as in the Jobs API."""

    class RunType(models.TextChoices):
        JOB_RUN = "JOB_RUN"
        SUBMIT_RUN = "SUBMIT_RUN"
        WORKFLOW_RUN = "WORKFLOW_RUN"

    class Trigger(models.TextChoices):
        ONE_TIME = "ONE_TIME"
        PERIODIC = "PERIODIC"
        RETRY = "RETRY"
        RUN_JOB_TASK = "RUN_JOB_TASK"
        FILE_ARRIVAL = "FILE_ARRIVAL"
        TABLE = "TABLE"
        CONTINUOUS = "CONTINUOUS"
        CONTINUOUS_RESTART = "CONTINUOUS_RESTART"
        JOB_COMPLETION = "JOB_COMPLETION"
        BACKFILL = "BACKFILL"  # ours: a slot of a backfill (the backfills app links run and slot)

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="runs")
    # The version the run started with; a repair moves it to the job's version at repair time.
    job_version = models.ForeignKey(JobVersion, on_delete=models.PROTECT, related_name="runs")
    run_type = models.CharField(max_length=20, choices=RunType.choices, default=RunType.JOB_RUN)
    trigger = models.CharField(max_length=20, choices=Trigger.choices, default=Trigger.ONE_TIME)
    run_name = models.TextField(blank=True, default="")
    creator = models.ForeignKey(django_settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    # Who the run's tasks act as (the job's run_as, else its owner), fixed when the run is made.
    run_as = models.ForeignKey(django_settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="runs_as")

    life_cycle_state = models.CharField(max_length=20, choices=LIFE_CYCLE_CHOICES, default=RunLifeCycleState.QUEUED)
    result_state = models.CharField(max_length=40, choices=RESULT_CHOICES, null=True, blank=True)
    state_message = models.TextField(blank=True, default="")
    termination_code = models.CharField(max_length=40, choices=CODE_CHOICES, null=True, blank=True)
    termination_type = models.CharField(max_length=20, choices=TYPE_CHOICES, null=True, blank=True)
    cancel_reason = models.CharField(
        max_length=10, choices=[(c.value, c.value) for c in CancelReason], null=True, blank=True
    )
    queue_enabled = models.BooleanField(default=True)

    # [{name, default, value}] as the API shows them; `value` is what tasks see.
    job_parameters = models.JSONField(decoder=ReadableJSONDecoder, default=list, blank=True)
    overriding_parameters = models.JSONField(decoder=ReadableJSONDecoder, null=True, blank=True)
    idempotency_token = models.CharField(max_length=64, null=True, blank=True)

    created_at = models.DateTimeField(default=timezone.now)  # the API's start_time: when it was asked for
    started_at = models.DateTimeField(null=True, blank=True)  # admitted past the queue
    ended_at = models.DateTimeField(null=True, blank=True)
    timeout_at = models.DateTimeField(null=True, blank=True)
    trigger_time = models.DateTimeField(null=True, blank=True)
    # Schedule and periodic runs: the slot they were fired for. Unique per job, so a slot makes
    # one run however many clocks try (two nodes during a lease handover, a restart).
    trigger_slot = models.DateTimeField(null=True, blank=True)
    # What fired it: {"file_arrival": {"location"}} or {"table_update": {"updated_tables", "tables"}}.
    trigger_details = models.JSONField(decoder=ReadableJSONDecoder, null=True, blank=True)
    repair_count = models.PositiveIntegerField(default=0)
    # run-now `only`: the task keys this run is limited to (None: every task of the job).
    only_tasks = models.JSONField(decoder=ReadableJSONDecoder, null=True, blank=True)
    # A child run started by a run_job_task: the parent's task run (the API's trigger_info.run_id).
    parent_task_run = models.ForeignKey(
        "TaskRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="child_runs"
    )
    # git_source: the commit every task of the run (and its repairs) checks out, resolved from the
    # branch or tag by the first task that needs it (runs/git_checkouts.py), for the ref named by
    # git_ref (kind:name@url) so that a repair after the job's git_source changed resolves again.
    git_commit = models.CharField(max_length=64, blank=True, default="")
    git_ref = models.TextField(blank=True, default="")
    # Bumped first thing in every transaction that changes this run's tasks: on Postgres the row
    # lock serializes them (no lost wake-up between two finishing tasks); SQLite is serial anyway.
    lock_count = models.BigIntegerField(default=0)
    # What its attempts consumed, summed as each attempt ends (runs/usage.py): the Usage page and
    # the run history add these up instead of every attempt.
    cpu_seconds = models.FloatField(null=True, blank=True)
    cost = models.FloatField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["idempotency_token"],
                condition=models.Q(idempotency_token__isnull=False),
                name="one_run_per_idempotency_token",
            ),
            models.UniqueConstraint(
                fields=["job", "trigger_slot"],
                condition=models.Q(trigger_slot__isnull=False),
                name="one_run_per_schedule_slot",
            ),
        ]
        indexes = [
            models.Index(fields=["job", "-id"], name="run_job_newest"),
            models.Index(fields=["job", "life_cycle_state"], name="run_job_state"),
            # The root cause's "last successful run" of a job that has failed for a long time.
            models.Index(fields=["job", "result_state", "-id"], name="run_job_result_newest"),
            models.Index(fields=["life_cycle_state", "timeout_at"], name="run_state_deadline"),
            # The Usage page's time range, holding all it sums (runs/migrations/0016).
            models.Index(fields=["created_at", "job", "cost", "cpu_seconds", "started_at", "ended_at"],
                         name="run_created_usage"),
        ]

    def __str__(self):
        return f"run {self.id} of job {self.job_id}"


class Repair(models.Model):
    """One repair of a run (repair_id); the original run is the implicit first entry."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="repairs")
    creator = models.ForeignKey(django_settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    rerun_tasks = models.JSONField(decoder=ReadableJSONDecoder, default=list)
    job_parameters = models.JSONField(decoder=ReadableJSONDecoder, null=True, blank=True)
    life_cycle_state = models.CharField(max_length=20, choices=LIFE_CYCLE_CHOICES, default=RunLifeCycleState.RUNNING)
    result_state = models.CharField(max_length=40, choices=RESULT_CHOICES, null=True, blank=True)
    termination_code = models.CharField(max_length=40, choices=CODE_CHOICES, null=True, blank=True)
    termination_type = models.CharField(max_length=20, choices=TYPE_CHOICES, null=True, blank=True)
    state_message = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["run", "id"]

    def __str__(self):
        return f"repair {self.id} of run {self.run_id}"


class TaskRun(models.Model):
    """One attempt of one task in a run (its id is the task run's run_id)."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="task_runs")
    repair = models.ForeignKey(Repair, null=True, blank=True, on_delete=models.CASCADE, related_name="task_runs")
    task_key = models.CharField(max_length=100)
    task_type = models.CharField(max_length=40, blank=True, default="")  # notebook_task, for_each_task, ...
    # For-each iterations: the for-each task's key and the element's index and value. Top-level
    # task runs have for_each_key "" and iteration None.
    for_each_key = models.CharField(max_length=100, blank=True, default="")
    iteration = models.PositiveIntegerField(null=True, blank=True)
    iteration_input = models.JSONField(decoder=ReadableJSONDecoder, null=True, blank=True)
    attempt_number = models.PositiveIntegerField(default=0)
    original_attempt = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # The latest attempt of its task (or iteration) in this run; older and repaired-over ones are False.
    is_current = models.BooleanField(default=True)

    life_cycle_state = models.CharField(max_length=20, choices=LIFE_CYCLE_CHOICES, default=RunLifeCycleState.BLOCKED)
    result_state = models.CharField(max_length=40, choices=RESULT_CHOICES, null=True, blank=True)
    state_message = models.TextField(blank=True, default="")
    termination_code = models.CharField(max_length=40, choices=CODE_CHOICES, null=True, blank=True)
    termination_type = models.CharField(max_length=20, choices=TYPE_CHOICES, null=True, blank=True)
    outcome = models.CharField(max_length=10, null=True, blank=True)

    created_at = models.DateTimeField(default=timezone.now)
    queued_at = models.DateTimeField(null=True, blank=True)  # made PENDING: waiting for a worker
    # When it was handed to the broker; NULL while it waits for a finishing worker of its run to
    # take it instead (runs/transitions.py start_attempts: lazy dispatch).
    dispatched_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    retry_at = models.DateTimeField(null=True, blank=True)  # WAITING_FOR_RETRY until then
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    worker_host = models.CharField(max_length=255, blank=True, default="")
    process_id = models.IntegerField(null=True, blank=True)

    resolved_values = models.JSONField(decoder=ReadableJSONDecoder, null=True, blank=True)
    exit_code = models.IntegerField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    error_trace = models.TextField(blank=True, default="")
    notebook_result = models.JSONField(decoder=ReadableJSONDecoder, null=True, blank=True)
    task_values = models.JSONField(decoder=ReadableJSONDecoder, default=dict, blank=True)
    sql_output = models.JSONField(decoder=ReadableJSONDecoder, null=True, blank=True)  # the query_output block with the preview
    executed_notebook = models.CharField(max_length=1024, blank=True, default="")  # .ipynb with outputs
    log_path = models.CharField(max_length=1024, blank=True, default="")
    setup_duration_ms = models.PositiveIntegerField(null=True, blank=True)  # building its environment (setup.log)
    # What the attempt reported it read and wrote ({"sql": {statements, row_counts, schema, ...},
    # "declared": [...]}): the lineage app turns it into edges in reaction to task.finished.
    data_access = models.JSONField(decoder=ReadableJSONDecoder, null=True, blank=True)
    # What the attempt's process tree consumed, measured by its supervisor (runs/executors/usage.py);
    # NULL for attempts that ran no process (condition, for-each, run-job tasks) or ended before one.
    cpu_seconds = models.FloatField(null=True, blank=True)  # user + system, the whole tree
    peak_memory_bytes = models.BigIntegerField(null=True, blank=True)
    read_bytes = models.BigIntegerField(null=True, blank=True)
    written_bytes = models.BigIntegerField(null=True, blank=True)
    cleanup_duration_ms = models.PositiveIntegerField(null=True, blank=True)  # process end -> results written
    cost = models.FloatField(null=True, blank=True)  # at the prices configured when it ended

    class Meta:
        indexes = [
            models.Index(fields=["run", "task_key"], name="taskrun_run_task"),
            models.Index(fields=["run", "is_current"], name="taskrun_run_current"),
            models.Index(fields=["run", "for_each_key", "is_current"], name="taskrun_iterations"),
            # A for-each's iterations in input order (runs/get's pages, the panel's first chips)
            # without sorting the loop; its columns never change, so only an insert writes it.
            models.Index(fields=["run", "for_each_key", "iteration", "id"], name="taskrun_iteration_order"),
            models.Index(fields=["life_cycle_state", "heartbeat_at"], name="taskrun_state_heartbeat"),
            models.Index(fields=["life_cycle_state", "retry_at"], name="taskrun_state_retry"),
        ]

    def __str__(self):
        return f"{self.task_key} #{self.attempt_number} of run {self.run_id}"


class TableWrite(models.Model):
    """A table a SQL task wrote: what table-update triggers watch. Append-only."""

    table_name = models.CharField(max_length=400)  # <warehouse>.<schema>.<table>, lower case
    task_run = models.ForeignKey(TaskRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["table_name", "id"], name="tablewrite_by_table")]

    def __str__(self):
        return f"{self.table_name} at {self.at:%Y-%m-%d %H:%M:%S}"


class RunEvent(models.Model):
    """Append-only: every state change of a run or task attempt, in order, with its reason.

    Also the outbox of what follows from it: reactions_pending until every reaction registered
    for its type (runs/reactions.py) has run."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="events")
    task_run = models.ForeignKey(TaskRun, null=True, blank=True, on_delete=models.CASCADE, related_name="events")
    type = models.CharField(max_length=40)  # dotted: run.queued, task.running, task.finished, ...
    at = models.DateTimeField(default=timezone.now)
    data = models.JSONField(decoder=ReadableJSONDecoder, default=dict, blank=True)
    # True until its reactions are done; NULL otherwise (a nullable column: adding it to a big
    # event table rewrites no row, on SQLite or Postgres).
    reactions_pending = models.BooleanField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["run", "id"], name="event_run_order"),
            models.Index(fields=["id"], condition=models.Q(reactions_pending=True), name="event_reactions_pending"),
        ]

    def __str__(self):
        return f"{self.type} run {self.run_id}"


class TriggerState(models.Model):
    """What one of a job's triggers has seen and when the clock looks at it next.

    One row per trigger: position 0 for a job's schedule, trigger or continuous setting, i for
    its triggers[i]; rewritten whenever the job is saved and advanced by the cluster's clock and
    by the reactions to run events (runs/triggers.py, runs/job_completion.py). Everything lives
    here, not in a process's memory, so any node can take over.
    """

    class Kind(models.TextChoices):
        SCHEDULE = "schedule"
        PERIODIC = "periodic"
        FILE_ARRIVAL = "file_arrival"
        TABLE_UPDATE = "table_update"
        CONTINUOUS = "continuous"
        JOB_COMPLETION = "job_completion"

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="trigger_states")
    position = models.PositiveSmallIntegerField(default=0)  # 0: schedule/trigger/continuous; i: triggers[i]
    kind = models.CharField(max_length=20, choices=Kind.choices)
    config = models.JSONField(decoder=ReadableJSONDecoder)  # the settings block it was made from, without pause_status
    paused = models.BooleanField(default=False)
    enabled_at = models.DateTimeField()  # when this config was saved or last resumed (periodic anchor)
    next_check_at = models.DateTimeField(null=True, blank=True)  # the clock acts at or after this
    last_slot = models.DateTimeField(null=True, blank=True)  # schedule/periodic: the latest slot fired
    last_fired_at = models.DateTimeField(null=True, blank=True)
    last_run = models.ForeignKey("Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    arrival = models.JSONField(decoder=ReadableJSONDecoder, default=dict, blank=True)  # runs.engine.arrival.ArrivalState
    snapshot = models.JSONField(decoder=ReadableJSONDecoder, null=True, blank=True)  # files seen / Delta versions seen
    updated_tables = models.JSONField(decoder=ReadableJSONDecoder, default=dict, blank=True)  # table -> {version, commit_timestamp}
    seen_write_id = models.BigIntegerField(default=0)  # TableWrite rows up to this id are accounted for
    failures = models.PositiveIntegerField(default=0)  # continuous: failed runs in a row
    last_error = models.TextField(blank=True, default="")  # e.g. the watched directory disappeared
    checked_at = models.DateTimeField(null=True, blank=True)
    # job_completion: the monitored jobs' completions (runs.engine.job_completion.CompletionState).
    completions = models.JSONField(decoder=ReadableJSONDecoder, default=dict, blank=True)
    # sql_condition: what its last evaluation keeps for the next (runs.sql_conditions ConditionResult.state).
    condition_state = models.JSONField(decoder=ReadableJSONDecoder, null=True, blank=True)
    # A firing whose sql_condition could not be evaluated: {reason, retry_at, run's trigger fields}.
    pending_fire = models.JSONField(decoder=ReadableJSONDecoder, null=True, blank=True)
    # Bumped by every write of completions or pending_fire: their compare-and-swap.
    version = models.BigIntegerField(default=0)

    class Meta:
        db_table = "jobs_triggerstate"  # it lived in the jobs app until the clock's side took it
        constraints = [models.UniqueConstraint(fields=["job", "position"], name="one_trigger_state_per_position")]
        indexes = [models.Index(fields=["paused", "next_check_at"], name="trigger_due")]

    def __str__(self):
        return f"{self.kind} trigger {self.position} of job {self.job_id}"


class TriggerDecision(models.Model):
    """Append-only: what one of a job's triggers did and why (a slot fired, skipped after
    downtime, a run refused; a completion recorded, a condition not met or failing; paused,
    resumed), and on which node. The job page lists the latest; jobs/get's trigger history
    reads them."""

    class Kind(models.TextChoices):
        FIRED = "fired"
        SKIPPED = "skipped"
        REFUSED = "refused"  # it fired, and the job took no run (max_concurrent_runs, bad parameters)
        PAUSED = "paused"
        RESUMED = "resumed"
        NOT_TRIGGERED = "not_triggered"  # looked and started nothing: a completion waits for others, a condition unmet
        FAILED = "failed"  # could not decide: its sql_condition failed (tried again later)

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="trigger_decisions")
    position = models.PositiveSmallIntegerField(default=0)  # the trigger's, as TriggerState.position
    at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    slot = models.DateTimeField(null=True, blank=True)
    reason = models.TextField(blank=True, default="")
    run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    node = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["job", "-id"], name="trigger_decision_newest")]

    def __str__(self):
        return f"{self.kind} for job {self.job_id} at {self.at:%Y-%m-%d %H:%M:%S}"


class Reaction(models.Model):
    """One reaction to one event, done (done_at) or failed so far (tries, error): its mark and its
    effects commit together, so it happens once however many processes try."""

    event = models.ForeignKey(RunEvent, on_delete=models.CASCADE, related_name="reactions")
    name = models.CharField(max_length=200)  # module.function of the reaction
    done_at = models.DateTimeField(null=True, blank=True)
    tries = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["event", "name"], name="one_reaction_per_event_and_name")]

    def __str__(self):
        return f"{self.name} for event {self.event_id}"


class ClockLease(models.Model):
    """Which cluster node's clock loop is ticking; taken and renewed by compare-and-swap."""

    name = models.CharField(max_length=40, primary_key=True)
    holder = models.CharField(max_length=200, blank=True, default="")
    expires_at = models.DateTimeField()


class TaskEnvironment(models.Model):
    """A task environment on one host (runs/environments.py): claimed by compare-and-swap so that
    one worker builds it while the others wait, then shared by every task with the same spec."""

    BUILDING, READY, FAILED, REMOVING = "BUILDING", "READY", "FAILED", "REMOVING"
    STATES = [(s, s) for s in (BUILDING, READY, FAILED, REMOVING)]

    key = models.CharField(max_length=64)  # jobs.spec.environments.environment_key_of
    host = models.CharField(max_length=255)  # environments live on each host's disk
    state = models.CharField(max_length=10, choices=STATES)
    builder = models.CharField(max_length=255, blank=True, default="")  # host:pid:nonce of the claim
    heartbeat_at = models.DateTimeField()  # the builder's, while BUILDING or REMOVING
    lines = models.JSONField(default=list)  # what it installs
    error = models.TextField(blank=True, default="")  # FAILED: the installer's message
    build_ms = models.PositiveIntegerField(null=True, blank=True)
    built_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["key", "host"], name="one_environment_per_key_and_host")]

    def __str__(self):
        return f"environment {self.key} on {self.host}: {self.state}"


class GitCheckout(models.Model):
    """A clean tree of one commit of a repository, fetched as one identity, on one host
    (runs/git_checkouts.py): claimed by compare-and-swap so that one worker fetches and builds it
    while the others wait, then shared by every task that runs from that commit as that identity."""

    BUILDING, READY, FAILED = "BUILDING", "READY", "FAILED"
    STATES = [(s, s) for s in (BUILDING, READY, FAILED)]

    key = models.CharField(max_length=128)  # <cache key of (URL, identity)>-<commit>
    host = models.CharField(max_length=255)  # checkouts live on each host's disk
    git_url = models.TextField()
    identity = models.CharField(max_length=64)  # whose credential fetched it: "user:<id>" or "anonymous"
    commit = models.CharField(max_length=64)
    state = models.CharField(max_length=10, choices=STATES)
    builder = models.CharField(max_length=255, blank=True, default="")  # host:pid:nonce of the claim
    heartbeat_at = models.DateTimeField()  # the builder's, while BUILDING
    error = models.TextField(blank=True, default="")  # FAILED: git's message
    built_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["key", "host"], name="one_git_checkout_per_key_and_host")]

    def __str__(self):
        return f"checkout {self.key} on {self.host}: {self.state}"
