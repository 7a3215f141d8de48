"""The scale-out mode refuses to start without LAKEFLOW_SECRETS_KEY or SECRET_KEY: each machine
would generate keys of its own, secrets put through one process could not be read, nor redacted,
by another, and a node would drop the broker messages another signed. The embedded default
generates both in LAKEFLOW_HOME."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]
SECRET_KEY = "a-scale-out-secret-key-of-more-than-32-characters"


def start_settings(tmp_path, **variables):
    """Load the server's settings in a fresh interpreter, as every process starts; (exit code, stderr)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DJANGO_", "DATABASE_URL", "REDIS_URL", "LAKEFLOW_", "SECRET_KEY"))}
    env.update(LAKEFLOW_HOME=str(tmp_path / "home"), LAKEFLOW_TASK_USER="", **variables)
    done = subprocess.run([sys.executable, "-c", "import lakeflow_site.settings"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    return done.returncode, done.stderr


@pytest.mark.parametrize("variables", [
    {"DATABASE_URL": "postgresql://someone@127.0.0.1:5432/lakeflow"},
    {"REDIS_URL": "redis://127.0.0.1:6379/0"},
], ids=["postgres", "redis"])
def test_scale_out_without_a_secrets_key_refuses_to_start(tmp_path, variables):
    code, stderr = start_settings(tmp_path, SECRET_KEY=SECRET_KEY, **variables)
    assert code != 0
    assert "ImproperlyConfigured: LAKEFLOW_SECRETS_KEY is required with DATABASE_URL (Postgres) or REDIS_URL" in stderr


@pytest.mark.parametrize("variables", [
    {"DATABASE_URL": "postgresql://someone@127.0.0.1:5432/lakeflow"},
    {"REDIS_URL": "redis://127.0.0.1:6379/0"},
], ids=["postgres", "redis"])
def test_scale_out_without_a_secret_key_refuses_to_start(tmp_path, variables):
    code, stderr = start_settings(tmp_path, LAKEFLOW_SECRETS_KEY=Fernet.generate_key().decode(), **variables)
    assert code != 0
    assert "ImproperlyConfigured: SECRET_KEY is required with DATABASE_URL (Postgres) or REDIS_URL" in stderr
    assert not (tmp_path / "home" / "secret_key").exists()  # none generated that one machine alone would use


def test_scale_out_with_keys_and_the_embedded_default_without_them_start(tmp_path):
    assert start_settings(tmp_path, DATABASE_URL="postgresql://someone@127.0.0.1:5432/lakeflow",
                          REDIS_URL="redis://127.0.0.1:6379/0", SECRET_KEY=SECRET_KEY,
                          LAKEFLOW_SECRETS_KEY=Fernet.generate_key().decode()) == (0, "")
    assert start_settings(tmp_path) == (0, "")


def test_a_machine_moving_to_scale_out_is_told_to_keep_the_key_it_already_has(tmp_path):
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "secrets_key").write_text(Fernet.generate_key().decode())  # kept by an embedded install
    code, stderr = start_settings(tmp_path, DATABASE_URL="postgresql://someone@127.0.0.1:5432/lakeflow",
                                  SECRET_KEY=SECRET_KEY)
    assert code != 0
    assert f"This machine already has one in {tmp_path / 'home' / 'secrets_key'}: use its content" in stderr


def test_a_machine_moving_to_scale_out_is_told_to_keep_its_secret_key(tmp_path):
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "secret_key").write_text("generated-by-an-embedded-install-" * 2)
    code, stderr = start_settings(tmp_path, REDIS_URL="redis://127.0.0.1:6379/0",
                                  LAKEFLOW_SECRETS_KEY=Fernet.generate_key().decode())
    assert code != 0
    assert "SECRET_KEY is required with DATABASE_URL (Postgres) or REDIS_URL" in stderr
    assert f"This machine already has one in {tmp_path / 'home' / 'secret_key'}: use its content" in stderr
