"""git_source through the databricks-sdk in process: jobs/create and runs/submit refuse a bad one
naming the field; a one-time run from a local repository reports the commit it used."""

import pytest
from databricks.sdk.errors import InvalidParameterValue
from databricks.sdk.service import jobs

from runs.models import Run
from tests.api.test_sdk_in_process import WAIT, connect, workspace  # noqa: F401 (fixtures)
from tests.git_repos import SCRIPT, make_repository


@pytest.fixture(autouse=True)
def own_task_home(tmp_path, settings):
    settings.LAKEFLOW_TASK_HOME = tmp_path / "task-home"


def script_task(path="jobs/run.py"):
    return jobs.SubmitTask(task_key="py", spark_python_task=jobs.SparkPythonTask(python_file=path))


def test_runs_submit_refuses_a_bad_git_source_naming_the_field(workspace):  # noqa: F811
    bad = {"git_url": "https://example.com/r.git", "git_provider": "nowhere", "git_branch": "main"}
    body = {"run_name": "bad", "git_source": bad, "tasks": [script_task().as_dict()]}

    with pytest.raises(InvalidParameterValue, match="git_source.git_provider"):  # the SDK's enum has no such value
        workspace.api_client.do("POST", "/api/2.2/jobs/runs/submit", body=body)
    assert not Run.objects.exists()


def test_jobs_create_refuses_an_absolute_path_for_a_git_task(workspace):  # noqa: F811
    git = jobs.GitSource(git_url="https://example.com/r.git", git_provider=jobs.GitProvider.GIT_LAB, git_tag="v1")

    with pytest.raises(InvalidParameterValue, match="relative to the repository root"):
        workspace.jobs.create(name="abs", git_source=git, tasks=[jobs.Task(
            task_key="py", spark_python_task=jobs.SparkPythonTask(python_file="/Workspace/run.py"))])


def test_a_one_time_run_from_a_repository_reports_its_commit(workspace, tmp_path):  # noqa: F811
    repo = make_repository(tmp_path / "repo")
    commit = repo.commit({"data.txt": "one\n", "jobs/run.py": SCRIPT})
    git = jobs.GitSource(git_url=repo.url, git_provider=jobs.GitProvider.GIT_HUB, git_commit=commit)

    run = workspace.jobs.submit(run_name="from git", git_source=git, tasks=[script_task()]).result(timeout=WAIT)

    assert run.state.result_state == jobs.RunResultState.SUCCESS, run.tasks[0].state.state_message
    assert run.git_source.git_snapshot.used_commit == commit
    assert "script sees one" in workspace.jobs.get_run_output(run.tasks[0].run_id).logs


def test_a_short_commit_hash_is_refused_naming_the_field(workspace):  # noqa: F811
    git = jobs.GitSource(git_url="https://example.com/r.git", git_provider=jobs.GitProvider.GIT_HUB,
                         git_commit="0123abcd")

    with pytest.raises(InvalidParameterValue, match=r"git_source.git_commit.*full commit hash"):
        workspace.jobs.submit(run_name="short", git_source=git, tasks=[script_task()])
    assert not Run.objects.exists()


def test_a_local_repository_in_the_servers_own_files_is_refused_at_save(workspace, settings):  # noqa: F811
    """The unit tests allow the temporary directory, where LAKEFLOW_HOME lies too: still refused."""
    inside = jobs.GitSource(git_url=(settings.LAKEFLOW_HOME / "x.git").as_uri(),
                            git_provider=jobs.GitProvider.GIT_HUB, git_branch="main")

    with pytest.raises(InvalidParameterValue, match=r"git_source.git_url.*LAKEFLOW_HOME or LAKEFLOW_TASK_HOME"):
        workspace.jobs.create(name="inside", git_source=inside, tasks=[jobs.Task(
            task_key="py", spark_python_task=jobs.SparkPythonTask(python_file="run.py"))])


def test_a_local_repository_outside_the_allowed_roots_is_refused_at_save(workspace, settings, tmp_path):  # noqa: F811
    settings.LAKEFLOW_GIT_LOCAL_ROOTS = [tmp_path / "repositories"]
    git = jobs.GitSource(git_url=str(tmp_path / "elsewhere.git"), git_provider=jobs.GitProvider.GIT_HUB,
                         git_branch="main")

    with pytest.raises(InvalidParameterValue, match=r"git_source.git_url.*outside the directories of "
                                                    r"LAKEFLOW_GIT_LOCAL_ROOTS"):
        workspace.jobs.submit(run_name="elsewhere", git_source=git, tasks=[script_task()])
    assert not Run.objects.exists()
