"""Secret values at rest: Fernet (AES-128-CBC with HMAC-SHA256) from `cryptography`.

The key is LAKEFLOW_SECRETS_KEY: one Fernet key, or several separated by commas to rotate (the
first encrypts, all decrypt; `manage.py secrets rotate-key` re-encrypts every value with the
first). Unset, a key is generated once and kept in LAKEFLOW_HOME/secrets_key (mode 0600): the
embedded default only, since the scale-out mode refuses to start without the setting (each
machine would make its own). Losing the key makes every stored secret unreadable.
"""

import functools

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from lakeflow_site.home import create_private_once


class Unreadable(Exception):
    """A stored value the configured keys cannot decrypt (the key was changed or lost)."""


def _keys():
    configured = getattr(settings, "LAKEFLOW_SECRETS_KEY", "")
    if configured:
        return [k.strip() for k in configured.split(",") if k.strip()]
    path = settings.LAKEFLOW_HOME / "secrets_key"
    if not path.exists():
        create_private_once(path, Fernet.generate_key().decode())
    return [path.read_text().strip()]



@functools.cache
def _fernet():
    try:
        return MultiFernet([Fernet(key) for key in _keys()])
    except ValueError as exc:
        raise ImproperlyConfigured(f"LAKEFLOW_SECRETS_KEY must be Fernet keys (32 url-safe base64-encoded bytes, "
                                   f"comma-separated to rotate): {exc}") from None


def encrypt(value: bytes) -> bytes:
    return _fernet().encrypt(value)


def decrypt(token) -> bytes:
    try:
        return _fernet().decrypt(bytes(token))
    except InvalidToken:
        raise Unreadable("a stored secret cannot be decrypted with LAKEFLOW_SECRETS_KEY: "
                         "was the key changed or lost?") from None


def rotated(token) -> bytes:
    """The same value encrypted with the first key."""
    try:
        return _fernet().rotate(bytes(token))
    except InvalidToken:
        raise Unreadable("a stored secret cannot be decrypted with LAKEFLOW_SECRETS_KEY") from None


def forget_keys():
    """Read the keys again (tests that change the setting)."""
    _fernet.cache_clear()
