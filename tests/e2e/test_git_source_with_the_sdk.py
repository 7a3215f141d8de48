"""git_source on real processes (embedded `serve`, and web + qcluster on Postgres + Redis), driven
by the databricks-sdk: a job whose python file and notebook come from a local bare repository
(file:// URL) runs from the branch's commit, which runs/get reports as git_snapshot.used_commit;
a job on a branch that does not exist fails with git's own message. A job may not name the
server's own files as its repository, and a commit one user's credential fetched from a private
repository is not handed to a user without one."""

import secrets
from pathlib import Path

import pytest
from databricks.sdk.errors import InvalidParameterValue
from databricks.sdk.service import jobs

from tests.e2e.test_core_with_the_sdk import WAIT, tasks_by_key
from tests.e2e.test_permissions_with_the_sdk import user_client
from tests.git_repos import NOTEBOOK, SCRIPT, make_repository, served_over_http

pytestmark = pytest.mark.e2e


@pytest.fixture
def repo(tmp_path):
    repository = make_repository(tmp_path / "repo")
    repository.first = repository.commit({"data.txt": "one\n", "jobs/run.py": SCRIPT, "jobs/nb.py": NOTEBOOK})
    return repository


def git_source(repo, branch="main"):
    return jobs.GitSource(git_url=repo.url, git_provider=jobs.GitProvider.GIT_HUB, git_branch=branch)


def repository_job(w, repo, branch="main"):
    return w.jobs.create(name=f"from git ({branch})", git_source=git_source(repo, branch), tasks=[
        jobs.Task(task_key="script", spark_python_task=jobs.SparkPythonTask(python_file="jobs/run.py")),
        jobs.Task(task_key="notebook", notebook_task=jobs.NotebookTask(notebook_path="jobs/nb")),
    ])


def test_a_job_runs_its_python_file_and_notebook_from_the_branchs_commit(server, repo):
    w = server.client()
    job = repository_job(w, repo)

    run = w.jobs.run_now(job_id=job.job_id).result(timeout=WAIT)

    t = tasks_by_key(run)
    for key in ("script", "notebook"):
        assert t[key].state.result_state == jobs.RunResultState.SUCCESS, t[key].state.state_message
    assert "script sees one" in w.jobs.get_run_output(t["script"].run_id).logs
    assert w.jobs.get_run(run.run_id).git_source.git_snapshot.used_commit == repo.first
    assert w.jobs.get(job.job_id).settings.git_source.git_provider == jobs.GitProvider.GIT_HUB


def test_a_job_on_a_missing_branch_fails_with_gits_message(server, repo):
    w = server.client()
    job = repository_job(w, repo, branch="no-such-branch")

    run = w.jobs.run_now(job_id=job.job_id).result(timeout=WAIT)

    assert run.state.result_state == jobs.RunResultState.FAILED
    task = tasks_by_key(run)["script"]
    assert "couldn't find remote ref refs/heads/no-such-branch" in task.state.state_message
    assert w.jobs.get_run(run.run_id).git_source.git_snapshot is None


def test_a_job_may_not_name_the_servers_own_files_as_its_repository(server):
    """The e2e servers allow the temporary directory (LAKEFLOW_GIT_LOCAL_ROOTS), where their
    LAKEFLOW_HOME lies too: a job still cannot read the server's files or another user's cache."""
    w = server.client()
    home = Path(server.env["LAKEFLOW_HOME"])
    task = jobs.Task(task_key="script", spark_python_task=jobs.SparkPythonTask(python_file="jobs/run.py"))

    for url in (home.as_uri(), str(Path(f"{home}-tasks") / "git" / "repos" / "x.git")):
        with pytest.raises(InvalidParameterValue, match=r"git_source.git_url.*LAKEFLOW_HOME or LAKEFLOW_TASK_HOME"):
            w.jobs.create(name="server files", tasks=[task], git_source=jobs.GitSource(
                git_url=url, git_provider=jobs.GitProvider.GIT_HUB, git_branch="main"))


def test_a_commit_fetched_with_one_users_credential_is_not_run_for_a_user_without_one(server, repo):
    token = f"token-{secrets.token_hex(8)}"
    with served_over_http(repo, "octo", token) as url:
        git = jobs.GitSource(git_url=url, git_provider=jobs.GitProvider.GIT_LAB_ENTERPRISE_EDITION,
                             git_commit=repo.first)
        task = jobs.SubmitTask(task_key="script", spark_python_task=jobs.SparkPythonTask(python_file="jobs/run.py"))
        owner = user_client(server, f"git-owner-{secrets.token_hex(3)}")
        owner.git_credentials.create("gitLabEnterpriseEdition", git_username="octo", personal_access_token=token)
        other = user_client(server, f"git-other-{secrets.token_hex(3)}")

        fetched = owner.jobs.submit(run_name="with a credential", git_source=git, tasks=[task]).result(timeout=WAIT)
        refused = other.jobs.submit(run_name="without one", git_source=git, tasks=[task]).result(timeout=WAIT)

    assert fetched.state.result_state == jobs.RunResultState.SUCCESS, fetched.tasks[0].state.state_message
    assert refused.state.result_state == jobs.RunResultState.FAILED
    assert "could not read Username" in refused.tasks[0].state.state_message
    assert other.jobs.get_run(refused.run_id).git_source.git_snapshot is None
