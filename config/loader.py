"""Load settings from one YAML file, with `${ENV}` interpolation and errors that name the key path."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from config.models import Settings

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ConfigError(Exception):
    """The configuration cannot be used; the message names the key path at fault."""


def load_settings(path: str | Path, env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    return parse_settings(raw or {}, env, source=str(path))


def parse_settings(raw: Any, env: Mapping[str, str], source: str = "config") -> Settings:
    data = _interpolate(raw, env, ())
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"{source}: {problems}") from None
    _check_dialects(settings, source)
    return settings


def _check_dialects(settings: Settings, source: str) -> None:
    """Build each provider's adapter once, so a bad dialect option fails at start, not per request."""
    from adapters import build_adapter

    for name, provider in settings.providers.items():
        try:
            build_adapter(provider.kind, provider.dialect)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{source}: providers.{name}.dialect: {exc}") from None


def _interpolate(value: Any, env: Mapping[str, str], path: tuple[str, ...]) -> Any:
    if isinstance(value, dict):
        return {k: _interpolate(v, env, (*path, str(k))) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, env, (*path, str(i))) for i, v in enumerate(value)]
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            raise ConfigError(f"{'.'.join(path)}: environment variable {name} is not set")

        return _VAR.sub(substitute, value)
    return value
