"""Reading and checking a batch input file (the OpenAI Batch format), without I/O of its own.

Each non-blank line is a JSON object with exactly four keys::

    {"custom_id": "q-1", "method": "POST", "url": "/v1/chat/completions",
     "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}}

A line that breaks a rule is reported with its line number and the rule, and nothing is sent
for it. Every line that shares a ``custom_id`` with another is refused (which of them the
result would belong to is ambiguous).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final, Literal

import attrs
import orjson

from .._embeddings import embeddings_body, split_body
from ..exceptions import RequestValidationError

__all__ = ["ENDPOINT_URLS", "BatchRequest", "LineError", "parse_lines"]

RequestKind = Literal["chat", "embeddings"]

#: The ``url`` values a line may name, and the kind of request each one is.
ENDPOINT_URLS: Final[Mapping[str, RequestKind]] = {
    "/v1/chat/completions": "chat",
    "/chat/completions": "chat",
    "/v1/embeddings": "embeddings",
    "/embeddings": "embeddings",
}
_KEYS: Final = frozenset({"custom_id", "method", "url", "body"})
_MAX_CUSTOM_ID: Final = 512


@attrs.frozen
class BatchRequest:
    """One valid input line: where it was, its id, what kind of request, and its JSON body."""

    #: The 1-based line number in the input file.
    line: int
    #: The caller's id of the request, unique in the file.
    custom_id: str
    #: ``"chat"`` or ``"embeddings"`` (from ``url``).
    kind: RequestKind
    #: The ``url`` as written in the line, e.g. ``"/v1/chat/completions"``.
    url: str
    #: The request body, sent as given.
    body: dict[str, Any]


@attrs.frozen
class LineError:
    """A line that is not a valid request, and why."""

    #: The 1-based line number in the input file.
    line: int
    #: What is wrong and how to fix it.
    message: str
    #: The line's ``custom_id`` when it has a readable one.
    custom_id: str | None = None

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


class _Bad(Exception):
    """A rule the line breaks (internal: becomes a :class:`LineError`)."""


def _object(raw: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as bad:
            raise _Bad(
                f"not UTF-8 text (byte 0x{raw[bad.start]:02x} at offset {bad.start} of the "
                "line); save the file as UTF-8"
            ) from None
        raise _Bad(f"not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise _Bad(f"a JSON {type(data).__name__} where a request object was expected")
    return data


def _check_keys(data: Mapping[str, Any]) -> None:
    missing = sorted(_KEYS - data.keys())
    unknown = sorted(data.keys() - _KEYS)
    if missing or unknown:
        parts = [f"missing {missing}"] if missing else []
        parts += [f"unknown {unknown}"] if unknown else []
        raise _Bad(f"keys: {', '.join(parts)}; a line has exactly custom_id, method, url and body")


def _custom_id(data: Mapping[str, Any]) -> str:
    custom_id = data["custom_id"]
    if not isinstance(custom_id, str) or not custom_id.strip():
        raise _Bad(f"custom_id must be a non-empty string, got {custom_id!r}")
    if len(custom_id) > _MAX_CUSTOM_ID:
        raise _Bad(f"custom_id is longer than {_MAX_CUSTOM_ID} characters")
    return custom_id


def _chat_body(body: Mapping[str, Any]) -> None:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _Bad("body.messages must be a non-empty list of messages")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise _Bad(f"body.messages[{index}] must be an object with a role")
    if body.get("stream"):
        raise _Bad("body.stream is not supported in a batch (answers are stored whole); drop it")


def _embeddings_body(body: Mapping[str, Any]) -> None:
    value = body.get("input")
    if not (isinstance(value, str | list) and value):
        raise _Bad("body.input must be a non-empty string or a non-empty list")
    # The body goes through EmbeddingsClient.embed(): what it would refuse (input that is not
    # text, dimensions that are not a positive whole number, an unknown encoding_format ...)
    # is refused here, before anything is sent.
    try:
        embeddings_body(*split_body(body))
    except RequestValidationError as exc:
        raise _Bad(f"body: {exc}") from None


def _request(line: int, data: Mapping[str, Any], kinds: frozenset[str]) -> BatchRequest:
    _check_keys(data)
    custom_id = _custom_id(data)
    if data["method"] != "POST":
        raise _Bad(f"method must be 'POST', got {data['method']!r}")
    url = data["url"]
    kind = ENDPOINT_URLS.get(url) if isinstance(url, str) else None
    if kind is None:
        raise _Bad(f"url {url!r} is not supported; use one of {', '.join(ENDPOINT_URLS)}")
    if kind not in kinds:
        raise _Bad(f"{kind} requests ({url}) are not available in this version")
    body = data["body"]
    if not isinstance(body, dict):
        raise _Bad(f"body must be a JSON object, got {type(body).__name__}")
    (_chat_body if kind == "chat" else _embeddings_body)(body)
    return BatchRequest(line=line, custom_id=custom_id, kind=kind, url=url, body=body)


def _readable_id(data: object) -> str | None:
    if isinstance(data, dict):
        value = data.get("custom_id")
        if isinstance(value, str):
            return value
    return None


def parse_lines(
    lines: Iterable[bytes], kinds: frozenset[str] = frozenset({"chat", "embeddings"})
) -> tuple[list[BatchRequest], list[LineError]]:
    """The valid requests and the errors of the input ``lines`` (numbered from 1).

    Blank lines are skipped. ``kinds``: the request kinds this installation can send; a line
    of another kind is an error.
    """
    requests: list[BatchRequest] = []
    errors: list[LineError] = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        data: object = None
        try:
            data = _object(raw)
            requests.append(_request(number, data, kinds))
        except _Bad as exc:
            errors.append(LineError(number, str(exc), _readable_id(data)))
    return _without_duplicates(requests, errors)


def _without_duplicates(
    requests: list[BatchRequest], errors: list[LineError]
) -> tuple[list[BatchRequest], list[LineError]]:
    first: dict[str, list[int]] = {}
    for request in requests:
        first.setdefault(request.custom_id, []).append(request.line)
    for error in errors:
        if error.custom_id is not None and error.custom_id in first:
            first[error.custom_id].append(error.line)
    repeated = {cid: lines for cid, lines in first.items() if len(lines) > 1}
    if not repeated:
        return requests, errors
    kept = [r for r in requests if r.custom_id not in repeated]
    for request in requests:
        if request.custom_id in repeated:
            others = [n for n in repeated[request.custom_id] if n != request.line]
            errors.append(
                LineError(
                    request.line,
                    f"custom_id {request.custom_id!r} is also used on line(s) "
                    f"{', '.join(map(str, others))}; give each request its own custom_id",
                    request.custom_id,
                )
            )
    errors.sort(key=lambda e: e.line)
    return kept, errors
