"""Who may do what with a job: one rule for the Jobs API, the dashboard and every later way in.

Until per-job permissions exist (CAN_VIEW < CAN_MANAGE_RUN < CAN_MANAGE), every signed-in user
may read, run, cancel and repair every job, and changing or deleting a job needs its creator or
a superuser. A run may be deleted by its creator too.
"""


def can_manage_job(user, job):
    """Change the job's settings or delete it."""
    return bool(user.is_superuser or (job.creator_id is not None and job.creator_id == user.id))


def can_delete_run(user, run):
    return bool(run.creator_id is not None and run.creator_id == user.id) or can_manage_job(user, run.job)


def manage_refusal(user, job):
    """Why `user` may not change `job`, in words for an error message or page."""
    return (f"User {user.get_username()} does not have Owner or Admin permissions on job {job.id}; "
            "only its creator or a superuser may change or delete it")
