"""Tests of the fake Gemini upstream itself: its fixtures, its replies and its request validation.

Why these exist: every Gemini adapter test trusts the fake to behave like
generativelanguage.googleapis.com. The ``google-genai`` SDK is not a project
dependency, so the fake is driven with plain ``httpx`` and its bytes are
checked against the wire rules a Gemini client relies on (``data:`` frames
with CRLF blank lines, no ``event:`` lines and no ``[DONE]``, cumulative
``usageMetadata``, ``modelVersion``/``responseId`` on every chunk, function
calls arriving whole), and each validation rule is checked to answer with the
400 Gemini would send.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .gemini import (
    FIXTURES_DIR,
    SKIP_THOUGHT_SIGNATURE,
    FakeGemini,
    RecordedRequest,
    Reply,
    canonical_json,
    create_fake_gemini,
    fixture_bytes,
    fixture_cases,
    request_method,
    request_model,
    request_query,
    sse_chunks,
    thought_signature,
)
from .server import aserve, serve

API_KEY = "AIzaSy-rosetta-test-key"
HEADERS = {"x-goog-api-key": API_KEY}
USER_HI: list[Any] = [{"role": "user", "parts": [{"text": "Hi"}]}]
WEATHER: Any = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "parameters": {
        "type": "OBJECT",
        "properties": {"location": {"type": "STRING"}, "unit": {"type": "STRING", "enum": ["c", "f"]}},
        "required": ["location"],
    },
}
TOOLS: list[Any] = [{"functionDeclarations": [WEATHER]}]
STREAM_CASES = sorted(p.name.removesuffix(".stream.sse") for p in FIXTURES_DIR.glob("*.stream.sse"))
RESPONSE_CASES = sorted(p.name.removesuffix(".response.json") for p in FIXTURES_DIR.glob("*.response.json"))
ERROR_CHUNK = {
    "error": {
        "code": 503,
        "message": "The model is overloaded. Please try again later.",
        "status": "UNAVAILABLE",
    }
}
GOOGLE_HEADERS = {"server": "scaffolding on HTTPServer2", "x-content-type-options": "nosniff"}


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[FakeGemini, str]]:
    """One fake and one server for the module: starting uvicorn per test would dominate the runtime."""
    fake = create_fake_gemini(api_key=API_KEY)
    with serve(fake) as url:
        yield fake, url


@pytest.fixture
def fake(served: tuple[FakeGemini, str]) -> Iterator[FakeGemini]:
    """The shared fake, emptied before and restored after each test."""
    fake = served[0]
    scenarios, chunk_size, slow = dict(fake.scenarios), fake.chunk_size, fake.slow_seconds
    fake.reset()
    yield fake
    fake.scenarios, fake.chunk_size, fake.slow_seconds = scenarios, chunk_size, slow


@pytest.fixture
async def http(served: tuple[FakeGemini, str], fake: FakeGemini) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=served[1], headers=HEADERS) as client:
        yield client


def url(model: str, method: str = "generateContent", *, sse: bool = True, version: str = "v1beta") -> str:
    """The path of a Gemini call; streams ask for ``alt=sse`` unless ``sse=False``."""
    query = "?alt=sse" if method == "streamGenerateContent" and sse else ""
    return f"/{version}/models/{model}:{method}{query}"


def ask(contents: list[Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"contents": USER_HI if contents is None else contents, **extra}


async def generate(http: httpx.AsyncClient, model: str, body: Any, **kwargs: Any) -> httpx.Response:
    return await http.post(url(model), json=body, **kwargs)


async def stream(http: httpx.AsyncClient, model: str, body: Any) -> httpx.Response:
    return await http.post(url(model, "streamGenerateContent"), json=body)


def frames(raw: bytes) -> list[str]:
    """The SSE frames of a Gemini body, checking the CRLF framing (no bare LF anywhere)."""
    text = raw.decode()
    assert text.endswith("\r\n\r\n"), "a Gemini SSE body ends with a CRLF blank line"
    assert "\n" not in text.replace("\r\n", ""), "every line ends in CRLF"
    return text[:-4].split("\r\n\r\n")


def chunks_of(raw: bytes) -> list[dict[str, Any]]:
    """The JSON payload of every frame, checking each frame is exactly one ``data: `` line."""
    out = []
    for frame in frames(raw):
        assert frame.startswith("data: ") and "\r\n" not in frame, frame
        out.append(json.loads(frame.removeprefix("data: ")))
    return out


def parts_of(chunk: dict[str, Any]) -> list[dict[str, Any]]:
    candidates = chunk.get("candidates") or [{}]
    parts: list[dict[str, Any]] = candidates[0].get("content", {}).get("parts", [])
    return parts


def text_of(chunks: list[dict[str, Any]], *, thought: bool = False) -> str:
    return "".join(
        p["text"] for c in chunks for p in parts_of(c) if "text" in p and bool(p.get("thought")) == thought
    )


def finish_of(chunk: dict[str, Any]) -> str | None:
    candidates = chunk.get("candidates") or [{}]
    reason: str | None = candidates[0].get("finishReason")
    return reason


def error_of(response: httpx.Response) -> dict[str, Any]:
    """The ``error`` object of a Gemini error body, checking the envelope."""
    assert response.headers["content-type"] == "application/json; charset=UTF-8"
    body = response.json()
    assert list(body) == ["error"]
    error: dict[str, Any] = body["error"]
    assert error["code"] == response.status_code
    return error


def call_part(name: str = "get_weather", args: Any = None, **extra: Any) -> dict[str, Any]:
    """A model ``functionCall`` part signed the way ``fake-agent`` signs it."""
    args = {"location": "Paris"} if args is None else args
    return {
        "functionCall": {"name": name, "args": args},
        "thoughtSignature": thought_signature(name, args),
        **extra,
    }


def response_part(name: str = "get_weather", response: Any = None) -> dict[str, Any]:
    return {
        "functionResponse": {"name": name, "response": {"output": "sunny"} if response is None else response}
    }


def tool_turns(*calls: dict[str, Any], responses: list[Any] | None = None) -> list[Any]:
    """User question, model turn with ``calls``, user turn answering them (by default one per call)."""
    answers = (
        responses if responses is not None else [response_part(c["functionCall"]["name"]) for c in calls]
    )
    return [
        {"role": "user", "parts": [{"text": "Weather in Paris?"}]},
        {"role": "model", "parts": list(calls)},
        {"role": "user", "parts": answers},
    ]


# ----------------------------------------------------------------------------------------- fixtures


@pytest.mark.parametrize("case", STREAM_CASES)
def test_stream_fixture_is_gemini_sse(case: str) -> None:
    """CRLF-framed ``data:`` lines only, no [DONE]; ids repeat on every chunk; usage is cumulative."""
    raw = fixture_bytes(f"{case}.stream.sse")
    assert b"[DONE]" not in raw and b"event:" not in raw
    chunks = chunks_of(raw)
    if case == "error_midstream":
        assert chunks[-1] == ERROR_CHUNK
        chunks = chunks[:-1]
    assert len({c["responseId"] for c in chunks}) == 1 and all(c["modelVersion"] for c in chunks)
    usages = [c["usageMetadata"] for c in chunks]
    for key in ("promptTokenCount", "candidatesTokenCount", "thoughtsTokenCount", "totalTokenCount"):
        counts = [u.get(key, 0) for u in usages]
        assert counts == sorted(counts), f"{key} is a running total, never an increment"
    for usage in usages:
        parts = ("promptTokenCount", "candidatesTokenCount", "thoughtsTokenCount", "toolUsePromptTokenCount")
        assert usage["totalTokenCount"] == sum(usage.get(k, 0) for k in parts)
    reasons = [finish_of(c) for c in chunks]
    if case != "error_midstream" and case != "prompt_blocked":
        assert reasons[-1] is not None and not any(reasons[:-1]), "finishReason only on the last chunk"
    for chunk in chunks:
        for candidate in chunk.get("candidates", []):
            assert candidate["index"] == 0 and candidate.get("content", {}).get("role", "model") == "model"


@pytest.mark.parametrize("case", RESPONSE_CASES)
def test_response_fixture_matches_its_stream(case: str) -> None:
    """The generateContent body carries what the stream adds up to (the SAFETY cut drops partial text)."""
    raw = fixture_bytes(f"{case}.response.json")
    assert raw.startswith(b"{\n  ") and raw.endswith(b"}\n"), "2-space indented, trailing newline"
    streamed, whole = chunks_of(fixture_bytes(f"{case}.stream.sse")), json.loads(raw)
    assert whole["usageMetadata"]["promptTokenCount"] == streamed[-1]["usageMetadata"]["promptTokenCount"]
    assert whole["responseId"] != streamed[-1]["responseId"], "the JSON body stands for a different request"
    assert finish_of(whole) == finish_of(streamed[-1])
    if case != "safety":
        assert whole["usageMetadata"] == streamed[-1]["usageMetadata"]
        assert text_of([whole]) == text_of(streamed) and text_of([whole], thought=True) == text_of(
            streamed, thought=True
        )
        calls = [p["functionCall"] for c in streamed for p in parts_of(c) if "functionCall" in p]
        assert [p["functionCall"] for p in parts_of(whole) if "functionCall" in p] == [
            {k: v for k, v in call.items() if k != "id"} | ({"id": ANY_ID} if "id" in call else {})
            for call in calls
        ]


class _AnyId:
    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and other.startswith("fc-")

    __hash__ = None  # type: ignore[assignment]


ANY_ID: Any = _AnyId()


def test_text_case_spells_its_greeting_and_usage() -> None:
    chunks = chunks_of(fixture_bytes("text.stream.sse"))
    assert [parts_of(c)[0]["text"] for c in chunks] == ["Hello", " there,", " friend!"]
    assert finish_of(chunks[-1]) == "STOP"
    usage = chunks[-1]["usageMetadata"]
    assert (usage["promptTokenCount"], usage["candidatesTokenCount"], usage["totalTokenCount"]) == (13, 6, 19)
    assert [c["usageMetadata"]["candidatesTokenCount"] for c in chunks] == [1, 4, 6]


def test_cached_usage_counts_cache_and_thoughts() -> None:
    """Cached tokens are inside promptTokenCount; thoughts are outside candidatesTokenCount."""
    usage = chunks_of(fixture_bytes("cached_usage.stream.sse"))[-1]["usageMetadata"]
    assert {k: usage[k] for k in usage if k.endswith("Count")} == {
        "promptTokenCount": 20,
        "cachedContentTokenCount": 8,
        "candidatesTokenCount": 5,
        "thoughtsTokenCount": 4,
        "totalTokenCount": 29,
    }


def test_thought_text_signs_an_empty_final_part() -> None:
    chunks = chunks_of(fixture_bytes("thought_text.stream.sse"))
    first = parts_of(chunks[0])
    assert first[0]["thought"] is True and first[0]["text"].startswith("**")
    assert text_of(chunks) == "Hello there, friend!"
    last = parts_of(chunks[-1])
    assert last == [{"text": "", "thoughtSignature": last[0]["thoughtSignature"]}]
    assert finish_of(chunks[-1]) == "STOP" and base64.b64decode(last[0]["thoughtSignature"])
    whole = parts_of(json.loads(fixture_bytes("thought_text.response.json")))
    assert whole[-1]["text"] == "Hello there, friend!" and "thoughtSignature" in whole[-1]


def test_function_calls_arrive_whole_with_a_signature_on_the_first_only() -> None:
    [single] = chunks_of(fixture_bytes("function_call.stream.sse"))
    [part] = parts_of(single)
    assert part["functionCall"] == {"name": "get_weather", "args": {"location": "Paris"}}, "no id"
    assert part["thoughtSignature"] and finish_of(single) == "STOP"
    [both] = chunks_of(fixture_bytes("parallel_function_calls.stream.sse"))
    first, second = parts_of(both)
    assert [p["functionCall"]["args"]["location"] for p in (first, second)] == ["Paris", "Tokyo"]
    assert "thoughtSignature" in first and "thoughtSignature" not in second
    [with_id] = chunks_of(fixture_bytes("function_call_with_id.stream.sse"))
    assert re.fullmatch(r"fc-[a-z0-9]+", parts_of(with_id)[0]["functionCall"]["id"])


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("text", "STOP"),
        ("function_call", "STOP"),
        ("max_tokens", "MAX_TOKENS"),
        ("safety", "SAFETY"),
        ("malformed_function_call", "MALFORMED_FUNCTION_CALL"),
    ],
)
def test_finish_reasons(case: str, reason: str) -> None:
    assert finish_of(chunks_of(fixture_bytes(f"{case}.stream.sse"))[-1]) == reason


def test_safety_and_malformed_end_with_a_content_free_chunk() -> None:
    safety = chunks_of(fixture_bytes("safety.stream.sse"))[-1]["candidates"][0]
    assert "content" not in safety and any(r.get("blocked") for r in safety["safetyRatings"])
    malformed = chunks_of(fixture_bytes("malformed_function_call.stream.sse"))[-1]["candidates"][0]
    assert malformed == {"finishReason": "MALFORMED_FUNCTION_CALL", "index": 0}


def test_prompt_blocked_has_no_candidates() -> None:
    for name in ("prompt_blocked.stream.sse", "prompt_blocked.response.json"):
        raw = fixture_bytes(name)
        body = chunks_of(raw)[0] if name.endswith(".sse") else json.loads(raw)
        assert "candidates" not in body and body["promptFeedback"]["blockReason"] == "SAFETY"


def test_error_midstream_follows_text_with_an_error_chunk() -> None:
    raw = fixture_bytes("error_midstream.stream.sse")
    assert frames(raw)[-1].startswith('data: {"error": '), "google-genai checks this exact prefix"
    assert text_of(chunks_of(raw)[:-1]) == "Hello"


def test_unicode_separators_are_raw_inside_json_strings() -> None:
    """U+2028/U+2029 arrive unescaped: a parser splitting with str.splitlines would cut the JSON."""
    raw = fixture_bytes("unicode_separator.stream.sse")
    assert "\u2028".encode() in raw and "\u2029".encode() in raw and b"\\u2028" not in raw
    with pytest.raises(json.JSONDecodeError):
        [json.loads(line[6:]) for line in raw.decode().splitlines() if line.startswith("data: ")]
    assert text_of(sse_chunks(raw)) == text_of(chunks_of(raw))
    assert "\u2028" in text_of(sse_chunks(raw)) and "\u2029" in text_of(sse_chunks(raw))


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("error_400.json", "INVALID_ARGUMENT"),
        ("error_403.json", "PERMISSION_DENIED"),
        ("error_429.json", "RESOURCE_EXHAUSTED"),
        ("error_500.json", "INTERNAL"),
        ("error_503.json", "UNAVAILABLE"),
    ],
)
def test_error_bodies(name: str, status: str) -> None:
    error = json.loads(fixture_bytes(name))["error"]
    assert error["status"] == status and error["code"] == int(name[6:9]) and error["message"]
    assert set(error) <= {"code", "message", "status", "details"}
    if name == "error_429.json":
        retry = [d for d in error["details"] if d["@type"].endswith("RetryInfo")]
        assert retry == [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "41s"}]


def test_thought_signature_is_deterministic_and_call_bound() -> None:
    signature = thought_signature("get_weather", {"location": "Paris", "unit": "c"})
    assert signature == thought_signature("get_weather", {"unit": "c", "location": "Paris"}), "canonical JSON"
    assert len(base64.b64decode(signature)) == 32
    assert signature != thought_signature("get_weather", {"location": "Tokyo", "unit": "c"})
    assert signature != thought_signature("get_time", {"location": "Paris", "unit": "c"})
    assert signature != thought_signature("get_weather", {"location": "Paris", "unit": "c"}, b"other key")
    assert canonical_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'


def test_every_fixture_case_has_a_model() -> None:
    fake = create_fake_gemini()
    assert {f"fake-{case}" for case in fixture_cases()} <= set(fake.scenarios)
    scripted = {"fake-agent", "fake-agent-ids", "fake-echo", "fake-slow", "fake-hang-midstream"}
    errors = {f"fake-error-{code}" for code in (400, 403, 429, 500, 503)}
    assert scripted | errors <= set(fake.scenarios)
    assert FIXTURES_DIR == Path(__file__).resolve().parent.parent / "fixtures" / "gemini"


# ----------------------------------------------------------------------------------------- replay over HTTP


@pytest.mark.parametrize("case", STREAM_CASES)
async def test_stream_cases_arrive_byte_for_byte_in_small_writes(
    http: httpx.AsyncClient, fake: FakeGemini, case: str
) -> None:
    fake.chunk_size = (1, 5)
    async with http.stream("POST", url(f"fake-{case}", "streamGenerateContent"), json=ask()) as response:
        assert response.status_code == 200
        received = [piece async for piece in response.aiter_raw()]
    assert b"".join(received) == fixture_bytes(f"{case}.stream.sse") and len(received) > 1
    assert response.headers["content-type"] == "text/event-stream"
    assert {k: response.headers[k] for k in GOOGLE_HEADERS} == GOOGLE_HEADERS
    record = fake.last_request
    assert request_model(record) == f"fake-{case}" and request_method(record) == "streamGenerateContent"
    assert request_query(record) == {"alt": "sse"} and record.query == "alt=sse"
    assert record.headers["x-goog-api-key"] == API_KEY


@pytest.mark.parametrize("case", RESPONSE_CASES)
async def test_json_cases(http: httpx.AsyncClient, case: str) -> None:
    response = await generate(http, f"fake-{case}", ask())
    assert response.status_code == 200 and response.content == fixture_bytes(f"{case}.response.json")
    assert response.headers["content-type"] == "application/json; charset=UTF-8"


@pytest.mark.parametrize("case", ["text", "parallel_function_calls", "error_midstream", "unicode_separator"])
async def test_stream_without_alt_sse_is_one_json_array(http: httpx.AsyncClient, case: str) -> None:
    response = await http.post(url(f"fake-{case}", "streamGenerateContent", sse=False), json=ask())
    assert (
        response.status_code == 200 and response.headers["content-type"] == "application/json; charset=UTF-8"
    )
    assert response.content.startswith(b"[{\n") and response.content.endswith(b"\n}\n]")
    assert response.json() == sse_chunks(fixture_bytes(f"{case}.stream.sse"))


async def test_v1_paths_and_missing_recordings(http: httpx.AsyncClient) -> None:
    v1 = await http.post(url("fake-text", version="v1"), json=ask())
    assert v1.status_code == 200 and v1.content == fixture_bytes("text.response.json")
    missing = await generate(http, "fake-error_midstream", ask())
    assert missing.status_code == 400 and "has no non-streaming recording" in error_of(missing)["message"]


async def test_requests_are_recorded_before_validation(http: httpx.AsyncClient, fake: FakeGemini) -> None:
    response = await http.post(
        url("fake-text"), content=b"{oops", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert error_of(response) == {
        "code": 400,
        "message": "Invalid JSON payload received. Unexpected token.",
        "status": "INVALID_ARGUMENT",
    }
    assert fake.last_request.raw_body == b"{oops" and fake.last_request.body is None


# ----------------------------------------------------------------------------------------- auth and routing


async def test_api_key_is_checked_first(served: tuple[FakeGemini, str], fake: FakeGemini) -> None:
    async with httpx.AsyncClient(base_url=served[1]) as bare:
        missing = await bare.post(url("fake-text"), json={})
        wrong = await bare.post(url("fake-text"), json={}, headers={"x-goog-api-key": "AIza-wrong"})
        in_query = await bare.post(url("fake-text") + f"?key={API_KEY}", json=ask())
    assert missing.status_code == 403 and error_of(missing)["status"] == "PERMISSION_DENIED"
    assert "unregistered callers" in error_of(missing)["message"]
    error = error_of(wrong)
    assert (wrong.status_code, error["status"], error["message"]) == (
        400,
        "INVALID_ARGUMENT",
        "API key not valid. Please pass a valid API key.",
    )
    assert error["details"][0]["reason"] == "API_KEY_INVALID"
    assert in_query.status_code == 200, "?key= is the other documented way"


async def test_no_key_configured_means_no_check() -> None:
    async with aserve(create_fake_gemini()) as base, httpx.AsyncClient(base_url=base) as client:
        assert (await client.post(url("fake-text"), json=ask())).status_code == 200


async def test_unknown_model_method_and_path(http: httpx.AsyncClient) -> None:
    model = await generate(http, "gemini-9-ultra", ask())
    assert model.status_code == 404 and error_of(model)["status"] == "NOT_FOUND"
    assert error_of(model)["message"].startswith("models/gemini-9-ultra is not found for API version v1beta")
    for path in ("/v1beta/models/fake-text:embedContent", "/v2/models/fake-text:generateContent", "/v1/chat"):
        page = await http.post(path, json=ask())
        assert page.status_code == 404 and page.headers["content-type"].startswith("text/html"), path


async def test_count_tokens(http: httpx.AsyncClient, fake: FakeGemini) -> None:
    plain = await http.post(url("fake-text", "countTokens"), json=ask())
    nested = await http.post(
        url("fake-text", "countTokens"), json={"generateContentRequest": ask(tools=TOOLS)}
    )
    assert plain.status_code == nested.status_code == 200
    assert plain.json()["totalTokens"] >= 1 and nested.json()["totalTokens"] > plain.json()["totalTokens"]
    assert request_method(fake.last_request) == "countTokens"
    invalid = await http.post(url("fake-text", "countTokens"), json={"contents": []})
    assert invalid.status_code == 400


async def test_models_listing(http: httpx.AsyncClient) -> None:
    response = await http.get("/v1beta/models")
    names = [model["name"] for model in response.json()["models"]]
    assert response.status_code == 200 and "models/fake-agent" in names and names == sorted(names)


async def test_custom_scenarios(http: httpx.AsyncClient, fake: FakeGemini) -> None:
    def mine(record: RecordedRequest) -> Reply:
        return Reply(200, b'{"custom": true}', {"content-type": "application/json"})

    fake.scenarios["gemini-2.5-flash"] = "function_call"
    fake.scenarios["custom"] = mine
    fixture = await generate(http, "gemini-2.5-flash", ask())
    custom = await generate(http, "custom", ask())
    assert fixture.content == fixture_bytes("function_call.response.json")
    assert custom.json() == {"custom": True}


@pytest.mark.parametrize(
    ("model", "status", "name"),
    [
        ("fake-error-400", 400, "INVALID_ARGUMENT"),
        ("fake-error-403", 403, "PERMISSION_DENIED"),
        ("fake-error-429", 429, "RESOURCE_EXHAUSTED"),
        ("fake-error-500", 500, "INTERNAL"),
        ("fake-error-503", 503, "UNAVAILABLE"),
    ],
)
async def test_error_models(http: httpx.AsyncClient, model: str, status: int, name: str) -> None:
    for response in (await generate(http, model, ask()), await stream(http, model, ask())):
        assert response.status_code == status and error_of(response)["status"] == name
        assert response.content == fixture_bytes(f"error_{status}.json")


# ----------------------------------------------------------------------------------------- scripted models


async def test_agent_calls_the_first_function_then_reports_its_answer(http: httpx.AsyncClient) -> None:
    response = await stream(http, "fake-agent", ask(tools=TOOLS))
    assert response.status_code == 200
    [chunk] = chunks_of(response.content)
    [part] = parts_of(chunk)
    args = {"location": "Paris"}
    assert part == {"functionCall": {"name": "get_weather", "args": args}, "thoughtSignature": ANY_SIG}
    assert part["thoughtSignature"] == thought_signature("get_weather", args)
    assert finish_of(chunk) == "STOP" and chunk["modelVersion"] == "fake-agent"
    contents = [*USER_HI, {"role": "model", "parts": [part]}, {"role": "user", "parts": [response_part()]}]
    answer = await generate(http, "fake-agent", ask(contents, tools=TOOLS))
    assert answer.status_code == 200, answer.text
    assert parts_of(answer.json()) == [{"text": "The tool said: sunny"}]


class _AnySig:
    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and len(base64.b64decode(other)) == 32

    __hash__ = None  # type: ignore[assignment]


ANY_SIG: Any = _AnySig()


async def test_agent_ids_carries_an_id_but_signs_the_same(http: httpx.AsyncClient) -> None:
    response = await generate(http, "fake-agent-ids", ask(tools=TOOLS))
    [part] = parts_of(response.json())
    assert re.fullmatch(r"fc-[a-z0-9]{20}", part["functionCall"]["id"])
    assert part["thoughtSignature"] == thought_signature("get_weather", {"location": "Paris"})
    contents = [*USER_HI, {"role": "model", "parts": [part]}, {"role": "user", "parts": [response_part()]}]
    contents[2]["parts"][0]["functionResponse"]["id"] = part["functionCall"]["id"]
    assert (await generate(http, "fake-agent-ids", ask(contents, tools=TOOLS))).status_code == 200


@pytest.mark.parametrize(
    ("response", "said"),
    [
        ({"output": "sunny"}, "sunny"),
        ({"output": {"temp": 21}}, '{"temp": 21}'),
        ({"temp": 21, "sky": "clear"}, '{"temp": 21, "sky": "clear"}'),
        ({"error": "boom"}, '{"error": "boom"}'),
    ],
)
async def test_agent_reports_output_or_the_whole_response(
    http: httpx.AsyncClient, response: Any, said: str
) -> None:
    contents = tool_turns(call_part(), responses=[response_part(response=response)])
    answer = await generate(http, "fake-agent", ask(contents, tools=TOOLS))
    assert answer.status_code == 200, answer.text
    assert parts_of(answer.json()) == [{"text": f"The tool said: {said}"}]


async def test_agent_follows_the_tool_config(http: httpx.AsyncClient) -> None:
    time = {"name": "get_time", "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}}}
    tools = [{"functionDeclarations": [WEATHER, time]}]
    forced = {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_time"]}}
    none = {"functionCallingConfig": {"mode": "NONE"}}
    chosen = await generate(http, "fake-agent", ask(tools=tools, toolConfig=forced))
    assert parts_of(chosen.json())[0]["functionCall"] == {"name": "get_time", "args": {}}
    refused = await generate(http, "fake-agent", ask(tools=tools, toolConfig=none))
    without = await generate(http, "fake-agent", ask())
    json_schema = [{"functionDeclarations": [{"name": "f", "parametersJsonSchema": WEATHER["parameters"]}]}]
    loose = await generate(http, "fake-agent", ask(tools=json_schema))
    assert parts_of(refused.json()) == parts_of(without.json()) == [{"text": "I have no tool to call."}]
    assert parts_of(loose.json())[0]["functionCall"] == {"name": "f", "args": {"location": "Paris"}}


async def test_agent_streams_text_in_pieces_with_running_usage(http: httpx.AsyncClient) -> None:
    response = await stream(http, "fake-agent", ask(tool_turns(call_part()), tools=TOOLS))
    chunks = chunks_of(response.content)
    assert len(chunks) > 1 and text_of(chunks) == "The tool said: sunny"
    counts = [c["usageMetadata"]["candidatesTokenCount"] for c in chunks]
    assert (
        counts == sorted(counts) and finish_of(chunks[-1]) == "STOP" and not any(map(finish_of, chunks[:-1]))
    )
    assert len({c["responseId"] for c in chunks}) == 1


async def test_agent_rejects_a_lost_or_forged_signature(http: httpx.AsyncClient) -> None:
    """Gemini 3: the first call of each model turn must come back with its own signature."""
    lost = tool_turns({"functionCall": {"name": "get_weather", "args": {"location": "Paris"}}})
    missing = await generate(http, "fake-agent", ask(lost, tools=TOOLS))
    assert missing.status_code == 400
    assert error_of(missing)["message"] == (
        "Function call is missing a thought_signature in functionCall parts. This is required for tools to "
        "work correctly, and missing thought_signature may lead to degraded model performance. Additional "
        "data, function call `default_api:get_weather` , position 1. Please refer to "
        "https://ai.google.dev/gemini-api/docs/thought-signatures for more details."
    )
    edited = call_part()
    edited["functionCall"]["args"] = {"location": "Tokyo"}
    for part in (edited, call_part(thoughtSignature="Q29ycnVwdGVk")):
        forged = await generate(http, "fake-agent", ask(tool_turns(part), tools=TOOLS))
        assert (forged.status_code, error_of(forged)["message"]) == (400, "Corrupted thought signature.")
    other_key = await generate(http, "fake-agent-ids", ask(lost, tools=TOOLS))
    assert other_key.status_code == 400, "fake-agent-ids enforces signatures too"


async def test_agent_signature_rules_are_not_over_strict(http: httpx.AsyncClient) -> None:
    """The sentinel is accepted; later parallel calls need no signature; plain fixtures don't check."""
    sentinel = {
        "functionCall": {"name": "get_weather", "args": {}},
        "thoughtSignature": SKIP_THOUGHT_SIGNATURE,
    }
    tokyo = {"functionCall": {"name": "get_weather", "args": {"location": "Tokyo"}}}
    for contents in (tool_turns(sentinel), tool_turns(call_part(), tokyo)):
        response = await generate(http, "fake-agent", ask(contents, tools=TOOLS))
        assert response.status_code == 200, response.text
    copied = {**tokyo, "thoughtSignature": call_part()["thoughtSignature"]}
    refused = await generate(http, "fake-agent", ask(tool_turns(call_part(), copied), tools=TOOLS))
    assert refused.status_code == 400, "a signature copied onto another call is not genuine"
    unsigned = tool_turns({"functionCall": {"name": "get_weather", "args": {}}})
    assert (await generate(http, "fake-text", ask(unsigned, tools=TOOLS))).status_code == 200


async def test_echo_repeats_the_last_user_turn(http: httpx.AsyncClient) -> None:
    contents = [
        {"role": "user", "parts": [{"text": "first"}]},
        {"role": "model", "parts": [{"text": "ok"}]},
        {"parts": [{"text": "Say <this> & "}, {"text": "that"}]},
    ]
    response = await stream(http, "fake-echo", ask(contents))
    assert text_of(chunks_of(response.content)) == "Say <this> & that"
    assert b"<" not in response.content and b"&" not in response.content, "Google escapes <, > and &"
    assert b"\\u003c" in response.content and b"\\u0026" in response.content


# ----------------------------------------------------------------------------------------- validation


def schema_tool(parameters: Any, key: str = "parameters") -> list[Any]:
    return [{"functionDeclarations": [{"name": "get_weather", key: parameters}]}]


INVALID_BODIES: list[tuple[str, Any, str]] = [
    ("no contents", {}, "* GenerateContentRequest.contents: contents is not specified\n"),
    ("empty contents", ask([]), "* GenerateContentRequest.contents: contents is not specified\n"),
    (
        "assistant role",
        ask([{"role": "assistant", "parts": [{"text": "x"}]}]),
        "Please use a valid role: user, model.",
    ),
    (
        "system role",
        ask([{"role": "system", "parts": [{"text": "x"}]}]),
        "Please use a valid role: user, model.",
    ),
    (
        "empty parts",
        ask([{"role": "user", "parts": []}]),
        "* GenerateContentRequest.contents[0].parts: contents.parts must not be empty.\n",
    ),
    (
        "no parts",
        ask([*USER_HI, {"role": "model"}]),
        "* GenerateContentRequest.contents[1].parts: contents.parts must not be empty.\n",
    ),
    (
        "empty text",
        ask([{"role": "user", "parts": [{"text": "Hi"}, {"text": ""}]}]),
        "* GenerateContentRequest.contents[0].parts[1].data: required oneof field 'data' must have one "
        "initialized field\n",
    ),
    (
        "thought flag only",
        ask([{"role": "user", "parts": [{"thought": True}]}]),
        "* GenerateContentRequest.contents[0].parts[0].data: required oneof field 'data' must have one",
    ),
    (
        "two data fields",
        ask([{"role": "user", "parts": [{"text": "Hi", "functionResponse": {"name": "f", "response": {}}}]}]),
        "Invalid JSON payload received. Oneof field 'data' is already set. Cannot set 'functionResponse'",
    ),
    (
        "openai-style part",
        ask([{"role": "user", "parts": [{"type": "text", "text": "Hi"}]}]),
        "Invalid JSON payload received. Unknown name \"type\" at 'contents[0].parts[0]': Cannot find field.",
    ),
    (
        "unknown top-level field",
        ask(maxOutputTokens=5),
        'Invalid JSON payload received. Unknown name "maxOutputTokens": Cannot find field.',
    ),
    (
        "unknown generation field",
        ask(generationConfig={"maxTokens": 5}),
        "Invalid JSON payload received. Unknown name \"maxTokens\" at 'generation_config'",
    ),
    (
        "empty system text",
        ask(systemInstruction={"parts": [{"text": ""}]}),
        "* GenerateContentRequest.system_instruction.parts[0].data: required oneof field 'data'",
    ),
    (
        "response not an object",
        ask(tool_turns(call_part(), responses=[response_part(response="sunny")])),
        "Invalid value at 'contents[2].parts[0].function_response.response' "
        '(type.googleapis.com/google.protobuf.Struct), "sunny"',
    ),
    (
        "args not an object",
        ask(tool_turns({"functionCall": {"name": "get_weather", "args": '{"location": "Paris"}'}})),
        "Invalid value at 'contents[1].parts[0].function_call.args' (type.googleapis.com/google.protobuf",
    ),
    (
        "too few responses",
        ask(tool_turns(call_part(), call_part(args={"location": "Tokyo"}), responses=[response_part()])),
        "Please ensure that the number of function response parts is equal to the number of function call "
        "parts of the function call turn.",
    ),
    (
        "unanswered call at the end",
        ask(tool_turns(call_part())[:2]),
        "Please ensure that the number of function response parts is equal to the number of function call",
    ),
    (
        "text instead of a response",
        ask([*tool_turns(call_part())[:2], {"role": "user", "parts": [{"text": "sunny"}]}]),
        "Please ensure that the number of function response parts is equal to the number of function call",
    ),
    (
        "response name differs",
        ask(tool_turns(call_part(), responses=[response_part("get_time")])),
        "Please ensure that the name of each function response part matches the name of the function call",
    ),
    (
        "orphan response",
        ask(
            [
                *USER_HI,
                {"role": "model", "parts": [{"text": "ok"}]},
                {"role": "user", "parts": [response_part()]},
            ]
        ),
        "Please ensure that function response turn comes immediately after a function call turn.",
    ),
    (
        "call after a model turn",
        ask([*USER_HI, {"role": "model", "parts": [{"text": "Checking."}]}, *tool_turns(call_part())[1:]]),
        "Please ensure that function call turn comes immediately after a user turn or after a function "
        "response turn.",
    ),
    (
        "bad function name",
        ask(tools=[{"functionDeclarations": [{"name": "get weather"}]}]),
        "* GenerateContentRequest.tools[0].function_declarations[0].name: Invalid function name.",
    ),
    (
        "openai-style tool",
        ask(tools=[{"type": "function", "functionDeclarations": [WEATHER]}]),
        "Invalid JSON payload received. Unknown name \"type\" at 'tools[0]': Cannot find field.",
    ),
    (
        "type list",
        ask(tools=schema_tool({"type": "object", "properties": {"a": {"type": ["string", "null"]}}})),
        "Invalid value at 'tools[0].function_declarations[0].parameters.properties[0].value.type' "
        '(type.googleapis.com/google.ai.generativelanguage.v1beta.Type), ["string", "null"]',
    ),
    (
        "numeric enum",
        ask(tools=schema_tool({"type": "object", "properties": {"n": {"type": "integer", "enum": [1, 2]}}})),
        "Invalid value at 'tools[0].function_declarations[0].parameters.properties[0].value.enum[0]' "
        "(TYPE_STRING), 1",
    ),
    (
        "both parameter forms",
        ask(tools=[{"functionDeclarations": [{**WEATHER, "parametersJsonSchema": {"type": "object"}}]}]),
        "* GenerateContentRequest.tools[0].function_declarations[0]: `parameters` and "
        "`parameters_json_schema` are mutually exclusive",
    ),
    (
        "openai tool_choice value",
        ask(toolConfig={"functionCallingConfig": {"mode": "required"}}),
        "Invalid value at 'tool_config.function_calling_config.mode' "
        '(type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionCallingConfig.Mode), "required"',
    ),
    (
        "allowed names under AUTO",
        ask(toolConfig={"functionCallingConfig": {"mode": "AUTO", "allowedFunctionNames": ["get_weather"]}}),
        "* GenerateContentRequest.tool_config.function_calling_config.allowed_function_names: "
        "allowed_function_names should only be set when the Mode is ANY.",
    ),
]


@pytest.mark.parametrize(
    ("body", "message"), [case[1:] for case in INVALID_BODIES], ids=[c[0] for c in INVALID_BODIES]
)
async def test_rejects_malformed_requests_like_gemini(
    http: httpx.AsyncClient, fake: FakeGemini, body: Any, message: str
) -> None:
    for response in (await generate(http, "fake-text", body), await stream(http, "fake-text", body)):
        assert response.status_code == 400
        error = error_of(response)
        assert error["status"] == "INVALID_ARGUMENT"
        assert error["message"].startswith(message), error["message"]
    assert fake.last_request.body == body


UNSUPPORTED_SCHEMA_KEYS: list[tuple[str, Any]] = [
    ("additionalProperties", False),
    ("$schema", "http://json-schema.org/draft-07/schema#"),
    ("$ref", "#/$defs/place"),
    ("$defs", {"place": {"type": "string"}}),
    ("oneOf", [{"type": "string"}, {"type": "integer"}]),
    ("allOf", [{"type": "string"}]),
    ("const", "Paris"),
    ("exclusiveMinimum", 0),
    ("exclusiveMaximum", 10),
    ("patternProperties", {"^x": {"type": "string"}}),
    ("examples", ["Paris"]),
    ("strict", True),
]


@pytest.mark.parametrize(
    ("key", "value"), UNSUPPORTED_SCHEMA_KEYS, ids=[k for k, _ in UNSUPPORTED_SCHEMA_KEYS]
)
async def test_parameters_are_limited_to_the_openapi_subset(
    http: httpx.AsyncClient, key: str, value: Any
) -> None:
    """Every JSON Schema keyword outside Gemini's subset is an unknown field, at the top or nested."""
    top = {"type": "object", "properties": {"location": {"type": "string"}}, key: value}
    nested = {
        "type": "object",
        "properties": {
            "unit": {"type": "string"},
            "places": {"type": "array", "items": {"type": "object", "properties": {"name": {key: value}}}},
        },
    }
    where = "tools[0].function_declarations[0].parameters"
    cases = [(top, where), (nested, f"{where}.properties[1].value.items.properties[0].value")]
    for parameters, at in cases:
        response = await generate(http, "fake-text", ask(tools=schema_tool(parameters)))
        error = error_of(response)
        text = f"Invalid JSON payload received. Unknown name \"{key}\" at '{at}': Cannot find field."
        assert (response.status_code, error["message"]) == (400, text)
        assert error["details"] == [
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": at, "description": text}],
            }
        ]
    loose = await generate(http, "fake-text", ask(tools=schema_tool(top, "parametersJsonSchema")))
    assert loose.status_code == 200, "parametersJsonSchema takes plain JSON Schema"


async def test_all_unknown_schema_keys_are_reported_at_once(http: httpx.AsyncClient) -> None:
    parameters = {
        "type": "object",
        "additionalProperties": False,
        "properties": {"a": {"type": "string", "const": "x"}},
    }
    error = error_of(await generate(http, "fake-text", ask(tools=schema_tool(parameters))))
    assert error["message"].split("\n") == [
        'Invalid JSON payload received. Unknown name "additionalProperties" at '
        "'tools[0].function_declarations[0].parameters': Cannot find field.",
        'Invalid JSON payload received. Unknown name "const" at '
        "'tools[0].function_declarations[0].parameters.properties[0].value': Cannot find field.",
    ]
    assert len(error["details"][0]["fieldViolations"]) == 2


async def test_valid_requests_are_accepted(http: httpx.AsyncClient) -> None:
    """Not over-strict: omitted roles, snake_case, signed empty text, parallel calls, rich schemas."""
    signed_empty = {"text": "", "thoughtSignature": "c2ln"}
    contents = [
        {"parts": [{"text": "Weather in Paris and Tokyo?"}]},
        {
            "role": "model",
            "parts": [
                {"text": "Thinking…", "thought": True},
                call_part(),
                {"function_call": {"name": "get_weather", "args": {"location": "Tokyo"}}},
            ],
        },
        {
            "role": "user",
            "parts": [response_part(), {"function_response": {"name": "get_weather", "response": {}}}],
        },
        {"role": "model", "parts": [{"text": "Sunny in both."}, signed_empty]},
        {
            "role": "user",
            "parts": [{"text": "Thanks"}, {"inlineData": {"mimeType": "image/png", "data": "AA=="}}],
        },
    ]
    parameters = {
        "type": "object",
        "title": "Args",
        "description": "d",
        "nullable": False,
        "properties": {
            "location": {"type": "string", "format": "date-time", "minLength": 1, "pattern": "^.+$"},
            "n": {"type": "INTEGER", "minimum": 0, "maximum": 5, "default": 1, "example": 2},
            "tags": {
                "type": "array",
                "items": {"type": "string", "enum": ["a"]},
                "minItems": 0,
                "maxItems": 3,
            },
            "either": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        },
        "required": ["location"],
        "propertyOrdering": ["location", "n", "tags", "either"],
    }
    body = {
        "contents": contents,
        "system_instruction": {"parts": [{"text": "Be brief."}]},
        "tools": [{"functionDeclarations": [{**WEATHER, "parameters": parameters}]}, {"googleSearch": {}}],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}},
        "safetySettings": [{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_ONLY_HIGH"}],
        "generationConfig": {
            "maxOutputTokens": 64,
            "temperature": 0.2,
            "stop_sequences": ["END"],
            "thinkingConfig": {"thinkingBudget": 128, "includeThoughts": True},
        },
    }
    for response in (await generate(http, "fake-text", body), await stream(http, "fake-agent", body)):
        assert response.status_code == 200, response.text


async def test_validate_false_accepts_what_gemini_would_refuse() -> None:
    fake = create_fake_gemini(api_key=API_KEY, validate=False)
    sloppy = {
        "contents": [
            {"role": "assistant", "parts": []},
            *tool_turns({"functionCall": {"name": "get_weather"}}),
        ],
        "tools": schema_tool({"type": "object", "additionalProperties": False}),
    }
    async with aserve(fake) as base, httpx.AsyncClient(base_url=base, headers=HEADERS) as client:
        text = await generate(client, "fake-text", sloppy)
        agent = await generate(client, "fake-agent", sloppy)
        unauthorised = await client.post(url("fake-text"), json=sloppy, headers={"x-goog-api-key": "nope"})
    assert text.status_code == 200 and agent.status_code == 200, agent.text
    assert unauthorised.status_code == 400, "the key is still checked"


# ----------------------------------------------------------------------------------------- cancellation


async def test_hang_midstream_records_the_client_going_away(
    http: httpx.AsyncClient, fake: FakeGemini
) -> None:
    received = b""
    async with http.stream(
        "POST", url("fake-hang-midstream", "streamGenerateContent"), json=ask()
    ) as response:
        async for piece in response.aiter_raw():
            received += piece
            if received.count(b"\r\n\r\n") == 2:
                break
        assert fake.disconnects == 0
    assert text_of(chunks_of(received)) == "Hello there,"
    assert await fake.until_disconnects(1)
    assert fake.last_request.disconnected


async def test_slow_model_outlasts_a_read_timeout(http: httpx.AsyncClient, fake: FakeGemini) -> None:
    with pytest.raises(httpx.ReadTimeout):
        await generate(http, "fake-slow", ask(), timeout=httpx.Timeout(5.0, read=0.3))
    assert await fake.until_disconnects(1)
    fake.slow_seconds = 0.05
    assert (await generate(http, "fake-slow", ask())).content == fixture_bytes("text.response.json")


async def test_completed_streams_are_not_counted_as_disconnects(
    http: httpx.AsyncClient, fake: FakeGemini
) -> None:
    for model in ("fake-text", "fake-error_midstream", "fake-agent"):
        async with http.stream("POST", url(model, "streamGenerateContent"), json=ask()) as response:
            assert [piece async for piece in response.aiter_raw()]
    assert fake.disconnects == 0 and not any(r.disconnected for r in fake.requests)


@pytest.mark.parametrize(
    ("path", "prefix"),
    [
        (url("fake-hang-midstream", "streamGenerateContent", sse=False), b"[{\n"),
        (url("fake-hang-midstream"), b"{\n"),
    ],
    ids=["json-array", "generateContent"],
)
async def test_hang_midstream_without_sse(
    http: httpx.AsyncClient, fake: FakeGemini, path: str, prefix: bytes
) -> None:
    """Non-SSE replies promise a full content-length, deliver part of it, then stall."""
    with pytest.raises(httpx.ReadTimeout):
        await http.post(path, json=ask(), timeout=httpx.Timeout(5.0, read=0.3))
    assert await fake.until_disconnects(1)
    fake.reset()
    async with http.stream("POST", path, json=ask()) as response:
        assert int(response.headers["content-length"]) > 0
        received = b""
        async for piece in response.aiter_raw():
            received += piece
            if len(received) >= 40:
                break
    assert received.startswith(prefix)
    assert await fake.until_disconnects(1)
