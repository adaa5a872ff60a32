"""The package's exceptions, catchable by meaning.

``ClaudeError``
 ├── ``ConfigurationError``       a setting is missing or invalid; nothing was sent
 ├── ``APIConnectionError``       the API could not be reached
 │    └── ``APITimeoutError``      it did not answer in time
 ├── ``StreamInterrupted``        the connection dropped while an answer was streaming
 ├── ``UnexpectedResponseError``  a success status with a body that is not the API's (a proxy?)
 └── ``APIError``                 the API answered with its error envelope
      ├── ``BadRequestError``          400 invalid_request_error
      ├── ``AuthenticationError``      401 authentication_error
      ├── ``BillingError``             402 billing_error (a Jupyter server's budget, too)
      ├── ``PermissionDeniedError``    403 permission_error
      ├── ``NotFoundError``            404 not_found_error
      ├── ``RequestTooLargeError``     413 request_too_large
      ├── ``RateLimitError``           429 rate_limit_error
      ├── ``InternalServerError``      500 api_error (and other 5xx)
      └── ``OverloadedError``          529 overloaded_error

Messages never contain a credential: :func:`redact` is applied to every text that comes
from outside before it is put in an exception.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

SPEND_LIMIT_REACHED = "enforced_spend_limit_reached"
"""``details.error_code`` of the 429 that says the organisation's monthly spend cap is reached:
not a rate limit, so waiting a little doesn't help, and it is never retried."""
NEVER_RETRIED = frozenset({SPEND_LIMIT_REACHED})


class ClaudeError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigurationError(ClaudeError):
    """A setting is missing or invalid, so no request was sent."""


class APIConnectionError(ClaudeError):
    """The API could not be reached (refused, DNS failure, TLS, reset before an answer)."""


class APITimeoutError(APIConnectionError):
    """The API did not answer within the timeout."""


class StreamInterrupted(ClaudeError):
    """The connection dropped after the answer had started; the partial answer is kept."""


class UnexpectedResponseError(ClaudeError):
    """The server answered with a success status but not in the API's format: a proxy, a
    captive portal or a wrong base URL, most likely."""


class APIError(ClaudeError):
    """The API answered with an error: its status, error type, message and request id."""

    http_status: int | None = None
    """The status this class stands for; an instance's ``status_code`` is what was received
    (``None`` for an ``error`` event in a stream that had started with 200)."""
    error_type: str = "api_error"

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        error_type: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        error_code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        if error_type is not None:
            self.error_type = error_type
        self.request_id = request_id
        self.retry_after = retry_after
        self.error_code = error_code
        """``details.error_code`` of the envelope, where the API says more than the type."""

    @property
    def retryable(self) -> bool:
        """False for the errors no retry can help, whatever their status says."""
        return self.error_code not in NEVER_RETRIED

    def __str__(self) -> str:
        status = f"{self.status_code} " if self.status_code else ""
        request = f" (request-id {self.request_id})" if self.request_id else ""
        return f"{status}{self.error_type}: {self.message}{request}"


class BadRequestError(APIError):
    """400: the request's format or content is invalid."""

    http_status = 400
    error_type = "invalid_request_error"


class AuthenticationError(APIError):
    """401: the API key is missing, malformed, revoked or expired."""

    http_status = 401
    error_type = "authentication_error"


class BillingError(APIError):
    """402: a billing problem; also a Jupyter server's budget refusing a request."""

    http_status = 402
    error_type = "billing_error"


class PermissionDeniedError(APIError):
    """403: the key may not use this resource."""

    http_status = 403
    error_type = "permission_error"


class NotFoundError(APIError):
    """404: unknown path or model."""

    http_status = 404
    error_type = "not_found_error"


class RequestTooLargeError(APIError):
    """413: the request is over the API's size limit."""

    http_status = 413
    error_type = "request_too_large"


class RateLimitError(APIError):
    """429: a rate or spend limit was hit."""

    http_status = 429
    error_type = "rate_limit_error"


class InternalServerError(APIError):
    """500 and other 5xx: an error inside the API."""

    http_status = 500
    error_type = "api_error"


class OverloadedError(APIError):
    """529 (or an ``overloaded_error`` event mid-stream): the API is over capacity."""

    http_status = 529
    error_type = "overloaded_error"


_BY_TYPE: dict[str, type[APIError]] = {
    cls.error_type: cls
    for cls in (
        BadRequestError,
        AuthenticationError,
        BillingError,
        PermissionDeniedError,
        NotFoundError,
        RequestTooLargeError,
        RateLimitError,
        InternalServerError,
        OverloadedError,
    )
}
_BY_STATUS: dict[int, type[APIError]] = {cls.http_status: cls for cls in _BY_TYPE.values()}  # type: ignore[misc]


def api_error(
    status_code: int | None,
    body: Any,
    *,
    request_id: str | None = None,
    retry_after: float | None = None,
    secrets: Iterable[str] = (),
) -> APIError:
    """The exception for an error envelope (or a body that is not one)."""
    error = body.get("error") if isinstance(body, dict) else None
    error_code = None
    if isinstance(error, dict):
        error_type = str(error.get("type") or "api_error")
        message = str(error.get("message") or "")
        request_id = request_id or (body.get("request_id") if isinstance(body, dict) else None)
        details = error.get("details")
        error_code = str(details["error_code"]) if isinstance(details, dict) and details.get("error_code") else None
    else:
        error_type = None
        message = str(body)[:300] if body else "no error details in the response"
    cls = _BY_TYPE.get(error_type or "") or _status_class(status_code)
    return cls(
        redact(message, secrets),
        status_code=status_code,
        error_type=error_type,
        request_id=request_id,
        retry_after=retry_after,
        error_code=error_code,
    )


def _status_class(status_code: int | None) -> type[APIError]:
    if status_code is None:
        return APIError
    if status_code in _BY_STATUS:
        return _BY_STATUS[status_code]
    return InternalServerError if status_code >= 500 else APIError


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret replaced, so that no credential reaches a message."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
