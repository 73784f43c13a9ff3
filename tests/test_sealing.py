"""Sealed reasoning carriers: opaque, authenticated, and faithful across the round trip."""

from __future__ import annotations

import pytest

from gateway.errors import InvalidRequest
from gateway.sealing import PREFIX, Sealer
from schemas import canonical as c
from schemas.canonical_events import Finished, ItemDone, ReasoningStarted
from tests.helpers import SEALER, canonical, encode_all

PAYLOAD = {
    "vendor": "anthropic",
    "model": "claude",
    "blocks": [{"type": "thinking", "thinking": "hm", "signature": "S"}],
}


def test_round_trip_is_exact_and_unreadable() -> None:
    token = SEALER.seal(PAYLOAD)
    assert token.startswith(PREFIX)
    assert "thinking" not in token and "anthropic" not in token
    assert SEALER.open(token, "p") == PAYLOAD
    assert SEALER.seal(PAYLOAD) != token  # fresh nonce every time


@pytest.mark.parametrize(
    "mutate", [lambda t: t[:-2] + ("A" if t[-2] != "A" else "B") + t[-1], lambda t: t + "AAAA"]
)
def test_tampered_token_is_a_400_naming_the_field(mutate: object) -> None:
    token = mutate(SEALER.seal(PAYLOAD))  # type: ignore[operator]
    with pytest.raises(InvalidRequest) as info:
        SEALER.open(token, "input[0].encrypted_content")
    assert info.value.param == "input[0].encrypted_content"
    assert info.value.code == "invalid_encrypted_content"


def test_another_gateway_key_cannot_open_it() -> None:
    with pytest.raises(InvalidRequest):
        Sealer("another key").open(SEALER.seal(PAYLOAD), "p")


def test_foreign_tokens_pass_through_unchanged() -> None:
    assert SEALER.open("gAAAAABopaque-openai-blob", "p") is None
    request = canonical(
        {
            "input": [
                {"type": "reasoning", "summary": [], "encrypted_content": "gAAAAABopaque"},
                {"type": "reasoning", "summary": [], "encrypted_content": SEALER.seal(PAYLOAD)},
            ]
        }
    )
    assert request.input == (
        c.Reasoning(encrypted_content="gAAAAABopaque"),
        c.Reasoning(replay=PAYLOAD),
    )


def test_encoder_seals_replay_data_into_encrypted_content() -> None:
    events = encode_all([ReasoningStarted("r"), ItemDone("r", replay=PAYLOAD), Finished()])
    item = events[-1]["response"]["output"][0]
    assert SEALER.open(item["encrypted_content"], "p") == PAYLOAD


def test_an_empty_secret_means_a_random_key_not_a_public_one() -> None:
    token = Sealer("").seal(PAYLOAD)
    with pytest.raises(InvalidRequest):
        Sealer("").open(token, "p")
