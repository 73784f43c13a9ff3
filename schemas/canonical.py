"""The canonical request model every adapter translates from.

The gateway parses each Responses request into these types once (`gateway.intake`); adapters read only
these, never the wire JSON, so a field is either carried here or rejected at intake. All models are frozen
so a request can be shared by retries, fallbacks and the store without defensive copies.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

JSON = Any
"""A JSON value at a vendor or client boundary (the only place `Any` is allowed)."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# ---------------------------------------------------------------- content parts


class InputText(_Frozen):
    type: Literal["input_text"] = "input_text"
    text: str


class InputImage(_Frozen):
    """An image by URL (https or `data:`) or by an uploaded file id."""

    type: Literal["input_image"] = "input_image"
    image_url: str | None = None
    file_id: str | None = None
    detail: Literal["low", "high", "auto", "original"] = "auto"


class InputFile(_Frozen):
    """A file given inline (`file_data`, usually a data URL), by URL, or by uploaded id."""

    type: Literal["input_file"] = "input_file"
    file_id: str | None = None
    file_data: str | None = None
    file_url: str | None = None
    filename: str | None = None


class OutputText(_Frozen):
    type: Literal["output_text"] = "output_text"
    text: str
    annotations: tuple[JSON, ...] = ()


class Refusal(_Frozen):
    type: Literal["refusal"] = "refusal"
    refusal: str


Part = InputText | InputImage | InputFile | OutputText | Refusal
ToolOutputPart = InputText | InputImage | InputFile


# ---------------------------------------------------------------- items

Role = Literal["user", "assistant", "system", "developer"]


class Message(_Frozen):
    type: Literal["message"] = "message"
    role: Role
    content: tuple[Part, ...]
    id: str | None = None


class FunctionCall(_Frozen):
    type: Literal["function_call"] = "function_call"
    call_id: str
    name: str
    arguments: str
    id: str | None = None


class FunctionCallOutput(_Frozen):
    type: Literal["function_call_output"] = "function_call_output"
    call_id: str
    output: str | tuple[ToolOutputPart, ...]
    id: str | None = None


class Reasoning(_Frozen):
    """Model reasoning: readable summary paragraphs, raw reasoning text, and what the vendor needs back.

    `replay` is the vendor data a Rosetta adapter asked to get back verbatim (opened from our sealed
    `encrypted_content`; it names its vendor and model). `encrypted_content` is a token that is not ours
    (an upstream's own opaque blob), passed on unchanged.
    """

    type: Literal["reasoning"] = "reasoning"
    id: str | None = None
    summary: tuple[str, ...] = ()
    content: tuple[str, ...] = ()
    encrypted_content: str | None = None
    replay: JSON = None


Item = Message | FunctionCall | FunctionCallOutput | Reasoning
"""(An `item_reference` input is replaced by the item it names before a canonical request is built.)"""


# ---------------------------------------------------------------- tools and options


class FunctionTool(_Frozen):
    type: Literal["function"] = "function"
    name: str
    description: str | None = None
    parameters: JSON = None
    strict: bool | None = None


class NamedFunction(_Frozen):
    """`tool_choice` forcing one function."""

    type: Literal["function"] = "function"
    name: str


class AllowedTools(_Frozen):
    """`tool_choice` restricting the model to a subset of the declared functions."""

    type: Literal["allowed_tools"] = "allowed_tools"
    mode: Literal["auto", "required"]
    names: tuple[str, ...]


ToolChoice = Literal["auto", "none", "required"] | NamedFunction | AllowedTools


class TextFormat(_Frozen):
    type: Literal["text"] = "text"


class JsonObjectFormat(_Frozen):
    type: Literal["json_object"] = "json_object"


class JsonSchemaFormat(_Frozen):
    type: Literal["json_schema"] = "json_schema"
    name: str
    json_schema: JSON
    description: str | None = None
    strict: bool | None = None


OutputFormat = TextFormat | JsonObjectFormat | JsonSchemaFormat

Effort = Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"]


class ReasoningOptions(_Frozen):
    effort: Effort | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None


# ---------------------------------------------------------------- the request


class Request(_Frozen):
    """One Responses request after intake: everything an adapter may need, nothing it may not carry.

    `model` is the upstream model name chosen by routing. Settings only the gateway acts on (`store`,
    `metadata`, `background`) are not here: the gateway echoes them from the wire request itself.
    """

    model: str
    input: tuple[Item, ...]
    instructions: str | None = None
    tools: tuple[FunctionTool, ...] = ()
    tool_choice: ToolChoice = "auto"
    parallel_tool_calls: bool | None = None
    text_format: OutputFormat = TextFormat()
    verbosity: Literal["low", "medium", "high"] | None = None
    reasoning: ReasoningOptions = ReasoningOptions()
    max_output_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    user: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    service_tier: str | None = None
    stream: bool = False
    include: tuple[str, ...] = ()
    truncation: Literal["auto", "disabled"] = "disabled"
