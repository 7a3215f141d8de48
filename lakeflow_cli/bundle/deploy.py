"""``bundle deploy``: check everything first (locally, then the server's own validation of each
job), build artifacts, then under the deploy lock upload artifacts, sync files, create or update
each resource (recording its id at once), delete what the bundle no longer has, and write the
metadata the dashboard reads."""

import json
import posixpath
import uuid
from pathlib import Path

from lakeflow_cli.bundle import artifacts, interpolate, sync
from lakeflow_cli.bundle.located import plain, where
from lakeflow_cli.bundle.prepare import deploy_order, job_permissions, job_settings, local_state_dir
from lakeflow_cli.bundle.problems import BundleError, Problem
from lakeflow_cli.bundle.state import METADATA_FILE, Lock, State, settings_hash
from lakeflow_cli.client import NotFound


def metadata_path(prepared):
    return posixpath.join(prepared.workspace["state_path"], METADATA_FILE)


def known_ids(state):
    ids = {}
    for kind, items in state.data["resources"].items():
        for key, entry in items.items():
            ids[(kind, key, "id")] = entry["id"]
    return ids


def server_problems(server, prepared, state):
    """The server's validation of every job as it would be sent (nothing is saved). A job the
    state names but the server no longer has will be created again: references to it stay open."""
    problems = []
    ids = {ref: resource_id for ref, resource_id in known_ids(state).items() if _exists(server, ref[0], resource_id)}
    jobs = prepared.resources("jobs")
    for key in jobs:
        settings = job_settings(prepared, key, metadata_path=metadata_path(prepared))
        open_paths = [interpolate.dotted(path) for path, target in interpolate.deployed_references(settings)
                      if (target[0], target[1], "id") not in ids]
        settings = interpolate.substitute_deployed(settings, ids)
        job_id = ids.get(("jobs", key, "id"))
        found = server.validate_job(settings, int(job_id) if job_id is not None else None)
        for problem in found:
            if any(problem["path"] == p or problem["path"].startswith(p + ".") for p in open_paths):
                continue  # a reference to a job this deploy creates first
            field = problem["path"].split(".")[0].split("[")[0]
            problems.append(Problem(f"the server refuses job {key}: {problem['path']}: {problem['message']}",
                                    where(jobs[key], field), f"resources.jobs.{key}.{problem['path']}"))
    return problems


def deploy(server, prepared, *, say, force_lock=False):
    state = State(server, prepared.workspace["state_path"], prepared.name, prepared.target).load()
    artifacts.build(prepared.config, prepared.root, say)
    uploads, problems = artifacts.collect_uploads(prepared.config, prepared.root)
    problems += server_problems(server, prepared, state)
    if problems:
        raise BundleError(problems)
    lock = Lock(server, prepared.workspace["state_path"], server.me()["userName"]).acquire(force_lock)
    try:
        state.load()  # as the lock holder sees it
        _upload_artifacts(server, uploads, say)
        _sync_files(server, prepared, state, say)
        say("Deploying resources...")
        deploy_resources(server, prepared, state, say)
        _write_metadata(server, prepared, state)
    finally:
        lock.release()
    say("Deployment complete!")
    return state


def _upload_artifacts(server, uploads, say):
    for directory in sorted({posixpath.dirname(remote) for remote in uploads.values()}):
        server.mkdirs(directory)
    for local, remote in sorted(uploads.items()):
        say(f"Uploading {Path(local).name}...")
        server.upload(remote, Path(local).read_bytes())


def _sync_files(server, prepared, state, say):
    sync_config = prepared.config.get("sync") or {}
    files = sync.bundle_files(prepared.root, plain(sync_config.get("include") or []),
                              plain(sync_config.get("exclude") or []))
    remote_root = prepared.workspace["file_path"]
    snapshot_path = local_state_dir(prepared.root, prepared.target) / "sync-snapshot.json"
    snapshot = sync.read_snapshot(snapshot_path)
    if snapshot.get("sync_id") != state.data.get("sync_id"):
        snapshot = {}  # the workspace copy is not the one this machine last wrote: send everything
    upload, delete, new_snapshot = sync.plan(prepared.root, files, snapshot, remote_root)
    say(f"Uploading bundle files to {remote_root}...")
    server.mkdirs(remote_root)
    for directory in sorted({posixpath.dirname(rel) for rel in upload if "/" in rel}):
        server.mkdirs(posixpath.join(remote_root, directory))
    for rel in upload:
        server.upload(posixpath.join(remote_root, rel), (prepared.root / rel).read_bytes())
    for rel in delete:
        try:
            server.delete_path(posixpath.join(remote_root, rel))
        except NotFound:
            pass
    if upload or delete or "sync_id" not in state.data:
        state.data["sync_id"] = str(uuid.uuid4())
        state.save()
    new_snapshot["sync_id"] = state.data["sync_id"]
    sync.write_snapshot(snapshot_path, new_snapshot)


def deploy_resources(server, prepared, state, say):
    ids = known_ids(state)
    for kind, key in deploy_order(prepared.config):
        if kind == "jobs":
            ids[(kind, key, "id")] = _deploy_job(server, prepared, state, key, ids)
        elif kind == "sql_warehouses":
            ids[(kind, key, "id")] = _deploy_warehouse(server, prepared, state, key)
    for kind, remove in (("jobs", server.delete_job), ("sql_warehouses", server.delete_warehouse)):
        for key in sorted(set(state.resources(kind)) - set(prepared.resources(kind))):
            say(f"Deleting {kind[:-1].replace('_', ' ')} {key} ({state.resources(kind)[key]['id']})...")
            try:
                remove(state.resources(kind)[key]["id"])
            except NotFound:
                pass
            state.forget(kind, key)


def _deploy_job(server, prepared, state, key, ids):
    settings = interpolate.substitute_deployed(job_settings(prepared, key, metadata_path=metadata_path(prepared)), ids)
    permissions = job_permissions(prepared, key)
    sha = settings_hash({"settings": settings, "permissions": permissions})
    existing = state.resources("jobs").get(key) or _adoptable_job(server, settings)
    job_id = existing["id"] if existing else None
    if job_id is not None and existing.get("sha") == sha:
        on_server = _server_settings(server, job_id)
        if on_server is not None and settings_hash(on_server) == existing.get("server_sha"):
            return job_id  # unchanged here and not edited there since the last deploy
    if job_id is not None:
        try:
            server.reset_job(int(job_id), settings)
        except NotFound:
            job_id = None
    if job_id is None:
        job_id = str(server.create_job(settings))
    state.record("jobs", key, job_id, None)  # the id first: a failure below must not create it twice
    if permissions:
        server.set_job_permissions(int(job_id), permissions)
    state.record("jobs", key, job_id, sha, settings_hash(_server_settings(server, job_id)))
    return job_id


def _adoptable_job(server, settings):
    """A job an interrupted deploy created before it could record it: same name, same bundle."""
    mine = [job for job in server.jobs_named(settings["name"])
            if _same_deployment((job.get("settings") or {}).get("deployment"), settings["deployment"])]
    return {"id": str(mine[0]["job_id"]), "sha": None} if len(mine) == 1 else None


def _same_deployment(found, ours):
    return isinstance(found, dict) and all(found.get(key) == ours[key] for key in ("kind", "metadata_file_path"))


def _server_settings(server, job_id):
    try:
        return server.get_job(int(job_id)).get("settings")
    except NotFound:
        return None


def _exists(server, kind, resource_id):
    """Whether the server still has a resource the state names (a deleted warehouse answers
    with state DELETED until it is forgotten)."""
    try:
        if kind == "jobs":
            server.get_job(int(resource_id))
            return True
        return server.get_warehouse(resource_id).get("state") != "DELETED"
    except NotFound:
        return False


def _deploy_warehouse(server, prepared, state, key):
    body = plain(prepared.resources("sql_warehouses")[key])
    body.pop("permissions", None)
    sha = settings_hash(body)
    existing = state.resources("sql_warehouses").get(key)
    if existing and _exists(server, "sql_warehouses", existing["id"]):
        if existing.get("sha") != sha:
            server.edit_warehouse(existing["id"], body)
            state.record("sql_warehouses", key, existing["id"], sha)
        return existing["id"]
    warehouse_id = server.create_warehouse(body)
    state.record("sql_warehouses", key, warehouse_id, sha)
    return warehouse_id


def _write_metadata(server, prepared, state):
    jobs = {}
    for key, entry in state.resources("jobs").items():
        location = where(prepared.resources("jobs"), key)
        jobs[key] = {"id": entry["id"], "relative_path": location.file if location else ""}
    bundle = {"name": prepared.name, "target": prepared.target}
    git = (prepared.config.get("bundle") or {}).get("git")
    if git:
        bundle["git"] = plain(git)
    metadata = {"version": 1, "config": {"bundle": bundle, "workspace": {"file_path": prepared.workspace["file_path"]},
                                         "resources": {"jobs": jobs}}}
    server.upload(metadata_path(prepared), json.dumps(metadata, indent=1).encode())

