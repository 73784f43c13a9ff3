"""Sealed reasoning carriers: vendor replay data made opaque and tamper-proof for the round trip.

Vendors that require their reasoning back verbatim (thinking blocks and their signatures, thought
signatures) give adapters a plain `replay` payload. The gateway seals it into a reasoning item's
`encrypted_content` with AES-256-GCM under the configured `server.reasoning_key`, so the client can
neither read nor forge it, and opens it again when the item comes back. A token that is ours but does
not authenticate is a 400; a token that is not ours (e.g. OpenAI's own) passes through untouched.
"""

from __future__ import annotations

import base64
import hashlib
import os
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.errors import InvalidRequest

PREFIX = "rosetta:v1:"
_AAD = b"rosetta reasoning carrier v1"


class Sealer:
    def __init__(self, secret: str | bytes | None) -> None:
        """`secret`: any string (hashed to a 256-bit key). None or empty makes a random per-process key,
        so carriers survive neither restarts nor other replicas: fine for a laptop, not for production."""
        if not secret:
            key = os.urandom(32)
        else:
            key = hashlib.sha256(secret.encode() if isinstance(secret, str) else secret).digest()
        self._aead = AESGCM(key)

    def seal(self, payload: Any) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, orjson.dumps(payload), _AAD)
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")

    def open(self, token: str, param: str) -> Any | None:
        """The payload of one of our tokens; None for a token that is not ours; 400 if it was altered."""
        if not token.startswith(PREFIX):
            return None
        body = token[len(PREFIX) :]
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            return orjson.loads(self._aead.decrypt(raw[:12], raw[12:], _AAD))
        except (ValueError, InvalidTag, orjson.JSONDecodeError):
            raise InvalidRequest(
                "The encrypted reasoning content was altered or was sealed by another gateway key.",
                param=param,
                code="invalid_encrypted_content",
            ) from None
