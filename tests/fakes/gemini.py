"""A fake Google Gemini upstream (``POST /v1beta/models/{model}:generateContent``) for Rosetta's tests.

Why it exists: the gateway translates Responses API calls into Gemini
``generateContent`` calls. Its tests need an upstream that (1) answers with the
bytes the real API sends (``data:`` frames separated by CRLF blank lines, no
``event:`` lines and no ``[DONE]``, cumulative ``usageMetadata`` on every
chunk, a ``{"error": …}`` frame after a 200, raw U+2028 inside JSON strings),
(2) delivers them in awkward pieces so SSE parsing meets arbitrary chunk
boundaries, (3) records exactly what the gateway sent, and (4) rejects
malformed requests the way Gemini does (roles, empty parts, the OpenAPI schema
subset, function call/response pairing, Gemini 3 thought signatures), so a
translation bug surfaces as the 400 it would cause in production.

It is the twin of :mod:`tests.fakes.anthropic` and :mod:`tests.fakes.chat_completions`
and is used the same way (``tests/fixtures/gemini/README.md`` lists every model)::

    fake = create_fake_gemini(api_key="AIza-test")
    with serve(fake) as base_url:
        ...  # point the gateway's Gemini upstream at base_url, model "fake-function_call"
    assert request_model(fake.last_request) == "fake-function_call"
    assert fake.last_request.headers["x-goog-api-key"] == "AIza-test"

Unlike the other vendors, the model is part of the URL path
(``/v1beta/models/fake-text:streamGenerateContent?alt=sse``), so read it with
:func:`request_model` rather than ``RecordedRequest.model``. ``fake-<case>``
replays ``tests/fixtures/gemini/<case>.stream.sse`` (``:streamGenerateContent``)
or ``<case>.response.json`` (``:generateContent``); scripted models
(``fake-agent``, ``fake-agent-ids``, ``fake-echo``, ``fake-error-*``,
``fake-slow``, ``fake-hang-midstream``) cover agent loops, thought-signature
replay, errors, timeouts and cancellation. Pass ``scenarios`` to add or
override models.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from . import chat_completions as _chat
from ._common import (
    FakeUpstream,
    RecordedRequest,
    Reply,
    ReplyResponse,
    Scenario,
    _fake_arguments,
    _split,
    json_reply,
    sse_reply,
)

__all__ = [
    "API_VERSIONS",
    "FIXTURES_DIR",
    "SKIP_THOUGHT_SIGNATURE",
    "THOUGHT_SIGNING_KEY",
    "FakeGemini",
    "RecordedRequest",
    "Reply",
    "Scenario",
    "canonical_json",
    "create_fake_gemini",
    "fixture_bytes",
    "fixture_cases",
    "gemini_error_body",
    "json_reply",
    "request_method",
    "request_model",
    "request_query",
    "sse_chunks",
    "sse_reply",
    "thought_signature",
]

FIXTURES_DIR: Final = Path(__file__).resolve().parent.parent / "fixtures" / "gemini"

#: API version path segments the fake answers on (google-genai defaults to ``v1``; most use ``v1beta``).
API_VERSIONS: Final = ("v1beta", "v1", "v1alpha")
#: Key of the HMAC behind ``fake-agent``'s thought signatures (see :func:`thought_signature`).
THOUGHT_SIGNING_KEY: Final = b"rosetta-fake-gemini-thought"
#: The documented escape hatch: accepted in place of a real signature on replayed function calls.
SKIP_THOUGHT_SIGNATURE: Final = "skip_thought_signature_validator"

_SSE: Final = "text/event-stream"
_JSON: Final = "application/json; charset=UTF-8"
_METHODS: Final = ("generateContent", "streamGenerateContent", "countTokens")
_RESPONSE_ID_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_FUNCTION_NAME: Final = re.compile(r"[a-zA-Z_][a-zA-Z0-9_.:-]{0,127}")
_CALL_FINISH_MESSAGE: Final = "Model generated function call(s)."
_PROTO: Final = "type.googleapis.com/google.ai.generativelanguage.v1beta."

# Error messages, worded as the real API words them (sources in tests/fixtures/gemini/README.md).
_BAD_KEY: Final = "API key not valid. Please pass a valid API key."
_NO_KEY: Final = (
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API."
)
_NOT_JSON: Final = "Invalid JSON payload received. Unexpected token."
_NO_CONTENTS: Final = "* GenerateContentRequest.contents: contents is not specified\n"
_BAD_ROLE: Final = "Please use a valid role: user, model."
_EMPTY_PARTS: Final = "* GenerateContentRequest.{where}.parts: contents.parts must not be empty.\n"
_NO_DATA: Final = (
    "* GenerateContentRequest.{where}.data: required oneof field 'data' must have one initialized field\n"
)
_UNKNOWN_NAME: Final = (
    "Invalid JSON payload received. Unknown name \"{key}\" at '{where}': Cannot find field."
)
_CALL_AFTER_USER: Final = (
    "Please ensure that function call turn comes immediately after a user turn or after a function "
    "response turn."
)
_RESPONSE_AFTER_CALL: Final = (
    "Please ensure that function response turn comes immediately after a function call turn."
)
_RESPONSE_COUNT: Final = (
    "Please ensure that the number of function response parts is equal to the number of function call "
    "parts of the function call turn."
)
_RESPONSE_NAME: Final = (
    "Please ensure that the name of each function response part matches the name of the function call "
    "part at the same position: contents[{index}].parts[{part}] answers `{got}` but the call is `{want}`."
)
_MISSING_SIGNATURE: Final = (
    "Function call is missing a thought_signature in functionCall parts. This is required for tools to "
    "work correctly, and missing thought_signature may lead to degraded model performance. Additional "
    "data, function call `default_api:{name}` , position {position}. Please refer to "
    "https://ai.google.dev/gemini-api/docs/thought-signatures for more details."
)
_CORRUPTED_SIGNATURE: Final = "Corrupted thought signature."
_BAD_FUNCTION_NAME: Final = (
    "* GenerateContentRequest.{where}.name: Invalid function name. Must start with a letter or an "
    "underscore. Must be alphameric (a-z, A-Z, 0-9), underscores (_), dots (.), colons (:) or dashes (-), "
    "with a maximum length of 128.\n"
)
_NOT_FOUND_HTML: Final = (
    "<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <title>Error 404 (Not Found)!!1</title>\n"
    "  <p><b>404.</b> <ins>That\u2019s an error.</ins>\n  <p>The requested URL <code>{path}</code> was not "
    "found on this server.  <ins>That\u2019s all we know.</ins>\n"
)


def _both(*names: str) -> frozenset[str]:
    """camelCase names plus their snake_case spellings (the proto JSON parser accepts both)."""
    return frozenset(names) | frozenset(re.sub(r"(?<!^)([A-Z])", r"_\1", n).lower() for n in names)


# Fields each message type knows; anything else is "Unknown name … Cannot find field.".
_REQUEST_FIELDS: Final = _both(
    "contents",
    "model",
    "systemInstruction",
    "tools",
    "toolConfig",
    "safetySettings",
    "generationConfig",
    "cachedContent",
)
_CONTENT_FIELDS: Final = _both("role", "parts")
_PART_FIELDS: Final = _both(
    "text",
    "inlineData",
    "fileData",
    "functionCall",
    "functionResponse",
    "executableCode",
    "codeExecutionResult",
    "thought",
    "thoughtSignature",
    "videoMetadata",
    "mediaResolution",
    "partMetadata",
)
_PART_DATA: Final = (
    ("text", "text"),
    ("inlineData", "inline_data"),
    ("fileData", "file_data"),
    ("functionCall", "function_call"),
    ("functionResponse", "function_response"),
    ("executableCode", "executable_code"),
    ("codeExecutionResult", "code_execution_result"),
)
_TOOL_FIELDS: Final = _both(
    "functionDeclarations",
    "googleSearch",
    "googleSearchRetrieval",
    "codeExecution",
    "urlContext",
    "googleMaps",
    "computerUse",
    "fileSearch",
    "retrieval",
    "enterpriseWebSearch",
)
_DECLARATION_FIELDS: Final = _both(
    "name", "description", "parameters", "parametersJsonSchema", "response", "responseJsonSchema", "behavior"
)
_SCHEMA_FIELDS: Final = _both(
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "items",
    "minItems",
    "maxItems",
    "properties",
    "required",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "minimum",
    "maximum",
    "anyOf",
    "propertyOrdering",
    "default",
    "example",
)
_SCHEMA_TYPES: Final = frozenset(
    {"TYPE_UNSPECIFIED", "STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT", "NULL"}
)
_GENERATION_FIELDS: Final = _both(
    "stopSequences",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "responseModalities",
    "candidateCount",
    "maxOutputTokens",
    "temperature",
    "topP",
    "topK",
    "seed",
    "presencePenalty",
    "frequencyPenalty",
    "responseLogprobs",
    "logprobs",
    "enableEnhancedCivicAnswers",
    "speechConfig",
    "thinkingConfig",
    "imageConfig",
    "mediaResolution",
)
_THINKING_FIELDS: Final = _both("thinkingBudget", "includeThoughts", "thinkingLevel")
_TOOL_CONFIG_FIELDS: Final = _both("functionCallingConfig", "retrievalConfig")
_CALLING_CONFIG_FIELDS: Final = _both("mode", "allowedFunctionNames", "streamFunctionCallArguments")
_CALLING_MODES: Final = frozenset({"MODE_UNSPECIFIED", "AUTO", "ANY", "NONE", "VALIDATED"})


# --------------------------------------------------------------------------------------------- public helpers


def fixture_bytes(name: str, fixtures_dir: Path = FIXTURES_DIR) -> bytes:
    """Exact bytes of one fixture file, e.g. ``fixture_bytes("text.stream.sse")``."""
    return _chat.fixture_bytes(name, fixtures_dir)


def fixture_cases(fixtures_dir: Path = FIXTURES_DIR) -> list[str]:
    """Names of all replayable cases (those with a ``.stream.sse`` or ``.response.json``)."""
    return _chat.fixture_cases(fixtures_dir)


def gemini_error_body(
    code: int, status: str, message: str, details: list[dict[str, Any]] | None = None
) -> bytes:
    """An error body laid out like Google's: ``{"error": {"code", "message", "status", "details"?}}``, 2-space
    indented with a trailing newline."""
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return _pretty({"error": error})


def canonical_json(value: Any) -> str:
    """The JSON :func:`thought_signature` signs: sorted keys, no whitespace, raw UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def thought_signature(name: str, args: Mapping[str, Any], key: bytes = THOUGHT_SIGNING_KEY) -> str:
    """The ``thoughtSignature`` ``fake-agent`` puts on a ``functionCall`` of ``name`` with ``args``.

    ``base64(HMAC-SHA256(key, name + canonical_json(args)))``. Real signatures
    are opaque, model-bound base64 that Gemini 3 insists on getting back on the
    same part, unchanged. Deriving the fake's from the call itself lets it check
    replays without keeping state: a dropped signature, one moved to another
    call, or edited arguments are all caught. Pass ``signing_key=`` to the fake
    to simulate signatures from "another model".
    """
    digest = hmac.new(key, (name + canonical_json(dict(args))).encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def request_query(record: RecordedRequest) -> dict[str, str]:
    """The query parameters of a recorded request (last value wins), e.g. ``{"alt": "sse"}``."""
    return {k: v[-1] for k, v in parse_qs(record.query, keep_blank_values=True).items()}


def request_model(record: RecordedRequest) -> str | None:
    """The model named in the URL (``/v1beta/models/<model>:<method>``), or ``None`` for other paths."""
    parsed = _parse_path(record.path)
    return parsed[1] if parsed else None


def request_method(record: RecordedRequest) -> str | None:
    """``generateContent``, ``streamGenerateContent`` or ``countTokens`` (``None`` for other paths)."""
    parsed = _parse_path(record.path)
    return parsed[2] if parsed else None


def sse_chunks(raw: bytes) -> list[Any]:
    """Parse a Gemini SSE body into its JSON payloads, the way google-genai does.

    Lines are split only on CR, LF and CRLF (never on U+2028/U+2029, which
    ``str.splitlines`` would also split on); each ``data: `` line is one JSON
    document; blank lines separate events.
    """
    out: list[Any] = []
    for line in re.split(r"\r\n|\r|\n", raw.decode()):
        if line.startswith("data: "):
            out.append(json.loads(line.removeprefix("data: ")))
    return out


# --------------------------------------------------------------------------------------------- helpers


def _escape(text: str) -> str:
    """Google's JSON writer escapes ``<``, ``>`` and ``&`` even inside strings (``\\u003c``)."""
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _compact(obj: Any) -> str:
    """The layout of a Gemini SSE payload: ``": "`` after keys, bare ``,`` between items, raw UTF-8."""
    return _escape(json.dumps(obj, separators=(",", ": "), ensure_ascii=False))


def _pretty(obj: Any) -> bytes:
    """The layout of a non-streamed Gemini body: 2-space indent and a trailing newline."""
    return (_escape(json.dumps(obj, indent=2, ensure_ascii=False)) + "\n").encode()


def _sse_body(chunks: Iterable[Any]) -> bytes:
    """``data: <json>`` frames, each followed by a CRLF blank line, as Gemini sends them."""
    return "".join(f"data: {_compact(chunk)}\r\n\r\n" for chunk in chunks).encode()


def _array_body(chunks: list[Any]) -> bytes:
    """``:streamGenerateContent`` without ``alt=sse``: one JSON array, each element pretty-printed."""
    elements = [_escape(json.dumps(chunk, indent=2, ensure_ascii=False)) for chunk in chunks]
    return ("[" + "\n,\r\n".join(elements) + "\n]").encode()


def _parse_path(path: str) -> tuple[str, str, str] | None:
    """``/v1beta/models/gemini-2.5-pro:countTokens`` -> ``("v1beta", "gemini-2.5-pro", "countTokens")``."""
    match = re.fullmatch(r"/([^/]+)/models/([^/:]+):([A-Za-z]+)", path)
    return (match[1], match[2], match[3]) if match else None


def _get(obj: Mapping[str, Any], camel: str) -> Any:
    """A field by its camelCase name or its snake_case spelling (camelCase wins)."""
    if camel in obj:
        return obj[camel]
    return obj.get(re.sub(r"([A-Z])", r"_\1", camel).lower())


def _dicts(value: Any) -> list[dict[str, Any]]:
    """The dict elements of ``value`` if it is a list, else nothing."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _role(content: Mapping[str, Any]) -> Any:
    """A content's role; omitted (or empty) means ``user``."""
    role = content.get("role")
    return "user" if role in (None, "") else role


def _calls(content: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [part for part in _dicts(content.get("parts")) if isinstance(_get(part, "functionCall"), dict)]


def _responses(content: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [part for part in _dicts(content.get("parts")) if isinstance(_get(part, "functionResponse"), dict)]


def _text_of(content: Mapping[str, Any]) -> str:
    """The visible text of a content (thought parts excluded)."""
    return "".join(
        part["text"]
        for part in _dicts(content.get("parts"))
        if isinstance(part.get("text"), str) and not part.get("thought")
    )


def _approx_tokens(body: Mapping[str, Any]) -> int:
    """A stable, plausible prompt token count: about four characters per token of everything sent."""
    parts = [_get(body, "systemInstruction"), body.get("contents"), body.get("tools")]
    chars = sum(len(json.dumps(part, ensure_ascii=False)) for part in parts if part is not None)
    return max(1, chars // 4)


def _lower_types(schema: Any) -> Any:
    """A schema with Gemini's upper-case ``type`` names lower-cased (for :func:`_fake_arguments`)."""
    if isinstance(schema, dict):
        return {
            k: (v.lower() if k == "type" and isinstance(v, str) else _lower_types(v))
            for k, v in schema.items()
        }
    if isinstance(schema, list):
        return [_lower_types(item) for item in schema]
    return schema


@dataclass
class _Problem:
    """Why the fake refuses a request: the message, plus ``google.rpc.BadRequest`` field violations."""

    message: str
    violations: list[tuple[str, str]] = field(default_factory=list)

    def details(self) -> list[dict[str, Any]]:
        if not self.violations:
            return []
        fields = [{"field": where, "description": text} for where, text in self.violations]
        return [{"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": fields}]


def _unknown(obj: Mapping[str, Any], known: frozenset[str], where: str) -> _Problem | None:
    """``Unknown name`` for every key of ``obj`` that its message type does not have."""
    texts = [(where, _UNKNOWN_NAME.format(key=key, where=where)) for key in obj if key not in known]
    return _Problem("\n".join(text for _, text in texts), texts) if texts else None


def _bad_value(where: str, kind: str, value: Any) -> _Problem:
    """The proto JSON parser's wording for a value of the wrong type."""
    text = f"Invalid value at '{where}' ({kind}), {json.dumps(value, ensure_ascii=False)}"
    return _Problem(text, [(where, text)])


# --------------------------------------------------------------------------------------------- validation


def _request_problem(body: Mapping[str, Any]) -> _Problem | None:
    """The first reason Gemini would reject ``body`` with a 400, or ``None`` if it looks valid.

    This is the subset of the API's validation that catches translation bugs;
    each message is worded as the API words it where that wording is known.
    """
    problem = _unknown(body, _REQUEST_FIELDS, "")
    if problem is not None:
        # Top-level unknown names are reported without a location.
        return _Problem(problem.message.replace(" at ''", ""), problem.violations)
    for check in (
        _contents_problem,
        _system_problem,
        _tools_problem,
        _tool_config_problem,
        _generation_problem,
    ):
        problem = check(body)
        if problem is not None:
            return problem
    return _pairing_problem(body["contents"])


def _contents_problem(body: Mapping[str, Any]) -> _Problem | None:
    contents = body.get("contents")
    if contents is None or contents == []:
        return _Problem(_NO_CONTENTS)
    if not isinstance(contents, list):
        return _bad_value("contents", _PROTO + "Content", contents)
    for i, content in enumerate(contents):
        where = f"contents[{i}]"
        if not isinstance(content, dict):
            return _bad_value(where, _PROTO + "Content", content)
        problem = _unknown(content, _CONTENT_FIELDS, where)
        if problem is not None:
            return problem
        if _role(content) not in ("user", "model"):
            return _Problem(_BAD_ROLE)
        problem = _parts_problem(content.get("parts"), where)
        if problem is not None:
            return problem
    return None


def _system_problem(body: Mapping[str, Any]) -> _Problem | None:
    system = _get(body, "systemInstruction")
    if system is None:
        return None
    where = "system_instruction"
    if not isinstance(system, dict):
        return _bad_value(where, _PROTO + "Content", system)
    return _unknown(system, _CONTENT_FIELDS, where) or _parts_problem(system.get("parts"), where)


def _parts_problem(parts: Any, where: str) -> _Problem | None:
    if parts is None or parts == []:
        return _Problem(_EMPTY_PARTS.format(where=where))
    if not isinstance(parts, list):
        return _bad_value(f"{where}.parts", _PROTO + "Part", parts)
    for j, part in enumerate(parts):
        problem = _part_problem(part, f"{where}.parts[{j}]")
        if problem is not None:
            return problem
    return None


def _part_problem(part: Any, where: str) -> _Problem | None:
    if not isinstance(part, dict):
        return _bad_value(where, _PROTO + "Part", part)
    problem = _unknown(part, _PART_FIELDS, where)
    if problem is not None:
        return problem
    present = [name for name in dict.fromkeys(n for pair in _PART_DATA for n in pair) if name in part]
    if len(present) > 1:
        text = f"Invalid JSON payload received. Oneof field 'data' is already set. Cannot set '{present[1]}'"
        return _Problem(text, [(where, text)])
    if not present:
        return _Problem(_NO_DATA.format(where=where))
    kind, value = present[0], part[present[0]]
    if kind == "text":
        if not isinstance(value, str):
            return _bad_value(f"{where}.text", "TYPE_STRING", value)
        if value == "" and not _get(part, "thoughtSignature"):
            return _Problem(_NO_DATA.format(where=where))
    elif kind in ("functionCall", "function_call"):
        if not isinstance(value, dict):
            return _bad_value(
                f"{where}.function_call",
                _PROTO + "FunctionCall",
                value,
            )
        if not isinstance(value.get("name"), str) or not value["name"]:
            return _Problem(f"* GenerateContentRequest.{where}.function_call.name: Name cannot be empty.\n")
        args = value.get("args")
        if args is not None and not isinstance(args, dict):
            return _bad_value(
                f"{where}.function_call.args", "type.googleapis.com/google.protobuf.Struct", args
            )
    elif kind in ("functionResponse", "function_response"):
        if not isinstance(value, dict):
            return _bad_value(
                f"{where}.function_response",
                _PROTO + "FunctionResponse",
                value,
            )
        if not isinstance(value.get("name"), str) or not value["name"]:
            return _Problem(
                f"* GenerateContentRequest.{where}.function_response.name: Name cannot be empty.\n"
            )
        response = value.get("response")
        if response is not None and not isinstance(response, dict):
            return _bad_value(
                f"{where}.function_response.response", "type.googleapis.com/google.protobuf.Struct", response
            )
    return None


def _tools_problem(body: Mapping[str, Any]) -> _Problem | None:
    tools = body.get("tools")
    if tools is None:
        return None
    if not isinstance(tools, list):
        return _bad_value("tools", _PROTO + "Tool", tools)
    for t, tool in enumerate(tools):
        where = f"tools[{t}]"
        if not isinstance(tool, dict):
            return _bad_value(where, _PROTO + "Tool", tool)
        problem = _unknown(tool, _TOOL_FIELDS, where)
        if problem is not None:
            return problem
        declarations = _get(tool, "functionDeclarations")
        for n, declaration in enumerate(declarations if isinstance(declarations, list) else []):
            problem = _declaration_problem(declaration, f"{where}.function_declarations[{n}]")
            if problem is not None:
                return problem
    return None


def _declaration_problem(declaration: Any, where: str) -> _Problem | None:
    if not isinstance(declaration, dict):
        return _bad_value(where, _PROTO + "FunctionDeclaration", declaration)
    problem = _unknown(declaration, _DECLARATION_FIELDS, where)
    if problem is not None:
        return problem
    name = declaration.get("name")
    if not isinstance(name, str) or not name:
        return _Problem(f"* GenerateContentRequest.{where}.name: Name cannot be empty.\n")
    if not _FUNCTION_NAME.fullmatch(name):
        return _Problem(_BAD_FUNCTION_NAME.format(where=where))
    parameters = declaration.get("parameters")
    if parameters is not None and _get(declaration, "parametersJsonSchema") is not None:
        return _Problem(
            f"* GenerateContentRequest.{where}: `parameters` and `parameters_json_schema` are mutually "
            "exclusive; set only one of them.\n"
        )
    if parameters is None:
        return None  # parametersJsonSchema is plain JSON Schema: anything goes
    violations: list[tuple[str, str]] = []
    _schema_violations(parameters, f"{where}.parameters", violations)
    if violations:
        return _Problem("\n".join(text for _, text in violations), violations)
    return None


def _schema_violations(schema: Any, where: str, out: list[tuple[str, str]]) -> None:
    """Collect every place ``schema`` leaves Gemini's OpenAPI subset (the API reports them all at once)."""
    if not isinstance(schema, dict):
        text = (
            f"Invalid value at '{where}' (type.googleapis.com/google.ai.generativelanguage.v1beta.Schema), "
        )
        out.append((where, text + json.dumps(schema, ensure_ascii=False)))
        return
    out.extend(
        (where, _UNKNOWN_NAME.format(key=key, where=where)) for key in schema if key not in _SCHEMA_FIELDS
    )
    kind = schema.get("type")
    if kind is not None and not (isinstance(kind, str) and kind.upper() in _SCHEMA_TYPES):
        text = f"Invalid value at '{where}.type' ({_PROTO}Type), {json.dumps(kind, ensure_ascii=False)}"
        out.append((f"{where}.type", text))
    enum = schema.get("enum")
    for k, value in enumerate(enum if isinstance(enum, list) else []):
        if not isinstance(value, str):
            text = (
                f"Invalid value at '{where}.enum[{k}]' (TYPE_STRING), {json.dumps(value, ensure_ascii=False)}"
            )
            out.append((f"{where}.enum[{k}]", text))
    properties = schema.get("properties")
    if isinstance(properties, dict):
        for n, child in enumerate(properties.values()):
            _schema_violations(child, f"{where}.properties[{n}].value", out)
    if "items" in schema:
        _schema_violations(schema["items"], f"{where}.items", out)
    any_of = _get(schema, "anyOf")
    for n, child in enumerate(any_of if isinstance(any_of, list) else []):
        _schema_violations(child, f"{where}.any_of[{n}]", out)


def _tool_config_problem(body: Mapping[str, Any]) -> _Problem | None:
    config = _get(body, "toolConfig")
    if config is None:
        return None
    if not isinstance(config, dict):
        return _bad_value("tool_config", _PROTO + "ToolConfig", config)
    problem = _unknown(config, _TOOL_CONFIG_FIELDS, "tool_config")
    if problem is not None:
        return problem
    calling = _get(config, "functionCallingConfig")
    if calling is None:
        return None
    where = "tool_config.function_calling_config"
    if not isinstance(calling, dict):
        return _bad_value(where, _PROTO + "FunctionCallingConfig", calling)
    problem = _unknown(calling, _CALLING_CONFIG_FIELDS, where)
    if problem is not None:
        return problem
    mode = calling.get("mode")
    if mode is not None and mode not in _CALLING_MODES:
        return _bad_value(
            f"{where}.mode",
            _PROTO + "FunctionCallingConfig.Mode",
            mode,
        )
    if _get(calling, "allowedFunctionNames") and mode not in ("ANY", "VALIDATED"):
        return _Problem(
            f"* GenerateContentRequest.{where}.allowed_function_names: allowed_function_names should only be "
            "set when the Mode is ANY.\n"
        )
    return None


def _generation_problem(body: Mapping[str, Any]) -> _Problem | None:
    config = _get(body, "generationConfig")
    if config is None:
        return None
    where = "generation_config"
    if not isinstance(config, dict):
        return _bad_value(where, _PROTO + "GenerationConfig", config)
    problem = _unknown(config, _GENERATION_FIELDS, where)
    if problem is not None:
        return problem
    thinking = _get(config, "thinkingConfig")
    if isinstance(thinking, dict):
        return _unknown(thinking, _THINKING_FIELDS, f"{where}.thinking_config")
    return None


def _pairing_problem(contents: list[dict[str, Any]]) -> _Problem | None:
    """A model turn with N functionCall parts follows a user turn and is answered by the next user turn with
    exactly N functionResponse parts, in the same order and with the same names."""
    for i, content in enumerate(contents):
        previous = contents[i - 1] if i > 0 else None
        calls, responses = _calls(content), _responses(content)
        if _role(content) == "model" and calls:
            if previous is None or _role(previous) != "user":
                return _Problem(_CALL_AFTER_USER)
            following = contents[i + 1] if i + 1 < len(contents) else None
            answers = _responses(following) if following is not None and _role(following) == "user" else []
            if len(answers) != len(calls):
                return _Problem(_RESPONSE_COUNT)
            parts = _dicts(following["parts"]) if following is not None else []
            for call, answer in zip(calls, answers, strict=True):
                want, got = _get(call, "functionCall")["name"], _get(answer, "functionResponse")["name"]
                if want != got:
                    index = parts.index(answer)
                    return _Problem(_RESPONSE_NAME.format(index=i + 1, part=index, got=got, want=want))
        if _role(content) == "user" and responses:
            if previous is None or _role(previous) != "model" or not _calls(previous):
                return _Problem(_RESPONSE_AFTER_CALL)
    return None


def _signature_problem(contents: list[dict[str, Any]], key: bytes) -> _Problem | None:
    """Gemini 3's rule, as ``fake-agent`` enforces it: the first functionCall of every model turn comes back
    with the signature issued for it (or the documented sentinel); later calls may carry none, but a
    signature that is there must be genuine."""
    for i, content in enumerate(contents):
        if _role(content) != "model":
            continue
        for n, part in enumerate(_calls(content)):
            call = _get(part, "functionCall")
            name, args = call["name"], call.get("args") or {}
            signature = _get(part, "thoughtSignature")
            if not signature:
                if n == 0:
                    return _Problem(_MISSING_SIGNATURE.format(name=name, position=i))
                continue
            if signature != SKIP_THOUGHT_SIGNATURE and signature != thought_signature(name, args, key):
                return _Problem(_CORRUPTED_SIGNATURE)
    return None


# --------------------------------------------------------------------------------------------- replies


@dataclass
class _Draft:
    """A generated model turn, rendered as Gemini SSE, a JSON array of chunks or one JSON body."""

    model: str
    response_id: str
    prompt_tokens: int
    parts: list[dict[str, Any]]
    finish_reason: str = "STOP"

    def _usage(self, candidates: int) -> dict[str, Any]:
        usage: dict[str, Any] = {"promptTokenCount": self.prompt_tokens}
        if candidates:
            usage["candidatesTokenCount"] = candidates
        usage["totalTokenCount"] = self.prompt_tokens + candidates
        usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": self.prompt_tokens}]
        return usage

    def _chunk(self, parts: list[dict[str, Any]], candidates: int, final: bool) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}}
        if final:
            candidate["finishReason"] = self.finish_reason
        candidate["index"] = 0
        if final and any("functionCall" in part for part in self.parts):
            candidate["finishMessage"] = _CALL_FINISH_MESSAGE
        return {
            "candidates": [candidate],
            "usageMetadata": self._usage(candidates),
            "modelVersion": self.model,
            "responseId": self.response_id,
        }

    def _output_tokens(self, parts: list[dict[str, Any]]) -> int:
        total = 0
        for part in parts:
            if "functionCall" in part:
                total += 8 + len(canonical_json(part["functionCall"].get("args", {}))) // 4
            else:
                total += len(re.findall(r"\S+", part.get("text", "")))
        return total

    def chunks(self) -> list[dict[str, Any]]:
        """Text in up to three pieces, function calls whole in one chunk; usage cumulative on each."""
        texts = [part["text"] for part in self.parts if isinstance(part.get("text"), str)]
        if len(self.parts) == 1 and texts and texts[0]:
            pieces = _split(texts[0], 3)
            out, seen = [], ""
            for n, piece in enumerate(pieces):
                seen += piece
                final = n == len(pieces) - 1
                out.append(self._chunk([{"text": piece}], self._output_tokens([{"text": seen}]), final))
            return out
        return [self._chunk(self.parts, self._output_tokens(self.parts), True)]

    def response(self) -> dict[str, Any]:
        return self._chunk(self.parts, self._output_tokens(self.parts), True)


# --------------------------------------------------------------------------------------------- the fake


class FakeGemini(FakeUpstream):
    """The fake Gemini upstream: an ASGI app plus everything a test wants to inspect.

    Same shape as :class:`~tests.fakes.anthropic.FakeAnthropic`: tests read
    ``requests`` (list of :class:`RecordedRequest`, in arrival order; use
    :func:`request_model`, :func:`request_method` and :func:`request_query` on
    them), ``last_request``, ``disconnects`` (replies abandoned by the client,
    via ``until_disconnects``/``wait_for_disconnects``) and ``scenarios``
    (model name -> :data:`Scenario`, mutable between requests), and call
    ``reset()``. The object itself is the ASGI app (``serve(fake)``);
    ``fake.app`` is the underlying Starlette instance.
    """

    def __init__(
        self,
        scenarios: Mapping[str, Scenario] | None = None,
        *,
        api_key: str | None = None,
        chunk_size: int | tuple[int, int] = (1, 40),
        write_delay: float = 0.0,
        slow_seconds: float = 30.0,
        seed: int = 0,
        validate: bool = True,
        fixtures_dir: Path = FIXTURES_DIR,
        signing_key: bytes = THOUGHT_SIGNING_KEY,
    ) -> None:
        self.signing_key = signing_key  # before the base builds scenarios that use it
        super().__init__(
            scenarios,
            api_key=api_key,
            chunk_size=chunk_size,
            write_delay=write_delay,
            slow_seconds=slow_seconds,
            seed=seed,
            validate=validate,
            fixtures_dir=fixtures_dir,
        )

    def _routes(self) -> list[BaseRoute]:
        return [
            Route("/{version}/models/{target}", self._model_call, methods=["POST"]),
            Route("/{version}/models", self._models, methods=["GET"]),
            Route(
                "/{path:path}",
                self._not_found,
                methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            ),
        ]

    # ----------------------------------------------------------------- routes

    async def _model_call(self, request: Request) -> Response:
        record = await self._record(request)
        parsed = _parse_path(record.path)
        if parsed is None or parsed[0] not in API_VERSIONS or parsed[2] not in _METHODS:
            return ReplyResponse(self, record, self._html_404(record))
        if parsed[2] == "countTokens":
            return ReplyResponse(self, record, self._count_tokens(record))
        return ReplyResponse(self, record, self._decide(record))

    async def _models(self, request: Request) -> Response:
        record = await self._record(request)
        if request.path_params["version"] not in API_VERSIONS:
            return ReplyResponse(self, record, self._html_404(record))
        reply = self._check_auth(record)
        if reply is None:
            models = [
                {
                    "name": f"models/{name}",
                    "version": "001",
                    "displayName": name,
                    "inputTokenLimit": 1048576,
                    "outputTokenLimit": 65536,
                    "supportedGenerationMethods": ["generateContent", "countTokens"],
                }
                for name in sorted(self.scenarios)
            ]
            reply = json_reply(_pretty({"models": models}), headers=self._headers(_JSON))
        return ReplyResponse(self, record, reply)

    async def _not_found(self, request: Request) -> Response:
        record = await self._record(request)
        return ReplyResponse(self, record, self._html_404(record))

    # ----------------------------------------------------------------- policy

    def _decide(self, record: RecordedRequest) -> Reply:
        """Validate like Gemini would, then pick the scenario named in the URL."""
        invalid = self._admit(record)
        if invalid is not None:
            return invalid
        model = request_model(record) or ""
        scenario = self.scenarios.get(model)
        if scenario is None:
            return self._model_not_found(record, model)
        if isinstance(scenario, Reply):
            return scenario
        if isinstance(scenario, str):
            return self._fixture_reply(record, scenario)
        return scenario(record)

    def _admit(self, record: RecordedRequest) -> Reply | None:
        """Key, a JSON object body, then (if ``validate``) the body rules."""
        refused = self._check_auth(record)
        if refused is not None:
            return refused
        if not isinstance(record.body, dict):
            return self._error(400, "INVALID_ARGUMENT", _NOT_JSON)
        if self.validate:
            problem = _request_problem(record.body)
            if problem is not None:
                return self._invalid(problem)
        return None

    def _check_auth(self, record: RecordedRequest) -> Reply | None:
        """``x-goog-api-key`` (what the SDK sends) or ``?key=``: missing is 403, wrong 400 API_KEY_INVALID."""
        if self.api_key is None:
            return None
        key = record.headers.get("x-goog-api-key") or request_query(record).get("key")
        if not key:
            return self._error(403, "PERMISSION_DENIED", _NO_KEY)
        if key != self.api_key:
            details = [
                self._error_info("API_KEY_INVALID"),
                {
                    "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                    "locale": "en-US",
                    "message": _BAD_KEY,
                },
            ]
            return self._error(400, "INVALID_ARGUMENT", _BAD_KEY, details)
        return None

    def _count_tokens(self, record: RecordedRequest) -> Reply:
        """``{"totalTokens": N, "promptTokensDetails": […]}`` for ``contents``/``generateContentRequest``."""
        refused = self._check_auth(record)
        if refused is not None:
            return refused
        if not isinstance(record.body, dict):
            return self._error(400, "INVALID_ARGUMENT", _NOT_JSON)
        body: dict[str, Any] = record.body
        nested = _get(body, "generateContentRequest")
        request = nested if isinstance(nested, dict) else {"contents": body.get("contents")}
        if self.validate:
            problem = _unknown(body, _both("contents", "generateContentRequest"), "")
            if problem is not None:
                return self._invalid(_Problem(problem.message.replace(" at ''", ""), problem.violations))
            problem = _request_problem(request)
            if problem is not None:
                return self._invalid(problem)
        model = request_model(record) or ""
        if model not in self.scenarios:
            return self._model_not_found(record, model)
        tokens = _approx_tokens(request)
        counted = {"totalTokens": tokens, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": tokens}]}
        return json_reply(_pretty(counted), headers=self._headers(_JSON))

    # ----------------------------------------------------------------- replies

    @staticmethod
    def _headers(content_type: str) -> dict[str, str]:
        """The headers generativelanguage.googleapis.com sends with every reply."""
        return {
            "content-type": content_type,
            "vary": "Origin, X-Origin, Referer",
            "server": "scaffolding on HTTPServer2",
            "x-xss-protection": "0",
            "x-frame-options": "SAMEORIGIN",
            "x-content-type-options": "nosniff",
        }

    @staticmethod
    def _error_info(reason: str) -> dict[str, Any]:
        return {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": reason,
            "domain": "googleapis.com",
            "metadata": {"service": "generativelanguage.googleapis.com"},
        }

    def _error(
        self, code: int, status: str, message: str, details: list[dict[str, Any]] | None = None
    ) -> Reply:
        return json_reply(
            gemini_error_body(code, status, message, details), code, headers=self._headers(_JSON)
        )

    def _invalid(self, problem: _Problem) -> Reply:
        return self._error(400, "INVALID_ARGUMENT", problem.message, problem.details())

    def _model_not_found(self, record: RecordedRequest, model: str) -> Reply:
        version = _parse_path(record.path)
        method = request_method(record) or "generateContent"
        message = (
            f"models/{model} is not found for API version {version[0] if version else 'v1beta'}, or is not "
            f"supported for {method}. Call ListModels to see the list of available models and their "
            "supported methods."
        )
        return self._error(404, "NOT_FOUND", message)

    def _html_404(self, record: RecordedRequest) -> Reply:
        """What Google's front end answers for a URL no API serves: an HTML page, not JSON."""
        body = _NOT_FOUND_HTML.format(path=record.path).encode()
        return Reply(
            404, body, {"content-type": "text/html; charset=UTF-8", "referrer-policy": "no-referrer"}
        )

    def _response_id(self, record: RecordedRequest) -> str:
        rng = random.Random(hashlib.sha256(f"{self.seed}:{record.index}:response".encode()).digest())
        return "".join(rng.choice(_RESPONSE_ID_ALPHABET) for _ in range(23))

    def _stream_kind(self, record: RecordedRequest) -> str:
        """``"json"`` (``:generateContent``), ``"sse"`` (``?alt=sse``) or ``"array"`` (stream without it)."""
        if request_method(record) != "streamGenerateContent":
            return "json"
        return "sse" if request_query(record).get("alt") == "sse" else "array"

    def _chunks_reply(self, record: RecordedRequest, chunks: list[Any], whole: Any) -> Reply:
        """Render chunks (or the whole response) the way the request's method and ``alt`` ask for."""
        kind = self._stream_kind(record)
        if kind == "sse":
            return sse_reply(_sse_body(chunks), headers=self._headers(_SSE))
        if kind == "array":
            return json_reply(_array_body(chunks), headers=self._headers(_JSON))
        return json_reply(_pretty(whole), headers=self._headers(_JSON))

    def _fixture_reply(self, record: RecordedRequest, case: str) -> Reply:
        """Replay ``<case>.stream.sse`` (as SSE or as a JSON array) or ``<case>.response.json``."""
        kind = self._stream_kind(record)
        name = f"{case}.response.json" if kind == "json" else f"{case}.stream.sse"
        path = self.fixtures_dir / name
        if not path.is_file():
            what = "non-streaming" if kind == "json" else "streaming"
            return self._error(
                400, "INVALID_ARGUMENT", f"fake upstream: case '{case}' has no {what} recording ({name})"
            )
        raw = path.read_bytes()
        if kind == "sse":
            return sse_reply(raw, headers=self._headers(_SSE))
        if kind == "array":
            return json_reply(_array_body(sse_chunks(raw)), headers=self._headers(_JSON))
        return json_reply(raw, headers=self._headers(_JSON))

    def _error_fixture(self, name: str, code: int) -> Scenario:
        def reply(record: RecordedRequest) -> Reply:
            return json_reply(fixture_bytes(name, self.fixtures_dir), code, headers=self._headers(_JSON))

        return reply

    def _generated(self, record: RecordedRequest, parts: list[dict[str, Any]]) -> Reply:
        """A reply built on the fly (agents, echo), laid out exactly like the fixtures."""
        draft = _Draft(
            request_model(record) or "", self._response_id(record), _approx_tokens(record.body), parts
        )
        return self._chunks_reply(record, draft.chunks(), draft.response())

    def _plan(self, record: RecordedRequest, with_id: bool) -> list[dict[str, Any]]:
        """What an agent does next, as model parts.

        After functionResponse parts in the last user turn it reports what they
        said; otherwise it calls the first declared function (or the first of
        ``allowedFunctionNames`` under mode ``ANY``) with arguments built from
        the schema's required properties; with no function to call it says so.
        """
        body: Mapping[str, Any] = record.body
        contents = _dicts(body.get("contents"))
        users = [content for content in contents if _role(content) == "user"]
        responses = _responses(users[-1]) if users else []
        if responses:
            said = []
            for part in responses:
                response = _get(part, "functionResponse").get("response")
                output = response.get("output") if isinstance(response, dict) else None
                if isinstance(output, str):
                    said.append(output)
                elif isinstance(response, dict) and "output" in response:
                    said.append(json.dumps(output, ensure_ascii=False))
                else:
                    said.append(json.dumps(response, ensure_ascii=False))
            return [{"text": "The tool said: " + "\n".join(said)}]
        function = self._function_to_call(body)
        if function is None:
            return [{"text": "I have no tool to call."}]
        name, schema = function
        args = _fake_arguments(_lower_types(schema))
        call: dict[str, Any] = {"name": name, "args": args}
        if with_id:
            rng = random.Random(hashlib.sha256(f"{self.seed}:{record.index}:call".encode()).digest())
            call["id"] = "fc-" + "".join(
                rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(20)
            )
        return [{"functionCall": call, "thoughtSignature": thought_signature(name, args, self.signing_key)}]

    @staticmethod
    def _function_to_call(body: Mapping[str, Any]) -> tuple[str, Any] | None:
        config = _get(body, "toolConfig")
        calling = _get(config, "functionCallingConfig") if isinstance(config, dict) else None
        calling = calling if isinstance(calling, dict) else {}
        if calling.get("mode") == "NONE":
            return None
        declared = [
            (declaration["name"], declaration.get("parameters") or _get(declaration, "parametersJsonSchema"))
            for tool in _dicts(body.get("tools"))
            for declaration in _dicts(_get(tool, "functionDeclarations"))
            if isinstance(declaration.get("name"), str)
        ]
        allowed = _get(calling, "allowedFunctionNames")
        if calling.get("mode") in ("ANY", "VALIDATED") and isinstance(allowed, list) and allowed:
            declared = [entry for entry in declared if entry[0] in allowed]
        return declared[0] if declared else None

    def _agent(self, record: RecordedRequest, with_id: bool = False) -> Reply:
        """A one-tool agent that signs its calls and, like Gemini 3, insists on getting signatures back."""
        if self.validate:
            problem = _signature_problem(_dicts(record.body.get("contents")), self.signing_key)
            if problem is not None:
                return self._invalid(problem)
        return self._generated(record, self._plan(record, with_id))

    def _agent_ids(self, record: RecordedRequest) -> Reply:
        """``fake-agent`` whose function calls carry an ``id`` (as some newer models send)."""
        return self._agent(record, with_id=True)

    def _echo(self, record: RecordedRequest) -> Reply:
        """Answer with the text of the last user turn."""
        users = [content for content in _dicts(record.body.get("contents")) if _role(content) == "user"]
        return self._generated(record, [{"text": _text_of(users[-1]) if users else ""}])

    def _slow(self, record: RecordedRequest) -> Reply:
        """The ``text`` case, but only after ``slow_seconds`` of silence (for read-timeout tests)."""
        reply = self._fixture_reply(record, "text")
        return Reply(reply.status, reply.body, reply.headers, delay=self.slow_seconds)

    def _hang_midstream(self, record: RecordedRequest) -> Reply:
        """The first two chunks of ``text``, then silence until the client leaves."""
        reply = self._fixture_reply(record, "text")
        kind = self._stream_kind(record)
        if kind == "sse":
            frames = reply.body.split(b"\r\n\r\n")
            return Reply(200, b"\r\n\r\n".join(frames[:2]) + b"\r\n\r\n", reply.headers, hang=True)
        if kind == "array":
            chunks = sse_chunks(fixture_bytes("text.stream.sse", self.fixtures_dir))
            prefix = _array_body(chunks[:2])[:-2] + b"\n,\r\n"  # the array stays open
            headers = {**reply.headers, "content-length": str(len(reply.body))}
            return Reply(200, prefix, headers, hang=True)
        # Non-streaming: promise the whole JSON body, deliver a prefix, stall.
        headers = {**reply.headers, "content-length": str(len(reply.body))}
        return Reply(200, reply.body[: len(reply.body) // 2], headers, hang=True)

    def _default_scenarios(self) -> dict[str, Scenario]:
        scenarios: dict[str, Scenario] = {f"fake-{case}": case for case in fixture_cases(self.fixtures_dir)}
        scenarios.update(
            {
                "fake-agent": self._agent,
                "fake-agent-ids": self._agent_ids,
                "fake-echo": self._echo,
                "fake-slow": self._slow,
                "fake-hang-midstream": self._hang_midstream,
                "fake-error-400": self._error_fixture("error_400.json", 400),
                "fake-error-403": self._error_fixture("error_403.json", 403),
                "fake-error-429": self._error_fixture("error_429.json", 429),
                "fake-error-500": self._error_fixture("error_500.json", 500),
                "fake-error-503": self._error_fixture("error_503.json", 503),
            }
        )
        return scenarios


def create_fake_gemini(
    scenarios: Mapping[str, Scenario] | None = None,
    *,
    api_key: str | None = None,
    chunk_size: int | tuple[int, int] = (1, 40),
    write_delay: float = 0.0,
    slow_seconds: float = 30.0,
    seed: int = 0,
    validate: bool = True,
    fixtures_dir: Path = FIXTURES_DIR,
    signing_key: bytes = THOUGHT_SIGNING_KEY,
) -> FakeGemini:
    """Build a fake Gemini upstream.

    ``scenarios`` adds or overrides models (name -> fixture case, :class:`Reply`
    or ``callable(RecordedRequest) -> Reply``). ``api_key`` turns on key
    checking (``x-goog-api-key`` or ``?key=``; missing -> 403, wrong -> 400
    ``API_KEY_INVALID``). ``chunk_size`` is the byte range of each write (an
    ``int`` for a fixed size); ``write_delay`` the pause between writes.
    ``slow_seconds`` is how long ``fake-slow`` stays silent. ``seed`` makes
    piece sizes and generated ids reproducible. ``validate=False`` skips
    Gemini-style request validation (including the agents' signature checks).
    ``signing_key`` keys :func:`thought_signature`.
    """
    return FakeGemini(
        scenarios,
        api_key=api_key,
        chunk_size=chunk_size,
        write_delay=write_delay,
        slow_seconds=slow_seconds,
        seed=seed,
        validate=validate,
        fixtures_dir=fixtures_dir,
        signing_key=signing_key,
    )
