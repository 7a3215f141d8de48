"""Secrets without the API, for whoever runs the server (acts with MANAGE on every scope):

    manage.py secrets create-scope NAME [--manage-principal PRINCIPAL]
    manage.py secrets put SCOPE KEY < value-file        (the value from stdin, never from argv:
                                                          the process list shows arguments)
    manage.py secrets list [SCOPE]                      (scopes, or a scope's keys: never values)
    manage.py secrets delete SCOPE [KEY]                (a secret, or the whole scope)
    manage.py secrets grant SCOPE PRINCIPAL READ|WRITE|MANAGE
    manage.py secrets rotate-key                        (re-encrypt with LAKEFLOW_SECRETS_KEY's first key)
"""

import sys
from datetime import datetime, timezone

from django.core.management.base import BaseCommand, CommandError

from vault import store
from vault.rules import MAX_VALUE_BYTES, SecretRefused, permission_of


class Command(BaseCommand):
    help = "Create secret scopes, put, list and delete secrets (values from stdin), grant scope permissions."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create-scope", help="a new scope")
        create.add_argument("scope")
        create.add_argument("--manage-principal", help="a user or group to hold MANAGE on it (default: admins only)")
        put = actions.add_parser("put", help="put a secret, its value read from stdin")
        put.add_argument("scope")
        put.add_argument("key")
        put.add_argument("--keep-trailing-newline", action="store_true",
                         help="keep a final newline (by default one is dropped, as `echo` adds it)")
        listing = actions.add_parser("list", help="list scopes, or the keys of a scope")
        listing.add_argument("scope", nargs="?")
        delete = actions.add_parser("delete", help="delete a secret, or a scope with all its secrets")
        delete.add_argument("scope")
        delete.add_argument("key", nargs="?")
        grant = actions.add_parser("grant", help="give a principal a permission on a scope")
        grant.add_argument("scope")
        grant.add_argument("principal")
        grant.add_argument("permission", choices=["READ", "WRITE", "MANAGE"])
        actions.add_parser("rotate-key", help="re-encrypt every value with the first LAKEFLOW_SECRETS_KEY key")

    def handle(self, *args, action, **options):
        try:
            getattr(self, action.replace("-", "_"))(**options)
        except SecretRefused as exc:
            raise CommandError(exc.message) from None

    def create_scope(self, scope, manage_principal=None, **_):
        store.create_scope(scope, None)
        if manage_principal:
            store.put_acl(scope, manage_principal, permission_of("MANAGE"), None)
        self.stdout.write(f"Created scope {scope}")

    def put(self, scope, key, keep_trailing_newline=False, **_):
        # One byte past the longest value with its "\r\n": input that long is refused whole
        # (put_secret checks the size), never cut down to a value that fits.
        value = sys.stdin.buffer.read(MAX_VALUE_BYTES + 3)
        if not keep_trailing_newline and value.endswith(b"\n") and len(value) <= MAX_VALUE_BYTES + 2:
            value = value[:-2] if value.endswith(b"\r\n") else value[:-1]
        store.put_secret(scope, key, value, None)
        self.stdout.write(f"Put secret {key} in scope {scope} ({len(value)} bytes)")

    def list(self, scope=None, **_):
        if scope is None:
            for row in store.list_scopes():
                self.stdout.write(row.name)
            return
        for key, updated in store.list_secrets(scope, None):
            at = datetime.fromtimestamp(updated / 1000, tz=timezone.utc).isoformat(timespec="seconds")
            self.stdout.write(f"{key}\t{at}")

    def delete(self, scope, key=None, **_):
        if key is None:
            store.delete_scope(scope, None)
            self.stdout.write(f"Deleted scope {scope}")
        else:
            store.delete_secret(scope, key, None)
            self.stdout.write(f"Deleted secret {key} from scope {scope}")

    def grant(self, scope, principal, permission, **_):
        store.put_acl(scope, principal, permission_of(permission), None)
        self.stdout.write(f"Granted {permission} on scope {scope} to {principal}")

    def rotate_key(self, **_):
        self.stdout.write(f"Re-encrypted {store.rotate_key()} values")
