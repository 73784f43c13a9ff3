"""Wire model of `POST /v1/responses`: what clients may send, validated strictly.

Strict mode means `"temperature": "hot"` or `"max_output_tokens": "lots"` is a 400 naming the field rather
than a coercion. Unknown top-level fields are rejected by name. Items may carry output-only decorations
(`status`, `logprobs`, `phase`…) that clients echo back; those are accepted and have no meaning as input.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

JSON = Any


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class _Lenient(BaseModel):
    """Items and parts: strict types, but tolerant of echoed output-only keys."""

    model_config = ConfigDict(strict=True, extra="ignore")


# ---------------------------------------------------------------- content parts


class InputTextParam(_Lenient):
    type: Literal["input_text"]
    text: str


class InputImageParam(_Lenient):
    type: Literal["input_image"]
    image_url: str | None = None
    file_id: str | None = None
    detail: Literal["low", "high", "auto", "original"] | None = None


class InputFileParam(_Lenient):
    type: Literal["input_file"]
    file_id: str | None = None
    file_data: str | None = None
    file_url: str | None = None
    filename: str | None = None


class OutputTextParam(_Lenient):
    type: Literal["output_text"]
    text: str
    annotations: list[JSON] = Field(default_factory=list)


class RefusalParam(_Lenient):
    type: Literal["refusal"]
    refusal: str


ContentPart = Annotated[
    InputTextParam | InputImageParam | InputFileParam | OutputTextParam | RefusalParam,
    Field(discriminator="type"),
]
ToolOutputPart = Annotated[InputTextParam | InputImageParam | InputFileParam, Field(discriminator="type")]


# ---------------------------------------------------------------- input items


class MessageParam(_Lenient):
    type: Literal["message"]
    role: Literal["user", "assistant", "system", "developer"]
    content: str | list[ContentPart]
    id: str | None = None


class FunctionCallParam(_Lenient):
    type: Literal["function_call"]
    call_id: str
    name: str
    arguments: str
    id: str | None = None
    namespace: str | None = None


class FunctionCallOutputParam(_Lenient):
    type: Literal["function_call_output"]
    call_id: str
    output: str | list[ToolOutputPart]
    id: str | None = None


class SummaryTextParam(_Lenient):
    type: Literal["summary_text"]
    text: str


class ReasoningTextParam(_Lenient):
    type: Literal["reasoning_text"]
    text: str


class ReasoningParam(_Lenient):
    type: Literal["reasoning"]
    summary: list[SummaryTextParam]
    id: str | None = None
    content: list[ReasoningTextParam] | None = None
    encrypted_content: str | None = None


class ItemReferenceParam(_Lenient):
    type: Literal["item_reference"]
    id: str


class CompactionParam(_Lenient):
    """The item `POST /v1/responses/compact` returns, fed back as input in place of the history."""

    type: Literal["compaction"]
    encrypted_content: str
    id: str | None = None


def _tag_item(value: Any) -> Any:
    """Give untyped items their implied type: `{role, content}` is a message, `{id}` a reference."""
    if isinstance(value, dict) and "type" not in value:
        if "role" in value:
            return {**value, "type": "message"}
        if set(value) == {"id"}:
            return {**value, "type": "item_reference"}
    return value


InputItem = Annotated[
    MessageParam
    | FunctionCallParam
    | FunctionCallOutputParam
    | ReasoningParam
    | ItemReferenceParam
    | CompactionParam,
    Field(discriminator="type"),
    BeforeValidator(_tag_item),
]


# ---------------------------------------------------------------- tools and options


class FunctionToolParam(_Strict):
    type: Literal["function"]
    name: str
    description: str | None = None
    parameters: dict[str, JSON] | None = None
    strict: bool | None = None


class NamespaceToolParam(_Strict):
    """Functions grouped under one name (Codex declares its sub-agent tools so)."""

    type: Literal["namespace"]
    name: str
    description: str
    tools: list[dict[str, JSON]]


class FunctionChoiceParam(_Strict):
    type: Literal["function"]
    name: str


class AllowedToolRef(_Lenient):
    type: str
    name: str | None = None


class AllowedToolsParam(_Strict):
    type: Literal["allowed_tools"]
    mode: Literal["auto", "required"]
    tools: list[AllowedToolRef]


class HostedChoiceParam(BaseModel):
    """A hosted-tool choice (`{"type": "web_search_preview"}`, …): parsed only to be rejected by name."""

    model_config = ConfigDict(extra="allow")
    type: str


ToolChoiceParam = (
    Literal["auto", "none", "required"] | FunctionChoiceParam | AllowedToolsParam | HostedChoiceParam
)


class TextFormatText(_Strict):
    type: Literal["text"]


class TextFormatJsonObject(_Strict):
    type: Literal["json_object"]


class TextFormatJsonSchema(_Strict):
    type: Literal["json_schema"]
    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    schema_: dict[str, JSON] = Field(alias="schema")
    description: str | None = None
    strict: bool | None = None


class TextParam(_Strict):
    format: (
        Annotated[TextFormatText | TextFormatJsonObject | TextFormatJsonSchema, Field(discriminator="type")]
        | None
    ) = None
    verbosity: Literal["low", "medium", "high"] | None = None


class ReasoningOptionsParam(_Strict):
    effort: Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"] | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None
    generate_summary: Literal["auto", "concise", "detailed"] | None = None


class StreamOptionsParam(_Strict):
    include_obfuscation: bool | None = None


Include = Literal[
    "reasoning.encrypted_content",
    "message.output_text.logprobs",
    "message.input_image.image_url",
    "computer_call_output.output.image_url",
    "file_search_call.results",
    "web_search_call.results",
    "web_search_call.action.sources",
    "code_interpreter_call.outputs",
]


class CreateResponse(_Strict):
    """The body of `POST /v1/responses` (openai `response_create_params.py`, the fields a gateway serves)."""

    model: str
    input: str | list[InputItem] = Field(default_factory=list)
    instructions: str | None = None
    tools: list[dict[str, JSON]] = Field(default_factory=list)
    tool_choice: ToolChoiceParam | None = None
    parallel_tool_calls: bool | None = None
    text: TextParam | None = None
    reasoning: ReasoningOptionsParam | None = None
    max_output_tokens: int | None = Field(default=None, ge=16)
    max_tool_calls: int | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    previous_response_id: str | None = None
    conversation: str | dict[str, JSON] | None = None
    prompt: dict[str, JSON] | None = None
    store: bool | None = None
    stream: bool | None = None
    stream_options: StreamOptionsParam | None = None
    background: bool | None = None
    metadata: dict[str, Annotated[str, Field(max_length=512)]] | None = Field(default=None, max_length=16)
    include: list[Include] | None = None
    truncation: Literal["auto", "disabled"] | None = None
    user: str | None = None
    safety_identifier: str | None = Field(default=None, max_length=128)
    prompt_cache_key: str | None = None
    prompt_cache_retention: Literal["in_memory", "24h"] | None = None
    service_tier: Literal["auto", "default", "flex", "scale", "priority"] | None = None
    client_metadata: dict[str, str] | None = None
    """Caller-side tracing tags (Codex sends its session, thread and turn ids here on every request):
    accepted for compatibility, never sent upstream nor echoed, like an HTTP header."""
