"""Reading a bundle as the Databricks CLI does: includes, targets, variables, references, modes
and task paths; every problem names its file and line."""

import json

import pytest

from lakeflow_cli.bundle.located import plain
from lakeflow_cli.bundle.prepare import prepare
from lakeflow_cli.bundle.problems import BundleError
from tests.cli.bundles import ALICE, no_lookup, write_bundle

ROOT = """
bundle:
  name: etl
include:
  - resources/*.yml
variables:
  catalog:
    description: where tables go
    default: main
  cluster:
    type: complex
    default:
      size: small
targets:
  dev:
    mode: development
    default: true
  prod:
    mode: production
    workspace:
      root_path: /Workspace/Shared/etl
    variables:
      catalog: prod_catalog
    resources:
      jobs:
        ingest:
          tasks:
            - task_key: load
              timeout_seconds: 600
"""
JOB = """
resources:
  jobs:
    ingest:
      name: ingest
      schedule:
        quartz_cron_expression: "0 0 6 * * ?"
        timezone_id: UTC
      parameters:
        - name: catalog
          default: ${var.catalog}
      tags:
        size: ${var.cluster}
      tasks:
        - task_key: load
          notebook_task:
            notebook_path: ../src/load.ipynb
        - task_key: report
          depends_on: [{task_key: load}]
          spark_python_task:
            python_file: ../src/report.py
            parameters: ["${bundle.target}", "${workspace.file_path}", "{{job.run_id}}"]
"""


def bundle(tmp_path, **overrides):
    files = {"databricks.yml": ROOT, "resources/ingest.yml": JOB, "src/load.ipynb": "{}", "src/report.py": "print(1)\n"}
    files.update(overrides)
    return write_bundle(tmp_path, files)


def load(root, target=None, **kwargs):
    kwargs.setdefault("lookup", no_lookup)
    return prepare(root, target, user=ALICE, **kwargs)


def problems_of(call):
    with pytest.raises(BundleError) as caught:
        call()
    return caught.value.problems


def test_the_default_target_is_development_with_its_prefix_tag_and_paused_schedule(tmp_path):
    prepared = load(bundle(tmp_path))
    job = plain(prepared.resources("jobs")["ingest"])
    assert prepared.target == "dev" and prepared.mode == "development"
    assert job["name"] == "[dev alice] ingest"
    assert job["tags"]["dev"] == "alice@example.com"
    assert job["schedule"]["pause_status"] == "PAUSED"
    assert job["max_concurrent_runs"] == 4


def test_references_resolve_and_job_references_pass_through(tmp_path):
    prepared = load(bundle(tmp_path))
    job = plain(prepared.resources("jobs")["ingest"])
    root = "/Workspace/Users/alice@example.com/.bundle/etl/dev"
    assert prepared.workspace["root_path"] == root
    assert job["parameters"] == [{"name": "catalog", "default": "main"}]
    assert job["tags"]["size"] == {"size": "small"}  # a complex variable keeps its shape
    assert job["tasks"][1]["spark_python_task"]["parameters"] == ["dev", f"{root}/files", "{{job.run_id}}"]


def test_relative_task_paths_become_synced_workspace_paths(tmp_path):
    prepared = load(bundle(tmp_path))
    tasks = plain(prepared.resources("jobs")["ingest"])["tasks"]
    files = "/Workspace/Users/alice@example.com/.bundle/etl/dev/files"
    assert tasks[0]["notebook_task"]["notebook_path"] == f"{files}/src/load"  # notebooks lose the extension
    assert tasks[1]["spark_python_task"]["python_file"] == f"{files}/src/report.py"


def test_production_target_merges_its_overrides_by_task_key(tmp_path):
    prepared = load(bundle(tmp_path), "prod")
    job = plain(prepared.resources("jobs")["ingest"])
    assert job["name"] == "ingest" and "pause_status" not in job["schedule"]
    assert [t["task_key"] for t in job["tasks"]] == ["load", "report"]
    assert job["tasks"][0]["timeout_seconds"] == 600
    assert job["tasks"][0]["notebook_task"]["notebook_path"] == "/Workspace/Shared/etl/files/src/load"
    assert job["parameters"] == [{"name": "catalog", "default": "prod_catalog"}]


def test_variable_precedence_flag_then_environment_then_overrides_file_then_target(tmp_path):
    root = bundle(tmp_path)
    def catalog(**kwargs):
        return load(root, "prod", **kwargs).config["variables"]["catalog"]["value"]
    assert catalog() == "prod_catalog"
    (root / ".databricks/bundle/prod").mkdir(parents=True)
    (root / ".databricks/bundle/prod/variable-overrides.json").write_text(json.dumps({"catalog": "from_file"}))
    assert catalog() == "from_file"
    assert catalog(environ={"BUNDLE_VAR_catalog": "from_env"}) == "from_env"
    assert catalog(environ={"BUNDLE_VAR_catalog": "from_env"}, var_flags=["catalog=from_flag"]) == "from_flag"


def test_a_variable_without_value_is_named_with_its_line(tmp_path):
    root = bundle(tmp_path, **{"databricks.yml": ROOT.replace("    default: main\n", "")})
    (problem,) = problems_of(lambda: load(root))
    assert "no value assigned to required variable catalog" in problem.message
    assert "BUNDLE_VAR_catalog" in problem.message
    assert (problem.location.file, problem.location.line) == ("databricks.yml", 6)


def test_an_unknown_variable_reference_is_named_with_its_file_and_line(tmp_path):
    root = bundle(tmp_path, **{"resources/ingest.yml": JOB.replace("${var.catalog}", "${var.catalgo}")})
    (problem,) = problems_of(lambda: load(root))
    assert problem.message == "reference does not exist: ${var.catalgo}"
    assert (problem.location.file, problem.location.line) == ("resources/ingest.yml", 10)


def test_a_cycle_of_variable_references_is_refused(tmp_path):
    cyclic = ROOT.replace("    default: main\n", "    default: ${var.other}\n").replace(
        "variables:\n", "variables:\n  other:\n    default: x-${var.catalog}\n", 1)
    root = bundle(tmp_path, **{"databricks.yml": cyclic})
    problems = problems_of(lambda: load(root))
    assert any("cycle detected" in p.message and "var.catalog" in p.message for p in problems)


def test_complex_variables_cannot_be_set_from_the_command_line(tmp_path):
    problems = problems_of(lambda: load(bundle(tmp_path), var_flags=["cluster=big"]))
    assert any("variable cluster is complex" in p.message for p in problems)


def test_an_undeclared_variable_flag_is_refused(tmp_path):
    problems = problems_of(lambda: load(bundle(tmp_path), var_flags=["nope=1"]))
    assert [p.message for p in problems] == ["variable nope has not been defined"]


def test_a_yaml_error_names_file_and_line(tmp_path):
    root = bundle(tmp_path, **{"resources/ingest.yml": JOB.replace("      tasks:\n", "      tasks: [\n")})
    (problem,) = problems_of(lambda: load(root))
    assert problem.message.startswith("invalid YAML")
    assert problem.location.file == "resources/ingest.yml"


def test_a_missing_include_and_an_unknown_target_are_refused(tmp_path):
    root = bundle(tmp_path, **{"databricks.yml": ROOT.replace("resources/*.yml", "resources/missing.yml")})
    (problem,) = problems_of(lambda: load(root))
    assert problem.message == "include resources/missing.yml: file not found"
    assert problem.location.line == 4
    root = bundle(tmp_path / "other")
    (problem,) = problems_of(lambda: load(root, "staging"))
    assert problem.message == "staging: no such target. Available targets: dev, prod"


def test_a_resource_defined_twice_is_refused_with_both_places(tmp_path):
    root = bundle(tmp_path, **{"resources/copy.yml": JOB})
    (problem,) = problems_of(lambda: load(root))
    assert "multiple resources named ingest" in problem.message
    assert "resources/copy.yml:3" in problem.message and "resources/ingest.yml:3" in problem.message


def test_a_missing_notebook_or_a_path_outside_the_bundle_is_refused(tmp_path):
    job = JOB.replace("../src/load.ipynb", "../src/missing.ipynb").replace("../src/report.py", "../../outside.py")
    (tmp_path / "outside.py").write_text("")
    root = bundle(tmp_path / "b", **{"resources/ingest.yml": job})
    problems = problems_of(lambda: load(root))
    assert problems[0].message.startswith("notebook ../src/missing.ipynb not found")
    assert "is not contained in the bundle root" in problems[1].message
    assert (problems[0].location.file, problems[0].location.line) == ("resources/ingest.yml", 16)


def test_git_tasks_keep_their_paths(tmp_path):
    job = JOB.replace("      tasks:\n", "      git_source: {git_url: /repo, git_provider: gitHub, git_branch: main}\n"
                      "      tasks:\n").replace("../src/load.ipynb", "notebooks/load")
    prepared = load(bundle(tmp_path, **{"resources/ingest.yml": job}))
    assert plain(prepared.resources("jobs")["ingest"])["tasks"][0]["notebook_task"]["notebook_path"] == "notebooks/load"


def test_presets_win_over_the_mode(tmp_path):
    root = bundle(tmp_path, **{"databricks.yml": ROOT.replace(
        "    default: true\n", "    default: true\n    presets:\n      name_prefix: 'test_'\n"
        "      trigger_pause_status: UNPAUSED\n      tags: {team: data}\n")})
    job = plain(load(root).resources("jobs")["ingest"])
    assert job["name"] == "test_ingest"
    assert job["schedule"].get("pause_status") in (None, "UNPAUSED")
    assert job["tags"] == {"dev": "alice@example.com", "team": "data", "size": {"size": "small"}}


def test_lookups_ask_the_server(tmp_path):
    root = bundle(tmp_path, **{"databricks.yml": ROOT.replace(
        "  cluster:\n", "  warehouse:\n    lookup:\n      warehouse: Analytics\n  cluster:\n")})
    found = load(root, lookup=lambda kind, name: f"{kind}:{name}").config["variables"]["warehouse"]["value"]
    assert found == "warehouse:Analytics"
    (problem,) = problems_of(lambda: load(root))
    assert problem.message == "variable warehouse: no warehouse named 'Analytics'"


def test_resources_that_reference_each_other_in_a_cycle_are_refused(tmp_path):
    job = JOB + """
    a:
      tasks: [{task_key: t, run_job_task: {job_id: "${resources.jobs.b.id}"}}]
    b:
      tasks: [{task_key: t, run_job_task: {job_id: "${resources.jobs.a.id}"}}]
"""
    problems = problems_of(lambda: load(bundle(tmp_path, **{"resources/ingest.yml": job})))
    assert any("cycle" in p.message and "jobs.a" in p.message for p in problems)


def test_production_mode_checks_the_git_branch(tmp_path):
    import subprocess

    root = bundle(tmp_path, **{"databricks.yml": ROOT.replace(
        "      root_path: /Workspace/Shared/etl\n", "      root_path: /Workspace/Shared/etl\n    git:\n      branch: main\n")})
    subprocess.run(["git", "init", "-q", "-b", "feature", str(root)], check=True)
    problems = problems_of(lambda: load(root, "prod"))
    assert "not on the right Git branch" in problems[0].message and "actual: feature" in problems[0].message
    assert load(root, "prod", force=True).target == "prod"
