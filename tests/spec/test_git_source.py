"""git_source at save time: its fields, the ref, the provider's spelling, and each task's source
and path (relative to the repository for GIT, the default once a job has a git_source)."""

import pytest

from jobs.spec.git_source import task_source, used_git_source
from jobs.spec.settings import SettingsInvalid, validate_job_settings

REPO = {"git_url": "https://example.com/org/repo.git", "git_provider": "gitHub", "git_branch": "main"}


def job(git_source=REPO, tasks=None):
    settings = {"name": "j", "tasks": tasks if tasks is not None else [
        {"task_key": "nb", "notebook_task": {"notebook_path": "notebooks/etl"}}]}
    if git_source is not None:
        settings["git_source"] = git_source
    return settings


def problems_of(settings, **options):
    with pytest.raises(SettingsInvalid) as caught:
        validate_job_settings(settings, **options)
    return {problem.path: problem.message for problem in caught.value.problems}


def test_a_git_source_with_a_branch_is_saved_as_written():
    saved = validate_job_settings(job())

    assert saved["git_source"] == REPO


@pytest.mark.parametrize("given", ["github", "GITHUB", "gitHub"])
def test_the_provider_is_read_in_any_case_and_kept_in_the_sdks_spelling(given):
    saved = validate_job_settings(job({**REPO, "git_provider": given}))

    assert saved["git_source"]["git_provider"] == "gitHub"


@pytest.mark.parametrize("git_source, path, message", [
    ({"git_provider": "gitHub", "git_branch": "main"}, "git_source.git_url", "is required"),
    ({"git_url": "https://x/r.git", "git_branch": "main"}, "git_source.git_provider", "is required"),
    ({**REPO, "git_provider": "sourceForge"}, "git_source.git_provider", "must be one of"),
    ({"git_url": "https://x/r.git", "git_provider": "gitLab"}, "git_source", "set exactly one of"),
    ({**REPO, "git_tag": "v1"}, "git_source", "(found git_branch and git_tag)"),
    ({**{k: v for k, v in REPO.items() if k != "git_branch"}, "git_commit": "main"}, "git_source.git_commit",
     "must be a full commit hash"),
    # A short hash would be resolved from whatever the server's cache holds (Databricks takes full ones).
    ({**{k: v for k, v in REPO.items() if k != "git_branch"}, "git_commit": "0123abcd"}, "git_source.git_commit",
     "must be a full commit hash (40 hexadecimal digits, or 64"),
    ({**{k: v for k, v in REPO.items() if k != "git_branch"}, "git_commit": "a" * 41}, "git_source.git_commit",
     "must be a full commit hash"),
    ({**REPO, "git_branch": "a..b"}, "git_source.git_branch", "is not a valid git branch name"),
    ({**REPO, "git_branch": ""}, "git_source.git_branch", "must not be empty"),
    ({**REPO, "git_url": "relative/path"}, "git_source.git_url", "must be a repository URL"),
    ({**REPO, "git_url": "https://me:ghp_secret@example.com/r.git"}, "git_source.git_url",
     "must not hold a password or token"),
    ({**REPO, "sparse_checkout": {"patterns": "src"}}, "git_source.sparse_checkout.patterns", "must be a list"),
    ({**REPO, "git_brunch": "main"}, "git_source.git_brunch", "is not a field of git_source"),
    ("https://x/r.git", "git_source", "must be an object"),
])
def test_a_bad_git_source_is_refused_naming_the_field(git_source, path, message):
    found = problems_of(job(git_source))

    assert path in found and message in found[path], found


def test_runs_submit_checks_git_source_the_same_way():
    body = {"run_name": "once", "git_source": {**REPO, "git_provider": "nope"},
            "tasks": [{"task_key": "nb", "notebook_task": {"notebook_path": "nb"}}]}

    assert "git_source.git_provider" in problems_of(body, for_submit=True)


def test_a_commit_a_tag_and_sparse_checkout_patterns_are_accepted():
    for ref in ({"git_commit": "0123abcd" * 5}, {"git_commit": "0123ABCD" * 8}, {"git_tag": "release/1.2"}):
        git_source = {"git_url": "file:///srv/repo.git", "git_provider": "gitLab", **ref,
                      "sparse_checkout": {"patterns": ["src"]}}
        assert validate_job_settings(job(git_source))["git_source"] == git_source


def test_a_task_source_defaults_to_git_when_the_job_has_a_git_source():
    with_git, without = job(), job(git_source=None, tasks=[
        {"task_key": "nb", "notebook_task": {"notebook_path": "/Workspace/nb"}}])
    task = with_git["tasks"][0]

    assert task_source(with_git, task, "notebook_task") == "GIT"
    assert task_source(without, without["tasks"][0], "notebook_task") == "WORKSPACE"
    overridden = {"task_key": "nb", "notebook_task": {"notebook_path": "/Workspace/nb", "source": "WORKSPACE"}}
    assert task_source(with_git, overridden, "notebook_task") == "WORKSPACE"


@pytest.mark.parametrize("task, path", [
    ({"notebook_task": {"notebook_path": "/Workspace/nb"}}, "tasks[0].notebook_task.notebook_path"),
    ({"spark_python_task": {"python_file": "../outside.py"}}, "tasks[0].spark_python_task.python_file"),
    ({"spark_python_task": {"python_file": "dbfs:/x.py", "source": "GIT"}}, "tasks[0].spark_python_task.python_file"),
    ({"sql_task": {"warehouse_id": "w", "file": {"path": "a/../../b.sql"}}}, "tasks[0].sql_task.file.path"),
    ({"dbt_task": {"commands": ["dbt run"], "project_directory": "/abs"}}, "tasks[0].dbt_task.project_directory"),
])
def test_a_git_path_must_be_relative_and_stay_in_the_repository(task, path):
    found = problems_of(job(tasks=[{"task_key": "t", **task}]))

    assert path in found, found


def test_an_absolute_path_is_fine_for_a_workspace_task_of_a_job_with_git_source():
    task = {"task_key": "t", "notebook_task": {"notebook_path": "/Workspace/nb", "source": "WORKSPACE"}}

    assert validate_job_settings(job(tasks=[task]))["tasks"][0]["notebook_task"]["source"] == "WORKSPACE"


def test_source_git_without_a_git_source_is_refused():
    task = {"task_key": "t", "spark_python_task": {"python_file": "main.py", "source": "GIT"}}

    found = problems_of(job(git_source=None, tasks=[task]))

    assert "git_source" in found["tasks[0].spark_python_task.source"]


def test_a_for_each_inner_task_reads_from_git_too():
    inner = {"task_key": "i", "notebook_task": {"notebook_path": "/abs/nb"}}
    task = {"task_key": "t", "for_each_task": {"inputs": "[1]", "task": inner}}

    assert "tasks[0].for_each_task.task.notebook_task.notebook_path" in problems_of(job(tasks=[task]))


def test_runs_get_shows_the_jobs_git_source_with_the_commit_used():
    assert used_git_source({"git_source": REPO}, "abc123") == {**REPO, "git_snapshot": {"used_commit": "abc123"}}
    assert used_git_source({"git_source": REPO}, "") == REPO
    assert used_git_source({}, "abc123") is None
