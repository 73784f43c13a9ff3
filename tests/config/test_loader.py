"""Config loading: interpolation, validation errors naming the key path, optional providers."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.loader import ConfigError, load_settings, parse_settings
from gateway.routing import Router

BASE = {
    "providers": {"up": {"kind": "chat_completions", "base_url": "http://x/v1", "api_key": "${KEY}"}},
    "models": {"m": {"provider": "up", "model": "real-m"}},
}


def test_env_interpolation_and_secret_hiding() -> None:
    settings = parse_settings(BASE, {"KEY": "sk-secret-value"})
    key = settings.providers["up"].api_key
    assert key is not None and key.get_secret_value() == "sk-secret-value"
    assert "sk-secret-value" not in repr(settings)


def test_missing_env_var_names_the_key_path() -> None:
    with pytest.raises(ConfigError, match=r"providers\.up\.api_key: environment variable KEY is not set"):
        parse_settings(BASE, {})


def test_default_value_syntax() -> None:
    raw = {**BASE, "providers": {"up": {**BASE["providers"]["up"], "api_key": "${KEY:-fallback}"}}}
    key = parse_settings(raw, {}).providers["up"].api_key
    assert key is not None and key.get_secret_value() == "fallback"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"providers": {"up": {"kind": "chat_completions"}}}, r"providers\.up\.base_url: Field required"),
        ({"providers": {"up": {"kind": "nope", "base_url": "u"}}}, r"providers\.up\.kind"),
        ({"server": {"port": "eighty"}}, r"server\.port"),
        ({"servr": {}}, r"servr: Extra inputs are not permitted"),
        ({"models": {"m": {"provider": "ghost", "model": "x"}}}, r"models\.m\.provider: unknown provider"),
        (
            {"providers": {"up": {"kind": "chat_completions", "base_url": "u", "dialect": {"preset": "zz"}}}},
            r"providers\.up\.dialect: unknown preset 'zz'",
        ),
        (
            {
                "providers": {
                    "up": {"kind": "chat_completions", "base_url": "u", "dialect": {"max_tokenz": 1}}
                }
            },
            r"providers\.up\.dialect: unknown flag\(s\) max_tokenz",
        ),
    ],
)
def test_invalid_config_names_the_bad_key(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_settings(raw, {})


def test_optional_provider_without_key_hides_its_models() -> None:
    raw = {
        "providers": {
            "local": {"kind": "chat_completions", "base_url": "http://l/v1"},
            "vendor": {
                "kind": "chat_completions",
                "base_url": "http://v/v1",
                "api_key": "${K:-}",
                "optional": True,
            },
        },
        "models": {"a": {"provider": "local", "model": "a"}, "b": {"provider": "vendor", "model": "b"}},
    }
    assert Router(parse_settings(raw, {})).public_models == ["a"]
    assert Router(parse_settings(raw, {"K": "sk-present"})).public_models == ["a", "b"]


def test_the_shipped_default_config_loads_without_vendor_keys() -> None:
    settings = load_settings(Path(__file__).parents[2] / "config" / "default.yaml", env={})
    assert Router(settings).public_models == ["local"]
    assert settings.server.port == 8080
