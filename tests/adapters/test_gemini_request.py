"""Gemini adapter, request side: exact bodies, recovered names and ids, narrowed schemas, exact 400s."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from adapters.base import UpstreamTarget
from adapters.gemini import build_gemini
from adapters.gemini.request import SENTINEL
from adapters.gemini.schema import narrow
from gateway.errors import InvalidRequest
from tests.helpers import SEALER, canonical

TARGET = UpstreamTarget(
    base_url="https://gemini.test/v1beta", model="gemini-test", api_key="AIza-test-key-123"
)
ADAPTER = build_gemini({})
WEATHER: dict[str, Any] = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"location": {"type": "string"}},
        "required": ["location"],
        "additionalProperties": False,
    },
    "strict": True,
}


def sent(body: dict[str, Any], adapter: Any = ADAPTER) -> dict[str, Any]:
    result: dict[str, Any] = orjson.loads(adapter.build_request(canonical(body), TARGET).body)
    return result


def test_urls_and_headers() -> None:
    stream = ADAPTER.build_request(canonical({"input": "hi", "stream": True}), TARGET)
    assert stream.url == "https://gemini.test/v1beta/models/gemini-test:streamGenerateContent?alt=sse"
    assert stream.headers["x-goog-api-key"] == "AIza-test-key-123"
    assert "AIza" not in repr(stream)
    plain = ADAPTER.build_request(canonical({"input": "hi"}), TARGET)
    assert plain.url == "https://gemini.test/v1beta/models/gemini-test:generateContent" and not plain.stream


def test_conversation_with_calls_and_results() -> None:
    body = sent(
        {
            "instructions": "Be brief.",
            "input": [
                {"role": "developer", "content": "Metric units."},
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "Weather here?"},
                        {"type": "input_image", "image_url": "data:image/png;base64,iVBO"},
                        {
                            "type": "input_file",
                            "file_data": "data:application/pdf;base64,JVBE",
                            "filename": "a.pdf",
                        },
                    ],
                },
                {"role": "assistant", "content": "Checking."},
                {
                    "type": "function_call",
                    "call_id": "call_1",
                    "name": "get_weather",
                    "arguments": '{"location":"P"}',
                },
                {"type": "function_call", "call_id": "call_2", "name": "get_time", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "call_1", "output": "21C"},
                {
                    "type": "function_call_output",
                    "call_id": "call_2",
                    "output": [{"type": "input_text", "text": "noon"}],
                },
            ],
            "tools": [WEATHER, {"type": "function", "name": "get_time"}],
            "tool_choice": "required",
            "max_output_tokens": 300,
            "temperature": 0.4,
            "top_p": 0.8,
        }
    )
    assert body == {
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"text": "Weather here?"},
                    {"inlineData": {"mimeType": "image/png", "data": "iVBO"}},
                    {"inlineData": {"mimeType": "application/pdf", "data": "JVBE"}},
                ],
            },
            {
                "role": "model",
                "parts": [
                    {"text": "Checking."},
                    {
                        "functionCall": {"name": "get_weather", "args": {"location": "P"}, "id": "call_1"},
                        "thoughtSignature": SENTINEL,
                    },
                    {"functionCall": {"name": "get_time", "args": {}, "id": "call_2"}},
                ],
            },
            {
                "role": "user",
                "parts": [
                    {
                        "functionResponse": {
                            "name": "get_weather",
                            "response": {"output": "21C"},
                            "id": "call_1",
                        }
                    },
                    {
                        "functionResponse": {
                            "name": "get_time",
                            "response": {"output": "noon"},
                            "id": "call_2",
                        }
                    },
                ],
            },
        ],
        "systemInstruction": {"parts": [{"text": "Be brief.\n\nMetric units."}]},
        "tools": [
            {
                "functionDeclarations": [
                    {
                        "name": "get_weather",
                        "description": "Weather for a city",
                        "parameters": {
                            "type": "object",
                            "properties": {"location": {"type": "string"}},
                            "required": ["location"],
                        },
                    },
                    {"name": "get_time"},
                ]
            }
        ],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY"}},
        "generationConfig": {"maxOutputTokens": 300, "temperature": 0.4, "topP": 0.8},
    }


def test_replayed_signatures_and_minted_ids() -> None:
    replay = {
        "vendor": "gemini",
        "model": "gemini-test",
        "calls": {
            "call_minted": {"signature": "SIG1", "id": False},
            "fc-gemini": {"signature": None, "id": True},
        },
        "text_signatures": [],
    }
    body = sent(
        {
            "input": [
                {"role": "user", "content": "Paris and Tokyo?"},
                {"type": "reasoning", "summary": [], "encrypted_content": SEALER.seal(replay)},
                {"type": "function_call", "call_id": "call_minted", "name": "get_weather", "arguments": "{}"},
                {"type": "function_call", "call_id": "fc-gemini", "name": "get_weather", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "call_minted", "output": "a"},
                {"type": "function_call_output", "call_id": "fc-gemini", "output": "b"},
            ]
        }
    )
    model_turn, results = body["contents"][1:]
    assert model_turn["parts"] == [
        {"functionCall": {"name": "get_weather", "args": {}}, "thoughtSignature": "SIG1"},
        {"functionCall": {"name": "get_weather", "args": {}, "id": "fc-gemini"}},
    ]
    assert [p["functionResponse"].get("id") for p in results["parts"]] == [None, "fc-gemini"]
    other_model = {**replay, "model": "gemini-other"}
    body = sent(
        {
            "input": [
                {"role": "user", "content": "x"},
                {"type": "reasoning", "summary": [], "encrypted_content": SEALER.seal(other_model)},
                {"type": "function_call", "call_id": "call_minted", "name": "get_weather", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "call_minted", "output": "a"},
            ]
        }
    )
    assert body["contents"][1]["parts"][0]["thoughtSignature"] == SENTINEL


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        ("auto", {"mode": "AUTO"}),
        ("none", {"mode": "NONE"}),
        (
            {"type": "function", "name": "get_weather"},
            {"mode": "ANY", "allowedFunctionNames": ["get_weather"]},
        ),
        (
            {
                "type": "allowed_tools",
                "mode": "required",
                "tools": [{"type": "function", "name": "get_weather"}],
            },
            {"mode": "ANY", "allowedFunctionNames": ["get_weather"]},
        ),
    ],
)
def test_tool_choice(choice: Any, config: dict[str, Any]) -> None:
    assert sent({"tools": [WEATHER], "tool_choice": choice})["toolConfig"] == {
        "functionCallingConfig": config
    }


def test_reasoning_and_structured_output() -> None:
    assert sent({"reasoning": {"effort": "low", "summary": "auto"}})["generationConfig"] == {
        "thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": True}
    }
    levels = build_gemini({"thinking": "level"})
    assert sent({"reasoning": {"effort": "high"}}, levels)["generationConfig"] == {
        "thinkingConfig": {"thinkingLevel": "HIGH"}
    }
    assert sent({"reasoning": {"effort": "none"}}, levels)["generationConfig"]["thinkingConfig"] == {
        "thinkingBudget": 0
    }
    schema = {"type": "object", "properties": {"x": {"type": "integer"}}, "additionalProperties": False}
    config = sent({"text": {"format": {"type": "json_schema", "name": "out", "schema": schema}}})[
        "generationConfig"
    ]
    assert config == {"responseMimeType": "application/json", "responseJsonSchema": schema}


def test_whole_json_schema_when_the_model_takes_it() -> None:
    body = sent({"tools": [WEATHER]}, build_gemini({"json_schema_parameters": True}))
    assert body["tools"][0]["functionDeclarations"][0]["parametersJsonSchema"] == WEATHER["parameters"]


def test_user_ids_are_dropped_and_reported() -> None:
    vendor = ADAPTER.build_request(canonical({"input": "x", "user": "u1"}), TARGET)
    assert vendor.dropped == ("user",)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (
            {
                "input": [
                    {"role": "user", "content": [{"type": "input_image", "image_url": "https://x/a.png"}]}
                ]
            },
            "input[0].content[0].image_url",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
            "input[0].content[0].file_id",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_file", "file_url": "https://x/a.pdf"}]}]},
            "input[0].content[0].file_url",
        ),
        ({"tools": [WEATHER], "parallel_tool_calls": False}, "parallel_tool_calls"),
        ({"text": {"verbosity": "low"}}, "verbosity"),
        ({"input": [{"id": "msg_1"}]}, "input[0]"),
        (
            {
                "input": [
                    {"type": "function_call", "call_id": "c", "name": "f", "arguments": "nope"},
                    {"type": "function_call_output", "call_id": "c", "output": "x"},
                ]
            },
            "input[0].arguments",
        ),
    ],
)
def test_what_gemini_cannot_carry_is_a_400(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        ADAPTER.build_request(canonical(body), TARGET)
    assert info.value.param == param


def test_schema_narrowing() -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "url": {"type": ["string", "null"], "format": "uri"},
            "when": {"type": "string", "format": "date-time"},
            "place": {"$ref": "#/$defs/Place"},
            "count": {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "null"}]},
            "mode": {"const": "fast"},
            "level": {"enum": [1, 2]},
            "tags": {"type": "array"},
            "either": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
        },
        "required": ["url"],
        "additionalProperties": False,
        "$defs": {
            "Place": {"type": "object", "properties": {"lat": {"type": "number", "exclusiveMinimum": -91}}}
        },
    }
    assert narrow(schema) == {
        "type": "object",
        "properties": {
            "url": {"type": "string", "nullable": True},
            "when": {"type": "string", "format": "date-time"},
            "place": {"type": "object", "properties": {"lat": {"type": "number"}}},
            "count": {"type": "integer", "minimum": 1, "nullable": True},
            "mode": {"enum": ["fast"], "type": "string"},
            "level": {"type": "string", "enum": ["1", "2"]},
            "tags": {"type": "array", "items": {"type": "string"}},
            "either": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
        },
        "required": ["url"],
    }
    assert narrow({"type": "object", "properties": {}}) is None
    recursive = {
        "type": "object",
        "properties": {"child": {"$ref": "#/$defs/Node"}},
        "$defs": {"Node": {"type": "object", "properties": {"child": {"$ref": "#/$defs/Node"}}}},
    }
    assert narrow(recursive) == {
        "type": "object",
        "properties": {"child": {"type": "object", "properties": {"child": {"type": "object"}}}},
    }


def test_options_are_validated() -> None:
    with pytest.raises(ValueError, match="unknown flag"):
        build_gemini({"thinkin": "level"})
    with pytest.raises(ValueError, match="unknown effort"):
        build_gemini({"effort_budgets": {"huge": 1}})
