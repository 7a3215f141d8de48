"""Deploy, redeploy and destroy against an in-memory twin of the server: job ids stay, removed
jobs go, a deploy that stops half way is finished by the next without creating anything twice,
two deploys of one target exclude each other, and nothing changes when a check fails."""

import json
import sys

import pytest

from lakeflow_cli.bundle import deploy as deploying, destroy as destroying, sync
from lakeflow_cli.bundle.prepare import prepare
from lakeflow_cli.bundle.problems import BundleError
from lakeflow_cli.bundle.state import Lock
from tests.cli.bundles import FakeServer, write_bundle

ROOT_PATH = "/Workspace/Users/alice@example.com/.bundle/shop/dev"
BUNDLE = {
    "databricks.yml": """
        bundle:
          name: shop
        include: [resources/*.yml]
        permissions:
          - level: CAN_VIEW
            group_name: analysts
        targets:
          dev:
            default: true
    """,
    "resources/jobs.yml": """
        resources:
          jobs:
            orders:
              name: orders
              tasks:
                - task_key: load
                  spark_python_task: {python_file: ../src/load.py}
            report:
              name: report
              permissions:
                - level: CAN_RUN
                  user_name: bob@example.com
              tasks:
                - task_key: after_orders
                  run_job_task: {job_id: "${resources.jobs.orders.id}"}
    """,
    "src/load.py": "print('load')\n",
    "notes/scratch.txt": "ignored\n",
    ".gitignore": "notes/\n",
}


def deployed(server, root, target=None):
    prepared = prepare(root, target, user=server.me(), lookup=server.lookup)
    deploying.deploy(server, prepared, say=lambda line: None)
    return prepared


def state_of(server):
    return json.loads(server.files[f"{ROOT_PATH}/state/resources.json"])


def job_ids(server):
    return {key: int(entry["id"]) for key, entry in state_of(server)["resources"]["jobs"].items()}


@pytest.fixture
def root(tmp_path):
    return write_bundle(tmp_path / "shop", BUNDLE)


def test_deploy_creates_locked_bundle_jobs_syncs_files_and_writes_state_and_metadata(root):
    server = FakeServer()
    deployed(server, root)
    ids = job_ids(server)
    orders, report = server.jobs[ids["orders"]], server.jobs[ids["report"]]
    assert orders["deployment"] == {"kind": "BUNDLE", "metadata_file_path": f"{ROOT_PATH}/state/metadata.json"}
    assert orders["edit_mode"] == "UI_LOCKED"
    assert orders["tasks"][0]["spark_python_task"]["python_file"] == f"{ROOT_PATH}/files/src/load.py"
    assert report["tasks"][0]["run_job_task"]["job_id"] == str(ids["orders"])  # created first, then referenced
    assert server.files[f"{ROOT_PATH}/files/src/load.py"] == b"print('load')\n"
    assert f"{ROOT_PATH}/files/notes/scratch.txt" not in server.files  # .gitignore honoured
    metadata = json.loads(server.files[f"{ROOT_PATH}/state/metadata.json"])
    assert metadata["config"]["bundle"] == {"name": "shop", "target": "dev"}
    assert metadata["config"]["resources"]["jobs"]["orders"] == {"id": str(ids["orders"]),
                                                                 "relative_path": "resources/jobs.yml"}
    assert f"{ROOT_PATH}/state/deploy.lock" not in server.files  # released


def test_permissions_are_the_bundles_and_the_jobs_own(root):
    server = FakeServer()
    deployed(server, root)
    ids = job_ids(server)
    assert server.permissions[ids["orders"]] == [{"group_name": "analysts", "permission_level": "CAN_VIEW"}]
    assert server.permissions[ids["report"]] == [{"group_name": "analysts", "permission_level": "CAN_VIEW"},
                                                 {"user_name": "bob@example.com", "permission_level": "CAN_MANAGE_RUN"}]


def test_redeploy_keeps_job_ids_updates_only_what_changed_and_deletes_removed_jobs(root):
    server = FakeServer()
    deployed(server, root)
    first = job_ids(server)
    server.calls.clear()
    deployed(server, root)
    assert job_ids(server) == first
    assert "create_job" not in server.calls and "reset_job" not in server.calls  # nothing changed
    assert server.calls == ["upload"]  # the metadata only: no file, job or permission changed
    jobs = (root / "resources/jobs.yml").read_text()
    (root / "resources/jobs.yml").write_text(jobs.split("    report:")[0].replace("name: orders", "name: orders v2"))
    (root / "src/load.py").write_text("print('v2')\n")
    server.calls.clear()
    deployed(server, root)
    assert job_ids(server) == {"orders": first["orders"]}
    assert server.jobs[first["orders"]]["name"] == "orders v2"
    assert first["report"] not in server.jobs  # removed from the bundle: deleted
    assert server.calls.count("reset_job") == 1 and "create_job" not in server.calls
    assert server.files[f"{ROOT_PATH}/files/src/load.py"] == b"print('v2')\n"


def test_a_deploy_that_stops_half_way_is_finished_by_the_next_without_duplicates(root):
    server = FakeServer()
    server.fail_on = ("create_job", 1)  # the second job's creation fails: the server went away
    with pytest.raises(ConnectionError):
        deployed(server, root)
    assert len(server.jobs) == 1 and list(job_ids(server)) == ["orders"]
    assert f"{ROOT_PATH}/state/deploy.lock" not in server.files
    deployed(server, root)
    assert len(server.jobs) == 2 and set(job_ids(server)) == {"orders", "report"}


def test_a_job_created_before_its_id_was_recorded_is_adopted_not_created_again(root):
    server = FakeServer()
    uploads_before_jobs = len(sync.bundle_files(root)) + 1  # the synced files and the sync id in the state
    server.fail_on = ("upload", uploads_before_jobs)  # fails recording the first job's id
    with pytest.raises(ConnectionError):
        deployed(server, root)
    assert len(server.jobs) == 1
    deployed(server, root)
    assert len(server.jobs) == 2 and sorted(job_ids(server).values()) == sorted(server.jobs)


def test_a_held_lock_refuses_a_second_deploy_until_forced(root):
    server = FakeServer()
    Lock(server, f"{ROOT_PATH}/state", "bob@example.com").acquire()
    with pytest.raises(BundleError) as caught:
        deployed(server, root)
    assert "deploy lock acquired by bob@example.com" in str(caught.value)
    assert server.jobs == {}
    prepared = prepare(root, None, user=server.me(), lookup=server.lookup)
    deploying.deploy(server, prepared, say=lambda line: None, force_lock=True)
    assert len(server.jobs) == 2


def test_a_job_the_server_refuses_stops_the_deploy_before_any_change(root):
    jobs = (root / "resources/jobs.yml").read_text().replace("- task_key: load", "- task_key: ''")
    (root / "resources/jobs.yml").write_text(jobs)
    server = FakeServer()
    with pytest.raises(BundleError) as caught:
        deployed(server, root)
    (problem,) = caught.value.problems
    assert problem.message == "the server refuses job orders: tasks[0].task_key: task_key is required"
    assert problem.location.file == "resources/jobs.yml"
    assert server.jobs == {} and server.files == {}


def test_a_job_deleted_behind_the_bundles_back_is_created_again(root):
    server = FakeServer()
    deployed(server, root)
    del server.jobs[job_ids(server)["orders"]]
    (root / "resources/jobs.yml").write_text((root / "resources/jobs.yml").read_text().replace("task_key: load", "task_key: load2"))
    deployed(server, root)
    assert len(server.jobs) == 2 and job_ids(server)["orders"] in server.jobs


def test_destroy_removes_every_job_and_the_workspace_tree(root):
    server = FakeServer()
    prepared = deployed(server, root)
    state, plan = destroying.plan(server, prepared)
    assert plan[:2] == [f"delete job orders ({job_ids(server)['orders']})",
                        f"delete job report ({job_ids(server)['report']})"]
    destroying.destroy(server, prepared, state, say=lambda line: None)
    assert server.jobs == {} and server.files == {}
    assert not (root / ".databricks/bundle/dev").exists()


def test_wheel_artifacts_are_built_uploaded_and_referenced(root):
    build = f"{sys.executable} -c \"import pathlib; pathlib.Path('dist').mkdir(); " \
            "pathlib.Path('dist/shop-0.1-py3-none-any.whl').write_bytes(b'wheel')\""
    (root / "databricks.yml").write_text((root / "databricks.yml").read_text() + (
        "artifacts:\n  shop_wheel:\n    type: whl\n    build: " + json.dumps(build) + "\n"))
    (root / "resources/jobs.yml").write_text((root / "resources/jobs.yml").read_text().replace(
        "      name: orders\n", "      name: orders\n      environments:\n"
        "        - environment_key: default\n          spec:\n"
        "            dependencies: [../dist/*.whl, requests]\n"))
    server = FakeServer()
    deployed(server, root)
    uploaded = f"{ROOT_PATH}/artifacts/.internal/shop-0.1-py3-none-any.whl"
    assert server.files[uploaded] == b"wheel"
    orders = server.jobs[job_ids(server)["orders"]]
    assert orders["environments"][0]["spec"]["dependencies"] == [uploaded, "requests"]


def test_a_failed_artifact_build_stops_the_deploy_with_its_output(root):
    (root / "databricks.yml").write_text((root / "databricks.yml").read_text() + (
        "artifacts:\n  shop_wheel:\n    type: whl\n    build: echo no compiler here >&2; exit 3\n"))
    server = FakeServer()
    with pytest.raises(BundleError) as caught:
        deployed(server, root)
    assert "build failed" in str(caught.value) and "no compiler here" in str(caught.value)
    assert server.jobs == {} and server.files == {}


def test_a_job_changed_on_the_server_is_put_back_by_the_next_deploy(root):
    server = FakeServer()
    deployed(server, root)
    orders = job_ids(server)["orders"]
    server.jobs[orders]["edit_mode"] = "EDITABLE"  # disconnected from the bundle and edited in the UI
    server.jobs[orders]["name"] = "orders (edited by hand)"
    server.calls.clear()
    deployed(server, root)
    assert server.jobs[orders]["name"] == "orders" and server.jobs[orders]["edit_mode"] == "UI_LOCKED"
    assert server.calls.count("reset_job") == 1  # the other job was not touched


def test_a_warehouse_deleted_behind_the_bundles_back_is_created_again(tmp_path):
    root = write_bundle(tmp_path / "wh", {"databricks.yml": """
        bundle: {name: wh}
        resources:
          sql_warehouses:
            reporting: {name: reporting, cluster_size: 2X-Small}
          jobs:
            report:
              tasks:
                - task_key: q
                  sql_task: {warehouse_id: "${resources.sql_warehouses.reporting.id}", query: {query_id: x}}
    """})
    server = FakeServer()
    deployed(server, root)
    (first,) = server.warehouses
    del server.warehouses[first]
    deployed(server, root)
    (second,) = server.warehouses
    assert second != first
    (job,) = server.jobs.values()
    assert job["tasks"][0]["sql_task"]["warehouse_id"] == second


def test_destroy_releases_a_lock_kept_outside_the_root_path(root):
    (root / "databricks.yml").write_text((root / "databricks.yml").read_text().replace(
        "targets:", "workspace:\n  state_path: /Workspace/Shared/shop-state\ntargets:"))
    server = FakeServer()
    prepared = deployed(server, root)
    state, _ = destroying.plan(server, prepared)
    destroying.destroy(server, prepared, state, say=lambda line: None)
    assert "/Workspace/Shared/shop-state/deploy.lock" not in server.files
