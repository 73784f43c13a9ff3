"""Test doubles for Rosetta: a fake Chat Completions upstream and a loopback server helper.

Import from here (``from tests.fakes import create_fake_chat, serve``) when the
repository root is on ``sys.path`` (it is under ``python -m pytest``).
"""

from .chat_completions import (
    FIXTURES_DIR,
    FakeChat,
    RecordedRequest,
    Reply,
    Scenario,
    create_fake_chat,
    fixture_bytes,
    fixture_cases,
    json_reply,
    openai_error_body,
    sse_reply,
)
from .server import RunningServer, aserve, serve

__all__ = [
    "FIXTURES_DIR",
    "FakeChat",
    "RecordedRequest",
    "Reply",
    "RunningServer",
    "Scenario",
    "aserve",
    "create_fake_chat",
    "fixture_bytes",
    "fixture_cases",
    "json_reply",
    "openai_error_body",
    "serve",
    "sse_reply",
]
