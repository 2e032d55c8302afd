"""Secrets at rest: a source's calendar URL (often itself a secret) and credentials.

Fernet (``cryptography``) seals a small JSON object; the key is derived with HKDF from
the configured ``SOURCE_SECRET_KEY`` (or ``SECRET_KEY``), so the database alone never
reveals a secret. Changing the key makes sealed secrets unreadable: such a source fails
visibly with ``source.secret`` until its settings are entered again.
"""

from __future__ import annotations

import base64
import json

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from calendar_app.providers import ProviderError


def _fernet(key_material: str) -> Fernet:
    derived = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=b"personkalendern/source-secrets",
        info=b"v1",
    ).derive(key_material.encode())
    return Fernet(base64.urlsafe_b64encode(derived))


def seal(values: dict[str, str], key_material: str) -> str:
    """Encrypt ``values``; an empty mapping seals to the empty string."""
    if not values:
        return ""
    return _fernet(key_material).encrypt(json.dumps(values).encode()).decode()


def unseal(token: str, key_material: str) -> dict[str, str]:
    """Decrypt what :func:`seal` made; a wrong key or damaged value raises ProviderError."""
    if not token:
        return {}
    try:
        values = json.loads(_fernet(key_material).decrypt(token.encode()))
    except (InvalidToken, ValueError):
        raise ProviderError(
            "source.secret",
            "the source's stored address or credentials cannot be read "
            "(was the secret key changed?); enter them again",
        ) from None
    return {str(k): str(v) for k, v in values.items()}
