"""Endpoint secrets: generated in the Standard Webhooks form (``whsec_<base64>``), kept
encrypted so they can sign, and never shown again after the response that created them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet

from alertd.settings import Settings, ensure_secret_key

SECRET_PREFIX = "whsec_"  # noqa: S105 - the Standard Webhooks prefix, not a secret
SECRET_BYTES = 32


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _fernet(settings: Settings) -> Fernet:
    # A key of its own, derived from the instance secret: a leak of the console's session key
    # derivation does not hand out the webhook key, and no new setting has to be managed.
    key = hmac.new(
        ensure_secret_key(settings).encode(), b"alertd webhook secrets v1", hashlib.sha256
    ).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def seal(settings: Settings, value: str) -> str:
    return _fernet(settings).encrypt(value.encode()).decode()


def unseal(settings: Settings, token: str) -> str:
    return _fernet(settings).decrypt(token.encode()).decode()
