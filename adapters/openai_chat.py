"""OpenAI Chat Completions: OpenAI itself and every compatible server (vLLM, llama.cpp, Ollama, …).

Compatible servers differ in small, known ways; those are flags on `ChatDialect`, chosen per provider in
config (`dialect: {preset: vllm, …}`), never subclasses. Reference: shared/reference/chat-completions.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from adapters._common import error_object, load_object, parse_options
from adapters.base import IdMinter, UpstreamTarget, VendorRequest
from gateway.errors import RosettaError, UnsupportedParameter, VendorProtocolError, upstream_error
from gateway.sse import SSEMessage
from schemas import canonical as c
from schemas.canonical_events import (
    ArgumentsDelta,
    CanonicalEvent,
    Failed,
    Finished,
    FunctionCallStarted,
    ItemDone,
    MessageStarted,
    ReasoningStarted,
    ReasoningTextDelta,
    RefusalDelta,
    StopReason,
    SummaryDelta,
    TextDelta,
    Usage,
    UsageReported,
)

JSON = Any


@dataclass(frozen=True)
class ChatDialect:
    """The known differences between Chat Completions servers."""

    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    reasoning_field: Literal["reasoning_content", "reasoning"] | None = "reasoning_content"
    """Where the server puts raw reasoning; also the field reasoning is sent back in. None: no reasoning."""
    stream_options: bool = True
    """Whether the server accepts `stream_options: {include_usage: true}`."""
    developer_role: bool = False
    """Whether `developer` messages are understood; if not they are sent as `system`."""
    allowed_tools: bool = False
    """Native `tool_choice: allowed_tools`; if not, the subset is sent as the tool list."""
    reasoning_effort: bool = False
    openai_params: bool = False
    """OpenAI-only request fields: `verbosity`, `service_tier`, `prompt_cache_key`, `safety_identifier`."""


PRESETS: dict[str, ChatDialect] = {
    "openai": ChatDialect(
        max_tokens_field="max_completion_tokens",
        reasoning_field=None,
        developer_role=True,
        allowed_tools=True,
        reasoning_effort=True,
        openai_params=True,
    ),
    "generic": ChatDialect(),
    "llama.cpp": ChatDialect(reasoning_field="reasoning_content"),
    "vllm": ChatDialect(reasoning_field="reasoning", reasoning_effort=True),
    "ollama": ChatDialect(reasoning_field="reasoning", stream_options=True),
    "deepseek": ChatDialect(reasoning_field="reasoning_content"),
    "groq": ChatDialect(reasoning_field="reasoning", reasoning_effort=True),
}


def parse_dialect(options: Mapping[str, JSON]) -> ChatDialect:
    """`{preset: name, <flag>: value, …}` → a dialect. Unknown presets or flags raise `ValueError`."""
    options = dict(options)
    preset_name = options.pop("preset", "generic")
    if preset_name not in PRESETS:
        raise ValueError(f"unknown preset {preset_name!r} (known: {', '.join(sorted(PRESETS))})")
    return parse_options(ChatDialect, options, PRESETS[preset_name])


_FINISH: dict[str, StopReason] = {
    "stop": "stop",
    "tool_calls": "stop",
    "function_call": "stop",
    "length": "length",
    "model_length": "length",
    "content_filter": "content_filter",
}


@dataclass(frozen=True)
class ChatCompletionsAdapter:
    dialect: ChatDialect = field(default_factory=ChatDialect)

    # ------------------------------------------------------------ request

    def build_request(self, request: c.Request, target: UpstreamTarget) -> VendorRequest:
        body: dict[str, JSON] = {"model": target.model, "messages": self._messages(request)}
        options, dropped = self._options(request)
        body.update(options)
        if request.stream:
            body["stream"] = True
            if self.dialect.stream_options:
                body["stream_options"] = {"include_usage": True}
        headers = {"Content-Type": "application/json", **target.headers}
        if target.api_key:
            headers["Authorization"] = f"Bearer {target.api_key}"
        url = target.base_url.rstrip("/") + "/chat/completions"
        return VendorRequest("POST", url, orjson.dumps(body), request.stream, headers, dropped)

    def _options(self, request: c.Request) -> tuple[dict[str, JSON], tuple[str, ...]]:
        """The request's settings in Chat form, and the fields dropped by design."""
        d = self.dialect
        body: dict[str, JSON] = {}
        dropped: tuple[str, ...] = ()
        tools = request.tools
        if tools:
            choice = request.tool_choice
            if isinstance(choice, c.AllowedTools) and not d.allowed_tools:
                tools = tuple(t for t in tools if t.name in choice.names)
            body["tools"] = [_tool(t) for t in tools]
            body["tool_choice"] = self._tool_choice(choice)
        if request.parallel_tool_calls is not None and tools:
            body["parallel_tool_calls"] = request.parallel_tool_calls
        fmt = _response_format(request.text_format)
        if fmt is not None:
            body["response_format"] = fmt
        if request.max_output_tokens is not None:
            body[d.max_tokens_field] = request.max_output_tokens
        for name in ("temperature", "top_p", "user"):
            value = getattr(request, name)
            if value is not None:
                body[name] = value
        if request.reasoning.effort is not None:
            if not d.reasoning_effort:
                raise UnsupportedParameter(
                    "This model's upstream does not accept a reasoning effort.", param="reasoning.effort"
                )
            body["reasoning_effort"] = request.reasoning.effort
        if request.reasoning.summary is not None and d.reasoning_field is None:
            raise UnsupportedParameter(
                "This model's upstream returns no reasoning to summarise.", param="reasoning.summary"
            )
        for name, value in (
            ("verbosity", request.verbosity),
            ("service_tier", request.service_tier),
            ("prompt_cache_key", request.prompt_cache_key),
            ("safety_identifier", request.safety_identifier),
        ):
            if value is None:
                continue
            if not d.openai_params:
                if name == "safety_identifier" and request.user is None:
                    body["user"] = value
                    continue
                if name == "prompt_cache_key":  # a cache-routing hint, no effect on the reply: dropped
                    dropped = ("prompt_cache_key",)
                    continue
                raise UnsupportedParameter(f"This model's upstream does not accept '{name}'.", param=name)
            body[name] = value
        return body, dropped

    def _tool_choice(self, choice: c.ToolChoice) -> JSON:
        if isinstance(choice, str):
            return choice
        if isinstance(choice, c.NamedFunction):
            return {"type": "function", "function": {"name": choice.name}}
        if self.dialect.allowed_tools:
            refs = [{"type": "function", "function": {"name": n}} for n in choice.names]
            return {"type": "allowed_tools", "allowed_tools": {"mode": choice.mode, "tools": refs}}
        return choice.mode

    def _messages(self, request: c.Request) -> list[dict[str, JSON]]:
        messages: list[dict[str, JSON]] = []
        if request.instructions:
            messages.append({"role": "system", "content": request.instructions})
        pending_reasoning: list[str] = []
        for index, item in enumerate(request.input):
            param = f"input[{index}]"
            match item:
                case c.Message(role="assistant"):
                    message = self._assistant(messages, new=True)
                    _append_assistant_content(message, item)
                case c.Message(role=role):
                    if role == "developer" and not self.dialect.developer_role:
                        role = "system"
                    messages.append({"role": role, "content": _user_content(item, param)})
                case c.FunctionCall():
                    message = self._assistant(messages, new=False)
                    message.setdefault("tool_calls", []).append(
                        {
                            "id": item.call_id,
                            "type": "function",
                            "function": {"name": item.name, "arguments": item.arguments},
                        }
                    )
                case c.FunctionCallOutput():
                    messages.append(
                        {"role": "tool", "tool_call_id": item.call_id, "content": _tool_output(item, param)}
                    )
                case c.Reasoning():
                    pending_reasoning.extend(item.content or item.summary)
                    continue
            if pending_reasoning and messages[-1]["role"] == "assistant" and self.dialect.reasoning_field:
                messages[-1][self.dialect.reasoning_field] = "\n\n".join(pending_reasoning)
            pending_reasoning = []
        return messages

    @staticmethod
    def _assistant(messages: list[dict[str, JSON]], *, new: bool) -> dict[str, JSON]:
        """The assistant message to write into: a tool call joins the assistant turn it follows."""
        if not new and messages and messages[-1]["role"] == "assistant":
            return messages[-1]
        message: dict[str, JSON] = {"role": "assistant", "content": None}
        messages.append(message)
        return message

    # ------------------------------------------------------------ replies

    def parse_response(self, body: bytes, request: c.Request, ids: IdMinter) -> list[CanonicalEvent]:
        data = load_object(body)
        choices = data.get("choices") or []
        if not choices:
            raise VendorProtocolError("The upstream reply has no choices.")
        choice = choices[0]
        message = choice.get("message") or {}
        events: list[CanonicalEvent] = []
        reasoning = _reasoning_text(message)
        if reasoning:
            events += [ReasoningStarted("r"), _reasoning_delta(request, reasoning), ItemDone("r")]
        content, refusal = message.get("content"), message.get("refusal")
        if content or refusal:
            events.append(MessageStarted("m"))
            if content:
                events.append(TextDelta("m", content))
            if refusal:
                events.append(RefusalDelta("m", refusal))
            events.append(ItemDone("m"))
        for i, call in enumerate(message.get("tool_calls") or []):
            fn = call.get("function") or {}
            key = f"t{i}"
            events += [
                FunctionCallStarted(key, call.get("id") or "", fn.get("name") or ""),
                ArgumentsDelta(key, fn.get("arguments") or ""),
                ItemDone(key),
            ]
        if data.get("usage"):
            events.append(UsageReported(_usage(data["usage"])))
        events.append(Finished(_finish(choice.get("finish_reason"))))
        return events

    def parse_error(self, status: int, body: bytes, retry_after: str | None) -> RosettaError:
        err = error_object(body)
        message = str(err.get("message") or f"Upstream returned HTTP {status}.")
        param = err.get("param") if isinstance(err.get("param"), str) else None
        code = str(err["code"]) if err.get("code") is not None else None
        return upstream_error(status, message, param=param, code=code, retry_after=retry_after)

    def build_count_request(self, request: c.Request, target: UpstreamTarget) -> VendorRequest | None:
        return None  # Chat Completions has no token-count endpoint

    def parse_count(self, body: bytes) -> int:
        raise NotImplementedError("Chat Completions has no token-count endpoint")

    def open_stream(self, request: c.Request, ids: IdMinter) -> ChatStreamTranslator:
        return ChatStreamTranslator(request)


class ChatStreamTranslator:
    """Chat chunks → canonical events.

    Chat streams one message whose parts arrive as deltas: reasoning, then text/refusal, then tool-call
    fragments keyed by `index`. Each kind becomes its own Responses item; an item is closed when the
    next one begins, so deltas of one item stay contiguous as Responses clients expect.
    """

    def __init__(self, request: c.Request) -> None:
        self._request = request
        self._current: str | None = None
        self._calls: set[int] = set()
        self._finish: StopReason | None = None
        self._usage: Usage | None = None
        self._done = False

    def feed(self, message: SSEMessage) -> list[CanonicalEvent]:
        if message.data == "[DONE]":
            self._done = True
            return []
        if self._done:
            raise VendorProtocolError("The upstream sent data after [DONE].")
        chunk = load_object(message.data)
        if isinstance(chunk.get("error"), dict):
            err = chunk["error"]
            return [
                Failed(str(err.get("code") or err.get("type") or "server_error"), str(err.get("message")))
            ]
        events: list[CanonicalEvent] = []
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            self._on_delta(events, choice.get("delta") or {})
            if choice.get("finish_reason"):
                self._finish = _finish(choice["finish_reason"])
        if chunk.get("usage"):
            self._usage = _usage(chunk["usage"])
        return events

    def finish(self) -> list[CanonicalEvent]:
        if self._finish is None:
            return []  # cut short: the encoder reports the stream as failed
        events: list[CanonicalEvent] = []
        if self._usage is not None:
            events.append(UsageReported(self._usage))
        events.append(Finished(self._finish))
        return events

    def _on_delta(self, events: list[CanonicalEvent], delta: dict[str, JSON]) -> None:
        reasoning = _reasoning_text(delta)
        if reasoning:
            self._switch(events, "r")
            events.append(_reasoning_delta(self._request, reasoning))
        if delta.get("content"):
            self._switch(events, "m")
            events.append(TextDelta("m", delta["content"]))
        if delta.get("refusal"):
            self._switch(events, "m")
            events.append(RefusalDelta("m", delta["refusal"]))
        for fragment in delta.get("tool_calls") or []:
            self._on_tool_fragment(events, fragment)

    def _on_tool_fragment(self, events: list[CanonicalEvent], fragment: dict[str, JSON]) -> None:
        index = fragment.get("index", 0)
        key = f"t{index}"
        fn = fragment.get("function") or {}
        if index not in self._calls:
            if not fragment.get("id") or not fn.get("name"):
                raise VendorProtocolError(f"Tool call {index} started without an id and a name.")
            self._calls.add(index)
            self._switch(events, None)
            events.append(FunctionCallStarted(key, fragment["id"], fn["name"]))
            self._current = key
        elif self._current != key:
            raise VendorProtocolError(f"Tool call {index} resumed after another item began.")
        if fn.get("arguments"):
            events.append(ArgumentsDelta(key, fn["arguments"]))

    def _switch(self, events: list[CanonicalEvent], key: str | None) -> None:
        """Make `key` the open item: close the current one, start `key` (reasoning `r`, message `m`)."""
        if self._current == key:
            return
        if self._current is not None:
            events.append(ItemDone(self._current))
        self._current = key
        if key == "r":
            events.append(ReasoningStarted("r"))
        elif key == "m":
            events.append(MessageStarted("m"))


# ---------------------------------------------------------------- helpers


def _reasoning_text(obj: Mapping[str, JSON]) -> str | None:
    """Reasoning under either name: `reasoning` (vLLM, Groq, Ollama) or `reasoning_content` (llama.cpp)."""
    value = obj.get("reasoning")
    if not isinstance(value, str):
        value = obj.get("reasoning_content")
    return value if isinstance(value, str) and value else None


def _reasoning_delta(request: c.Request, text: str) -> CanonicalEvent:
    """Raw reasoning is reasoning text; when the client asked for a summary it is the closest thing the
    upstream offers, so it is shown as the summary instead (Codex and the Agents SDK display summaries)."""
    if request.reasoning.summary is not None:
        return SummaryDelta("r", text)
    return ReasoningTextDelta("r", text)


def _finish(reason: str | None) -> StopReason:
    return _FINISH.get(reason or "stop", "stop")


def _usage(raw: Mapping[str, JSON]) -> Usage:
    prompt = raw.get("prompt_tokens_details") or {}
    completion = raw.get("completion_tokens_details") or {}
    return Usage(
        input_tokens=int(raw.get("prompt_tokens") or 0),
        output_tokens=int(raw.get("completion_tokens") or 0),
        cached_tokens=int(prompt.get("cached_tokens") or 0),
        cache_write_tokens=int(prompt.get("cache_write_tokens") or 0),
        reasoning_tokens=int(completion.get("reasoning_tokens") or 0),
    )


def _tool(tool: c.FunctionTool) -> dict[str, JSON]:
    function: dict[str, JSON] = {"name": tool.name}
    if tool.description is not None:
        function["description"] = tool.description
    if tool.parameters is not None:
        function["parameters"] = tool.parameters
    if tool.strict is not None:
        function["strict"] = tool.strict
    return {"type": "function", "function": function}


def _response_format(fmt: c.OutputFormat) -> JSON:
    if isinstance(fmt, c.JsonSchemaFormat):
        schema: dict[str, JSON] = {"name": fmt.name, "schema": fmt.json_schema}
        if fmt.description is not None:
            schema["description"] = fmt.description
        if fmt.strict is not None:
            schema["strict"] = fmt.strict
        return {"type": "json_schema", "json_schema": schema}
    if isinstance(fmt, c.JsonObjectFormat):
        return {"type": "json_object"}
    return None


def _user_content(item: c.Message, param: str) -> JSON:
    if len(item.content) == 1 and isinstance(item.content[0], c.InputText):
        return item.content[0].text
    return [_part(part, f"{param}.content[{i}]") for i, part in enumerate(item.content)]


def _part(part: c.Part, param: str) -> dict[str, JSON]:
    match part:
        case c.InputText(text=text) | c.OutputText(text=text):
            return {"type": "text", "text": text}
        case c.InputImage(image_url=str(url)):
            return {"type": "image_url", "image_url": {"url": url, "detail": part.detail}}
        case c.InputImage():
            raise UnsupportedParameter("Chat Completions takes images by URL only.", param=f"{param}.file_id")
        case c.InputFile(file_url=str()):
            raise UnsupportedParameter(
                "Chat Completions takes files inline or by id.", param=f"{param}.file_url"
            )
        case c.InputFile():
            file: dict[str, JSON] = {}
            for name in ("file_id", "file_data", "filename"):
                if getattr(part, name) is not None:
                    file[name] = getattr(part, name)
            return {"type": "file", "file": file}
    raise UnsupportedParameter(f"A {part.type} part cannot be sent in this message.", param=param)


def _append_assistant_content(message: dict[str, JSON], item: c.Message) -> None:
    texts = [p.text for p in item.content if isinstance(p, c.OutputText)]
    refusals = [p.refusal for p in item.content if isinstance(p, c.Refusal)]
    if texts:
        message["content"] = "".join(texts)
    if refusals:
        message["refusal"] = "".join(refusals)


def _tool_output(item: c.FunctionCallOutput, param: str) -> JSON:
    if isinstance(item.output, str):
        return item.output
    parts = []
    for i, part in enumerate(item.output):
        if not isinstance(part, c.InputText):
            raise UnsupportedParameter(
                "Chat Completions tool results carry text only.", param=f"{param}.output[{i}]"
            )
        parts.append({"type": "text", "text": part.text})
    return parts
