"""Users' Git credentials (the Git credentials API, api/git_credentials.py): one per provider per
user, the token encrypted at rest (vault/crypto.py), never returned, and read back only by the
worker fetching a run's git_source as that user (runs/git_checkouts.py)."""

from django.db import IntegrityError, transaction

from vault.crypto import decrypt, encrypt
from vault.models import GitCredential
from vault.rules import AlreadyExists, NotFound


def credential_info(row) -> dict:
    """What the API shows of a credential: never its token."""
    info = {"credential_id": row.id, "git_provider": row.git_provider, "is_default_for_provider": True}
    for name in ("git_username", "git_email", "name"):
        if getattr(row, name):
            info[name] = getattr(row, name)
    return info


def create_credential(user, git_provider, *, token, git_username="", git_email="", name=""):
    try:
        with transaction.atomic():
            return GitCredential.objects.create(user=user, git_provider=git_provider, git_username=git_username,
                                                git_email=git_email, name=name, encrypted_token=encrypt(token.encode()))
    except IntegrityError:  # the unique constraint: a second one for this provider
        raise AlreadyExists(f"You already have a Git credential for {git_provider}: update or delete it "
                                "(one credential per provider)") from None


def own_credential(user, credential_id) -> GitCredential:
    row = GitCredential.objects.filter(id=credential_id, user=user).first() if credential_id < 2**63 else None
    if row is None:  # another user's is as absent as a deleted one
        raise NotFound(f"Git credential {credential_id} does not exist.")
    return row


def update_credential(user, credential_id, git_provider, *, token=None, **fields):
    row = own_credential(user, credential_id)
    changed = {"git_provider": git_provider, **{k: v for k, v in fields.items() if v is not None}}
    if token is not None:
        changed["encrypted_token"] = encrypt(token.encode())
    try:
        with transaction.atomic():
            GitCredential.objects.filter(id=row.id, user=user).update(**changed)
    except IntegrityError:
        raise AlreadyExists(f"You already have another Git credential for {git_provider}") from None


def delete_credential(user, credential_id):
    own_credential(user, credential_id).delete()


def credential_of(user_id, git_provider) -> tuple[str, str] | None:
    """(username, token) of the user's credential for the provider, decrypted (None: none)."""
    if user_id is None or not git_provider:
        return None
    row = GitCredential.objects.filter(user_id=user_id, git_provider__iexact=git_provider).first()
    if row is None:
        return None
    # git's prompt wants a username; providers that read only the token take any.
    return row.git_username or "git", decrypt(row.encrypted_token).decode()
