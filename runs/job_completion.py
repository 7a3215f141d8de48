"""Job-completion triggers (reference §1.5): a job's run starts once every job its trigger
monitors has completed with the configured status since the last firing, driven by the
run.finished events of the monitored jobs' runs (the rule: runs/engine/job_completion.py).

- The reaction records a completion on every unpaused trigger that monitors its job; a paused
  trigger records nothing (resuming starts from new completions, as a resumed schedule does not
  fire what it missed). When a combination is complete it starts one run (trigger
  JOB_COMPLETION, trigger_info.job_completion.completed_jobs) and starts over.
- Exactly once per combination: the reaction's effects and its mark commit together; the state
  is written by compare-and-swap on its version after taking the downstream job's admission
  lock (so two upstream jobs ending at once on two nodes both count); the run's trigger_slot is
  the combination's key (its last completion time), so a firing repeated after a crash or a
  state written back finds the run it made. Two triggers of one job firing for the same
  instant make one run, as with schedules.
- A trigger with a sql_condition does not evaluate it inside the reaction's transaction: the
  complete combination waits in pending_fire, handed to a worker on commit (runs/firings.py).
  While an earlier combination is still being evaluated, a new one does not fire (it says so).
"""

import logging
from datetime import timezone as dt_timezone

from django.db.models import F
from django.utils import timezone

from jobs.checks import server_check
from jobs.models import Job
from jobs.permissions import may
from jobs.spec.access import Action
from jobs.spec.settings import Problem
from jobs.spec.triggers import monitored_job_id, trigger_objects
from runs.engine.job_completion import (
    IGNORED,
    Completion,
    CompletionState,
    combination,
    combination_key,
    fired,
    is_ready,
    observe,
)
from runs.models import Run, TriggerDecision, TriggerState
from runs.reactions import reacts_to
from runs.firings import (
    CAS_TRIES,
    decided,
    earliest,
    firing_of,
    handed_out,
    in_evaluation,
    moment,
    send_on_commit,
)
from runs.triggers import advance, handles, start_triggered_run

log = logging.getLogger(__name__)

Kind = TriggerState.Kind
DEFAULT_WORKSPACE_ID = "0"  # this server is one workspace; the id its other answers give


def monitored(config):
    """The monitored job ids of a job_completion config, as strings, in its order."""
    return [str(monitored_job_id(job.get("job_id"))) for job in (config.get("jobs") or [])]


def rfc3339(moment):
    """A protobuf Timestamp as JSON (the SDK's CompletedJob.completion_time)."""
    return moment.astimezone(dt_timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@reacts_to("run.finished", when=lambda event: event.run.run_type != Run.RunType.SUBMIT_RUN,
           alone=True)  # takes the admission locks of the jobs it fires
def record_job_completion(event):
    """A run ended: every unpaused job-completion trigger that monitors its job sees it."""
    run = event.run
    completion = Completion(str(run.job_id), run.id, event.at,
                            event.data.get("result_state") or run.result_state or "",
                            event.data.get("termination_code") or run.termination_code or "")
    # What observe_completion needs to pick them; it reads each again under its job's lock.
    states = TriggerState.objects.filter(kind=Kind.JOB_COMPLETION, paused=False).only("id", "job_id", "position", "config")
    watching = [s for s in states if completion.job_id in monitored(s.config["job_completion"])]
    # Downstream jobs' locks in one order: two reactions never wait on each other in a circle.
    for state in sorted(watching, key=lambda s: (s.job_id, s.position)):
        observe_completion(state, completion, timezone.now())


def observe_completion(state, completion, now):
    """Record `completion` on one trigger and fire it if its combination is complete; returns 1
    if it started a run."""
    config = state.config["job_completion"]
    jobs = monitored(config)
    for _ in range(CAS_TRIES):
        # The job's admission lock first, as a save of the job takes it before its trigger states.
        Job.objects.filter(id=state.job_id).update(admission_seq=F("admission_seq") + 1)
        current = TriggerState.objects.filter(id=state.id, paused=False).select_related("job").first()
        if current is None:
            return 0  # paused or removed meanwhile
        observation = observe(CompletionState.from_dict(current.completions), completion, monitored=jobs,
                              if_status=config.get("if_status"), since=current.enabled_at)
        ready = is_ready(observation.state, jobs)
        if observation.outcome == IGNORED and not ready:
            return 0
        fields = {"completions": (fired(observation.state) if ready else observation.state).as_dict(),
                  "version": F("version") + 1}
        fire = firing(current, observation.state, jobs, now) if ready else None
        gated = bool(fire and current.config.get("sql_condition"))
        busy = gated and in_evaluation(current.pending_fire, now)
        if gated and not busy:  # its worker gets it once this commits
            pending = handed_out(fire, now)
            fields.update(pending_fire=pending, next_check_at=earliest(current.next_check_at,
                                                                       moment(pending["retry_at"])))
        if ready:
            fields["last_fired_at"] = now
        if TriggerState.objects.filter(id=current.id, version=current.version).update(**fields):
            break
    else:
        raise RuntimeError(f"trigger {state.position} of job {state.job_id} kept changing under its reaction")
    if not ready:
        decided(current.job, TriggerDecision.Kind.NOT_TRIGGERED, observation.reason, now, position=current.position)
        return 0
    if busy:
        decided(current.job, TriggerDecision.Kind.SKIPPED, f"{fire['reason']}; not fired: its sql_condition is still "
                f"being evaluated for an earlier firing ({current.pending_fire['reason']})", now,
                position=current.position)
        return 0
    if gated:
        send_on_commit(current.id, pending["claim"])
        return 0
    run, created = start_triggered_run(current, now, fire["reason"], moment(fire["slot"]), by=fire["by"],
                                       trigger=fire["trigger"], trigger_time=now, trigger_details=fire["trigger_details"])
    return int(run is not None and created)


def firing(state, seen, jobs, now):
    """The run a complete combination starts (runs/firings.py firing_of's shape)."""
    completions = combination(seen, jobs)
    workspaces = {str(monitored_job_id(job.get("job_id"))): str(job.get("workspace_id") or DEFAULT_WORKSPACE_ID)
                  for job in state.config["job_completion"].get("jobs") or []}
    completed = [{"job_id": c.job_id, "run_id": str(c.run_id), "workspace_id": workspaces[c.job_id],
                  "completion_time": rfc3339(c.completion_time), "termination_code": c.termination_code}
                 for c in completions]
    runs = ", ".join(f"job {c.job_id} run {c.run_id}" for c in completions)
    return firing_of(f"every monitored job completed: {runs}", combination_key(completions), "a run event",
                     {"trigger": Run.Trigger.JOB_COMPLETION, "trigger_time": now,
                      "trigger_details": {"job_completion": {"completed_jobs": completed}}})


@handles(Kind.JOB_COMPLETION)
def check_job_completion(state, now):
    """Run events move a job-completion trigger; the clock only comes back for a firing waiting on
    its sql_condition (runs/firings.py retry_pending_firing hands it out again after this step)."""
    advance(state, state.next_check_at, next_check_at=None)
    return 0


def monitored_job_states(state):
    """The SDK's JobCompletionTriggerState.monitored_job_states of a trigger, in `jobs` order."""
    config = state.config.get("job_completion") or {}
    seen = CompletionState.from_dict(state.completions)
    ids = monitored(config)
    live = {str(i) for i in Job.objects.filter(id__in=[int(i) for i in ids], kind=Job.Kind.JOB,
                                                deleted_at__isnull=True).values_list("id", flat=True)}
    states = []
    for job, job_id in zip(config.get("jobs") or [], ids):
        entry = {"job_id": job_id, "workspace_id": str(job.get("workspace_id") or DEFAULT_WORKSPACE_ID),
                 "has_seen_completion": job_id in seen.pending, "is_deleted": job_id not in live}
        latest = seen.latest.get(job_id)
        if latest is not None:
            entry.update(last_seen_run_id=str(latest.run_id), last_seen_completion_time=rfc3339(latest.completion_time),
                         last_seen_result=latest.termination_code)
        if job_id in seen.not_matching:
            entry["latest_non_matching_result"] = seen.not_matching[job_id].termination_code
        states.append(entry)
    return states


# --- at save ------------------------------------------------------------------------------------


@server_check(with_job=True)
def monitored_job_problems(settings, job, user):
    """A job-completion trigger monitors jobs that exist, that its saver may see, and not the job
    itself (`job`: the job being saved, None for a new one, which cannot name itself)."""
    # Jobs it already monitors stay allowed: losing sight of one (its deletion, a changed ACL)
    # must not stop other changes, pausing included; the trigger's state shows it is_deleted.
    already = set()
    for _, block in blocks_of(job.settings) if job is not None else []:
        already |= {monitored_job_id(m.get("job_id")) for m in block.get("jobs") or [] if isinstance(m, dict)}
    problems = []
    for path, block in blocks_of(settings):
        for i, entry in enumerate(block.get("jobs") or []):
            target = monitored_job_id(entry.get("job_id")) if isinstance(entry, dict) else None
            if target is None:
                continue
            where = f"{path}.job_completion.jobs[{i}].job_id"
            if job is not None and target == job.pk:
                problems.append(Problem(where, f"job {target} cannot wait for its own completion"))
            elif job is not None and (loop := completion_loop(target, job.pk)):
                problems.append(Problem(where, "the jobs would start each other without end: "
                                               + " -> ".join(f"job {j}" for j in [job.pk, *loop])))
            elif target not in already and not Job.objects.filter(id=target, kind=Job.Kind.JOB,
                                                                  deleted_at__isnull=True).exists():
                problems.append(Problem(where, f"job {target} does not exist"))
            elif user is not None and target not in already and not may(user, target, Action.VIEW):
                problems.append(Problem(where, f"User {user.get_username()} cannot view job {target}, so cannot "
                                               "make a trigger wait for it"))
    return problems


def completion_loop(target, job_id):
    """The chain of job-completion triggers by which `target`'s completion waits on `job_id`'s
    ([target, ..., job_id]), or None. A job waiting for `target` while `target` (through others)
    waits for it would have each one's run start the other's, for ever."""
    waits_for = {}  # job -> the jobs its job-completion triggers monitor
    for waiting, config in TriggerState.objects.filter(kind=Kind.JOB_COMPLETION).values_list("job_id", "config"):
        entries = (config.get("job_completion") or {}).get("jobs") or []
        waits_for.setdefault(waiting, set()).update(
            j for j in (monitored_job_id(e.get("job_id")) for e in entries if isinstance(e, dict)) if j is not None)
    path, seen = {target: None}, [target]
    for current in seen:  # breadth first over who `current` waits for; grows as it goes
        for upstream in sorted(waits_for.get(current, ())):
            if upstream in path:
                continue
            path[upstream] = current
            if upstream == job_id:
                chain = [upstream]
                while path[chain[-1]] is not None:
                    chain.append(path[chain[-1]])
                return chain[::-1]
            seen.append(upstream)
    return None


def blocks_of(settings):
    """(path, job_completion block) of every job-completion trigger in `settings`."""
    return [(path, block["job_completion"]) for path, block in trigger_objects(settings)
            if isinstance(block.get("job_completion"), dict)]
