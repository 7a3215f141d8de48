"""Who a run-as token speaks for: the run's run-as identity, while the attempt that holds the
token is still running (a finished attempt's token is refused at once), with that identity's
own grants only: a task's token never acts as an admin and cannot make or revoke tokens, since
other tasks running under the same operating-system user could read it from the process's
environment (README, "Who can do what")."""

from runs.attempt_credentials import attempt_of_run_as_token
from runs.engine.states import is_finished
from runs.models import TaskRun


def user_of_run_as_token(raw):
    attempt_id = attempt_of_run_as_token(raw)
    return None if attempt_id is None else user_of_running_attempt(attempt_id)


def user_of_running_attempt(attempt_id):
    """The run-as identity an attempt acts as while it runs (None once it ended), marked as acting
    for a task. Also what an attempt's secrets credential (runs/attempt_credentials.py) reads as."""
    attempt = (TaskRun.objects.filter(id=attempt_id).select_related("run__run_as")
               .only("life_cycle_state", "run__run_as").first())
    if attempt is None or is_finished(attempt.life_cycle_state):
        return None
    user = attempt.run.run_as
    if user is None or not user.is_active:
        return None
    user.acts_for_a_task = True  # never an admin through this token, and no token making (jobs.models)
    return user
