"""The real Codex CLI (`@openai/codex`, `codex exec`) against Rosetta in front of fake upstreams.

Codex is configured as a custom provider (`wire_api = "responses"`, `base_url` = Rosetta's `/v1`) with a
throwaway `CODEX_HOME`, runs in a temporary working directory with approvals and sandbox bypassed, and
can reach nothing but loopback (every other host goes to a dead proxy). The upstream model is scripted
(tests/fakes/codex_agent.py): it reasons, calls the shell tool Codex declares (found by its schema) to
write a file, then answers with a fixed text once it has the tool's output. On Anthropic its thinking
blocks are signed and must come back byte for byte; on Chat Completions its reasoning is raw.

What Codex 0.169 sends (recorded by these tests): `store: false` always (over HTTP and WebSocket, Azure
endpoints included), `include: ["reasoning.encrypted_content"]`, `reasoning: {effort, summary: "auto"}`,
`prompt_cache_key` (its session id), `client_metadata`, no `instructions` (its prompt is developer
messages), function tools (`exec_command`, `write_stdin`, …), a `namespace` tool (sub-agents, which
Rosetta declares upstream as flat `namespace__function` names) and by default the hosted `web_search`
tool, which Rosetta does not serve: it is switched off in the config below. It sends
`previous_response_id` only over the WebSocket transport (`supports_websockets = true`), continuing its
own store:false responses with only the new items.

Codex is installed by `make test` into ~/.cache/rosetta/codex (or name the binary in `ROSETTA_CODEX`);
without it these tests are skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from config.loader import parse_settings
from gateway.app import create_app
from tests.conftest import API_KEY, UPSTREAM_KEY
from tests.fakes.anthropic import FakeAnthropic, thinking_signature
from tests.fakes.chat_completions import FakeChat
from tests.fakes.codex_agent import ChatShellAgent, ShellAgent
from tests.fakes.server import serve
from tests.invariants import check_stream, parse_sse

MODEL = "codex-shell"
CHAT_MODEL = "codex-shell-chat"
PROOF_FILE = "codex-proof.txt"
PROOF_TEXT = "rosetta-codex-ok"
COMMAND = f"echo {PROOF_TEXT} | tee {PROOF_FILE}"
FINAL_TEXT = f"Wrote {PROOF_FILE} through Rosetta."
PROMPT = f"Create {PROOF_FILE} containing {PROOF_TEXT}."
DEAD_PROXY = "http://127.0.0.1:9"
INSTALL_HINT = "make test installs it (npm install --prefix ~/.cache/rosetta/codex @openai/codex@0.169.0)"

JSON = Any


# ---------------------------------------------------------------------------------------- the binary


def _codex_candidates() -> list[Path]:
    named = os.environ.get("ROSETTA_CODEX")
    if named:
        return [Path(named)]
    found = shutil.which("codex")
    cached = Path.home() / ".cache" / "rosetta" / "codex" / "node_modules" / ".bin" / "codex"
    return [cached, *([Path(found)] if found else [])]


@pytest.fixture(scope="session")
def codex() -> str:
    """The Codex CLI to run (skips the module when there is none that starts)."""
    for path in _codex_candidates():
        if not (path.is_file() and os.access(path, os.X_OK)):
            continue
        try:
            probe = subprocess.run(
                [str(path), "--version"], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            pytest.skip(f"Codex CLI at {path} does not start ({exc}); {INSTALL_HINT}")
        if probe.returncode != 0:
            pytest.skip(f"Codex CLI at {path} does not start: {probe.stderr.strip()[-300:]}; {INSTALL_HINT}")
        return str(path)
    pytest.skip(f"Codex CLI not found; {INSTALL_HINT}")


# ---------------------------------------------------------------------------------------- recording


@dataclass
class Exchange:
    """One HTTP request Codex made to Rosetta (or one WebSocket connection) and what Rosetta answered."""

    method: str
    path: str
    body: bytes = b""
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    reply: bytes = b""
    frames_in: list[JSON] = field(default_factory=list)
    frames_out: list[JSON] = field(default_factory=list)

    @property
    def json(self) -> JSON:
        return json.loads(self.body)

    def events(self) -> list[dict[str, JSON]]:
        return parse_sse(self.reply)


class Recorder:
    """ASGI middleware in front of Rosetta that keeps every exchange with the client, bytes as sent.

    `force_store` rewrites `store: false` to `true` in `POST …/responses` bodies (the recorded body stays
    what the client sent): Codex never asks for storage itself, and this is how the tests see Rosetta
    store a real Codex conversation.
    """

    def __init__(self, app: ASGIApp, *, force_store: bool = False) -> None:
        self.app = app
        self.force_store = force_store
        self.exchanges: list[Exchange] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        exchange = Exchange(scope["method"], scope["path"])
        self.exchanges.append(exchange)
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        exchange.body = b"".join(chunks)
        body = exchange.body
        if self.force_store and scope["method"] == "POST" and scope["path"].endswith("/responses"):
            data = json.loads(body)
            if data.get("store") is False:
                data["store"] = True
            body = json.dumps(data).encode()
            headers = [(k, v) for k, v in scope["headers"] if k != b"content-length"]
            scope = {**scope, "headers": [*headers, (b"content-length", str(len(body)).encode())]}
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        async def record(message: Message) -> None:
            if message["type"] == "http.response.start":
                exchange.status = message["status"]
                exchange.headers = {k.decode().lower(): v.decode() for k, v in message.get("headers", [])}
            elif message["type"] == "http.response.body":
                exchange.reply += message.get("body", b"")
            await send(message)

        await self.app(scope, replay, record)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        exchange = Exchange("WEBSOCKET", scope["path"])
        self.exchanges.append(exchange)

        async def receive_frame() -> Message:
            message = await receive()
            if message["type"] == "websocket.receive":
                exchange.frames_in.append(json.loads(message.get("text") or message.get("bytes") or b""))
            return message

        async def send_frame(message: Message) -> None:
            if message["type"] == "websocket.accept":
                exchange.status = 101
            elif message["type"] == "websocket.send":
                exchange.frames_out.append(json.loads(message.get("text") or message.get("bytes") or b""))
            await send(message)

        await self.app(scope, receive_frame, send_frame)

    def creates(self) -> list[Exchange]:
        return [e for e in self.exchanges if e.method == "POST" and e.path == "/v1/responses"]


# ---------------------------------------------------------------------------------------- running Codex


@dataclass
class CodexRun:
    returncode: int
    events: list[dict[str, JSON]]
    last_message: str
    stderr: str
    workdir: Path

    def items(self, kind: str) -> list[dict[str, JSON]]:
        return [
            e["item"] for e in self.events if e.get("type") == "item.completed" and e["item"]["type"] == kind
        ]


def _config(base_url: str, model: str, *, websocket: bool) -> str:
    """config.toml for the run. `web_search` off: Codex would otherwise declare the hosted `web_search`
    tool, which Rosetta refuses (400 naming `tools[i].type`). Its `namespace` tool (sub-agents) stays on:
    Rosetta flattens it. The `features` and `analytics` lines stop every call Codex makes to hosts other
    than the gateway."""
    return f"""
model = "{model}"
model_provider = "rosetta"
model_reasoning_effort = "low"
web_search = "disabled"
check_for_update_on_startup = false

[model_providers.rosetta]
name = "Rosetta"
base_url = "{base_url}/v1"
env_key = "ROSETTA_TEST_KEY"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0
supports_websockets = {"true" if websocket else "false"}

[analytics]
enabled = false

[feedback]
enabled = false

[features]
plugins = false
apps = false
remote_plugin = false
tool_suggest = false
skill_search = false
"""


def run_codex(
    codex: str, gateway: str, tmp_path: Path, *, model: str = MODEL, websocket: bool = False
) -> CodexRun:
    home, workdir = tmp_path / "codex-home", tmp_path / "work"
    home.mkdir()
    workdir.mkdir()
    (home / "config.toml").write_text(_config(gateway, model, websocket=websocket))
    last = tmp_path / "last-message.txt"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "CODEX_HOME": str(home),
        "ROSETTA_TEST_KEY": API_KEY,
        "NO_COLOR": "1",
        **{name: DEAD_PROXY for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")},
        **{name.lower(): DEAD_PROXY for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")},
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    command = [
        codex,
        "exec",
        "--skip-git-repo-check",
        "--dangerously-bypass-approvals-and-sandbox",
        "--ephemeral",
        "--color",
        "never",
        "--json",
        "--output-last-message",
        str(last),
        "--cd",
        str(workdir),
        PROMPT,
    ]
    done = subprocess.run(
        command, cwd=workdir, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180
    )
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    message = last.read_text() if last.exists() else ""
    return CodexRun(done.returncode, events, message, done.stderr, workdir)


# ---------------------------------------------------------------------------------------- fixtures


@pytest.fixture
def agent(anthropic_fake: FakeAnthropic) -> Iterator[ShellAgent]:
    script = ShellAgent(anthropic_fake, command=COMMAND, final_text=FINAL_TEXT)
    anthropic_fake.scenarios[MODEL] = script
    yield script
    del anthropic_fake.scenarios[MODEL]


@pytest.fixture
def chat_agent(fake: FakeChat) -> Iterator[ChatShellAgent]:
    script = ChatShellAgent(fake, command=COMMAND, final_text=FINAL_TEXT)
    fake.scenarios[CHAT_MODEL] = script
    yield script
    del fake.scenarios[CHAT_MODEL]


def _app(anthropic_url: str, chat_url: str = "http://127.0.0.1:9/v1") -> ASGIApp:
    """`codex-shell` on Anthropic; `codex-shell-chat` on a Chat Completions server that takes OpenAI's own
    fields (`prompt_cache_key` included) and returns raw reasoning in `reasoning`."""
    settings = parse_settings(
        {
            "store": {"kind": "sqlite", "path": ":memory:"},
            "keys": [{"key": API_KEY, "team": "test"}],
            "providers": {
                "anthropic": {
                    "kind": "anthropic",
                    "base_url": anthropic_url,
                    "api_key": UPSTREAM_KEY,
                    "dialect": {"default_max_tokens": 1024},
                },
                "chat": {
                    "kind": "chat_completions",
                    "base_url": chat_url,
                    "api_key": UPSTREAM_KEY,
                    "dialect": {"preset": "openai", "reasoning_field": "reasoning"},
                },
            },
            "models": {
                MODEL: {"provider": "anthropic", "model": MODEL},
                CHAT_MODEL: {"provider": "chat", "model": CHAT_MODEL},
            },
        },
        {},
    )
    return create_app(settings)


def _completed(run: CodexRun) -> None:
    problems = [e for e in run.events if e.get("type") in ("error", "turn.failed")]
    problems += [
        e["item"] for e in run.events if e.get("type") == "item.completed" and e["item"]["type"] == "error"
    ]
    assert run.returncode == 0, (problems, run.stderr[-2000:])
    assert (run.workdir / PROOF_FILE).read_text() == PROOF_TEXT + "\n"
    assert FINAL_TEXT in run.last_message
    assert [m["text"] for m in run.items("agent_message")] == [FINAL_TEXT]
    [execution] = run.items("command_execution")
    assert execution["exit_code"] == 0 and PROOF_TEXT in execution["aggregated_output"]


def _item(items: list[JSON], kind: str) -> dict[str, JSON]:
    [found] = [i for i in items if i.get("type") == kind]
    return dict(found)


def _assert_upstream_round_trip(fake: FakeAnthropic, agent: ShellAgent, first_output: list[JSON]) -> None:
    """The upstream got the call's result under the id Rosetta handed out, after the thinking block that
    came with the call, byte for byte (the fake refuses a wrong signature with a 400)."""
    [call] = agent.calls
    reasoning, function_call = first_output
    assert function_call["call_id"] == call.call_id
    second = fake.requests[1].body
    assistant, user = second["messages"][-2:]
    thinking, tool_use = assistant["content"]
    [summary] = reasoning["summary"]
    assert thinking == {
        "type": "thinking",
        "thinking": summary["text"],
        "signature": thinking_signature(summary["text"], fake.signing_key),
    }
    assert tool_use == {"type": "tool_use", "id": call.call_id, "name": call.tool, "input": call.arguments}
    [result] = user["content"]
    assert result["type"] == "tool_result" and result["tool_use_id"] == call.call_id
    assert PROOF_TEXT in json.dumps(result["content"])
    assert second["thinking"]["type"] == "enabled"


# ---------------------------------------------------------------------------------------- tests


def test_store_false_round_trip_carries_encrypted_reasoning_back(
    codex: str, fake_anthropic_upstream: tuple[FakeAnthropic, str], agent: ShellAgent, tmp_path: Path
) -> None:
    """Codex's default flow: every request stateless, the reasoning item sent back with its
    `encrypted_content`, which Rosetta opens into the signed thinking block Claude needs."""
    fake, anthropic_url = fake_anthropic_upstream
    recorder = Recorder(_app(anthropic_url))
    with serve(recorder) as gateway:
        run = run_codex(codex, gateway, tmp_path)
    _completed(run)

    first, second = recorder.creates()
    assert [e.path for e in recorder.exchanges] == ["/v1/responses", "/v1/responses"]
    assert (first.status, second.status) == (200, 200)
    sent = first.json
    assert sent["store"] is False and sent["stream"] is True
    assert sent["include"] == ["reasoning.encrypted_content"]
    assert sent["reasoning"] == {"effort": "low", "summary": "auto"}
    assert isinstance(sent["prompt_cache_key"], str) and isinstance(sent["client_metadata"], dict)
    assert first.headers["x-rosetta-dropped-params"] == "prompt_cache_key"
    [call] = agent.calls
    declared = {t["name"]: t for t in sent["tools"]}
    assert {t["type"] for t in sent["tools"]} == {"function", "namespace"}
    flattened = {
        f"{group['name']}__{inner['name']}"
        for group in sent["tools"]
        if group["type"] == "namespace"
        for inner in group["tools"]
    }
    assert flattened and flattened <= {tool["name"] for tool in fake.requests[0].body["tools"]}
    assert declared[call.tool]["parameters"]["required"] == list(call.arguments)

    reply = check_stream(first.events())
    assert reply["status"] == "completed" and reply["store"] is False
    reasoning, function_call = reply["output"]
    assert reasoning["type"] == "reasoning" and reasoning["encrypted_content"].startswith("rosetta:v1:")
    assert (function_call["type"], function_call["name"]) == ("function_call", call.tool)
    assert json.loads(function_call["arguments"]) == call.arguments

    echoed = second.json["input"]
    back = _item(echoed, "reasoning")
    assert (back["id"], back["encrypted_content"]) == (reasoning["id"], reasoning["encrypted_content"])
    assert _item(echoed, "function_call")["call_id"] == function_call["call_id"]
    output = _item(echoed, "function_call_output")
    assert output["call_id"] == function_call["call_id"] and PROOF_TEXT in output["output"]
    assert check_stream(second.events())["output"][-1]["content"][0]["text"] == FINAL_TEXT
    _assert_upstream_round_trip(fake, agent, reply["output"])


def test_websocket_turns_chain_with_previous_response_id(
    codex: str,
    fake_upstream: tuple[FakeChat, str],
    fake_anthropic_upstream: tuple[FakeAnthropic, str],
    chat_agent: ChatShellAgent,
    tmp_path: Path,
) -> None:
    """The only chaining Codex does: over the WebSocket transport each `response.create` continues the
    previous response (still store:false) and carries only the new items; the tool turn is the call's
    output alone, and Rosetta rebuilds the whole conversation from the connection's memory, the call's
    reasoning included. On a Chat route that carries `prompt_cache_key`: over a WebSocket Rosetta refuses
    any field it would drop (no header can report it), so Codex cannot reach an Anthropic route that way."""
    fake, chat_url = fake_upstream
    recorder = Recorder(_app(fake_anthropic_upstream[1], chat_url))
    with serve(recorder) as gateway:
        run = run_codex(codex, gateway, tmp_path, model=CHAT_MODEL, websocket=True)
    _completed(run)

    [socket] = recorder.exchanges
    assert (socket.method, socket.path, socket.status) == ("WEBSOCKET", "/v1/responses", 101)
    frames = socket.frames_in
    assert {f["type"] for f in frames} == {"response.create"}
    assert all(f["store"] is False for f in frames)
    finished = [e["response"] for e in socket.frames_out if e["type"] == "response.completed"]
    assert len(finished) == len(frames) >= 2
    assert frames[0].get("previous_response_id") is None
    for frame, previous in zip(frames[1:], finished, strict=False):
        assert frame["previous_response_id"] == previous["id"]
    [call] = chat_agent.calls
    [output] = frames[-1]["input"]
    assert (output["type"], output["call_id"]) == ("function_call_output", call.call_id)
    assert PROOF_TEXT in output["output"]
    reasoning, function_call = finished[-2]["output"]
    assert (function_call["call_id"], function_call["name"]) == (call.call_id, call.tool)
    assert finished[-1]["output"][-1]["content"][0]["text"] == FINAL_TEXT

    first, second = (r.body for r in fake.requests)
    assert first["prompt_cache_key"] == second["prompt_cache_key"] == frames[-1]["prompt_cache_key"]
    assistant, tool = second["messages"][-2:]
    assert (
        assistant["reasoning"]
        == reasoning["summary"][0]["text"]
        == f"I will run the command with {call.tool}."
    )
    assert assistant["tool_calls"] == [
        {
            "id": call.call_id,
            "type": "function",
            "function": {"name": call.tool, "arguments": json.dumps(call.arguments)},
        }
    ]
    assert tool["role"] == "tool" and tool["tool_call_id"] == call.call_id and PROOF_TEXT in tool["content"]


def test_stored_codex_responses_are_retrievable_and_chain(
    codex: str, fake_anthropic_upstream: tuple[FakeAnthropic, str], agent: ShellAgent, tmp_path: Path
) -> None:
    """Codex never sends store:true (not over HTTP, not over WebSocket, not to an Azure-named provider),
    so the recorder turns its `store: false` into `true`: Rosetta then stores the real Codex conversation,
    serves it back by id, and a `previous_response_id` continuation (by the SDK) replays all of it."""
    fake, anthropic_url = fake_anthropic_upstream
    recorder = Recorder(_app(anthropic_url), force_store=True)
    with serve(recorder) as gateway:
        run = run_codex(codex, gateway, tmp_path)
        _completed(run)
        first, second = recorder.creates()
        assert first.json["store"] is False and second.json["store"] is False  # as Codex sent them
        replies = [check_stream(e.events()) for e in (first, second)]
        assert [r["store"] for r in replies] == [True, True]

        with httpx.Client(base_url=f"{gateway}/v1", headers={"Authorization": f"Bearer {API_KEY}"}) as http:
            for reply in replies:
                got = http.get(f"/responses/{reply['id']}")
                assert got.status_code == 200
                assert got.json()["output"] == reply["output"]
            items = http.get(f"/responses/{replies[1]['id']}/input_items", params={"limit": 100}).json()
        [call] = agent.calls
        outputs = [i for i in items["data"] if i["type"] == "function_call_output"]
        assert [o["call_id"] for o in outputs] == [call.call_id]

        with openai.OpenAI(base_url=f"{gateway}/v1", api_key=API_KEY, max_retries=0) as sdk:
            follow_up = sdk.responses.create(
                model=MODEL,
                previous_response_id=replies[1]["id"],
                input="Thanks!",
                reasoning={"effort": "low"},
            )
    assert follow_up.output_text == FINAL_TEXT
    assert len(fake.requests) == 3
    messages = fake.requests[2].body["messages"]
    replayed = [
        b for m in messages if m["role"] == "assistant" for b in m["content"] if b["type"] == "thinking"
    ]
    assert len(replayed) == 2
    assert all(b["signature"] == thinking_signature(b["thinking"], fake.signing_key) for b in replayed)
    results = [b for m in messages if m["role"] == "user" for b in m["content"] if isinstance(b, dict)]
    assert [b["tool_use_id"] for b in results if b.get("type") == "tool_result"] == [call.call_id]
