"""`manage.py secrets`: scopes and secrets without the API, the value from stdin only."""

import io
import sys

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command

from vault import crypto
from vault.models import Secret
from vault.store import read_secret


def run(*args, stdin=b""):
    out = io.StringIO()
    saved = sys.stdin
    sys.stdin = io.TextIOWrapper(io.BytesIO(stdin))
    try:
        call_command("secrets", *args, stdout=out)
    finally:
        sys.stdin = saved
    return out.getvalue()


def test_create_put_list_and_delete(db, alice):
    run("create-scope", "ops", "--manage-principal", "alice")
    assert "Put secret token in scope ops (6 bytes)" in run("put", "ops", "token", stdin=b"abc123\n")
    assert read_secret("ops", "token", alice) == b"abc123"  # echo's newline dropped; alice manages it
    run("put", "ops", "pem", "--keep-trailing-newline", stdin=b"line\n")
    assert read_secret("ops", "pem", None) == b"line\n"
    assert run("list").split() == ["ops"]
    listed = run("list", "ops")
    assert [line.split("\t")[0] for line in listed.splitlines()] == ["pem", "token"]
    assert "abc123" not in listed
    run("delete", "ops", "pem")
    assert [line.split("\t")[0] for line in run("list", "ops").splitlines()] == ["token"]
    run("delete", "ops")
    assert run("list") == ""


def test_refusals_are_command_errors_that_never_echo_the_value(db):
    with pytest.raises(CommandError, match="Scope nope does not exist!"):
        run("put", "nope", "k", stdin=b"value")
    run("create-scope", "s")
    with pytest.raises(CommandError, match="Invalid key name"):
        run("put", "s", "bad key", stdin=b"value")
    with pytest.raises(CommandError, match="limit is 131,072 bytes") as too_big:
        run("put", "s", "k", stdin=b"v" * (128 * 1024 + 10))
    assert "vvvv" not in str(too_big.value)
    with pytest.raises(CommandError, match="already exists"):
        run("create-scope", "s")


def test_input_longer_than_a_value_and_its_newline_is_refused_not_cut_short(db):
    run("create-scope", "s")
    limit = 128 * 1024
    run("put", "s", "fits", stdin=b"v" * limit + b"\r\n")  # the longest value, as a Windows echo ends it
    assert read_secret("s", "fits", None) == b"v" * limit
    with pytest.raises(CommandError, match="limit is 131,072 bytes"):
        run("put", "s", "longer", stdin=b"v" * limit + b"\r\nmore")
    with pytest.raises(CommandError, match="limit is 131,072 bytes"):
        run("put", "s", "longer", stdin=b"v" * limit + b"\r\n\n")
    assert not Secret.objects.filter(key="longer").exists()


def test_rotate_key_re_encrypts_with_the_first_key(db, settings):
    old = Fernet.generate_key().decode()
    settings.LAKEFLOW_SECRETS_KEY = old
    crypto.forget_keys()
    try:
        run("create-scope", "s")
        run("put", "s", "k", stdin=b"rotate-me")
        new = Fernet.generate_key().decode()
        settings.LAKEFLOW_SECRETS_KEY = f"{new},{old}"
        crypto.forget_keys()
        assert "Re-encrypted 1 values" in run("rotate-key")
        settings.LAKEFLOW_SECRETS_KEY = new  # the old key is gone: the value still reads
        crypto.forget_keys()
        assert read_secret("s", "k", None) == b"rotate-me"
        assert Fernet(new.encode()).decrypt(bytes(Secret.objects.get().encrypted_value)) == b"rotate-me"
    finally:
        crypto.forget_keys()


def test_without_a_configured_key_one_is_generated_once_and_kept_private(settings, tmp_path):
    settings.LAKEFLOW_SECRETS_KEY = ""
    settings.LAKEFLOW_HOME = tmp_path
    crypto.forget_keys()
    try:
        token = crypto.encrypt(b"v")
        kept = (tmp_path / "secrets_key").read_text()
        assert (tmp_path / "secrets_key").stat().st_mode & 0o777 == 0o600
        crypto.forget_keys()
        assert crypto.decrypt(token) == b"v"  # read back from the file, not generated anew
        assert (tmp_path / "secrets_key").read_text() == kept
        (tmp_path / "secrets_key").write_text(Fernet.generate_key().decode())  # the key was lost
        crypto.forget_keys()
        with pytest.raises(crypto.Unreadable, match="changed or lost"):
            crypto.decrypt(token)
    finally:
        crypto.forget_keys()
