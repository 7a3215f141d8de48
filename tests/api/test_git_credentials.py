"""The Git credentials API through the databricks-sdk's `w.git_credentials` (one per provider per
user, the token stored encrypted and never answered), and how the worker hands a credential to
git: through an askpass helper reading git's environment, never its command line."""

import io
import subprocess

import pytest
from databricks.sdk.errors import InvalidParameterValue, NotFound, ResourceAlreadyExists, ResourceDoesNotExist

from runs.executors.git import Credential, _Git, redacted
from tests.api.conftest import make_user
from tests.api.test_sdk_in_process import connect  # noqa: F401 (the fixture)
from vault.git_credentials import credential_of
from vault.models import GitCredential

TOKEN = "ghp_example_token_123"


@pytest.fixture
def w(connect, db):  # noqa: F811
    user = make_user("gitter")
    client = connect(user)
    client.user = user
    return client


def test_a_credential_is_created_listed_read_updated_and_deleted_without_its_token(w):
    created = w.git_credentials.create("GITHUB", git_username="octo", personal_access_token=TOKEN)

    assert created.git_provider == "gitHub" and created.git_username == "octo"
    listed = list(w.git_credentials.list())
    assert [c.credential_id for c in listed] == [created.credential_id]
    assert TOKEN not in repr(listed) + repr(w.git_credentials.get(created.credential_id))
    stored = GitCredential.objects.get()
    assert TOKEN.encode() not in bytes(stored.encrypted_token)  # encrypted at rest
    assert credential_of(w.user.id, "gitHub") == ("octo", TOKEN)

    w.git_credentials.update(created.credential_id, "gitHub", git_username="cat", personal_access_token="new")
    assert credential_of(w.user.id, "github") == ("cat", "new")
    w.git_credentials.delete(created.credential_id)
    assert list(w.git_credentials.list()) == []
    assert credential_of(w.user.id, "gitHub") is None


def test_one_credential_per_provider(w):
    w.git_credentials.create("gitLab", personal_access_token=TOKEN)

    with pytest.raises(ResourceAlreadyExists):
        w.git_credentials.create("gitlab", personal_access_token="other")
    w.git_credentials.create("gitHub", personal_access_token="other")  # another provider is fine
    assert GitCredential.objects.count() == 2


def test_bad_input_is_refused_naming_the_field(w):
    with pytest.raises(InvalidParameterValue, match="git_provider"):
        w.git_credentials.create("sourceForge", personal_access_token=TOKEN)
    with pytest.raises(InvalidParameterValue, match="personal_access_token"):
        w.git_credentials.create("gitHub")
    assert not GitCredential.objects.exists()


def test_another_users_credential_does_not_exist_for_you(w, connect):  # noqa: F811
    created = w.git_credentials.create("gitHub", personal_access_token=TOKEN)
    other = connect(make_user("mallory"))

    with pytest.raises((NotFound, ResourceDoesNotExist)):
        other.git_credentials.get(created.credential_id)
    with pytest.raises((NotFound, ResourceDoesNotExist)):
        other.git_credentials.delete(created.credential_id)
    assert list(other.git_credentials.list()) == []
    assert GitCredential.objects.count() == 1


def test_git_gets_the_token_from_its_askpass_helper_and_never_on_its_command_line(tmp_path):
    log = io.BytesIO()
    git = _Git(tmp_path, "https://example.com/r.git", "cache", log=log, credential=Credential("octo", TOKEN))

    env = git.env()
    asked = {prompt: subprocess.run([env["GIT_ASKPASS"], prompt], env=env, capture_output=True, text=True).stdout
             for prompt in ("Username for 'https://example.com': ", "Password for 'https://octo@example.com': ")}

    assert list(asked.values()) == ["octo\n", f"{TOKEN}\n"]
    assert TOKEN not in (tmp_path / "askpass.sh").read_text()
    git.run("--version", git_dir=False)
    assert TOKEN not in log.getvalue().decode()


def test_gits_messages_are_redacted_of_tokens_and_url_passwords():
    message = f"fatal: unable to access 'https://octo:{TOKEN}@example.com/r.git/': {TOKEN} refused"

    shown = redacted(message, Credential("octo", TOKEN))

    assert TOKEN not in shown and "https://***@example.com/r.git/" in shown
