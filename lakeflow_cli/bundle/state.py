"""Deployment state and the deploy lock, kept in the workspace under ``workspace.state_path`` as
the CLI keeps them, so that any machine deploying the same bundle and target sees them:

- ``resources.json``: what this bundle created (ids per resource key, and a hash of the settings
  last sent); rewritten after every change so a deploy that stops half way is finished by the
  next one, never repeated;
- ``metadata.json``: the bundle, target and resources, read by the dashboard for deployed jobs;
- ``deploy.lock``: created exclusively (an import without overwrite), so a second deploy of the
  same target at once is refused until the first removes it.
"""

import hashlib
import json
import posixpath
import uuid
from datetime import datetime, timezone

from lakeflow_cli.bundle.problems import BundleError, Problem
from lakeflow_cli.client import NotFound, ResourceAlreadyExists

STATE_FILE, METADATA_FILE, LOCK_FILE = "resources.json", "metadata.json", "deploy.lock"


def settings_hash(settings):
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


class State:
    def __init__(self, server, state_path, bundle, target):
        self.server, self.state_path = server, state_path
        self.data = {"version": 1, "bundle": bundle, "target": target, "seq": 0, "resources": {}}

    def path(self, name):
        return posixpath.join(self.state_path, name)

    def load(self):
        try:
            data = json.loads(self.server.download(self.path(STATE_FILE)))
        except NotFound:
            return self
        if isinstance(data, dict) and isinstance(data.get("resources"), dict):
            self.data.update(data)
        return self

    def save(self):
        self.data["seq"] += 1
        self.server.mkdirs(self.state_path)
        self.server.upload(self.path(STATE_FILE), json.dumps(self.data, indent=1, sort_keys=True).encode())

    def resources(self, kind):
        return self.data["resources"].setdefault(kind, {})

    def record(self, kind, key, resource_id, sha, server_sha=None):
        """``sha``: what the bundle sent; ``server_sha``: what the server answered for it after, so
        a later change made on the server (drift) is seen and undone by the next deploy."""
        self.resources(kind)[key] = {"id": str(resource_id), "sha": sha, "server_sha": server_sha}
        self.save()

    def forget(self, kind, key):
        self.resources(kind).pop(key, None)
        self.save()


class Lock:
    def __init__(self, server, state_path, user):
        self.server, self.user = server, user
        self.path = posixpath.join(state_path, LOCK_FILE)
        self.state_path = state_path
        self.id = str(uuid.uuid4())

    def acquire(self, force=False):
        body = json.dumps({"ID": self.id, "AcquisitionTime": datetime.now(timezone.utc).isoformat(),
                           "IsForced": force, "User": self.user}).encode()
        self.server.mkdirs(self.state_path)
        try:
            self.server.import_exclusive(self.path, body)
        except ResourceAlreadyExists:
            holder = self._holder()
            if not force:
                raise BundleError([Problem(
                    f"Failed to acquire deployment lock: deploy lock acquired by {holder.get('User', 'someone')} at "
                    f"{holder.get('AcquisitionTime', 'an unknown time')}. Use --force-lock to override")]) from None
            self.server.upload(self.path, body, overwrite=True)
        return self

    def release(self):
        if self._holder().get("ID") == self.id:  # a forced lock taken from us is not ours to remove
            try:
                self.server.delete_path(self.path)
            except NotFound:
                pass

    def _holder(self):
        try:
            return json.loads(self.server.download(self.path))
        except (NotFound, ValueError):
            return {}
