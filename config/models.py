"""Configuration models: providers (upstreams), public models, API keys and server limits.

Frozen and `extra="forbid"` so a typo in the YAML is an error naming its key path, not a silent default.
Secrets are `SecretStr`, so they never print in reprs, logs or errors.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator


class _Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Timeouts(_Config):
    connect: float = 10.0
    read: float = 300.0
    write: float = 30.0
    pool: float = 10.0


class Provider(_Config):
    """One upstream endpoint speaking one vendor protocol (`kind` names the adapter)."""

    kind: Literal["chat_completions", "anthropic", "gemini"]
    base_url: str
    api_key: SecretStr | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeouts: Timeouts = Timeouts()
    dialect: dict[str, Any] = Field(default_factory=dict)
    optional: bool = False
    """An optional provider is switched off (with its models) while its `api_key` is empty."""
    fetch_media_urls: bool = False
    """Fetch images and files given by URL and send them inline (for upstreams that take no URLs)."""
    max_media_bytes: int = 20 * 1024 * 1024

    @property
    def enabled(self) -> bool:
        return not self.optional or bool(self.api_key and self.api_key.get_secret_value())


class ModelDefaults(_Config):
    """Values used when the client does not send them (e.g. a per-model output budget)."""

    max_output_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None


class ModelRoute(_Config):
    provider: str
    model: str
    defaults: ModelDefaults = ModelDefaults()


class ApiKey(_Config):
    key: SecretStr
    team: str = "default"


class Server(_Config):
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 20 * 1024 * 1024
    reasoning_key: SecretStr | None = None
    """Seals vendor reasoning carried in `encrypted_content`. Set it (and share it across replicas) in
    production; without it a random per-process key is used."""
    background_lease_seconds: float = 30.0
    """How long a background run stays `in_progress` without its replica's heartbeat."""
    upstream_transport: Literal["aiohttp", "httpx"] = "aiohttp"
    """HTTP transport under the shared httpx client; aiohttp measured cheaper (bench/README.md)."""
    drop_tool_types: list[str] = []
    """Tool types the gateway does not serve (hosted tools, e.g. `web_search`, which Codex declares by
    default) to remove from requests instead of refusing them; each removal is reported in
    `x-rosetta-dropped-params` as `tools[i]`."""
    websocket_max_seconds: float = 3600.0
    """How long one Responses WebSocket connection may live (OpenAI's limit is 60 minutes)."""


class Store(_Config):
    """Where responses are stored for `previous_response_id` and `GET /v1/responses/{id}`."""

    kind: Literal["sqlite", "redis", "postgres"] = "sqlite"
    path: str = ":memory:"
    """sqlite: a file path, or `:memory:` (lost at restart; one process only)."""
    url: SecretStr | None = None
    """redis: `redis://host:6379/0`; postgres: a libpq URL. Replicas sharing one of these share state."""
    ttl_seconds: int | None = None
    """How long responses (and their referenceable items) are kept after their last write; expired ones
    are never read and are purged every few minutes (redis expires keys itself). None: until deleted."""

    @model_validator(mode="after")
    def _url_for_shared_stores(self) -> Store:
        if self.kind != "sqlite" and (self.url is None or not self.url.get_secret_value()):
            raise ValueError(f"store.url is required for kind {self.kind!r}")
        return self


class Settings(_Config):
    server: Server = Server()
    store: Store = Store()
    providers: dict[str, Provider] = Field(default_factory=dict)
    models: dict[str, ModelRoute] = Field(default_factory=dict)
    keys: list[ApiKey] = Field(default_factory=list)

    @model_validator(mode="after")
    def _routes_name_providers(self) -> Settings:
        for name, route in self.models.items():
            if route.provider not in self.providers:
                raise ValueError(f"models.{name}.provider: unknown provider {route.provider!r}")
        return self
