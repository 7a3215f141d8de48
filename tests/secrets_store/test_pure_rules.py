"""vault's rules and redaction are the functional core: no Django, checked in a fresh interpreter;
and the rules themselves, without a database."""

import subprocess
import sys
from pathlib import Path

import pytest

from vault.rules import Permission, SecretRefused, allows, checked_name, checked_value, held_permission

ROOT = Path(__file__).resolve().parents[2]


def test_the_rules_and_redaction_import_without_django():
    code = "import sys, vault.rules, vault.redaction\nprint(sorted(m for m in sys.modules if m.startswith('django')))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_strongest_grant_wins_and_everyone_means_users():
    acls = {"alice": "READ", "data-team": "WRITE", "users": "READ"}
    assert held_permission(acls, {"alice"}, is_admin=False) == Permission.READ
    assert held_permission(acls, {"alice", "data-team"}, is_admin=False) == Permission.WRITE
    assert held_permission(acls, {"carol"}, is_admin=False) == Permission.READ  # through "users"
    assert held_permission({"alice": "MANAGE"}, {"carol"}, is_admin=False) is None
    assert held_permission({}, {"root"}, is_admin=True) == Permission.MANAGE
    assert allows(Permission.WRITE, Permission.READ) and not allows(Permission.WRITE, Permission.MANAGE)
    assert not allows(None, Permission.READ)


@pytest.mark.parametrize("name", ["a", "A-b_c.d", "x" * 128, "0"])
def test_names_databricks_accepts(name):
    assert checked_name("scope", name) == name


@pytest.mark.parametrize("name", ["", "a b", "a/b", "x" * 129, "é", None, 5, "a\nb"])
def test_names_databricks_refuses(name):
    with pytest.raises(SecretRefused):
        checked_name("key", name)


def test_a_value_may_be_128_kb_and_no_more():
    assert checked_value(b"x" * 128 * 1024)
    with pytest.raises(SecretRefused, match="limit is 131,072 bytes"):
        checked_value(b"x" * (128 * 1024 + 1))
