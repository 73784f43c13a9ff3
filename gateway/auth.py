"""API keys → principals. Every request carries the team it acts for, so routing, limits and the store
can be scoped by team."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from starlette.datastructures import Headers

from config.models import ApiKey
from gateway.errors import AuthenticationError


@dataclass(frozen=True)
class Principal:
    team: str
    key_index: int
    """Which configured key authenticated (never the key itself)."""


class KeyRing:
    def __init__(self, keys: list[ApiKey]) -> None:
        self._keys = [(k.key.get_secret_value().encode(), k.team) for k in keys]

    def authenticate(self, headers: Headers) -> Principal:
        """Accept `Authorization: Bearer <key>` or `x-api-key: <key>` (some vendor SDKs send the latter)."""
        presented = _presented_key(headers)
        if presented is None:
            raise AuthenticationError(
                "You didn't provide an API key. Send it as 'Authorization: Bearer <key>' or 'x-api-key'."
            )
        candidate = presented.encode()
        for index, (key, team) in enumerate(self._keys):
            if hmac.compare_digest(candidate, key):
                return Principal(team=team, key_index=index)
        raise AuthenticationError("Incorrect API key provided.")


def _presented_key(headers: Headers) -> str | None:
    authorization = headers.get("authorization")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    key = headers.get("x-api-key")
    return key.strip() if key and key.strip() else None
