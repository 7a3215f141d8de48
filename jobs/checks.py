"""Save-time checks that need the server's state: the jobs a run_job_task starts (they exist,
and no job ends up running itself), the SQL warehouses tasks name (they are configured) and a
local git_source repository (in LAKEFLOW_GIT_LOCAL_ROOTS; the worker checks it again at fetch)."""

import os

from django.conf import settings as django_settings

from jobs.models import Job
from jobs.permissions import caller_of, may, run_as_user
from jobs.spec.access import Action, run_as_refusal
from jobs.spec.git_source import local_repository_path, local_repository_refusal
from jobs.spec.settings import Problem, SettingsInvalid
from jobs.spec.triggers import trigger_objects
from warehouses.catalog import warehouse_ids


def _tasks_with_paths(settings):
    """(path, task) for every task, including the task inside a for-each."""
    for i, task in enumerate(settings.get("tasks") or []):
        yield f"tasks[{i}]", task
        nested = (task.get("for_each_task") or {}).get("task")
        if isinstance(nested, dict):
            yield f"tasks[{i}].for_each_task.task", nested


def run_job_targets(settings):
    return {(task.get("run_job_task") or {}).get("job_id") for _, task in _tasks_with_paths(settings)} - {None}


def _cycle_back_to(job_id, start_id):
    """The chain of job ids from start_id that runs job_id again, or None."""
    seen, stack = set(), [(start_id, [start_id])]
    while stack:
        current, chain = stack.pop()
        if current == job_id:
            return chain
        if current in seen:
            continue
        seen.add(current)
        job = Job.objects.filter(id=current, deleted_at__isnull=True).select_related("current_version").first()
        if job is not None and job.current_version_id:
            stack.extend((target, chain + [target]) for target in run_job_targets(job.settings))
    return None


def check_settings_against_server(settings, job=None, user=None):
    """Raise SettingsInvalid listing every problem; `job` is the job being saved (None: a new one),
    `user` who saves it (None: the server itself, e.g. the demo job)."""
    job_id = job.pk if job is not None else None
    problems = run_as_problems(settings, user, job.settings if job_id is not None else {})
    warehouses = warehouse_ids()  # configured and created
    # A target the job already runs stays allowed: losing CAN_MANAGE_RUN on it later must not
    # stop its owner from saving other changes.
    already_run = run_job_targets(job.settings) if job_id is not None else set()
    for path, task in _tasks_with_paths(settings):
        target = (task.get("run_job_task") or {}).get("job_id")
        if isinstance(target, int):
            where = f"{path}.run_job_task.job_id"
            if not Job.objects.filter(id=target, kind=Job.Kind.JOB, deleted_at__isnull=True).exists():
                problems.append(Problem(where, f"job {target} does not exist"))
            elif user is not None and target not in already_run and not may(user, target, Action.RUN):
                problems.append(Problem(where, f"User {user.get_username()} does not have Manage Run or Owner or "
                                               f"Admin permissions on job {target}, so cannot make a task run it"))
            elif job_id is not None:
                chain = _cycle_back_to(job_id, target)
                if chain:
                    path_text = " -> ".join(str(j) for j in [job_id, *chain])
                    problems.append(Problem(where, f"job {job_id} would run itself: {path_text}"))
        warehouse = (task.get("sql_task") or {}).get("warehouse_id")
        if isinstance(warehouse, str) and warehouse and "{{" not in warehouse and warehouse not in warehouses:
            problems.append(Problem(f"{path}.sql_task.warehouse_id",
                                    f"SQL warehouse '{warehouse}' is not configured; configured: "
                                    f"{', '.join(sorted(warehouses))} (set LAKEFLOW_WAREHOUSES)"))
    problems += watched_directory_problems(settings)
    problems += git_url_problems(settings)
    for check, with_job in _server_checks:
        problems += check(settings, job, user) if with_job else check(settings)
    if problems:
        raise SettingsInvalid(problems)
    return settings


_server_checks = []


def server_check(check=None, *, with_job=False):
    """Register check(settings) -> [Problem] as one more save-time check, for what another app
    knows (the notification destinations a job names): jobs imports none of them. With with_job
    (a decorator then) it is called check(settings, job, user): the job saved (None: a new one)
    and who saves it."""
    def register(check):
        if all(check is not known for known, _ in _server_checks):
            _server_checks.append((check, with_job))
        return check

    return register(check) if check is not None else register


def run_as_problems(settings, user, current):
    """A job runs as an identity its saver may use (jobs/spec/access.py run_as_refusal); an
    unchanged run_as stays as it was, whoever saves the job."""
    run_as = settings.get("run_as")
    if user is None or not isinstance(run_as, dict) or run_as == current.get("run_as"):
        return []
    if run_as.get("group_name"):
        return [Problem("run_as.group_name", "jobs cannot run as a group on this server; use run_as.user_name "
                                             "or run_as.service_principal_name")]
    kind = "service_principal_name" if run_as.get("service_principal_name") else "user_name"
    name = run_as.get(kind)
    if not name:
        return []
    target = run_as_user(kind, name)
    if target is None:
        what = "service principal" if kind == "service_principal_name" else "user"
        return [Problem(f"run_as.{kind}", f"there is no active {what} {name!r}")]
    refused = run_as_refusal(caller_of(user), kind, target.id, user.get_username(), name)
    return [Problem(f"run_as.{kind}", refused)] if refused else []


def git_url_problems(settings):
    url = (settings.get("git_source") or {}).get("git_url")
    refused = local_git_url_refusal(url) if isinstance(url, str) else None
    return [Problem("git_source.git_url", refused)] if refused else []


def local_git_url_refusal(url):
    """Why the server may not read ``url`` when it names a local repository (None: a remote, or a
    directory of LAKEFLOW_GIT_LOCAL_ROOTS). Read at save and again by the worker before it fetches."""
    path = local_repository_path(url)
    if path is None:
        return None
    # The directories git may open for it: the path, its .git, and "<path>.git" (git's own guesses).
    candidates = [path] + [c for c in (f"{path}/.git", f"{path}.git", f"{path}.git/.git") if os.path.lexists(c)]
    return local_repository_refusal(path, _real(candidates), _real(django_settings.LAKEFLOW_GIT_LOCAL_ROOTS),
                                    _real([django_settings.LAKEFLOW_HOME, django_settings.LAKEFLOW_TASK_HOME]))


def _real(paths):
    return [os.path.realpath(path) for path in paths]


def watched_directory_problems(settings):
    """A file-arrival trigger must watch a directory this server can read (checked at save)."""
    return [problem for path, block in trigger_objects(settings)
            for problem in _watched_directory_problems(block.get("file_arrival"), f"{path}.file_arrival.url")]


def _watched_directory_problems(file_arrival, where):
    import os

    from django.conf import settings as django_settings

    from jobs.spec.triggers import local_path_of

    url = file_arrival.get("url") if isinstance(file_arrival, dict) else None
    if not isinstance(url, str) or not url:
        return []
    try:
        volume_path = django_settings.LAKEFLOW_FS_ROOTS.mapped(url)
    except ValueError as exc:
        return [Problem(where, str(exc))]
    if volume_path is not None:
        return []  # /Volumes, /Workspace, dbfs:/: our own storage, where a directory appears on write
    path = local_path_of(url)
    if not os.path.isdir(path):
        return [Problem(where, f"directory {path} does not exist" if not os.path.exists(path)
                        else f"{path} is not a directory")]
    if not os.access(path, os.R_OK | os.X_OK):
        return [Problem(where, f"directory {path} cannot be read by this server")]
    return []
