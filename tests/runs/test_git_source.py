"""Tasks that run from a git_source, against real repositories made in the test (git init, a
branch, a tag; reached by file:// URL): the worker fetches and checks out the run's commit in
the setup phase, once per run, and a task's path is relative to that tree and stays in it."""

import io
from datetime import timedelta
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from api.serializers import run_dict

from runs import git_checkouts
from runs.admission import create_run
from runs.engine.states import RunResultState as R
from runs.executors.git import GitFailed, build_tree, checkout_dir
from runs.models import GitCheckout, Run, TaskRun
from runs.repair import repair_run
from tests.git_repos import NOTEBOOK, SCRIPT, make_repository
from jobs.spec.settings import validate_job_settings
from tests.runs.conftest import make_job, shell
from vault.git_credentials import create_credential


@pytest.fixture(autouse=True)
def own_task_home(tmp_path, settings):
    """Each test's checkouts apart: a cache hit must come from the test itself."""
    settings.LAKEFLOW_TASK_HOME = tmp_path / "task-home"


@pytest.fixture
def repo(tmp_path):
    repository = make_repository(tmp_path / "repo")
    repository.first = repository.commit({"data.txt": "one\n", "jobs/run.py": SCRIPT, "jobs/nb.py": NOTEBOOK})
    return repository


def git_source(repo, **ref):
    return {"git_url": repo.url, "git_provider": "gitHub", **(ref or {"git_branch": "main"})}


def script(key="py", path="jobs/run.py", **fields):
    return {"task_key": key, "spark_python_task": {"python_file": path, **fields}}


def attempt_of(run, key="py"):
    return TaskRun.objects.get(run=run, task_key=key, is_current=True)


def output(attempt):
    return Path(attempt.log_path).read_text()


def ran(alice, repo, tasks, **ref):
    run, _ = create_run(make_job(alice, tasks, git_source=git_source(repo, **ref)))
    run.refresh_from_db()
    return run


def test_a_python_file_and_a_notebook_run_from_the_branchs_commit(alice, repo):
    run = ran(alice, repo, [script(), {"task_key": "nb", "notebook_task": {"notebook_path": "jobs/nb"}}])

    for key, says in (("py", "script sees one"), ("nb", "notebook sees one")):
        attempt = attempt_of(run, key)
        assert attempt.result_state == R.SUCCESS, attempt.state_message
        assert says in output(attempt) + str(attempt.executed_notebook and Path(attempt.executed_notebook).read_text())
    assert run.git_commit == repo.first
    assert attempt_of(run).setup_duration_ms is not None


def test_a_tag_and_a_commit_run_what_they_name(alice, repo):
    repo.tag("v1")
    second = repo.commit({"data.txt": "two\n"})

    by_tag = ran(alice, repo, [script()], git_tag="v1")
    by_commit = ran(alice, repo, [script()], git_commit=second)

    assert "script sees one" in output(attempt_of(by_tag))
    assert by_tag.git_commit == repo.first
    assert "script sees two" in output(attempt_of(by_commit))
    assert by_commit.git_commit == second


def test_another_branch_runs_its_own_commit(alice, repo):
    feature = repo.commit({"data.txt": "feature\n"}, branch="feature")

    run = ran(alice, repo, [script()], git_branch="feature")

    assert "script sees feature" in output(attempt_of(run))
    assert run.git_commit == feature


def test_a_workspace_task_of_a_job_with_git_source_runs_from_the_workspace(alice, repo, tmp_path, settings):
    settings.LAKEFLOW_WORKSPACE_ROOT = tmp_path / "ws"
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "local.py").write_text("print('from the workspace')\n")

    run = ran(alice, repo, [script(path=str(tmp_path / "ws" / "local.py"), source="WORKSPACE")])

    assert "from the workspace" in output(attempt_of(run))
    assert run.git_commit == ""  # no task needed the repository


def test_a_path_that_leaves_the_checkout_through_a_symlink_is_refused(alice, repo, tmp_path):
    (tmp_path / "secret.py").write_text("print('escaped')\n")
    repo.work.joinpath("jobs", "link.py").symlink_to(tmp_path / "secret.py")
    repo.commit({})

    run = ran(alice, repo, [script(path="jobs/link.py")])

    attempt = attempt_of(run)
    assert attempt.result_state == R.FAILED
    assert "leads outside the repository" in attempt.state_message
    assert "escaped" not in output(attempt)


def test_a_missing_branch_fails_the_task_with_gits_message_and_is_not_cached(alice, repo):
    job = make_job(alice, [script()], git_source=git_source(repo, git_branch="nope"))

    run, _ = create_run(job)

    attempt = attempt_of(run)
    assert attempt.result_state == R.FAILED
    assert attempt.termination_code == "RESOURCE_NOT_FOUND"
    assert "couldn't find remote ref refs/heads/nope" in attempt.state_message
    repo.commit({"data.txt": "now it exists\n"}, branch="nope")
    again, _ = create_run(job)
    assert "script sees now it exists" in output(attempt_of(again))


def test_every_task_of_a_run_uses_the_commit_the_first_one_resolved(alice, repo):
    """A commit pushed to the branch between two tasks of a run is not seen by the second."""
    push = (f"cd {repo.work} && echo two > data.txt && git -c user.name=t -c user.email=t@x commit -qam two "
            "&& git push -q origin main")
    tasks = [script("first"), shell("push", push, depends_on=["first"]),
             {**script("second"), "depends_on": [{"task_key": "push"}]}]

    run = ran(alice, repo, tasks)

    assert attempt_of(run, "push").result_state == R.SUCCESS, attempt_of(run, "push").state_message
    assert repo.git("rev-parse", "origin/main") != repo.first  # the branch moved on
    assert "script sees one" in output(attempt_of(run, "second"))
    assert run.git_commit == repo.first
    # A repair of the run uses the same commit; a new run takes the branch's new one.
    repair_run(run.id, rerun_tasks=["second"])
    assert "script sees one" in output(attempt_of(run, "second"))
    newer = ran(alice, repo, [script()])
    assert "script sees two" in output(attempt_of(newer))


def test_one_checkout_per_commit_is_built_and_shared(alice, repo, monkeypatch):
    built = []
    real = git_checkouts.build_tree
    monkeypatch.setattr(git_checkouts, "build_tree", lambda *a, **k: built.append(a) or real(*a, **k))

    first = ran(alice, repo, [script("a"), script("b")])
    second = ran(alice, repo, [script()])

    assert len(built) == 1
    assert first.git_commit == second.git_commit == repo.first
    assert GitCheckout.objects.get().state == GitCheckout.READY


def test_a_builder_that_died_is_taken_over(alice, repo):
    """A BUILDING row whose builder stopped beating long ago: the next task builds it itself."""
    GitCheckout.objects.create(key=f"{anonymous_cache(repo)}-{repo.first}", host=git_checkouts.HOST,
                               git_url=repo.url, identity="anonymous", commit=repo.first,
                               state=GitCheckout.BUILDING, builder="gone:1:x",
                               heartbeat_at=timezone.now() - timedelta(hours=1))

    run = ran(alice, repo, [script()])

    assert attempt_of(run).result_state == R.SUCCESS, attempt_of(run).state_message
    assert GitCheckout.objects.get().builder != "gone:1:x"


def test_runs_get_reports_the_commit_used(alice, repo):
    run = ran(alice, repo, [script()])
    body, _ = run_dict(Run.objects.get(id=run.id), base_url="http://x", now=timezone.now())

    assert body["git_source"]["git_snapshot"] == {"used_commit": repo.first}
    assert body["git_source"]["git_branch"] == "main"


def anonymous_cache(repo):
    return git_checkouts.cache_of(repo.url, "anonymous")


def claimed_by_another_worker(repo):
    return GitCheckout.objects.create(key=f"{anonymous_cache(repo)}-{repo.first}", host=git_checkouts.HOST,
                                      git_url=repo.url, identity="anonymous", commit=repo.first,
                                      state=GitCheckout.BUILDING, builder="other:1:x", heartbeat_at=timezone.now())


def test_a_worker_waits_for_a_checkout_another_worker_claimed_and_does_not_build_it_too(db, repo, monkeypatch):
    row = claimed_by_another_worker(repo)
    directory = checkout_dir(git_checkouts.git_home(), anonymous_cache(repo), repo.first)

    def other_worker_finishes():  # what the other worker does while this one waits
        build_tree(git_checkouts.git_home(), repo.url, anonymous_cache(repo), repo.first, log=io.BytesIO())
        GitCheckout.objects.filter(id=row.id).update(state=GitCheckout.READY)

    monkeypatch.setattr(git_checkouts, "wait_for_builder", other_worker_finishes)
    monkeypatch.setattr(git_checkouts, "build_tree", lambda *a, **k: pytest.fail("built twice"))
    log = io.BytesIO()

    built_here = git_checkouts.ensure_checkout(repo.url, anonymous_cache(repo), "anonymous", repo.first, directory,
                                               log, lambda: True, None)

    assert built_here is False
    assert (directory / "data.txt").read_text() == "one\n"
    assert b"Waiting for other:1:x" in log.getvalue()


def test_a_checkout_that_fails_while_others_wait_fails_them_with_its_message(db, repo, monkeypatch):
    row = claimed_by_another_worker(repo)
    monkeypatch.setattr(git_checkouts, "wait_for_builder", lambda: GitCheckout.objects.filter(id=row.id).update(
        state=GitCheckout.FAILED, error="fatal: the disk is full"))

    with pytest.raises(GitFailed, match="the disk is full"):
        git_checkouts.ensure_checkout(repo.url, anonymous_cache(repo), "anonymous", repo.first,
                                      checkout_dir(git_checkouts.git_home(), anonymous_cache(repo), repo.first),
                                      io.BytesIO(), lambda: True, None)


def test_the_run_page_shows_the_repository_the_ref_and_the_short_commit(alice, repo, client):
    run = ran(alice, repo, [script()])
    client.force_login(alice)

    page = client.get(reverse("runs:detail", args=[run.job_id, run.id])).content.decode()

    assert f"git {repo.url} branch main" in page
    assert f">{repo.first[:12]}</code>" in page


def test_a_repair_after_the_jobs_git_source_changed_resolves_the_new_ref(alice, repo):
    feature = repo.commit({"data.txt": "feature\n"}, branch="feature")
    job = make_job(alice, [script()], git_source=git_source(repo))
    run, _ = create_run(job)
    assert "script sees one" in output(attempt_of(run))

    job.save_version(validate_job_settings({"name": "job", "tasks": [script()],
                                            "git_source": git_source(repo, git_branch="feature")}), alice)
    repair_run(run.id, rerun_tasks=["py"])

    run.refresh_from_db()
    assert "script sees feature" in output(attempt_of(run))
    assert run.git_commit == feature


def test_a_local_repository_outside_the_allowed_roots_fails_the_task_before_any_fetch(alice, repo, tmp_path,
                                                                                     settings):
    """The worker checks LAKEFLOW_GIT_LOCAL_ROOTS again: it may have changed since the job was saved."""
    job = make_job(alice, [script()], git_source=git_source(repo))
    settings.LAKEFLOW_GIT_LOCAL_ROOTS = [tmp_path / "elsewhere"]

    run, _ = create_run(job)

    attempt = attempt_of(run)
    assert attempt.result_state == R.FAILED
    assert attempt.termination_code == "INVALID_RUN_CONFIGURATION"
    assert "git_source.git_url" in attempt.state_message and "LAKEFLOW_GIT_LOCAL_ROOTS" in attempt.state_message
    assert not (git_checkouts.git_home() / "repos").exists()


def test_a_cache_in_the_task_home_is_refused_even_through_a_symlink_in_an_allowed_root(alice, repo, tmp_path):
    ran(alice, repo, [script()])
    (cache,) = (git_checkouts.git_home() / "repos").glob("*.git")
    (tmp_path / "innocent.git").symlink_to(cache)

    run, _ = create_run(make_job(alice, [script()], git_source={
        "git_url": (tmp_path / "innocent.git").as_uri(), "git_provider": "gitHub", "git_commit": repo.first}))

    attempt = attempt_of(run)
    assert attempt.result_state == R.FAILED
    assert "lies in the server's own files (LAKEFLOW_HOME or LAKEFLOW_TASK_HOME)" in attempt.state_message


def test_a_public_repository_runs_without_a_credential_its_url_may_not_receive(alice, repo):
    create_credential(alice, "gitHub", token="ghp_never_sent_to_a_file_url")

    run = ran(alice, repo, [script()])

    attempt = attempt_of(run)
    assert attempt.result_state == R.SUCCESS, attempt.state_message
    setup_log = Path(attempt.log_path).with_name("setup.log").read_text()
    assert "gitHub Git credential was not sent: gitHub credentials are sent only over https to github.com" in setup_log
    assert "without a credential" in setup_log
