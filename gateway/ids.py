"""Gateway-minted ids (`resp_…`, `msg_…`, `fc_…`, `rs_…`): opaque, prefixed as OpenAI's are."""

from __future__ import annotations

import secrets


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(24)}"
