"""Turn an HTTP error response into the right exception of the project's tree.

Protocol code: no I/O. Understands every error body shape the supported services send:
``{"error": {"code", "message", ...}}`` (Azure AI, Azure OpenAI, OpenAI, vLLM, llama.cpp),
flat ``{"code", "message"}``, ``{"statusCode", "message"}`` (serverless auth failures),
``{"detail": ...}`` and ``{"message": ...}``, and bodies that are not JSON at all (an HTML
page from a proxy).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from .exceptions import (
    ClientAuthenticationError,
    ContentFilterError,
    ErrorResponse,
    HttpResponseError,
    RateLimitError,
    ResourceNotFoundError,
    ServiceError,
)

_TAGS = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")
_FILTER_CODES = frozenset({"content_filter", "ResponsibleAIPolicyViolation", "contentFilter"})


def parse_error_body(body: bytes, content_type: str | None) -> tuple[str | None, str | None]:
    """The service's error ``(code, message)`` from a body, each None when absent."""
    if not body:
        return None, None
    data: Any = None
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, Mapping):
        inner = data.get("error", data)
        if isinstance(inner, str):
            return None, inner
        if isinstance(inner, Mapping):
            code = inner.get("code")
            message = inner.get("message") or data.get("message") or data.get("detail")
            innererror = inner.get("innererror")
            if isinstance(innererror, Mapping) and innererror.get("code") in _FILTER_CODES:
                code = code or innererror.get("code")
            if isinstance(message, list | Mapping):
                message = orjson.dumps(message).decode()
            return (
                str(code) if code is not None else None,
                str(message) if message is not None else None,
            )
    text = body.decode("utf-8", errors="replace")
    if (content_type and "html" in content_type) or text.lstrip().startswith("<"):
        text = _SPACE.sub(" ", _TAGS.sub(" ", text)).strip()
        kind = content_type.split(";")[0] if content_type else "text/html"
        return None, f"the server sent {kind}, not the API's JSON: {text[:200]}"
    text = text.strip()
    return None, text[:500] if text else None


def _is_content_filter(code: str | None, body: bytes) -> bool:
    if code in _FILTER_CODES:
        return True
    return b"ResponsibleAIPolicyViolation" in body


def error_from_response(
    status: int,
    reason: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    attempts: int = 1,
    retry_after: float | None = None,
) -> HttpResponseError:
    """The exception for an error response (status >= 400)."""
    code, message = parse_error_body(body, headers.get("content-type"))
    response = ErrorResponse(status, reason, headers, body)
    cls: type[HttpResponseError]
    if status in (401, 403):
        cls = ClientAuthenticationError
    elif status == 404:
        cls = ResourceNotFoundError
    elif status == 429:
        cls = RateLimitError
    elif _is_content_filter(code, body):
        cls = ContentFilterError
    elif status >= 500:
        cls = ServiceError
    else:
        cls = HttpResponseError
    text = None
    if attempts > 1:
        code_part = f"({code}) " if code else ""
        text = (
            f"HTTP {status} {reason} after {attempts} attempts: {code_part}{message or ''}".rstrip()
        )
    exc = cls(text, response, code=code, service_message=message, attempts=attempts)
    exc.retry_after = retry_after
    return exc


def error_from_event(data: Mapping[str, Any]) -> tuple[str | None, str]:
    """``(code, message)`` from an error event inside a stream."""
    inner = data.get("error", data)
    if isinstance(inner, Mapping):
        code = inner.get("code")
        message = inner.get("message") or "the service reported an error in the stream"
        return (str(code) if code is not None else None, str(message))
    return None, str(inner)


__all__ = ["error_from_event", "error_from_response", "parse_error_body"]
