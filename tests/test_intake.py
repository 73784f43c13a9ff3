"""Intake: wire JSON → canonical request, with every client mistake a 400 naming its field."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from config.models import ModelDefaults
from gateway.errors import InvalidRequest, UnsupportedParameter
from gateway.intake import namespaced_names, parse_body, to_canonical
from schemas import canonical as c
from tests.helpers import SEALER


def canonical(body: dict[str, Any], defaults: ModelDefaults | None = None) -> c.Request:
    return to_canonical(parse_body(orjson.dumps(body)), "upstream-model", defaults or ModelDefaults(), SEALER)


def rejection(body: dict[str, Any] | bytes) -> InvalidRequest:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    with pytest.raises(InvalidRequest) as info:
        to_canonical(parse_body(raw), "upstream-model", ModelDefaults(), SEALER)
    return info.value


@pytest.mark.parametrize(
    ("body", "param", "code", "message"),
    [
        (b"{not json", None, "invalid_json", "We could not parse the JSON body"),
        (b"[1, 2]", None, "invalid_type", "The request body must be a JSON object."),
        (
            {"model": "m", "input": 12345},
            "input",
            "invalid_type",
            "Invalid type for 'input': expected a string or an array, but got an integer instead.",
        ),
        (
            {"model": "m", "input": "x", "temperature": "hot"},
            "temperature",
            "invalid_type",
            "Invalid type for 'temperature': expected a number, but got a string instead.",
        ),
        (
            {"model": "m", "input": "x", "max_output_tokens": "lots"},
            "max_output_tokens",
            "invalid_type",
            "Invalid type for 'max_output_tokens': expected an integer, but got a string instead.",
        ),
        ({"model": "m", "max_output_tokens": 8}, "max_output_tokens", "integer_below_min_value", None),
        ({"input": "x"}, "model", "missing_required_parameter", "Missing required parameter: 'model'."),
        (
            {"model": "m", "frobnicate": 1},
            "frobnicate",
            "unknown_parameter",
            "Unknown parameter: 'frobnicate'.",
        ),
        (
            {"model": "m", "input": [{"role": "user", "content": [{"type": "input_text", "text": 5}]}]},
            "input[0].content[0].text",
            "invalid_type",
            None,
        ),
        (
            {
                "model": "m",
                "input": [{"role": "assistant", "content": [{"type": "input_text", "text": "x"}]}],
            },
            "input[0].content[0]",
            "invalid_value",
            "Invalid value: 'input_text'. Supported values are: 'output_text' and 'refusal'.",
        ),
        (
            {"model": "m", "input": [{"type": "function_call_output", "call_id": "call_x", "output": "1"}]},
            "input[0]",
            None,
            "No tool call found for function call output with call_id call_x.",
        ),
        (
            {
                "model": "m",
                "input": [{"type": "function_call", "call_id": "call_y", "name": "f", "arguments": "{}"}],
            },
            "input[0]",
            None,
            "No tool output found for function call call_y.",
        ),
        ({"model": "m", "tools": [{"type": "web_search"}]}, "tools[0].type", "unsupported_parameter", None),
        ({"model": "m", "tools": [{"type": "function", "name": 3}]}, "tools[0].name", "invalid_type", None),
        (
            {"model": "m", "tools": [], "tool_choice": {"type": "function", "name": "ghost"}},
            "tool_choice",
            "invalid_value",
            "Tool choice 'ghost' not found in 'tools' parameter.",
        ),
        ({"model": "m", "conversation": "conv_1"}, "conversation", "unsupported_parameter", None),
        ({"model": "m", "background": True, "store": False}, "store", None, None),
        (
            {"model": "m", "stream_options": {"include_obfuscation": False}},
            "stream_options",
            "invalid_value",
            None,
        ),
        (
            {"model": "m", "include": ["file_search_call.results"]},
            "include[0]",
            "unsupported_parameter",
            None,
        ),
        ({"model": "m", "metadata": {"k": 1}}, "metadata.k", "invalid_type", None),
    ],
)
def test_bad_input_is_a_400_naming_the_field(
    body: dict[str, Any] | bytes, param: str | None, code: str | None, message: str | None
) -> None:
    error = rejection(body)
    assert error.status == 400
    assert error.param == param
    assert error.code == code
    if message is not None:
        assert error.message.startswith(message)


def test_string_input_is_one_user_message() -> None:
    request = canonical({"model": "public", "input": "Hello", "instructions": "Be brief."})
    assert request.model == "upstream-model"
    assert request.instructions == "Be brief."
    assert request.input == (c.Message(role="user", content=(c.InputText(text="Hello"),)),)


def test_every_item_kind_is_carried() -> None:
    request = canonical(
        {
            "model": "m",
            "input": [
                {"role": "developer", "content": "Rules."},
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "Look"},
                        {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "low"},
                        {
                            "type": "input_file",
                            "file_data": "data:application/pdf;base64,JVBE",
                            "filename": "a.pdf",
                        },
                    ],
                },
                {
                    "type": "reasoning",
                    "id": "rs_1",
                    "summary": [{"type": "summary_text", "text": "hm"}],
                    "encrypted_content": "opaque",
                },
                {
                    "type": "message",
                    "role": "assistant",
                    "id": "msg_1",
                    "status": "completed",
                    "content": [{"type": "output_text", "text": "Hi", "annotations": []}],
                },
                {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "f", "arguments": "{}"},
                {
                    "type": "function_call_output",
                    "call_id": "call_1",
                    "output": [{"type": "input_text", "text": "r"}],
                },
            ],
        }
    )
    assert request.input == (
        c.Message(role="developer", content=(c.InputText(text="Rules."),)),
        c.Message(
            role="user",
            content=(
                c.InputText(text="Look"),
                c.InputImage(image_url="data:image/png;base64,AAAA", detail="low"),
                c.InputFile(file_data="data:application/pdf;base64,JVBE", filename="a.pdf"),
            ),
        ),
        c.Reasoning(id="rs_1", summary=("hm",), encrypted_content="opaque"),
        c.Message(role="assistant", content=(c.OutputText(text="Hi"),), id="msg_1"),
        c.FunctionCall(call_id="call_1", name="f", arguments="{}", id="fc_1"),
        c.FunctionCallOutput(call_id="call_1", output=(c.InputText(text="r"),)),
    )


def test_options_and_model_defaults() -> None:
    request = canonical(
        {
            "model": "m",
            "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": True}],
            "tool_choice": {
                "type": "allowed_tools",
                "mode": "required",
                "tools": [{"type": "function", "name": "f"}],
            },
            "text": {
                "format": {"type": "json_schema", "name": "out", "schema": {"type": "object"}, "strict": True}
            },
            "reasoning": {"effort": "low", "summary": "auto"},
            "temperature": 0.5,
        },
        ModelDefaults(max_output_tokens=256, temperature=0.1),
    )
    assert request.tools == (c.FunctionTool(name="f", parameters={"type": "object"}, strict=True),)
    assert request.tool_choice == c.AllowedTools(mode="required", names=("f",))
    assert request.text_format == c.JsonSchemaFormat(name="out", json_schema={"type": "object"}, strict=True)
    assert request.reasoning == c.ReasoningOptions(effort="low", summary="auto")
    assert request.max_output_tokens == 256
    assert request.temperature == 0.5


def test_unsupported_parameter_is_an_invalid_request() -> None:
    assert issubclass(UnsupportedParameter, InvalidRequest)


NAMESPACE: dict[str, Any] = {
    "type": "namespace",
    "name": "crm",
    "description": "Customer records.",
    "tools": [
        {
            "type": "function",
            "name": "lookup",
            "description": "Find a customer.",
            "parameters": {"type": "object"},
        },
        {"type": "function", "name": "note", "parameters": {"type": "object"}},
    ],
}


def test_a_namespace_becomes_flat_functions_and_its_calls_come_back_flat() -> None:
    request = canonical(
        {
            "model": "m",
            "tools": [NAMESPACE],
            "input": [
                {
                    "type": "function_call",
                    "call_id": "c1",
                    "name": "lookup",
                    "namespace": "crm",
                    "arguments": "{}",
                },
                {"type": "function_call_output", "call_id": "c1", "output": "Ada"},
            ],
        }
    )
    assert request.tools == (
        c.FunctionTool(
            name="crm__lookup",
            description="Customer records.\n\nFind a customer.",
            parameters={"type": "object"},
        ),
        c.FunctionTool(name="crm__note", description="Customer records.", parameters={"type": "object"}),
    )
    assert request.input[0] == c.FunctionCall(call_id="c1", name="crm__lookup", arguments="{}")
    assert namespaced_names(parse_body(orjson.dumps({"model": "m", "input": "x", "tools": [NAMESPACE]}))) == {
        "crm__lookup": ("crm", "lookup"),
        "crm__note": ("crm", "note"),
    }


@pytest.mark.parametrize(
    ("tools", "param", "message"),
    [
        ([{**NAMESPACE, "tools": [{"type": "custom", "name": "x"}]}], "tools[0].tools[0].type", "'custom'"),
        ([{**NAMESPACE, "description": None}], "tools[0].description", "expected a string"),
        (
            [NAMESPACE, {"type": "function", "name": "crm__note", "parameters": {"type": "object"}}],
            "tools",
            "'crm__note' is declared twice",
        ),
        ([{**NAMESPACE, "name": "a" * 60}], "tools", "must be 1 to 64"),
    ],
)
def test_bad_namespaces_are_400s_naming_the_field(tools: list[Any], param: str, message: str) -> None:
    error = rejection({"model": "m", "input": "x", "tools": tools})
    assert error.param == param
    assert message in error.message
