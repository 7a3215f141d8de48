"""``bundle destroy``: under the deploy lock, delete every resource the state records and the
bundle's whole workspace tree (files, artifacts, state), then the local state."""

import shutil

from lakeflow_cli.bundle.prepare import local_state_dir
from lakeflow_cli.bundle.state import Lock, State
from lakeflow_cli.client import NotFound


def plan(server, prepared):
    state = State(server, prepared.workspace["state_path"], prepared.name, prepared.target).load()
    lines = [f"delete job {key} ({entry['id']})" for key, entry in sorted(state.resources("jobs").items())]
    lines += [f"delete sql_warehouse {key} ({entry['id']})"
              for key, entry in sorted(state.resources("sql_warehouses").items())]
    lines.append(f"delete all files in {prepared.workspace['root_path']}")
    return state, lines


def destroy(server, prepared, state, *, say, force_lock=False):
    lock = Lock(server, prepared.workspace["state_path"], server.me()["userName"]).acquire(force_lock)
    root = prepared.workspace["root_path"].rstrip("/") + "/"
    lock_inside_root = lock.path.startswith(root)
    removed_tree = False
    try:
        state.load()
        for kind, remove in (("jobs", server.delete_job), ("sql_warehouses", server.delete_warehouse)):
            for key, entry in sorted(state.resources(kind).items()):
                say(f"Deleting {kind[:-1].replace('_', ' ')} {key} ({entry['id']})...")
                try:
                    remove(int(entry["id"]) if kind == "jobs" else entry["id"])
                except NotFound:
                    pass
                state.forget(kind, key)
        say(f"Deleting {prepared.workspace['root_path']}...")
        try:
            server.delete_path(prepared.workspace["root_path"], recursive=True)
        except NotFound:
            pass
        removed_tree = True
    finally:
        if not (removed_tree and lock_inside_root):  # a state_path outside root_path keeps its lock file
            lock.release()
    shutil.rmtree(local_state_dir(prepared.root, prepared.target), ignore_errors=True)
    say("Destroy complete!")
