"""``dbutils.secrets`` in a task process: get, getBytes, list, listScopes, as on Databricks.

Loaded by dbutils.py on first use of ``dbutils.secrets`` (by file path, like dbutils.py itself);
standard library only, and ``urllib``/``json`` are imported on the first call. It asks the
server's Secrets API with the attempt's secrets credential (LAKEFLOW_SECRETS_URL and
LAKEFLOW_SECRETS_TOKEN, set by the worker): that reads what the run's run-as identity may READ,
while the attempt runs. The server records each value read, and shows it as [REDACTED] wherever
it shows this attempt's output.
"""

import os

URL_ENV = "LAKEFLOW_SECRETS_URL"
TOKEN_ENV = "LAKEFLOW_SECRETS_TOKEN"
SWITCH_ENV = "LAKEFLOW_TASK_SECRETS"


class SecretsError(RuntimeError):
    """The server refused or could not answer; the message names the scope and key."""


class SecretNotFound(SecretsError, KeyError):
    def __str__(self):  # KeyError would quote the message
        return self.args[0]


SecretsError.__module__ = SecretNotFound.__module__ = "dbutils"


class SecretMetadata:
    def __init__(self, key):
        self.key = key

    def __repr__(self):
        return f"SecretMetadata(key='{self.key}')"

    def __eq__(self, other):
        return isinstance(other, SecretMetadata) and other.key == self.key


class SecretScope:
    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"SecretScope(name='{self.name}')"

    def __eq__(self, other):
        return isinstance(other, SecretScope) and other.name == self.name


class Secrets:
    """``dbutils.secrets``."""

    def get(self, scope, key):
        return self.getBytes(scope, key).decode("utf-8")

    def getBytes(self, scope, key):  # noqa: N802 (Databricks' name)
        import base64

        body = _call("get", {"scope": _text("scope", scope), "key": _text("key", key)}, scope, key)
        return base64.b64decode(body.get("value") or "")

    def list(self, scope):
        body = _call("list", {"scope": _text("scope", scope)}, scope)
        return [SecretMetadata(item["key"]) for item in body.get("secrets") or []]

    def listScopes(self):  # noqa: N802
        return [SecretScope(item["name"]) for item in _call("scopes/list", {}).get("scopes") or []]

    def help(self, method=None):
        print("dbutils.secrets: get(scope, key) -> str, getBytes(scope, key) -> bytes, "
              "list(scope) -> [SecretMetadata], listScopes() -> [SecretScope]")

    def __repr__(self):
        return "<dbutils.secrets (lakeflow)>"


def _text(name, value):
    if not isinstance(value, str) or not value:
        raise TypeError(f"dbutils.secrets: {name} must be a non-empty string, not {value!r}")
    return value


def _call(route, query, scope=None, key=None):
    url, token = os.environ.get(URL_ENV), os.environ.get(TOKEN_ENV)
    if (not url or not token) and os.environ.get(SWITCH_ENV) == "false":
        raise SecretsError(f"dbutils.secrets is turned off on this server: its operator set {SWITCH_ENV}=false, "
                           "so tasks get no credential to read secrets with")
    if not url or not token:
        raise SecretsError("dbutils.secrets works inside a task run by this server, whose run has a run-as "
                           f"identity: {URL_ENV} and {TOKEN_ENV} are not set")
    import json
    import urllib.error
    import urllib.parse
    import urllib.request

    request = urllib.request.Request(
        f"{url.rstrip('/')}/api/2.0/secrets/{route}?{urllib.parse.urlencode(query)}",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})
    where = "".join([f" scope {scope!r}" if scope is not None else "", f" key {key!r}" if key is not None else ""])
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            error = json.loads(exc.read())
            code, message = error.get("error_code", ""), error.get("message", "")
        except ValueError:
            code, message = "", ""
        message = message or f"HTTP {exc.code}"
        if exc.code == 404:
            raise SecretNotFound(f"dbutils.secrets:{where}: {message}") from None
        raise SecretsError(f"dbutils.secrets:{where}: {code or exc.code} {message}".rstrip()) from None
    except OSError as exc:  # URLError, timeouts, refused connections
        raise SecretsError(f"dbutils.secrets:{where}: the server at {url} cannot be reached: {exc}") from None
