"""Wire request → canonical request, plus the echoed settings of the Response object.

Everything a client can get wrong is caught here, before any upstream call, as a 400 naming the field:
wrong JSON types (from pydantic, with the path rebuilt as `input[1].content[0]`), parts that do not fit
their role, tool outputs without their call, and settings the gateway does not serve yet.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, TypeAdapter, ValidationError

from config.models import ModelDefaults
from gateway.errors import InvalidRequest, UnsupportedParameter
from gateway.sealing import Sealer
from schemas import canonical as c
from schemas import responses_request as w

JSON = Any
M = TypeVar("M", bound=BaseModel)

_TYPE_NAMES = {
    "string_type": "a string",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "a boolean",
    "list_type": "an array",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
}


def parse_body(raw: bytes) -> w.CreateResponse:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidRequest(
            "We could not parse the JSON body of your request. Send valid JSON.", code="invalid_json"
        ) from None
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_type")
    return parse_fields(data)


def parse_fields(data: dict[str, JSON]) -> w.CreateResponse:
    """A create request already decoded from JSON (an HTTP body, or a WebSocket `response.create`)."""
    try:
        return w.CreateResponse.model_validate(data)
    except ValidationError as exc:
        raise _validation_error(exc, data) from None


def _validation_error(exc: ValidationError, data: dict[str, JSON]) -> InvalidRequest:
    """The deepest problem, phrased like OpenAI's, with `param` as a path into the client's own JSON.

    A union (`input` is a string or an array) reports one error per member; the one that got furthest
    into the client's JSON is the one that explains the mistake.
    """
    error = max(exc.errors(), key=lambda e: len(_param_path(e["loc"], data)))
    param = _param_path(error["loc"], data)
    kind = error["type"]
    if kind == "extra_forbidden":
        return InvalidRequest(f"Unknown parameter: '{param}'.", param=param, code="unknown_parameter")
    if kind == "missing":
        return InvalidRequest(
            f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter"
        )
    if kind in _TYPE_NAMES:
        got = _json_type(_value_at(error["loc"], data))
        expected = " or ".join(
            dict.fromkeys(_TYPE_NAMES[e["type"]] for e in exc.errors() if e["type"] in _TYPE_NAMES)
            if all(_param_path(e["loc"], data) == param for e in exc.errors())
            else [_TYPE_NAMES[kind]]
        )
        return InvalidRequest(
            f"Invalid type for '{param}': expected {expected}, but got {got} instead.",
            param=param,
            code="invalid_type",
        )
    if kind in ("greater_than_equal", "greater_than"):
        return InvalidRequest(
            f"Invalid '{param}': {error['msg'].lower()}.", param=param, code="integer_below_min_value"
        )
    return InvalidRequest(f"Invalid value for '{param}': {error['msg']}.", param=param, code="invalid_value")


def _param_path(loc: tuple[int | str, ...], data: JSON) -> str:
    """Rebuild a JSON path from a pydantic location, skipping union-member labels that are not keys."""
    path, node = "", data
    for step in loc:
        if isinstance(node, dict) and isinstance(step, str) and step in node:
            path = f"{path}.{step}" if path else step
            node = node[step]
        elif isinstance(node, list) and isinstance(step, int) and step < len(node):
            path, node = f"{path}[{step}]", node[step]
        elif not isinstance(node, dict | list) or isinstance(step, int):
            break
        elif step == loc[-1] and isinstance(node, dict):
            path = f"{path}.{step}" if path else step  # a missing or unknown key: name it
    return path


def _value_at(loc: tuple[int | str, ...], data: JSON) -> JSON:
    node = data
    for step in loc:
        if isinstance(node, dict) and isinstance(step, str) and step in node:
            node = node[step]
        elif isinstance(node, list) and isinstance(step, int) and step < len(node):
            node = node[step]
    return node


def _json_type(value: JSON) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if value is None:
        return "null"
    return "an object"


# ---------------------------------------------------------------- canonical request


def to_canonical(
    body: w.CreateResponse,
    upstream_model: str,
    defaults: ModelDefaults,
    sealer: Sealer,
    history: list[JSON] | None = None,
) -> c.Request:
    """`history`: the stored items a `previous_response_id` chain brings, in wire form, before the input."""
    _reject_unserved(body)
    earlier = _HISTORY.validate_python(history or [])
    items = tuple(_item(item, i, sealer) for i, item in enumerate([*earlier, *_input_list(body.input)]))
    _check_tool_pairs(items)
    tools = tuple(tool for i, raw in enumerate(body.tools) for tool in _tools(raw, f"tools[{i}]"))
    _check_tool_names(tools)
    text = body.text or w.TextParam()
    reasoning = body.reasoning or w.ReasoningOptionsParam()
    return c.Request(
        model=upstream_model,
        input=items,
        instructions=body.instructions,
        tools=tools,
        tool_choice=_tool_choice(body.tool_choice, tools),
        parallel_tool_calls=body.parallel_tool_calls,
        text_format=_text_format(text.format),
        verbosity=text.verbosity,
        reasoning=c.ReasoningOptions(
            effort=reasoning.effort, summary=reasoning.summary or reasoning.generate_summary
        ),
        max_output_tokens=_default(body.max_output_tokens, defaults.max_output_tokens),
        temperature=_default(body.temperature, defaults.temperature),
        top_p=_default(body.top_p, defaults.top_p),
        user=body.user,
        safety_identifier=body.safety_identifier,
        prompt_cache_key=body.prompt_cache_key,
        service_tier=body.service_tier if body.service_tier not in (None, "auto", "default") else None,
        stream=bool(body.stream),
        include=tuple(body.include or ()),
        truncation=body.truncation or "disabled",
    )


def _default(value: Any, default: Any) -> Any:
    return default if value is None else value


def _reject_unserved(body: w.CreateResponse) -> None:
    """Settings the gateway cannot honour yet: a clear 400 rather than a silent drop."""
    for name in ("conversation", "prompt", "prompt_cache_retention"):
        if getattr(body, name) is not None:
            raise UnsupportedParameter(f"'{name}' is not supported by this gateway yet.", param=name)
    if body.background and body.store is False:
        raise InvalidRequest("Background responses must be stored ('store' cannot be false).", param="store")
    if body.truncation == "auto":
        raise UnsupportedParameter("'truncation: auto' is not supported yet.", param="truncation")
    if body.stream_options is not None and not body.stream:
        raise InvalidRequest(
            "'stream_options' is only allowed when 'stream' is true.",
            param="stream_options",
            code="invalid_value",
        )
    for i, value in enumerate(body.include or ()):
        if value != "reasoning.encrypted_content":
            raise UnsupportedParameter(f"include '{value}' is not supported.", param=f"include[{i}]")


_HISTORY: TypeAdapter[list[JSON]] = TypeAdapter(list[w.InputItem])

_ID_PREFIX = {
    "message": "msg",
    "function_call": "fc",
    "function_call_output": "fco",
    "reasoning": "rs",
}


def drop_tools(body: w.CreateResponse, types: Collection[str]) -> tuple[w.CreateResponse, tuple[str, ...]]:
    """`body` without its tools of `types` (those the operator lets the gateway remove rather than
    refuse), and where they were (`tools[i]`) for the dropped-params header."""
    dropped = tuple(f"tools[{i}]" for i, tool in enumerate(body.tools) if tool.get("type") in types)
    if not dropped:
        return body, ()
    kept = [tool for tool in body.tools if tool.get("type") not in types]
    return body.model_copy(update={"tools": kept}), dropped


def wire_input(body: w.CreateResponse, new_id: Callable[[str], str]) -> list[dict[str, JSON]]:
    """The request's input as stored for `input_items` and later chains: wire form, every item with an id,
    message text as content parts (as OpenAI lists them)."""
    items = []
    for item in _input_list(body.input):
        data = item.model_dump(mode="json", exclude_none=True, by_alias=True)
        if data["type"] == "message" and isinstance(data["content"], str):
            kind = "output_text" if data["role"] == "assistant" else "input_text"
            part: dict[str, JSON] = {"type": kind, "text": data["content"]}
            if kind == "output_text":
                part["annotations"] = []
            data["content"] = [part]
        if "id" not in data:
            data["id"] = new_id(_ID_PREFIX.get(data["type"], "item"))
        items.append(data)
    return items


def _input_list(value: str | list[JSON]) -> list[JSON]:
    if isinstance(value, str):
        return [w.MessageParam(type="message", role="user", content=value)]
    return value


def _item(item: JSON, index: int, sealer: Sealer) -> c.Item:
    param = f"input[{index}]"
    match item:
        case w.MessageParam():
            return c.Message(role=item.role, content=_content(item, param), id=item.id)
        case w.FunctionCallParam():
            name = _flat_name(item.namespace, item.name) if item.namespace else item.name
            return c.FunctionCall(call_id=item.call_id, name=name, arguments=item.arguments, id=item.id)
        case w.FunctionCallOutputParam():
            output: str | tuple[c.ToolOutputPart, ...]
            if isinstance(item.output, str):
                output = item.output
            else:
                output = tuple(_tool_part(p) for p in item.output)
            return c.FunctionCallOutput(call_id=item.call_id, output=output, id=item.id)
        case w.ReasoningParam():
            token = item.encrypted_content
            replay = sealer.open(token, f"{param}.encrypted_content") if token else None
            return c.Reasoning(
                id=item.id,
                summary=tuple(s.text for s in item.summary),
                content=tuple(p.text for p in item.content or ()),
                encrypted_content=token if replay is None else None,
                replay=replay,
            )
        case w.CompactionParam():
            return _compacted(item, f"{param}.encrypted_content", sealer)
    raise InvalidRequest("Unsupported input item.", param=param)


COMPACTED_PREFIX = "Summary of the conversation so far:\n\n"


def _compacted(item: w.CompactionParam, param: str, sealer: Sealer) -> c.Message:
    """A compaction of ours stands for the history it summarised: a developer note carrying the summary."""
    payload = sealer.open(item.encrypted_content, param)
    if not isinstance(payload, dict) or "compaction" not in payload:
        raise InvalidRequest(
            "This compaction was not made by this gateway.", param=param, code="invalid_value"
        )
    return c.Message(role="developer", content=(c.InputText(text=COMPACTED_PREFIX + payload["compaction"]),))


def _content(message: w.MessageParam, param: str) -> tuple[c.Part, ...]:
    assistant = message.role == "assistant"
    if isinstance(message.content, str):
        return (c.OutputText(text=message.content) if assistant else c.InputText(text=message.content),)
    parts: list[c.Part] = []
    for i, part in enumerate(message.content):
        is_output = isinstance(part, w.OutputTextParam | w.RefusalParam)
        if assistant != is_output:
            allowed = (
                "'output_text' and 'refusal'" if assistant else "'input_text', 'input_image' and 'input_file'"
            )
            raise InvalidRequest(
                f"Invalid value: '{part.type}'. Supported values are: {allowed}.",
                param=f"{param}.content[{i}]",
                code="invalid_value",
            )
        match part:
            case w.OutputTextParam():
                parts.append(c.OutputText(text=part.text, annotations=tuple(part.annotations)))
            case w.RefusalParam():
                parts.append(c.Refusal(refusal=part.refusal))
            case _:
                parts.append(_tool_part(part))
    return tuple(parts)


def _tool_part(part: w.InputTextParam | w.InputImageParam | w.InputFileParam) -> c.ToolOutputPart:
    match part:
        case w.InputTextParam():
            return c.InputText(text=part.text)
        case w.InputImageParam():
            return c.InputImage(image_url=part.image_url, file_id=part.file_id, detail=part.detail or "auto")
        case w.InputFileParam():
            return c.InputFile(
                file_id=part.file_id, file_data=part.file_data, file_url=part.file_url, filename=part.filename
            )


def _check_tool_pairs(items: tuple[c.Item, ...]) -> None:
    """Every tool output answers an earlier call, and every call gets its output (as OpenAI enforces)."""
    calls: dict[str, int] = {}
    answered: set[str] = set()
    for index, item in enumerate(items):
        if isinstance(item, c.FunctionCall):
            calls[item.call_id] = index
        elif isinstance(item, c.FunctionCallOutput):
            if item.call_id not in calls:
                raise InvalidRequest(
                    f"No tool call found for function call output with call_id {item.call_id}.",
                    param=f"input[{index}]",
                )
            answered.add(item.call_id)
    for call_id, index in calls.items():
        if call_id not in answered:
            raise InvalidRequest(
                f"No tool output found for function call {call_id}.", param=f"input[{index}]"
            )


NAMESPACE_SEPARATOR = "__"
"""Vendors know flat function names only: `ns`'s function `f` goes upstream as `ns__f`."""


def _flat_name(namespace: str, name: str) -> str:
    return f"{namespace}{NAMESPACE_SEPARATOR}{name}"


def namespaced_names(body: w.CreateResponse) -> dict[str, tuple[str, str]]:
    """Upstream name → (namespace, name) of each function declared inside a `namespace` tool, so the
    calls the model makes come back as `name` plus `namespace`, as OpenAI returns them."""
    return {
        _flat_name(raw["name"], inner["name"]): (raw["name"], inner["name"])
        for raw in body.tools
        if raw.get("type") == "namespace"
        for inner in raw.get("tools") or ()
    }


def _tools(raw: dict[str, JSON], param: str) -> list[c.FunctionTool]:
    """One declared tool as the functions it stands for: itself, or a namespace's members."""
    if raw.get("type") != "namespace":
        return [_tool(raw, param)]
    namespace = _validated(w.NamespaceToolParam, raw, param)
    return [_tool(inner, f"{param}.tools[{j}]", namespace) for j, inner in enumerate(namespace.tools)]


def _tool(raw: dict[str, JSON], param: str, namespace: w.NamespaceToolParam | None = None) -> c.FunctionTool:
    if raw.get("type") != "function":
        raise UnsupportedParameter(
            f"Tool type {raw.get('type')!r} is not supported by this gateway yet.", param=f"{param}.type"
        )
    tool = _validated(w.FunctionToolParam, raw, param)
    if namespace is None:
        return c.FunctionTool(
            name=tool.name, description=tool.description, parameters=tool.parameters, strict=tool.strict
        )
    about = "\n\n".join(text for text in (namespace.description, tool.description) if text)
    return c.FunctionTool(
        name=_flat_name(namespace.name, tool.name),
        description=about or None,
        parameters=tool.parameters,
        strict=tool.strict,
    )


def _validated(model: type[M], raw: dict[str, JSON], param: str) -> M:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        inner = _validation_error(exc, raw)
        raise InvalidRequest(
            inner.message.replace(f"'{inner.param}'", f"'{param}.{inner.param}'"),
            param=f"{param}.{inner.param}",
            code=inner.code,
        ) from None


def _check_tool_names(tools: tuple[c.FunctionTool, ...]) -> None:
    """Names every vendor accepts (`[A-Za-z0-9_-]`, at most 64), each declared once (a namespace's
    flattened names included)."""
    seen: set[str] = set()
    for tool in tools:
        if tool.name in seen:
            raise InvalidRequest(
                f"Tool name '{tool.name}' is declared twice.", param="tools", code="invalid_value"
            )
        if len(tool.name) > 64 or not _TOOL_NAME.fullmatch(tool.name):
            raise InvalidRequest(
                f"Tool name '{tool.name}' must be 1 to 64 letters, digits, '_' or '-' (a namespace's"
                f" functions are named 'namespace{NAMESPACE_SEPARATOR}function' upstream).",
                param="tools",
                code="invalid_value",
            )
        seen.add(tool.name)


_TOOL_NAME = re.compile(r"[A-Za-z0-9_-]+")


def _tool_choice(choice: w.ToolChoiceParam | None, tools: tuple[c.FunctionTool, ...]) -> c.ToolChoice:
    names = {t.name for t in tools}
    match choice:
        case None:
            return "auto"
        case str():
            return choice
        case w.FunctionChoiceParam(name=name):
            if name not in names:
                raise InvalidRequest(
                    f"Tool choice '{name}' not found in 'tools' parameter.",
                    param="tool_choice",
                    code="invalid_value",
                )
            return c.NamedFunction(name=name)
        case w.AllowedToolsParam():
            picked: list[str] = []
            for i, ref in enumerate(choice.tools):
                if ref.type != "function" or ref.name not in names:
                    raise InvalidRequest(
                        f"Allowed tool {ref.name or ref.type!r} is not a declared function.",
                        param=f"tool_choice.tools[{i}]",
                        code="invalid_value",
                    )
                picked.append(ref.name)
            return c.AllowedTools(mode=choice.mode, names=tuple(picked))
        case _:
            raise UnsupportedParameter(
                f"Tool choice type {choice.type!r} is not supported by this gateway yet.", param="tool_choice"
            )


def _text_format(fmt: JSON) -> c.OutputFormat:
    match fmt:
        case w.TextFormatJsonSchema():
            return c.JsonSchemaFormat(
                name=fmt.name, json_schema=fmt.schema_, description=fmt.description, strict=fmt.strict
            )
        case w.TextFormatJsonObject():
            return c.JsonObjectFormat()
    return c.TextFormat()


# ---------------------------------------------------------------- the echoed Response skeleton


def response_skeleton(
    body: w.CreateResponse, request: c.Request, response_id: str, created_at: int
) -> dict[str, JSON]:
    """The Response object with every field the API defines, echoing the request's settings.

    Field order and defaults follow a real non-streamed body (responses-api.md §5); fields are never
    left out, and are null only where the API allows null. Sampling settings and the output budget echo
    what was actually sent upstream, model defaults from config included.
    """
    text = body.text or w.TextParam()
    fmt = text.format.model_dump(by_alias=True, exclude_none=True) if text.format else {"type": "text"}
    reasoning = body.reasoning or w.ReasoningOptionsParam()
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": "in_progress",
        "background": bool(body.background),
        "completed_at": None,
        "error": None,
        "incomplete_details": None,
        "instructions": body.instructions,
        "max_output_tokens": request.max_output_tokens,
        "max_tool_calls": body.max_tool_calls,
        "model": body.model,
        "output": [],
        "parallel_tool_calls": True if body.parallel_tool_calls is None else body.parallel_tool_calls,
        "previous_response_id": body.previous_response_id,
        "prompt_cache_key": body.prompt_cache_key,
        "reasoning": {"effort": reasoning.effort, "summary": reasoning.summary or reasoning.generate_summary},
        "safety_identifier": body.safety_identifier,
        "service_tier": body.service_tier or "default",
        "store": True if body.store is None else body.store,
        "temperature": 1.0 if request.temperature is None else request.temperature,
        "presence_penalty": 0.0,
        "frequency_penalty": 0.0,
        "text": {"format": fmt, "verbosity": text.verbosity or "medium"},
        "tool_choice": _echo_tool_choice(body.tool_choice),
        "tools": [_echo_tool(t) for t in body.tools],
        "top_logprobs": body.top_logprobs or 0,
        "top_p": 1.0 if request.top_p is None else request.top_p,
        "truncation": body.truncation or "disabled",
        "usage": None,
        "user": body.user,
        "metadata": body.metadata or {},
    }


def _echo_tool_choice(choice: w.ToolChoiceParam | None) -> JSON:
    if choice is None:
        return "auto"
    if isinstance(choice, str):
        return choice
    return choice.model_dump(exclude_none=True)


def _echo_tool(raw: dict[str, JSON]) -> dict[str, JSON]:
    if raw["type"] == "namespace":
        return {
            "type": "namespace",
            "name": raw["name"],
            "description": raw["description"],
            "tools": [_echo_tool(inner) for inner in raw["tools"]],
        }
    return {
        "type": "function",
        "name": raw["name"],
        "description": raw.get("description"),
        "parameters": raw.get("parameters"),
        "strict": raw.get("strict"),
    }
