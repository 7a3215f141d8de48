"""Bundles written on disk for the CLI's tests, and an in-memory twin of the server's API as the
``lakeflow`` command uses it (``lakeflow_cli.client.Server``)."""

import json
import textwrap
from pathlib import Path

from lakeflow_cli.client import NotFound, ResourceAlreadyExists

ALICE = {"userName": "alice@example.com", "displayName": "Alice"}


def write_bundle(root, files):
    """``files``: relative path -> text (dedented)."""
    root = Path(root)
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    return root


def no_lookup(kind, name):
    raise LookupError(f"no {kind} named {name!r}")


class FakeServer:
    """Jobs, permissions, warehouses and workspace files in dicts; ``fail_on`` makes one call
    raise, as a server that goes away half way through a deploy."""

    host = "http://lakeflow.test"

    def __init__(self, user=ALICE):
        self.user = user
        self.jobs, self.permissions, self.warehouses, self.files = {}, {}, {}, {}
        self.next_id = 100
        self.calls = []
        self.fail_on = None  # (method name, how many calls of it succeed first)

    def _count(self, name):
        self.calls.append(name)
        if self.fail_on and self.fail_on[0] == name:
            if self.fail_on[1] <= 0:
                self.fail_on = None
                raise ConnectionError(f"the server went away during {name}")
            self.fail_on = (name, self.fail_on[1] - 1)

    def me(self):
        return dict(self.user)

    def lookup(self, kind, name):
        return no_lookup(kind, name)

    def create_job(self, settings):
        self._count("create_job")
        self.next_id += 1
        self.jobs[self.next_id] = json.loads(json.dumps(settings))
        return self.next_id

    def reset_job(self, job_id, settings):
        self._count("reset_job")
        if int(job_id) not in self.jobs:
            raise NotFound(f"Job {job_id} does not exist.")
        self.jobs[int(job_id)] = json.loads(json.dumps(settings))

    def get_job(self, job_id):
        if int(job_id) not in self.jobs:
            raise NotFound(f"Job {job_id} does not exist.")
        return {"job_id": int(job_id), "settings": self.jobs[int(job_id)]}

    def delete_job(self, job_id):
        self._count("delete_job")
        if int(job_id) not in self.jobs:
            raise NotFound(f"Job {job_id} does not exist.")
        del self.jobs[int(job_id)]

    def jobs_named(self, name):
        return [{"job_id": i, "settings": s} for i, s in self.jobs.items() if s.get("name") == name]

    def validate_job(self, settings, job_id=None):
        problems = []
        for index, task in enumerate(settings.get("tasks") or []):
            if not task.get("task_key"):
                problems.append({"path": f"tasks[{index}].task_key", "message": "task_key is required"})
            target = (task.get("run_job_task") or {}).get("job_id")
            if target is not None and not str(target).isdigit():
                problems.append({"path": f"tasks[{index}].run_job_task.job_id", "message": "must be an integer"})
            elif target is not None and int(target) not in self.jobs:
                problems.append({"path": f"tasks[{index}].run_job_task.job_id", "message": f"job {target} "
                                 "does not exist"})
        return problems

    def set_job_permissions(self, job_id, entries):
        self._count("set_job_permissions")
        self.permissions[int(job_id)] = entries

    def create_warehouse(self, body):
        self._count("create_warehouse")
        self.next_id += 1
        warehouse_id = f"wh{self.next_id}"
        self.warehouses[warehouse_id] = body
        return warehouse_id

    def edit_warehouse(self, warehouse_id, body):
        if warehouse_id not in self.warehouses:
            raise NotFound(warehouse_id)
        self.warehouses[warehouse_id] = body

    def get_warehouse(self, warehouse_id):
        if warehouse_id not in self.warehouses:
            raise NotFound(warehouse_id)
        return {"id": warehouse_id, "state": "RUNNING", **self.warehouses[warehouse_id]}

    def delete_warehouse(self, warehouse_id):
        self.warehouses.pop(warehouse_id, None)

    def mkdirs(self, path):
        pass

    def upload(self, path, content, overwrite=True):
        self._count("upload")
        self.files[path] = content

    def download(self, path):
        if path not in self.files:
            raise NotFound(path)
        return self.files[path]

    def import_exclusive(self, path, content):
        if path in self.files:
            raise ResourceAlreadyExists(f"{path} already exists")
        self.files[path] = content

    def delete_path(self, path, recursive=False):
        doomed = [p for p in self.files if p == path or (recursive and p.startswith(path.rstrip("/") + "/"))]
        if not doomed:
            raise NotFound(path)
        for p in doomed:
            del self.files[p]
