"""What a request is called in the audit log, and which of its parameters are secret. Pure.

Names follow Databricks' audit log (service "jobs": create, update, reset, delete, runNow,
submitRun, cancel, cancelAllRuns, repairRun, deleteRun, changeJobAcl; "tokens", "accounts";
"databrickssql": createWarehouse, editWarehouse, deleteWarehouse, startWarehouse, stopWarehouse);
a route not named here is logged under its URL name, so nothing is left out."""

import re

# (URL name without the API version suffix, method) -> (service, action); method None: any.
API_ACTIONS = {
    ("jobs-create", None): ("jobs", "create"),
    ("jobs-update", None): ("jobs", "update"),
    ("jobs-reset", None): ("jobs", "reset"),
    ("jobs-delete", None): ("jobs", "delete"),
    ("jobs-run-now", None): ("jobs", "runNow"),
    ("jobs-runs-submit", None): ("jobs", "submitRun"),
    ("jobs-runs-cancel", None): ("jobs", "cancel"),
    ("jobs-runs-cancel-all", None): ("jobs", "cancelAllRuns"),
    ("jobs-runs-repair", None): ("jobs", "repairRun"),
    ("jobs-runs-delete", None): ("jobs", "deleteRun"),
    ("jobs-backfill", None): ("jobs", "createBackfill"),  # ours, like the backfills API
    ("jobs-backfills-cancel", None): ("jobs", "cancelBackfill"),
    ("jobs-backfills-repair-failed", None): ("jobs", "repairBackfill"),
    ("job-permissions", "PUT"): ("jobs", "changeJobAcl"),
    ("job-permissions", "PATCH"): ("jobs", "changeJobAcl"),
    ("token-create", None): ("tokens", "create"),
    ("token-delete", None): ("tokens", "revoke"),
    ("token-management-token", "DELETE"): ("tokens", "revoke"),
    ("token-on-behalf-of", None): ("tokens", "createOnBehalfOf"),
    ("scim-users", "POST"): ("accounts", "createUser"),
    ("scim-user", "PUT"): ("accounts", "updateUser"),
    ("scim-user", "PATCH"): ("accounts", "updateUser"),
    ("scim-user", "DELETE"): ("accounts", "deleteUser"),
    ("scim-groups", "POST"): ("accounts", "createGroup"),
    ("scim-group", "PUT"): ("accounts", "updateGroup"),
    ("scim-group", "PATCH"): ("accounts", "updateGroup"),
    ("scim-group", "DELETE"): ("accounts", "removeGroup"),
    ("scim-sps", "POST"): ("accounts", "createServicePrincipal"),
    ("scim-sp", "PUT"): ("accounts", "updateServicePrincipal"),
    ("scim-sp", "PATCH"): ("accounts", "updateServicePrincipal"),
    ("scim-sp", "DELETE"): ("accounts", "deleteServicePrincipal"),
    ("openlineage-events", None): ("lineage", "postEvent"),
    ("secrets-scopes-create", None): ("secrets", "createScope"),
    ("secrets-scopes-delete", None): ("secrets", "deleteScope"),
    ("secrets-put", None): ("secrets", "putSecret"),
    ("secrets-delete", None): ("secrets", "deleteSecret"),
    ("secrets-acls-put", None): ("secrets", "putAcl"),
    ("secrets-acls-delete", None): ("secrets", "deleteAcl"),
    ("git-credentials", "POST"): ("gitCredentials", "create"),
    ("git-credential", "PATCH"): ("gitCredentials", "update"),
    ("git-credential", "DELETE"): ("gitCredentials", "delete"),
    ("workspace-import", None): ("workspace", "import"),
    ("workspace-files-import-file", None): ("workspace", "import"),
    ("workspace-mkdirs", None): ("workspace", "mkdirs"),
    ("workspace-delete", None): ("workspace", "delete"),
    ("sql-warehouses", "POST"): ("databrickssql", "createWarehouse"),
    ("sql-warehouse-edit", None): ("databrickssql", "editWarehouse"),
    ("sql-warehouse", "DELETE"): ("databrickssql", "deleteWarehouse"),
    ("sql-warehouse-start", None): ("databrickssql", "startWarehouse"),
    ("sql-warehouse-stop", None): ("databrickssql", "stopWarehouse"),
    ("notification-destinations", "POST"): ("notificationDestinations", "create"),
    ("notification-destination", "PATCH"): ("notificationDestinations", "update"),
    ("notification-destination", "DELETE"): ("notificationDestinations", "delete"),
}
PAGE_ACTIONS = {
    "jobs:new": ("jobs", "create"), "jobs:new_source": ("jobs", "create"),
    "jobs:edit": ("jobs", "update"), "jobs:edit_source": ("jobs", "update"),
    "jobs:disconnect": ("jobs", "disconnectFromSource"),
    "jobs:run_now": ("jobs", "runNow"), "jobs:permissions": ("jobs", "changeJobAcl"),
    "runs:cancel": ("jobs", "cancel"), "runs:cancel_task": ("jobs", "cancelTaskRun"),
    "runs:repair": ("jobs", "repairRun"),
    "backfills:new": ("jobs", "createBackfill"), "backfills:cancel": ("jobs", "cancelBackfill"),
    "backfills:repair_failed": ("jobs", "repairBackfill"),
    "jobs:tokens": ("tokens", "create"), "jobs:revoke_token": ("tokens", "revoke"),
    "login": ("accounts", "login"), "logout": ("accounts", "logout"),
    "notifications:new": ("notificationDestinations", "create"),
    "notifications:edit": ("notificationDestinations", "update"),
    "notifications:delete": ("notificationDestinations", "delete"),
    "notifications:test": ("notificationDestinations", "sendTest"),
}
ADMIN_OPERATIONS = {"add": "create", "change": "update", "delete": "delete"}
SECRET_KEY = re.compile(r"password|passwd|secret|token|credential|api_?key|authorization|private|string_value|"
                        r"bytes_value|csrfmiddlewaretoken", re.IGNORECASE)
NOT_SECRET = re.compile(r"_id$|^idempotency_token$|^page_token$|^token_type$", re.IGNORECASE)
REDACTED = "[REDACTED]"
# The password of a URL in any value (a warehouse's lakeflow.connection_url tag is a "value").
URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/?#@:\s]*:)[^/?#\s]*@")
MAX_PARAMS_CHARACTERS = 8000
# A notification destination's config blocks whose every field is write-only (a webhook URL is
# its secret): config.slack.url and the like (notifications/destinations.py SECRET_FIELDS).
WRITE_ONLY_BLOCKS = ("slack", "microsoft_teams", "pagerduty", "generic_webhook")


def action_of(url_name, namespace, method):
    """(service, action) for a resolved request."""
    if namespace == "api":
        base = re.sub(r"-2\.[0-9]$", "", url_name or "")
        return API_ACTIONS.get((base, method)) or API_ACTIONS.get((base, None)) or ("api", f"{method} {base}")
    full = f"{namespace}:{url_name}" if namespace else (url_name or "")
    if full in PAGE_ACTIONS:
        return PAGE_ACTIONS[full]
    if namespace == "admin":
        match = re.match(r"^(\w+?)_(\w+)_(add|change|delete)$", url_name or "")
        if match:
            app, model, operation = match.groups()
            return "admin", f"{app}.{model}.{ADMIN_OPERATIONS[operation]}"
        return "admin", url_name or "unknown"
    return "web", full or "unknown"


MAX_DEPTH = 20  # deeper parts of a body are summarized: the log is no place for a 900-deep document
TOO_DEEP = "[NESTED TOO DEEP]"


def redacted(value, key="", depth=0):
    """The request's parameters with every secret-looking value replaced."""
    if key and SECRET_KEY.search(key) and not NOT_SECRET.search(key):
        return REDACTED
    if key == "content" and depth == 1 and isinstance(value, str):  # a workspace import: its size only
        return f"[{len(value):,} characters of content]"
    if isinstance(value, (dict, list)) and depth >= MAX_DEPTH:
        return TOO_DEEP
    if key in WRITE_ONLY_BLOCKS and depth <= 2:  # config.slack (or a slack block sent without its config)
        if not isinstance(value, dict):
            return REDACTED
        return {k: v if str(k).endswith("_set") and isinstance(v, bool) else REDACTED for k, v in value.items()}
    if isinstance(value, dict):
        return {k: redacted(v, str(k), depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [redacted(item, key, depth + 1) for item in value]
    if isinstance(value, str) and "://" in value:
        return URL_PASSWORD.sub(lambda m: f"{m['head']}{REDACTED}@", value)
    return value
