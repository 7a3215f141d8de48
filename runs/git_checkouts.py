"""Checkouts of a job's ``git_source`` in the worker: part of an attempt's setup phase.

A task with ``source: GIT`` (the default once a job has a git_source) runs from a clean tree of
one commit under ``LAKEFLOW_TASK_HOME/git/checkouts``, read-only for tasks. The commit is
resolved from the branch or tag once per run: the first task that needs it fetches the ref and
stores the commit on the run by compare-and-swap; every later task of the run, and its repairs,
use the stored one (as Databricks runs all tasks of a run from one commit). A repair resolves
again only if the job's git_source now names another repository or ref.

What a fetch can see depends on who fetches: the run-as user's credential for the job's provider
is sent only to the hosts of that provider (jobs/spec/git_source.py ``credential_refusal``), and
the cache and the checkouts are kept apart per identity (that user, or "anonymous" when no
credential is sent), so a run without the credential never gets what a credentialed fetch
brought in. A local repository (a path or ``file://`` URL) must lie in LAKEFLOW_GIT_LOCAL_ROOTS,
checked again here before any fetch (the settings may have changed since the job was saved).

Each commit's tree is built once per host and identity: a ``GitCheckout`` row claimed by
compare-and-swap says who builds it; other workers wait for READY and take the build over if its
builder stops sending heartbeats (the design of runs/environments.py). A failed fetch is recorded
as FAILED for the tasks that waited on it; the next task to arrive tries again.

Old checkouts and the fetched caches stay on disk (delete ``LAKEFLOW_TASK_HOME/git`` with the
workers stopped to reclaim the space).
"""

import os
import socket
import time
import uuid
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from jobs.checks import local_git_url_refusal
from jobs.spec.git_source import credential_refusal, git_ref, uses_git
from jobs.spec.task_types import task_type_of
from runs.environments import SETUP_LOG
from runs.executors.files import append_for_server
from runs.executors.git import (Credential, GitFailed, GitStopped, build_tree, cache_key, checkout_dir,
                                resolve_commit)
from runs.models import GitCheckout, Run
from vault.git_credentials import credential_of

HOST = socket.gethostname()
WAIT_SECONDS = 0.2  # between looks at a checkout another worker is building
ANONYMOUS = "anonymous"


def git_home():
    return settings.LAKEFLOW_TASK_HOME / "git"


def checkout_for_attempt(run, job_settings, task, attempt_dir, *, keep_going=lambda: True):
    """(checkout directory, setup milliseconds) for a task that reads its file from git, else
    (None, None). Raises GitFailed (with setup_duration_ms) when git cannot provide the commit."""
    if not uses_git(job_settings, task, task_type_of(task) or ""):
        return None, None
    started = time.monotonic()
    attempt_dir = Path(attempt_dir)
    attempt_dir.parent.mkdir(mode=0o711, parents=True, exist_ok=True)
    attempt_dir.mkdir(mode=0o700, exist_ok=True)
    with open(append_for_server(str(attempt_dir / SETUP_LOG)), "ab", buffering=0) as setup_log:
        credential, identity, not_sent = credential_for(run, job_settings["git_source"])
        try:
            if not_sent:
                setup_log.write(f"{not_sent}\n".encode())
            directory = set_up_checkout(run, job_settings, setup_log, keep_going=keep_going,
                                        credential=credential, identity=identity)
        except GitFailed as exc:
            if not_sent and exc.code == "RESOURCE_NOT_FOUND" and not isinstance(exc, GitStopped):
                # git failed without the credential: say why it was not sent (a private repository)
                exc.message = f"{exc.message}\n{not_sent}"
            setup_log.write(f"The checkout failed: {exc.message}\n".encode())
            exc.setup_duration_ms = elapsed_ms(started)
            raise
    return directory, elapsed_ms(started)


def elapsed_ms(started):
    return int((time.monotonic() - started) * 1000)


def credential_for(run, git_source):
    """(credential, identity, why the run-as user's credential was not sent or ""): the run-as
    user's Git credential for the job's provider when the URL may receive it (jobs/spec/git_source.py
    credential_refusal), else None and "anonymous"."""
    provider, url = git_source.get("git_provider"), git_source["git_url"]
    found = credential_of(run.run_as_id, provider)
    if found is None:
        return None, ANONYMOUS, ""
    refused = credential_refusal(provider, url)
    if refused:
        return None, ANONYMOUS, f"The run-as user's {provider} Git credential was not sent: {refused}."
    return Credential(*found), f"user:{run.run_as_id}", ""


def cache_of(url, identity):
    return cache_key(url, identity, settings.SECRET_KEY.encode())


def set_up_checkout(run, job_settings, setup_log, *, keep_going=lambda: True, credential=None, identity=ANONYMOUS):
    """The directory of the run's commit fetched as ``identity`` (with ``credential``), checked out
    now if needed. GitFailed with git's message, or with why the repository may not be read."""
    git_source = job_settings["git_source"]
    url = git_source["git_url"]
    refused = local_git_url_refusal(url)
    if refused:
        raise GitFailed(f"git_source.git_url: {refused}", code="INVALID_RUN_CONFIGURATION")
    kind, name = git_ref(git_source)
    say = lambda text: setup_log.write(f"{text}\n".encode())  # noqa: E731
    home = git_home()
    home.mkdir(mode=0o711, parents=True, exist_ok=True)
    cache = cache_of(url, identity)
    say(f"Git: fetching {url} " + ("with the run-as user's credential" if credential else "without a credential"))
    commit = run_commit(run, url, cache, kind, name, setup_log, keep_going, credential)
    say(f"Git: {kind} {name} of {url} is commit {commit}")
    directory = checkout_dir(home, cache, commit)
    built_now = ensure_checkout(url, cache, identity, commit, directory, setup_log, keep_going, credential)
    say(f"Checkout {commit[:12]} {'built' if built_now else 'ready'} at {directory}")
    return directory


def ref_key(url, kind, name):
    return f"{kind}:{name}@{url}"


def run_commit(run, url, cache, kind, name, setup_log, keep_going, credential):
    """The run's commit for this ref: the stored one, or resolved now and stored unless another
    task of the run stored one first (then that one is used)."""
    wanted = ref_key(url, kind, name)
    while True:
        stored = Run.objects.filter(id=run.id).values_list("git_commit", "git_ref").first()
        if stored is None:
            raise GitFailed(f"run {run.id} no longer exists")
        commit, ref = stored
        if commit and ref == wanted:
            return commit
        found = resolve_commit(git_home(), url, cache, kind, name, log=setup_log, credential=credential,
                               keep_going=keep_going, poll_seconds=min(1.0, settings.LAKEFLOW_HEARTBEAT_SECONDS))
        if Run.objects.filter(id=run.id, git_commit=commit, git_ref=ref).update(git_commit=found, git_ref=wanted):
            return found
        # Another task of this run stored its commit meanwhile: look again, and use that one.


def ensure_checkout(url, cache, identity, commit, directory, setup_log, keep_going, credential):
    """Wait for, take over or do the build of this commit's checkout (from ``cache``, fetched as
    ``identity``) on this host; True if built here."""
    key = f"{cache}-{commit}"
    waited, last_check = False, time.monotonic()
    while True:
        row = GitCheckout.objects.filter(key=key, host=HOST).first()
        now = timezone.now()
        me = f"{HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        if row is None:
            try:
                with transaction.atomic():
                    row = GitCheckout.objects.create(key=key, host=HOST, git_url=url, identity=identity,
                                                     commit=commit, state=GitCheckout.BUILDING, builder=me,
                                                     heartbeat_at=now)
            except IntegrityError:  # another worker created it first
                continue
            return build_claimed(row, url, cache, commit, setup_log, keep_going, credential)
        if row.state == GitCheckout.READY and directory.is_dir():
            return False
        if row.state == GitCheckout.FAILED and waited:
            raise GitFailed(row.error)
        stale = now - timedelta(seconds=settings.LAKEFLOW_LOST_AFTER_SECONDS)
        if row.state in (GitCheckout.READY, GitCheckout.FAILED) or row.heartbeat_at < stale:
            # READY without its directory (deleted by hand), FAILED before we came, or a builder
            # that died: claim it; exactly one of the workers that try wins.
            if GitCheckout.objects.filter(id=row.id, state=row.state, builder=row.builder,
                                          heartbeat_at=row.heartbeat_at).update(
                    state=GitCheckout.BUILDING, builder=me, heartbeat_at=now, error=""):
                row.state, row.builder, row.heartbeat_at = GitCheckout.BUILDING, me, now
                return build_claimed(row, url, cache, commit, setup_log, keep_going, credential)
            continue
        if not waited:
            setup_log.write(f"Waiting for {row.builder} to check out {commit[:12]}\n".encode())
            waited = True
        if time.monotonic() - last_check >= settings.LAKEFLOW_HEARTBEAT_SECONDS:
            last_check = time.monotonic()
            if not keep_going():
                raise GitStopped("The task was canceled while its checkout was being built")
        wait_for_builder()


def wait_for_builder():
    time.sleep(WAIT_SECONDS)  # a checkout takes a moment to minutes: a look five times a second


def build_claimed(row, url, cache, commit, setup_log, keep_going, credential):
    last_beat = [time.monotonic()]

    def beat_and_go_on():
        if time.monotonic() - last_beat[0] >= settings.LAKEFLOW_HEARTBEAT_SECONDS:
            last_beat[0] = time.monotonic()
            GitCheckout.objects.filter(id=row.id, builder=row.builder).update(heartbeat_at=timezone.now())
            return keep_going()
        return True

    try:
        build_tree(git_home(), url, cache, commit, log=setup_log, credential=credential, keep_going=beat_and_go_on,
                   poll_seconds=min(1.0, settings.LAKEFLOW_HEARTBEAT_SECONDS))
    except GitStopped:  # canceled: a waiting worker builds it instead, as after a crash
        GitCheckout.objects.filter(id=row.id, builder=row.builder).delete()
        raise
    except GitFailed as exc:
        GitCheckout.objects.filter(id=row.id, builder=row.builder).update(
            state=GitCheckout.FAILED, error=exc.message, heartbeat_at=timezone.now())
        raise
    except BaseException:
        GitCheckout.objects.filter(id=row.id, builder=row.builder).delete()
        raise
    now = timezone.now()
    GitCheckout.objects.filter(id=row.id, builder=row.builder).update(
        state=GitCheckout.READY, built_at=now, heartbeat_at=now)
    return True
