"""A repository behind HTTP basic authentication (git's own http-backend, served in a thread on
127.0.0.1, so a self-hosted provider's credential may go to it over http): the worker fetches it
with the run-as user's Git credential for the job's provider, and never shows the token; without
a credential the task fails with git's message. What a credentialed fetch brought in stays out of
reach of a run without it, and a cloud provider's credential never goes to another host."""

from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from runs.admission import create_run
from runs.engine.states import RunResultState as R
from runs.models import TaskRun
from tests.git_repos import SCRIPT, make_repository, sent_token, served_over_http
from tests.runs.conftest import make_job
from vault.git_credentials import create_credential

TOKEN = "glpat-example-token-42"


@pytest.fixture(autouse=True)
def own_task_home(tmp_path, settings):
    settings.LAKEFLOW_TASK_HOME = tmp_path / "task-home"


@pytest.fixture
def served(tmp_path):
    """(repository, URL) of a bare repository that answers only user "octo" with TOKEN."""
    repo = make_repository(tmp_path / "repo")
    repo.first = repo.commit({"data.txt": "private\n", "jobs/run.py": SCRIPT})
    with served_over_http(repo, "octo", TOKEN) as url:
        yield repo, url


def run_as(user, url, provider="gitLabEnterpriseEdition", **ref):
    job = make_job(user, [{"task_key": "py", "spark_python_task": {"python_file": "jobs/run.py"}}],
                   git_source={"git_url": url, "git_provider": provider, **(ref or {"git_branch": "main"})})
    run, _ = create_run(job)
    run.refresh_from_db()
    return run, TaskRun.objects.get(run=run, task_key="py", is_current=True)


def test_the_run_as_users_credential_fetches_a_private_repository(alice, served):
    repo, url = served
    create_credential(alice, "gitLabEnterpriseEdition", token=TOKEN, git_username="octo")

    run, attempt = run_as(alice, url)

    assert attempt.result_state == R.SUCCESS, attempt.state_message
    assert "script sees private" in Path(attempt.log_path).read_text()
    assert run.git_commit == repo.first
    setup_log = Path(attempt.log_path).with_name("setup.log").read_text()
    assert TOKEN not in setup_log and "git fetch" in setup_log


def test_without_a_credential_the_task_fails_with_gits_message(alice, served):
    _, url = served
    bob = get_user_model().objects.create_user("bob", password="x")
    create_credential(bob, "gitLabEnterpriseEdition", token=TOKEN, git_username="octo")  # bob's is not alice's

    _, attempt = run_as(alice, url)

    assert attempt.result_state == R.FAILED
    assert "could not read Username" in attempt.state_message


def test_a_run_without_the_credential_never_gets_what_a_credentialed_fetch_brought_in(alice, served):
    """Alice's credential fetched the commit; Bob, who has none, names it by its full hash and by
    the branch: both must ask the server (and be refused), never be served from Alice's cache or
    her checkout."""
    repo, url = served
    create_credential(alice, "gitLabEnterpriseEdition", token=TOKEN, git_username="octo")
    _, by_alice = run_as(alice, url, git_commit=repo.first)
    assert by_alice.result_state == R.SUCCESS, by_alice.state_message
    bob = get_user_model().objects.create_user("bob", password="x")

    for ref in ({"git_commit": repo.first}, {"git_branch": "main"}):
        run, by_bob = run_as(bob, url, **ref)

        assert by_bob.result_state == R.FAILED, ref
        assert "could not read Username" in by_bob.state_message
        assert run.git_commit == ""  # nothing resolved for bob


def test_a_cloud_providers_credential_is_not_sent_to_another_host(alice, served):
    """A gitLab credential goes only to https://gitlab.com: the job's URL names another host, so
    git asks without it, fails, and the task says why the credential was not sent."""
    repo, url = served
    create_credential(alice, "gitLab", token=TOKEN, git_username="octo")

    _, attempt = run_as(alice, url, provider="gitLab")

    assert attempt.result_state == R.FAILED
    assert "could not read Username" in attempt.state_message
    assert ("The run-as user's gitLab Git credential was not sent: gitLab credentials are sent only over "
            "https to gitlab.com") in attempt.state_message
    assert not sent_token(repo, TOKEN)
