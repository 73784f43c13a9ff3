"""A scripted shell-using model for the Codex CLI tests, played by the fake Anthropic upstream.

Why it exists: `tests/client/test_codex.py` runs the real Codex CLI against Rosetta, and Codex only
finishes a turn if the model behaves like a coding agent. :class:`ShellAgent` is that model:

* first turn: a signed thinking block, then one call of the shell tool the request declares, found by
  its schema rather than by name (Codex has shipped `shell` with an argv array, `shell_command` and
  `exec_command` with a string), running ``command``;
* once the last user turn carries that call's ``tool_result``: a signed thinking block and
  ``final_text``;
* with no shell tool declared (a follow-up made by a plain SDK): a signed thinking block and
  ``final_text``.

Every request is checked like ``fake-thinking-agent``: extended thinking must be on and every thinking
block sent back must carry, byte for byte, the signature issued for its text, or the reply is the 400
Anthropic gives. Register it under a model name of the fake::

    agent = ShellAgent(fake, command="echo hi > a.txt", final_text="Done.")
    fake.scenarios["codex-shell"] = agent      # the upstream model `codex-shell`

:class:`ChatShellAgent` plays the same script on the fake Chat Completions upstream, its reasoning in
the ``reasoning`` field (vLLM's, Ollama's and Groq's), for routes that must carry ``prompt_cache_key``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._common import RecordedRequest, Reply, _token, sse_reply
from .anthropic import FakeAnthropic, _b58, _blocks_of, _thinking_replay_problem, thinking_signature
from .chat_completions import FakeChat, _OpenAIStream, _usage

__all__ = ["ChatShellAgent", "ShellAgent", "ShellCall", "shell_arguments", "shell_tool"]

#: Schema properties that carry the command line in the shell tools Codex has declared.
_COMMAND_PROPERTIES = ("cmd", "command")


@dataclass(frozen=True)
class ShellCall:
    """One tool call the agent made: the tool's name, the `tool_use` id and the arguments it sent."""

    tool: str
    call_id: str
    arguments: dict[str, Any]


def shell_tool(tools: Iterable[tuple[Any, Any]]) -> tuple[str, str, Mapping[str, Any]] | None:
    """Of (name, JSON schema) pairs, the first tool whose required arguments include a command line:
    (name, that property, its schema)."""
    for name, schema in tools:
        if not isinstance(name, str) or not isinstance(schema, dict):
            continue
        required = schema.get("required")
        properties = schema.get("properties")
        if not isinstance(required, list) or not isinstance(properties, dict):
            continue
        for prop in _COMMAND_PROPERTIES:
            if prop in required and isinstance(properties.get(prop), dict):
                return name, prop, properties[prop]
    return None


def _anthropic_tools(tools: Any) -> list[tuple[Any, Any]]:
    return [(t.get("name"), t.get("input_schema")) for t in tools or [] if isinstance(t, dict)]


def _chat_tools(tools: Any) -> list[tuple[Any, Any]]:
    functions = [
        t.get("function") for t in tools or [] if isinstance(t, dict) and t.get("type") == "function"
    ]
    return [(f.get("name"), f.get("parameters")) for f in functions if isinstance(f, dict)]


def shell_arguments(prop: str, schema: Mapping[str, Any], command: str) -> dict[str, Any]:
    """Arguments running ``command``: the string itself, or ``bash -lc`` argv for an array property."""
    if schema.get("type") == "array":
        return {prop: ["bash", "-lc", command]}
    return {prop: command}


@dataclass
class ShellAgent:
    """The scenario callable (``RecordedRequest -> Reply``); ``calls`` lists the tool calls it made."""

    fake: FakeAnthropic
    command: str
    final_text: str
    calls: list[ShellCall] = field(default_factory=list)

    def __call__(self, record: RecordedRequest) -> Reply:
        body: Mapping[str, Any] = record.body
        problem = _thinking_replay_problem(body, self.fake.signing_key)
        if problem is not None:
            return self.fake._error(record, 400, problem)
        if self._answered(body):
            return self._say(record, "The command ran, so I will report back.")
        found = shell_tool(_anthropic_tools(body.get("tools")))
        if found is None:
            return self._say(record, "There is no shell tool here, so I will answer directly.")
        name, prop, schema = found
        arguments = shell_arguments(prop, schema, self.command)
        call_id = "toolu_01" + _b58(f"{self.fake.seed}:{record.index}:codex-shell", 22)
        self.calls.append(ShellCall(name, call_id, arguments))
        thought = f"I will run the command with {name}: {json.dumps(arguments, ensure_ascii=False)}."
        call = {"type": "tool_use", "id": call_id, "name": name, "input": arguments}
        return self.fake._generated(record, [self._thinking(thought), call], "tool_use")

    def _answered(self, body: Mapping[str, Any]) -> bool:
        """Whether the last user turn carries the result of one of this agent's calls."""
        messages = body.get("messages")
        last = messages[-1] if isinstance(messages, list) and messages else None
        if not isinstance(last, dict) or last.get("role") != "user":
            return False
        ours = {call.call_id for call in self.calls}
        return any(
            isinstance(block, dict)
            and block.get("type") == "tool_result"
            and block.get("tool_use_id") in ours
            for block in _blocks_of(last.get("content"))
        )

    def _say(self, record: RecordedRequest, thought: str) -> Reply:
        text = {"type": "text", "text": self.final_text}
        return self.fake._generated(record, [self._thinking(thought), text], "end_turn")

    def _thinking(self, thought: str) -> dict[str, Any]:
        return {
            "type": "thinking",
            "thinking": thought,
            "signature": thinking_signature(thought, self.fake.signing_key),
        }


@dataclass
class ChatShellAgent:
    """:class:`ShellAgent`'s script on the fake Chat Completions upstream (raw reasoning, no signatures)."""

    fake: FakeChat
    command: str
    final_text: str
    reasoning_field: str = "reasoning"
    calls: list[ShellCall] = field(default_factory=list)

    def __call__(self, record: RecordedRequest) -> Reply:
        body: Mapping[str, Any] = record.body
        messages = body.get("messages")
        last = messages[-1] if isinstance(messages, list) and messages else None
        ours = {call.call_id for call in self.calls}
        if isinstance(last, dict) and last.get("role") == "tool" and last.get("tool_call_id") in ours:
            return self._reply(record, "The command ran, so I will report back.", text=self.final_text)
        found = shell_tool(_chat_tools(body.get("tools")))
        if found is None:
            return self._reply(record, "There is no shell tool here.", text=self.final_text)
        name, prop, schema = found
        call = ShellCall(
            name,
            "call_" + _token(f"{self.fake.seed}:{record.index}:codex-shell", 24),
            shell_arguments(prop, schema, self.command),
        )
        self.calls.append(call)
        thought = f"I will run the command with {name}."
        return self._reply(record, thought, call=call)

    def _reply(
        self, record: RecordedRequest, thought: str, *, text: str | None = None, call: ShellCall | None = None
    ) -> Reply:
        """Reasoning, then the text or the call, streamed like vLLM (or one JSON body)."""
        model, completion_id, created, prompt_tokens = self.fake._envelope(record)
        usage = _usage(prompt_tokens, 16)
        arguments = json.dumps(call.arguments) if call is not None else ""
        finish = "tool_calls" if call is not None else "stop"
        if not record.stream:
            message: dict[str, Any] = {"role": "assistant", "content": text, self.reasoning_field: thought}
            if call is not None:
                function = {"name": call.tool, "arguments": arguments}
                message["tool_calls"] = [{"id": call.call_id, "type": "function", "function": function}]
            return self.fake._completion(record, message, finish, usage)
        stream = _OpenAIStream(completion_id, created, model, record.include_usage)
        stream.chunk({"role": "assistant", "content": ""})
        for piece in re.findall(r"\S+\s*|\s+", thought):
            stream.chunk({self.reasoning_field: piece})
        if call is not None:
            opening = {"name": call.tool, "arguments": ""}
            stream.chunk(
                {"tool_calls": [{"index": 0, "id": call.call_id, "type": "function", "function": opening}]}
            )
            stream.chunk({"tool_calls": [{"index": 0, "function": {"arguments": arguments}}]})
        for piece in re.findall(r"\S+\s*|\s+", text or ""):
            stream.chunk({"content": piece})
        stream.chunk({}, finish)
        return sse_reply(stream.finish(usage), headers=self.fake._openai_headers(record))
