"""Anthropic adapter, request side: exact Messages bodies for every Responses feature, and exact 400s."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from adapters.anthropic import AnthropicAdapter, build_anthropic
from adapters.anthropic.options import AnthropicOptions
from adapters.anthropic.request import FIRST_TURN_PLACEHOLDER
from adapters.base import UpstreamTarget
from gateway.errors import InvalidRequest, UnsupportedParameter
from tests.helpers import SEALER, canonical

TARGET = UpstreamTarget(
    base_url="https://api.anthropic.test/v1", model="claude-test", api_key="sk-ant-test-1234567"
)
ADAPTER = AnthropicAdapter(AnthropicOptions())
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
THINKING = {"type": "thinking", "thinking": "Let me check.", "signature": "SIG=="}


def sent(body: dict[str, Any], adapter: AnthropicAdapter = ADAPTER) -> dict[str, Any]:
    result: dict[str, Any] = orjson.loads(adapter.build_request(canonical(body), TARGET).body)
    return result


def test_request_line_and_headers() -> None:
    vendor = build_anthropic(
        {"version": "2026-10-21", "beta": ["interleaved-thinking-2025-05-14"]}
    ).build_request(canonical({"input": "hi", "stream": True}), TARGET)
    assert (vendor.method, vendor.url, vendor.stream) == (
        "POST",
        "https://api.anthropic.test/v1/messages",
        True,
    )
    assert vendor.headers["x-api-key"] == "sk-ant-test-1234567"
    assert vendor.headers["anthropic-version"] == "2026-10-21"
    assert vendor.headers["anthropic-beta"] == "interleaved-thinking-2025-05-14"
    assert "sk-ant" not in repr(vendor)


def test_conversation_with_tools_images_and_files() -> None:
    body = sent(
        {
            "instructions": "Be brief.",
            "input": [
                {"role": "developer", "content": "Use metric units."},
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "What is in this image, and the weather?"},
                        {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0K"},
                        {"type": "input_image", "image_url": "https://x.test/a.jpg"},
                        {
                            "type": "input_file",
                            "file_data": "data:application/pdf;base64,JVBE",
                            "filename": "a.pdf",
                        },
                        {"type": "input_text", "text": "   "},
                    ],
                },
                {"role": "assistant", "content": [{"type": "output_text", "text": "Checking both."}]},
                {
                    "type": "function_call",
                    "call_id": "toolu_01",
                    "name": "get_weather",
                    "arguments": '{"city":"Paris"}',
                },
                {"type": "function_call", "call_id": "call_02", "name": "get_weather", "arguments": ""},
                {"role": "user", "content": "Hurry."},
                {"type": "function_call_output", "call_id": "toolu_01", "output": "21C"},
                {
                    "type": "function_call_output",
                    "call_id": "call_02",
                    "output": [
                        {"type": "input_text", "text": "see map"},
                        {"type": "input_image", "image_url": "data:image/webp;base64,UklG"},
                    ],
                },
            ],
            "tools": [WEATHER],
            "parallel_tool_calls": False,
            "max_output_tokens": 500,
            "temperature": 0.2,
            "top_p": 0.9,
            "safety_identifier": "user-42",
            "metadata": {"gateway": "only"},
        }
    )
    assert body == {
        "model": "claude-test",
        "system": "Be brief.\n\nUse metric units.",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this image, and the weather?"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0K"},
                    },
                    {"type": "image", "source": {"type": "url", "url": "https://x.test/a.jpg"}},
                    {
                        "type": "document",
                        "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"},
                        "title": "a.pdf",
                    },
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Checking both."},
                    {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}},
                    {"type": "tool_use", "id": "call_02", "name": "get_weather", "input": {}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_01", "content": "21C"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "call_02",
                        "content": [
                            {"type": "text", "text": "see map"},
                            {
                                "type": "image",
                                "source": {"type": "base64", "media_type": "image/webp", "data": "UklG"},
                            },
                        ],
                    },
                    {"type": "text", "text": "Hurry."},
                ],
            },
        ],
        "max_tokens": 500,
        "tools": [
            {
                "name": "get_weather",
                "input_schema": WEATHER["parameters"],
                "description": "Weather for a city",
            }
        ],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
        "temperature": 0.2,
        "top_p": 0.9,
        "metadata": {"user_id": "user-42"},
    }


def test_history_starting_with_the_assistant_gets_a_user_turn_first() -> None:
    body = sent({"input": [{"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Hi"}]})
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": FIRST_TURN_PLACEHOLDER}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Hello!"}]},
        {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
    ]
    assert body["max_tokens"] == 4096  # required by Anthropic: the configured default


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"type": "auto"}),
        ("none", {"type": "none"}),
        ("required", {"type": "any"}),
        ({"type": "function", "name": "get_weather"}, {"type": "tool", "name": "get_weather"}),
    ],
)
def test_tool_choice(choice: Any, expected: dict[str, Any]) -> None:
    assert sent({"tools": [WEATHER], "tool_choice": choice})["tool_choice"] == expected


def test_allowed_tools_sends_the_subset() -> None:
    other = {**WEATHER, "name": "get_time"}
    body = sent(
        {
            "tools": [WEATHER, other],
            "tool_choice": {
                "type": "allowed_tools",
                "mode": "required",
                "tools": [{"type": "function", "name": "get_time"}],
            },
        }
    )
    assert [t["name"] for t in body["tools"]] == ["get_time"]
    assert body["tool_choice"] == {"type": "any"}


def test_reasoning_effort_sets_a_thinking_budget_inside_max_tokens() -> None:
    body = sent({"reasoning": {"effort": "low"}})
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert body["max_tokens"] == 4096 + 2048
    capped = sent({"reasoning": {"effort": "high"}, "max_output_tokens": 3000})
    assert (capped["max_tokens"], capped["thinking"]["budget_tokens"]) == (3000, 2999)
    custom = build_anthropic({"effort_budgets": {"low": 1500}, "default_max_tokens": 1000})
    assert sent({"reasoning": {"effort": "low"}}, custom)["thinking"]["budget_tokens"] == 1500
    assert "thinking" not in sent({"reasoning": {"effort": "none"}})


def test_thinking_blocks_are_replayed_first_and_only_to_their_model() -> None:
    replay = {"vendor": "anthropic", "model": "claude-test", "blocks": [THINKING]}
    other_model = {"vendor": "anthropic", "model": "claude-other", "blocks": [THINKING]}
    input_items: list[dict[str, Any]] = [
        {"role": "user", "content": "Weather?"},
        {"type": "reasoning", "summary": [], "encrypted_content": "PLACEHOLDER"},
        {"type": "function_call", "call_id": "toolu_01", "name": "get_weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "toolu_01", "output": "21C"},
    ]
    for payload, blocks in ((replay, [THINKING]), (other_model, [])):
        items = [dict(i) for i in input_items]
        items[1]["encrypted_content"] = SEALER.seal(payload)
        body = sent({"input": items, "reasoning": {"effort": "low"}})
        assert body["messages"][1]["content"] == [
            *blocks,
            {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {}},
        ]


def test_structured_output_native_or_through_a_forced_tool() -> None:
    fmt = {
        "type": "json_schema",
        "name": "answer",
        "schema": {"type": "object", "properties": {"x": {"type": "integer"}}},
    }
    forced = sent({"text": {"format": fmt}})
    assert forced["tools"] == [
        {"name": "answer", "description": "Give the final answer.", "input_schema": fmt["schema"]}
    ]
    assert forced["tool_choice"] == {"type": "tool", "name": "answer"}
    native = sent({"text": {"format": fmt}}, build_anthropic({"structured_outputs": True}))
    assert native["output_config"] == {"format": {"type": "json_schema", "schema": fmt["schema"]}}
    assert "tools" not in native
    with_tools = sent({"text": {"format": fmt}, "tools": [WEATHER]})
    assert [t["name"] for t in with_tools["tools"]] == ["get_weather", "answer"]
    assert with_tools["tool_choice"] == {"type": "any"}
    assert sent({"text": {"format": {"type": "json_object"}}})["tool_choice"] == {
        "type": "tool",
        "name": "json_object",
    }


def test_strict_tools_are_dropped_and_reported_without_native_support() -> None:
    request = canonical({"tools": [{**WEATHER, "strict": True}]})
    vendor = ADAPTER.build_request(request, TARGET)
    assert vendor.dropped == ("tools[0].strict",)
    assert "strict" not in orjson.loads(vendor.body)["tools"][0]
    native = build_anthropic({"structured_outputs": True}).build_request(request, TARGET)
    assert native.dropped == () and orjson.loads(native.body)["tools"][0]["strict"] is True


@pytest.mark.parametrize(
    ("options", "body", "param"),
    [
        ({"version": "2026-10-21"}, {"temperature": 0.5}, "temperature"),
        ({"version": "2026-10-21"}, {"top_p": 0.5}, "top_p"),
        ({}, {"reasoning": {"effort": "low"}, "temperature": 0.5}, "temperature"),
        ({}, {"reasoning": {"effort": "low"}, "tools": [WEATHER], "tool_choice": "required"}, "tool_choice"),
        ({}, {"reasoning": {"effort": "low"}, "max_output_tokens": 1000}, "max_output_tokens"),
        ({}, {"text": {"verbosity": "low"}}, "verbosity"),
        ({}, {"service_tier": "flex"}, "service_tier"),
        (
            {},
            {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file_1"}]}]},
            "input[0].content[0].file_id",
        ),
        (
            {},
            {
                "input": [
                    {
                        "role": "user",
                        "content": [{"type": "input_image", "image_url": "data:image/bmp;base64,Qk0="}],
                    }
                ]
            },
            "input[0].content[0].image_url",
        ),
        (
            {},
            {
                "input": [
                    {
                        "role": "user",
                        "content": [{"type": "input_file", "file_data": "data:text/csv;base64,YQ=="}],
                    }
                ]
            },
            "input[0].content[0].file_data",
        ),
        (
            {},
            {
                "input": [
                    {"role": "system", "content": [{"type": "input_image", "image_url": "https://x/a.png"}]}
                ]
            },
            "input[0].content[0]",
        ),
        ({}, {"input": [{"id": "msg_1"}]}, "input[0]"),
    ],
)
def test_what_anthropic_cannot_carry_is_a_400_naming_it(
    options: dict[str, Any], body: dict[str, Any], param: str
) -> None:
    with pytest.raises(InvalidRequest) as info:
        build_anthropic(options).build_request(canonical(body), TARGET)
    assert info.value.param == param
    assert info.value.status == 400


def test_bad_call_arguments_are_a_400() -> None:
    with pytest.raises(InvalidRequest) as info:
        sent(
            {
                "input": [
                    {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "[1]"},
                    {"type": "function_call_output", "call_id": "c1", "output": "x"},
                ]
            }
        )
    assert info.value.param == "input[0].arguments"
    assert not isinstance(info.value, UnsupportedParameter)


def test_options_are_validated() -> None:
    with pytest.raises(ValueError, match="unknown flag"):
        build_anthropic({"max_tokenz": 5})
    with pytest.raises(ValueError, match="unknown effort"):
        build_anthropic({"effort_budgets": {"huge": 5}})
