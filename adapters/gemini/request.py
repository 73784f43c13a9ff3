"""Canonical request → Gemini `generateContent` body.

Responses items become `user`/`model` turns (same-role neighbours merged). Gemini needs things Responses
does not carry on the item itself, recovered here: the function *name* of each `functionResponse` (from
its call earlier in the input), whether a call id came from Gemini (sent back) or was minted by us (not
sent), and the thought signatures, which travel in our sealed reasoning items (`Replay`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from adapters._common import Turns, parse_data_url, system_text
from adapters.gemini.options import GeminiOptions
from adapters.gemini.schema import narrow
from gateway.errors import InvalidRequest, UnsupportedParameter
from schemas import canonical as c

JSON = Any
VENDOR = "gemini"
SENTINEL = "skip_thought_signature_validator"


@dataclass
class Replay:
    """What our earlier Gemini replies asked to get back, keyed by `call_id` (and the text signature)."""

    calls: dict[str, dict[str, JSON]] = field(default_factory=dict)
    text_signatures: list[str] = field(default_factory=list)

    def absorb(self, item: c.Reasoning, model: str) -> None:
        replay = item.replay
        if isinstance(replay, dict) and replay.get("vendor") == VENDOR and replay.get("model") == model:
            self.calls.update(replay.get("calls") or {})
            self.text_signatures.extend(replay.get("text_signatures") or [])


def build_body(
    request: c.Request, model: str, options: GeminiOptions
) -> tuple[dict[str, JSON], tuple[str, ...]]:
    system, contents = _conversation(request, model, options)
    body: dict[str, JSON] = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": [{"text": system}]}
    _tools(body, request, options)
    body["generationConfig"] = _generation_config(request, options)
    if not body["generationConfig"]:
        del body["generationConfig"]
    for name in ("verbosity", "service_tier"):
        if getattr(request, name) is not None:
            raise UnsupportedParameter(f"Gemini models do not accept '{name}'.", param=name)
    # `prompt_cache_key` is a cache-routing hint with no effect on the reply (Codex always sends one).
    dropped = tuple(
        name
        for name in ("user", "safety_identifier", "prompt_cache_key")
        if getattr(request, name) is not None
    )
    return body, dropped


# ---------------------------------------------------------------- conversation


def _conversation(
    request: c.Request, model: str, options: GeminiOptions
) -> tuple[str, list[dict[str, JSON]]]:
    replay = Replay()
    for item in request.input:
        if isinstance(item, c.Reasoning):
            replay.absorb(item, model)
    names: dict[str, str] = {}
    system = [request.instructions] if request.instructions else []
    turns = Turns("parts")
    first_call_of_turn = True
    for index, item in enumerate(request.input):
        param = f"input[{index}]"
        match item:
            case c.Message(role="system" | "developer"):
                system.append(system_text(item, param, "Gemini system instructions"))
            case c.Message(role="user"):
                turns.add(
                    "user", [_user_part(p, f"{param}.content[{i}]") for i, p in enumerate(item.content)]
                )
                first_call_of_turn = True
            case c.Message(role="assistant"):
                turns.add("model", _model_text(item, replay))
            case c.FunctionCall():
                names[item.call_id] = item.name
                turns.add("model", [_call_part(item, param, replay, options, first_call_of_turn)])
                first_call_of_turn = False
            case c.FunctionCallOutput():
                turns.add("user", _response_parts(item, names[item.call_id], param, replay))
                first_call_of_turn = True
            case c.Reasoning():
                pass  # its signatures were gathered above; Gemini has no thought turn to replay
    return "\n\n".join(s for s in system if s.strip()), turns.turns


def _model_text(item: c.Message, replay: Replay) -> list[dict[str, JSON]]:
    text = "".join(
        p.text if isinstance(p, c.OutputText) else p.refusal
        for p in item.content
        if isinstance(p, c.OutputText | c.Refusal)
    )
    if not text:
        return []
    part: dict[str, JSON] = {"text": text}
    if replay.text_signatures:
        part["thoughtSignature"] = replay.text_signatures.pop(0)
    return [part]


def _user_part(part: c.Part, param: str) -> dict[str, JSON]:
    match part:
        case c.InputText(text=text):
            return {"text": text}
        case c.InputImage(image_url=str(url)):
            return _inline(url, None, f"{param}.image_url")
        case c.InputFile(file_data=str(data)):
            return _inline(data, "application/pdf", f"{param}.file_data")
        case c.InputImage() | c.InputFile(file_id=str()):
            raise UnsupportedParameter("Gemini takes media inline, not by file id.", param=f"{param}.file_id")
        case c.InputFile():
            raise UnsupportedParameter(
                "Gemini takes files inline; fetching URLs is not enabled.", param=f"{param}.file_url"
            )
    raise UnsupportedParameter(f"A {part.type} part cannot be sent in a user turn.", param=param)


def _inline(data: str, bare_type: str | None, param: str) -> dict[str, JSON]:
    """A data URL (or, for files, bare base64 taken as PDF) → `inlineData`; a plain URL is refused."""
    inline = parse_data_url(data)
    if inline is None:
        if bare_type is None:
            raise UnsupportedParameter(
                "Gemini takes images inline (data URLs); fetching URLs is not enabled.", param=param
            )
        inline = (bare_type, data)
    return {"inlineData": {"mimeType": inline[0], "data": inline[1]}}


def _call_part(
    item: c.FunctionCall, param: str, replay: Replay, options: GeminiOptions, first_of_turn: bool
) -> dict[str, JSON]:
    try:
        args = orjson.loads(item.arguments) if item.arguments.strip() else {}
    except orjson.JSONDecodeError:
        raise InvalidRequest(
            "Function call arguments must be a JSON object.", param=f"{param}.arguments"
        ) from None
    if not isinstance(args, dict):
        raise InvalidRequest("Function call arguments must be a JSON object.", param=f"{param}.arguments")
    call: dict[str, JSON] = {"name": item.name, "args": args}
    known = replay.calls.get(item.call_id)
    if known is None or known.get("id"):
        call["id"] = item.call_id  # Gemini's own id, or a call that never came from Gemini
    part: dict[str, JSON] = {"functionCall": call}
    if known is not None and known.get("signature"):
        part["thoughtSignature"] = known["signature"]
    elif known is None and first_of_turn and options.signature_sentinel:
        part["thoughtSignature"] = SENTINEL
    return part


def _response_parts(
    item: c.FunctionCallOutput, name: str, param: str, replay: Replay
) -> list[dict[str, JSON]]:
    extra: list[dict[str, JSON]] = []
    if isinstance(item.output, str):
        output = item.output
    else:
        texts = []
        for i, part in enumerate(item.output):
            if isinstance(part, c.InputText):
                texts.append(part.text)
            else:
                extra.append(_user_part(part, f"{param}.output[{i}]"))
        output = "\n".join(texts)
    response: dict[str, JSON] = {"name": name, "response": {"output": output}}
    known = replay.calls.get(item.call_id)
    if known is None or known.get("id"):
        response["id"] = item.call_id
    return [{"functionResponse": response}, *extra]


# ---------------------------------------------------------------- tools and generation config


def _tools(body: dict[str, JSON], request: c.Request, options: GeminiOptions) -> None:
    choice = request.tool_choice
    allowed = set(choice.names) if isinstance(choice, c.AllowedTools) and choice.mode == "auto" else None
    declarations = []
    for tool in request.tools:
        if allowed is not None and tool.name not in allowed:
            continue
        declaration: dict[str, JSON] = {"name": tool.name}
        if tool.description:
            declaration["description"] = tool.description
        if options.json_schema_parameters and tool.parameters:
            declaration["parametersJsonSchema"] = tool.parameters
        else:
            parameters = narrow(tool.parameters)
            if parameters is not None:
                declaration["parameters"] = parameters
        declarations.append(declaration)
    if not declarations:
        return
    body["tools"] = [{"functionDeclarations": declarations}]
    if request.parallel_tool_calls is False:
        raise UnsupportedParameter(
            "Gemini cannot be limited to one tool call per turn.", param="parallel_tool_calls"
        )
    match choice:
        case "auto":
            config: dict[str, JSON] = {"mode": "AUTO"}
        case "none":
            config = {"mode": "NONE"}
        case "required":
            config = {"mode": "ANY"}
        case c.NamedFunction(name=name):
            config = {"mode": "ANY", "allowedFunctionNames": [name]}
        case c.AllowedTools(mode="required", names=names):
            config = {"mode": "ANY", "allowedFunctionNames": list(names)}
        case c.AllowedTools():
            config = {"mode": "AUTO"}
    body["toolConfig"] = {"functionCallingConfig": config}


def _generation_config(request: c.Request, options: GeminiOptions) -> dict[str, JSON]:
    config: dict[str, JSON] = {}
    if request.max_output_tokens is not None:
        config["maxOutputTokens"] = request.max_output_tokens
    if request.temperature is not None:
        config["temperature"] = request.temperature
    if request.top_p is not None:
        config["topP"] = request.top_p
    fmt = request.text_format
    if isinstance(fmt, c.JsonSchemaFormat):
        config["responseMimeType"] = "application/json"
        config["responseJsonSchema"] = fmt.json_schema
    elif isinstance(fmt, c.JsonObjectFormat):
        config["responseMimeType"] = "application/json"
    thinking: dict[str, JSON] = {}
    effort = request.reasoning.effort
    if effort is not None:
        if options.thinking == "level" and effort != "none":
            thinking["thinkingLevel"] = options.effort_levels[effort]
        else:
            thinking["thinkingBudget"] = options.effort_budgets[effort]
    if request.reasoning.summary is not None:
        thinking["includeThoughts"] = True
    if thinking:
        config["thinkingConfig"] = thinking
    return config
