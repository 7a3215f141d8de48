"""The server, reached through the official databricks-sdk with its own auth: DATABRICKS_HOST
and DATABRICKS_TOKEN, or a profile of ~/.databrickscfg (``-p``), or the bundle's
``workspace.host``. Jobs calls go through the raw API client so that settings reach the server
exactly as the bundle wrote them (the SDK's dataclasses would drop fields they do not know)."""

import base64
import io
import os

from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import NotFound, ResourceAlreadyExists
from databricks.sdk.service.workspace import ImportFormat

JOBS = "/api/2.2/jobs"

__all__ = ["Server", "NotFound", "ResourceAlreadyExists"]


class Server:
    def __init__(self, profile=None, host=None):
        kwargs = {}
        if profile:
            kwargs["profile"] = profile
        elif host and not os.environ.get("DATABRICKS_HOST"):
            kwargs["host"] = host
        self.client = WorkspaceClient(**kwargs)
        self._me = None

    @property
    def host(self):
        return self.client.config.host.rstrip("/")

    def me(self):
        if self._me is None:
            me = self.client.current_user.me()
            self._me = {"userName": me.user_name, "displayName": me.display_name or me.user_name,
                        "id": me.id}
        return self._me

    def call(self, method, path, body=None, query=None):
        return self.client.api_client.do(method, path, body=body, query=query) or {}

    # --- jobs ---------------------------------------------------------------------------

    def create_job(self, settings):
        return self.call("POST", f"{JOBS}/create", settings)["job_id"]

    def reset_job(self, job_id, settings):
        self.call("POST", f"{JOBS}/reset", {"job_id": job_id, "new_settings": settings})

    def get_job(self, job_id):
        return self.call("GET", f"{JOBS}/get", query={"job_id": job_id})

    def delete_job(self, job_id):
        self.call("POST", f"{JOBS}/delete", {"job_id": job_id})

    def jobs_named(self, name):
        return self.call("GET", f"{JOBS}/list", query={"name": name, "limit": 100}).get("jobs", [])

    def validate_job(self, settings, job_id=None):
        body = {"settings": settings}
        if job_id is not None:
            body["job_id"] = job_id
        return self.call("POST", f"{JOBS}/validate", body)["problems"]

    def set_job_permissions(self, job_id, entries):
        current = self.call("GET", f"/api/2.0/permissions/jobs/{job_id}")
        if not any(e.get("permission_level") == "IS_OWNER" for e in entries):
            for entry in current.get("access_control_list") or []:
                if any(p.get("permission_level") == "IS_OWNER" for p in entry.get("all_permissions") or []):
                    principal = {k: entry[k] for k in ("user_name", "group_name", "service_principal_name")
                                 if entry.get(k)}
                    entries = [e for e in entries if {k: e.get(k) for k in principal} != principal]
                    entries.append({**principal, "permission_level": "IS_OWNER"})
        self.call("PUT", f"/api/2.0/permissions/jobs/{job_id}", {"access_control_list": entries})

    # --- warehouses ---------------------------------------------------------------------

    def create_warehouse(self, body):
        return self.call("POST", "/api/2.0/sql/warehouses", body)["id"]

    def edit_warehouse(self, warehouse_id, body):
        self.call("POST", f"/api/2.0/sql/warehouses/{warehouse_id}/edit", body)

    def get_warehouse(self, warehouse_id):
        return self.call("GET", f"/api/2.0/sql/warehouses/{warehouse_id}")

    def delete_warehouse(self, warehouse_id):
        self.call("DELETE", f"/api/2.0/sql/warehouses/{warehouse_id}")

    # --- workspace files ----------------------------------------------------------------

    def mkdirs(self, path):
        self.client.workspace.mkdirs(path)

    def upload(self, path, content: bytes, overwrite=True):
        self.client.workspace.upload(path, io.BytesIO(content), format=ImportFormat.AUTO, overwrite=overwrite)

    def download(self, path):
        with self.client.workspace.download(path) as handle:
            return handle.read()

    def import_exclusive(self, path, content: bytes):
        """Create ``path`` only if it does not exist (raises ResourceAlreadyExists): the deploy lock."""
        self.call("POST", "/api/2.0/workspace/import", {
            "path": path, "format": "AUTO", "overwrite": False, "content": base64.b64encode(content).decode()})

    def delete_path(self, path, recursive=False):
        self.client.workspace.delete(path, recursive=recursive)

    # --- lookups of variables -------------------------------------------------------------

    def lookup(self, kind, name):
        if kind == "warehouse":
            for warehouse in self.call("GET", "/api/2.0/sql/warehouses").get("warehouses", []):
                if warehouse.get("name") == name or warehouse.get("id") == name:
                    return warehouse["id"]
            raise LookupError(f"warehouse named {name!r} not found")
        if kind == "job":
            jobs = self.jobs_named(name)
            if len(jobs) != 1:
                raise LookupError(f"job named {name!r}: {len(jobs)} found, expected exactly one")
            return str(jobs[0]["job_id"])
        if kind == "service_principal":
            listed = self.call("GET", "/api/2.0/preview/scim/v2/ServicePrincipals").get("Resources") or []
            for principal in listed:
                if name in (principal.get("displayName"), principal.get("applicationId")):
                    return principal["applicationId"]
            raise LookupError(f"service principal named {name!r} not found")
        raise LookupError(f"lookup of a {kind} is not supported by this server")
