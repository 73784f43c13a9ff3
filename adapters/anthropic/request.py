"""Canonical request → Anthropic Messages body.

Responses items are a flat list; Messages wants alternating user/assistant turns, a single top-level
`system`, tool results at the head of the user turn that follows their calls, and non-empty text. The
shared `Turns` builder does the grouping; each item kind only says which role its blocks belong to.
"""

from __future__ import annotations

from typing import Any

import orjson

from adapters._common import Turns, parse_data_url, system_text
from adapters.anthropic.options import AnthropicOptions
from gateway.errors import InvalidRequest, UnsupportedParameter
from schemas import canonical as c

JSON = Any
VENDOR = "anthropic"
FIRST_TURN_PLACEHOLDER = "(continuing the conversation)"
IMAGE_TYPES = {"image/jpeg", "image/png", "image/gif", "image/webp"}
JSON_OBJECT_TOOL = "json_object"


def build_body(
    request: c.Request, model: str, options: AnthropicOptions
) -> tuple[dict[str, JSON], tuple[str, ...]]:
    """The Messages body, and the names of fields dropped by design (tool `strict` without native support)."""
    system, messages = _conversation(request, model)
    body: dict[str, JSON] = {"model": model, "messages": messages}
    if system:
        body["system"] = system
    budget = _thinking_budget(request, options)
    body["max_tokens"] = _max_tokens(request, options, budget)
    if budget is not None:
        body["thinking"] = {"type": "enabled", "budget_tokens": min(budget, body["max_tokens"] - 1)}
    dropped = _tools(body, request, options, thinking=budget is not None)
    _sampling(body, request, options, thinking=budget is not None)
    user = request.safety_identifier or request.user
    if user:
        body["metadata"] = {"user_id": user}
    for name in ("verbosity", "service_tier"):
        if getattr(request, name) is not None:
            raise UnsupportedParameter(f"Anthropic models do not accept '{name}'.", param=name)
    if request.prompt_cache_key is not None:
        # A cache-routing hint with no effect on the reply (Codex always sends one): dropped, reported.
        dropped = (*dropped, "prompt_cache_key")
    if request.stream:
        body["stream"] = True
    return body, dropped


# ---------------------------------------------------------------- conversation


def _conversation(request: c.Request, model: str) -> tuple[str, list[dict[str, JSON]]]:
    """System text (instructions, then system/developer messages in order) and the turns."""
    system = [request.instructions] if request.instructions else []
    turns = Turns("content")
    for index, item in enumerate(request.input):
        param = f"input[{index}]"
        match item:
            case c.Message(role="system" | "developer"):
                system.append(system_text(item, param, "Anthropic system prompts"))
            case c.Message(role="user"):
                turns.add(
                    "user", [_user_block(p, f"{param}.content[{i}]") for i, p in enumerate(item.content)]
                )
            case c.Message(role="assistant"):
                turns.add("assistant", _assistant_blocks(item))
            case c.FunctionCall():
                turns.add("assistant", [_tool_use(item, param)])
            case c.FunctionCallOutput():
                turns.add("user", [_tool_result(item, param)])
            case c.Reasoning():
                turns.add("assistant", _replayed_thinking(item, model))
    return "\n\n".join(s for s in system if s.strip()), _valid_turns(turns.turns)


def _valid_turns(messages: list[dict[str, JSON]]) -> list[dict[str, JSON]]:
    """What Messages insists on: no empty text, tool results first in their user turn, a user turn first."""
    for message in messages:
        message["content"] = [b for b in message["content"] if b["type"] != "text" or b["text"].strip()]
        if message["role"] == "user":
            message["content"].sort(key=lambda block: block["type"] != "tool_result")
    messages = [m for m in messages if m["content"]]
    if messages and messages[0]["role"] != "user":
        messages.insert(0, {"role": "user", "content": [{"type": "text", "text": FIRST_TURN_PLACEHOLDER}]})
    return messages


def _assistant_blocks(item: c.Message) -> list[dict[str, JSON]]:
    return [
        {"type": "text", "text": part.text if isinstance(part, c.OutputText) else part.refusal}
        for part in item.content
        if isinstance(part, c.OutputText | c.Refusal)
    ]


def _user_block(part: c.Part, param: str) -> dict[str, JSON]:
    match part:
        case c.InputText(text=text):
            return {"type": "text", "text": text}
        case c.InputImage():
            return _image(part, param)
        case c.InputFile():
            return _document(part, param)
    raise UnsupportedParameter(f"A {part.type} part cannot be sent in a user message.", param=param)


def _image(part: c.InputImage, param: str) -> dict[str, JSON]:
    if part.image_url is None:
        raise UnsupportedParameter(
            "Anthropic takes images by URL or data URL, not by file id.", param=f"{param}.file_id"
        )
    inline = parse_data_url(part.image_url)
    if inline is None:
        return {"type": "image", "source": {"type": "url", "url": part.image_url}}
    media_type, data = inline
    if media_type not in IMAGE_TYPES:
        raise UnsupportedParameter(
            f"Anthropic does not accept {media_type} images (jpeg, png, gif, webp).",
            param=f"{param}.image_url",
        )
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


def _document(part: c.InputFile, param: str) -> dict[str, JSON]:
    if part.file_url is not None:
        return {"type": "document", "source": {"type": "url", "url": part.file_url}}
    if part.file_data is None:
        raise UnsupportedParameter(
            "Anthropic takes files inline or by URL, not by file id.", param=f"{param}.file_id"
        )
    inline = parse_data_url(part.file_data)
    media_type, data = inline if inline else ("application/pdf", part.file_data)
    if media_type != "application/pdf":
        raise UnsupportedParameter(
            f"Anthropic documents must be PDF, not {media_type}.", param=f"{param}.file_data"
        )
    block: dict[str, JSON] = {
        "type": "document",
        "source": {"type": "base64", "media_type": media_type, "data": data},
    }
    if part.filename:
        block["title"] = part.filename
    return block


def _tool_use(item: c.FunctionCall, param: str) -> dict[str, JSON]:
    try:
        arguments = orjson.loads(item.arguments) if item.arguments.strip() else {}
    except orjson.JSONDecodeError:
        raise InvalidRequest(
            "Function call arguments must be a JSON object.", param=f"{param}.arguments"
        ) from None
    if not isinstance(arguments, dict):
        raise InvalidRequest("Function call arguments must be a JSON object.", param=f"{param}.arguments")
    return {"type": "tool_use", "id": item.call_id, "name": item.name, "input": arguments}


def _tool_result(item: c.FunctionCallOutput, param: str) -> dict[str, JSON]:
    block: dict[str, JSON] = {"type": "tool_result", "tool_use_id": item.call_id}
    if isinstance(item.output, str):
        if item.output:
            block["content"] = item.output
        return block
    content = [_user_block(p, f"{param}.output[{i}]") for i, p in enumerate(item.output)]
    content = [b for b in content if b["type"] != "text" or b["text"].strip()]
    if content:
        block["content"] = content
    return block


def _replayed_thinking(item: c.Reasoning, model: str) -> list[dict[str, JSON]]:
    """Thinking blocks go back verbatim, but only to the model that signed them; others drop them."""
    replay = item.replay
    if isinstance(replay, dict) and replay.get("vendor") == VENDOR and replay.get("model") == model:
        return list(replay.get("blocks") or [])
    return []


# ---------------------------------------------------------------- options


def _thinking_budget(request: c.Request, options: AnthropicOptions) -> int | None:
    effort = request.reasoning.effort
    if effort is None or effort == "none":
        return None
    return options.effort_budgets[effort]


def _max_tokens(request: c.Request, options: AnthropicOptions, budget: int | None) -> int:
    """Responses counts reasoning inside `max_output_tokens`, as Anthropic counts thinking in `max_tokens`."""
    if request.max_output_tokens is None:
        return options.default_max_tokens + (budget or 0)
    if budget is not None and request.max_output_tokens <= 1024:
        raise InvalidRequest(
            "With reasoning enabled, max_output_tokens must exceed 1024 (Anthropic's minimum thinking"
            " budget).",
            param="max_output_tokens",
            code="integer_below_min_value",
        )
    return request.max_output_tokens


def output_tool(request: c.Request, options: AnthropicOptions) -> str | None:
    """The forced tool that carries structured output when the model has no native structured output."""
    fmt = request.text_format
    if isinstance(fmt, c.JsonSchemaFormat) and not options.structured_outputs:
        return fmt.name
    if isinstance(fmt, c.JsonObjectFormat):
        return JSON_OBJECT_TOOL
    return None


def _tools(
    body: dict[str, JSON], request: c.Request, options: AnthropicOptions, *, thinking: bool
) -> tuple[str, ...]:
    dropped: list[str] = []
    choice = request.tool_choice
    allowed = set(choice.names) if isinstance(choice, c.AllowedTools) else None
    declared = []
    for index, tool in enumerate(request.tools):
        if allowed is not None and tool.name not in allowed:
            continue
        spec: dict[str, JSON] = {
            "name": tool.name,
            "input_schema": tool.parameters or {"type": "object", "properties": {}},
        }
        if tool.description:
            spec["description"] = tool.description
        if tool.strict:
            if options.structured_outputs:
                spec["strict"] = True
            else:
                dropped.append(f"tools[{index}].strict")
        declared.append(spec)
    tool_choice = _tool_choice(choice, thinking)
    forced = output_tool(request, options)
    fmt = request.text_format
    if forced is not None:
        if any(t["name"] == forced for t in declared):
            raise InvalidRequest(
                f"text.format name '{forced}' clashes with a tool of that name.", param="text.format"
            )
        if thinking:
            raise UnsupportedParameter(
                "This Anthropic model cannot combine reasoning with structured output.", param="text.format"
            )
        schema = fmt.json_schema if isinstance(fmt, c.JsonSchemaFormat) else {"type": "object"}
        description = fmt.description if isinstance(fmt, c.JsonSchemaFormat) and fmt.description else None
        declared.append(
            {"name": forced, "description": description or "Give the final answer.", "input_schema": schema}
        )
        if tool_choice == {"type": "none"}:
            raise UnsupportedParameter(
                "tool_choice 'none' cannot be combined with structured output here.", param="tool_choice"
            )
        tool_choice = {"type": "any"} if len(declared) > 1 else {"type": "tool", "name": forced}
    elif isinstance(fmt, c.JsonSchemaFormat):
        body["output_config"] = {"format": {"type": "json_schema", "schema": fmt.json_schema}}
    if declared:
        body["tools"] = declared
        if request.parallel_tool_calls is False and tool_choice["type"] != "none":
            tool_choice["disable_parallel_tool_use"] = True
        body["tool_choice"] = tool_choice
    return tuple(dropped)


def _tool_choice(choice: c.ToolChoice, thinking: bool) -> dict[str, JSON]:
    match choice:
        case "auto":
            return {"type": "auto"}
        case "none":
            return {"type": "none"}
        case "required":
            result: dict[str, JSON] = {"type": "any"}
        case c.NamedFunction(name=name):
            result = {"type": "tool", "name": name}
        case c.AllowedTools(mode=mode):
            result = {"type": "any" if mode == "required" else "auto"}
    if thinking and result["type"] != "auto":
        raise UnsupportedParameter(
            "Anthropic models cannot be forced to call a tool while reasoning is enabled.",
            param="tool_choice",
        )
    return result


def _sampling(
    body: dict[str, JSON], request: c.Request, options: AnthropicOptions, *, thinking: bool
) -> None:
    for name in ("temperature", "top_p"):
        value = getattr(request, name)
        if value is None:
            continue
        if not options.sampling_allowed:
            raise UnsupportedParameter(
                f"'{name}' is not accepted by anthropic-version {options.version}.", param=name
            )
        if thinking and name == "temperature":
            raise UnsupportedParameter(
                "Anthropic models do not accept a temperature while reasoning.", param=name
            )
        body[name] = value
