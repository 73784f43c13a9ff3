"""Error taxonomy: every failure the gateway reports, with its HTTP status and OpenAI error shape.

Raise where the fault is known; one Starlette exception handler (`gateway.app`) renders the body, and
the encoder renders the same errors as an in-stream `error` + `response.failed` once a stream has begun.
The openai SDK retries every 5xx, so 500 (`InternalError`) is reserved for our own bugs.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar


class RosettaError(Exception):
    status: ClassVar[int] = 500
    type: ClassVar[str] = "server_error"
    default_code: ClassVar[str | None] = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code if code is not None else self.default_code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class InvalidRequest(RosettaError):
    status = 400
    type = "invalid_request_error"


class UnsupportedParameter(InvalidRequest):
    """A request field the routed upstream cannot carry: rejected rather than silently dropped."""

    default_code = "unsupported_parameter"


class AuthenticationError(RosettaError):
    status = 401
    type = "invalid_request_error"
    default_code = "invalid_api_key"


class PermissionDenied(RosettaError):
    status = 403
    type = "permission_error"


class NotFound(RosettaError):
    status = 404
    type = "invalid_request_error"


class RequestTooLarge(RosettaError):
    status = 413
    type = "invalid_request_error"
    default_code = "request_too_large"


class RateLimited(RosettaError):
    status = 429
    type = "rate_limit_error"
    default_code = "rate_limit_exceeded"


class UpstreamRejected(RosettaError):
    """A vendor 4xx caused by the caller's request: same status, the vendor's message (secrets stripped)."""

    type = "invalid_request_error"

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message, param=param, code=code)
        self.status = status  # type: ignore[misc]


class UpstreamError(RosettaError):
    """The vendor failed (5xx, bad credentials on our side, unreadable bytes): 502 unless overloaded."""

    status = 502
    type = "upstream_error"
    default_code = "upstream_error"


class UpstreamUnavailable(UpstreamError):
    status = 503
    default_code = "upstream_overloaded"


class UpstreamTimeout(UpstreamError):
    status = 504
    default_code = "upstream_timeout"


class VendorProtocolError(UpstreamError):
    """Vendor bytes the adapter cannot read: never skipped silently."""

    default_code = "upstream_protocol_error"


class StoreUnavailable(RosettaError):
    """The response store cannot be reached: this request fails, requests with `store: false` go on."""

    status = 503
    type = "server_error"
    default_code = "store_unavailable"


class InternalError(RosettaError):
    """Our own bug (e.g. an encoder invariant breach)."""


_SECRET = re.compile(
    r"(sk-[A-Za-z0-9_\-]{8,}|AIza[0-9A-Za-z_\-]{20,}|(?i:bearer)\s+[A-Za-z0-9._\-]{8,}|"
    r"(?i:(?:api[_-]?key|token|secret)[\"']?\s*[:=]\s*[\"']?)[A-Za-z0-9._\-]{8,})"
)


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Strip anything that looks like a credential, and the given secrets, from vendor text."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return _SECRET.sub("[redacted]", text)


def upstream_error(
    status: int,
    message: str,
    *,
    param: str | None = None,
    code: str | None = None,
    retry_after: str | None = None,
) -> RosettaError:
    """Map a vendor HTTP status to the error the client sees.

    4xx caused by the request keep their status; 401/403 are *our* credential failing, so 502; 429 keeps
    its Retry-After; overload statuses (503, 529) become 503; every other 5xx becomes 502.
    """
    if status == 429:
        headers = {"Retry-After": retry_after} if retry_after else {}
        return RateLimited(message, param=param, code=code or "rate_limit_exceeded", headers=headers)
    if status in (401, 403):
        return UpstreamError(f"The upstream rejected the gateway's credentials: {message}")
    if status == 408:
        return UpstreamTimeout(message)
    if 400 <= status < 500:
        return UpstreamRejected(status, message, param=param, code=code)
    if status in (503, 529):
        return UpstreamUnavailable(message)
    if status == 504:
        return UpstreamTimeout(message)
    return UpstreamError(message)
