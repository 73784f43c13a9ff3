"""(team, model string) → the route a request takes: adapter, upstream target, model defaults."""

from __future__ import annotations

from dataclasses import dataclass

from adapters import build_adapter
from adapters.base import Adapter, UpstreamTarget
from config.models import ModelDefaults, Provider, Settings
from gateway.auth import Principal
from gateway.errors import NotFound


@dataclass(frozen=True)
class Route:
    provider: str
    adapter: Adapter
    target: UpstreamTarget
    config: Provider
    defaults: ModelDefaults


class Router:
    """Built once per settings: adapters and targets are constructed here, not per request."""

    def __init__(self, settings: Settings) -> None:
        self._providers = {name: p for name, p in settings.providers.items() if p.enabled}
        self._adapters = {name: build_adapter(p.kind, p.dialect) for name, p in self._providers.items()}
        self._models = {
            name: route for name, route in settings.models.items() if route.provider in self._providers
        }

    @property
    def public_models(self) -> list[str]:
        return sorted(self._models)

    def resolve(self, principal: Principal, model: str) -> Route:
        """`/v1` style: a public model name from config."""
        route = self._models.get(model)
        if route is None:
            raise _not_found(model)
        return self._route(route.provider, route.model, route.defaults)

    def resolve_vendor(self, principal: Principal, model: str) -> Route:
        """`/v5` style: `provider/upstream-model`; the part after the first slash goes upstream verbatim."""
        provider, sep, upstream = model.partition("/")
        if not sep or not upstream or provider not in self._providers:
            raise _not_found(model)
        return self._route(provider, upstream, ModelDefaults())

    def _route(self, provider: str, upstream_model: str, defaults: ModelDefaults) -> Route:
        config = self._providers[provider]
        target = UpstreamTarget(
            base_url=config.base_url,
            model=upstream_model,
            api_key=config.api_key.get_secret_value() if config.api_key else None,
            headers=config.headers,
        )
        return Route(provider, self._adapters[provider], target, config, defaults)


def _not_found(model: str) -> NotFound:
    return NotFound(
        f"The model '{model}' does not exist or you do not have access to it.", code="model_not_found"
    )
