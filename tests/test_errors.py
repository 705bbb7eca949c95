"""Tests of HTTP error mapping: every error body shape the services send, directly and via HTTP."""

from __future__ import annotations

import json
from typing import Any

import attrs
import azure.core.exceptions as azure_exceptions
import pytest
from _recording_server import Exchange, ReplayServer, load_exchanges, recording_path
from multidict import CIMultiDict

from inference._errors import error_from_response, parse_error_body
from inference.aio import ChatCompletionsClient
from inference.exceptions import (
    ClientAuthenticationError,
    ContentFilterError,
    ErrorResponse,
    HttpResponseError,
    InferenceError,
    RateLimitError,
    ResourceNotFoundError,
    ServiceError,
)
from inference.models import SystemMessage, UserMessage
from inference.testing import Emulator

MESSAGES = [UserMessage("How many feet are in a mile?")]

BAD_GATEWAY_PAGE = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


@attrs.frozen
class Case:
    """One error response and what it must map to."""

    name: str
    status: int
    reason: str
    body: bytes
    cls: type[HttpResponseError]
    code: str | None
    message: str | None
    headers: dict[str, str] = attrs.field(factory=dict)

    def header_map(self) -> CIMultiDict[str]:
        """The headers as the transport hands them over (case-insensitive)."""
        return CIMultiDict(self.headers)


def _doc_examples() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        recording_path("error_content_filter_400_DOC_EXAMPLES.json").read_text(encoding="utf-8")
    )
    return data


def _body(data: dict[str, Any]) -> bytes:
    return json.dumps({k: v for k, v in data.items() if k != "_source"}).encode()


def _cases() -> list[Case]:
    auth = load_exchanges(recording_path("error_401_auth_failure_serverless.json"))[0]
    info_404 = load_exchanges(recording_path("info_200_serverless_and_404_aoai.json"))[1]
    docs = _doc_examples()
    aoai_filter = docs["aoai_prompt_blocked_400__use-blocklists.md"]
    mi_filter = docs["model_inference_prompt_blocked_400__mistral_how-to"]
    flat_filter = docs["model_inference_reference_2025-04-01__flat_shape"]
    unsupported = docs["model_inference_422_parameter_not_supported__same_page"]
    json_type = {"Content-Type": "application/json"}
    return [
        Case(
            "serverless-401-statusCode-shape",
            401,
            "Unauthorized",
            auth.body,
            ClientAuthenticationError,
            None,
            "Auth token validation failed. Please provide a valid key or a valid AAD token",
            auth.response_headers,
        ),
        Case(
            "aoai-404-wrapped",
            404,
            "Not Found",
            info_404.body,
            ResourceNotFoundError,
            "404",
            "Resource not found",
            info_404.response_headers,
        ),
        Case(
            "aoai-400-content-filter-innererror",
            400,
            "Bad Request",
            _body(aoai_filter),
            ContentFilterError,
            "content_filter",
            aoai_filter["error"]["message"],
            {**json_type, "apim-request-id": "apim-1"},
        ),
        Case(
            "model-inference-400-content-filter-wrapped",
            400,
            "Bad Request",
            _body(mi_filter),
            ContentFilterError,
            "content_filter",
            mi_filter["error"]["message"],
            {**json_type, "x-request-id": "req-1"},
        ),
        Case(
            "model-inference-400-content-filter-flat",
            400,
            "Bad Request",
            _body(flat_filter),
            ContentFilterError,
            "content_filter",
            "The response was filtered",
            json_type,
        ),
        Case(
            "model-inference-422-flat-with-detail",
            422,
            "Unprocessable Entity",
            _body(unsupported),
            HttpResponseError,
            "parameter_not_supported",
            "One of the parameters contain invalid values.",
            json_type,
        ),
        Case(
            "azure-403-wrapped",
            403,
            "Forbidden",
            b'{"error": {"code": "PermissionDenied", "message": "The principal lacks the role."}}',
            ClientAuthenticationError,
            "PermissionDenied",
            "The principal lacks the role.",
            json_type,
        ),
        Case(
            "azure-429-wrapped",
            429,
            "Too Many Requests",
            b'{"error": {"code": "RateLimitReached", "message": "Retry after 2 seconds.",'
            b' "status": 429}}',
            RateLimitError,
            "RateLimitReached",
            "Retry after 2 seconds.",
            {**json_type, "x-request-id": "req-429"},
        ),
        Case(
            "openai-500-wrapped-with-nulls",
            500,
            "Internal Server Error",
            b'{"error": {"message": "The server had an error.", "type": "server_error",'
            b' "param": null, "code": null}}',
            ServiceError,
            None,
            "The server had an error.",
            json_type,
        ),
        Case(
            "azure-400-not-a-filter",
            400,
            "Bad Request",
            b'{"error": {"code": "BadRequest", "message": "messages must not be empty",'
            b' "status": 400}}',
            HttpResponseError,
            "BadRequest",
            "messages must not be empty",
            json_type,
        ),
        Case(
            "llama-cpp-500-string-error",
            500,
            "Internal Server Error",
            b'{"error": "model is still loading"}',
            ServiceError,
            None,
            "model is still loading",
            json_type,
        ),
        Case(
            "fastapi-400-detail",
            400,
            "Bad Request",
            b'{"detail": "max_tokens is too large"}',
            HttpResponseError,
            None,
            "max_tokens is too large",
            json_type,
        ),
        Case(
            "html-502-from-a-proxy",
            502,
            "Bad Gateway",
            BAD_GATEWAY_PAGE.encode(),
            ServiceError,
            None,
            "502 Bad Gateway",
            {"Content-Type": "text/html"},
        ),
        Case(
            "plain-text-409",
            409,
            "Conflict",
            b"deployment is being updated\n",
            HttpResponseError,
            None,
            "deployment is being updated",
            {"Content-Type": "text/plain; charset=utf-8"},
        ),
        Case(
            "empty-503",
            503,
            "Service Unavailable",
            b"",
            ServiceError,
            None,
            None,
            {},
        ),
    ]


CASES = _cases()


def check(exc: BaseException, case: Case) -> None:
    """Everything an HttpResponseError for ``case`` must carry."""
    assert type(exc) is case.cls, (case.name, type(exc))
    assert isinstance(exc, HttpResponseError)
    assert isinstance(exc, InferenceError)
    assert isinstance(exc, azure_exceptions.HttpResponseError)
    assert exc.status_code == case.status
    assert exc.reason == case.reason
    assert exc.code == case.code
    text = str(exc)
    assert f"HTTP {case.status}" in text
    if case.message is not None:
        assert case.message in text
    if case.code is not None:
        assert case.code in text
    response = exc.response
    assert isinstance(response, ErrorResponse)
    assert response.status_code == case.status
    assert response.body == case.body
    assert response.text() == case.body.decode()
    for name, value in case.headers.items():
        assert response.headers[name.lower()] == value
        assert response.headers[name.upper()] == value
    if case.body.startswith(b"{"):
        assert response.json() == json.loads(case.body)
    else:
        with pytest.raises(ValueError):
            response.json()
    expected_id = next(
        (
            case.headers[h]
            for h in case.headers
            if h.lower() in ("x-request-id", "apim-request-id", "request-id")
        ),
        None,
    )
    assert exc.request_id == expected_id
    if expected_id:
        assert expected_id in text


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_error_from_response_maps_every_shape(case: Case) -> None:
    """error_from_response picks the class, code, message, request id and keeps the response."""
    exc = error_from_response(case.status, case.reason, case.header_map(), case.body)
    check(exc, case)
    assert exc.attempts == 1


def test_message_is_the_service_message() -> None:
    """exc.message is the service's own message (as documented), not the formatted text."""
    wrong = []
    for case in CASES:
        if case.message is None or case.name.startswith("html"):
            continue
        exc = error_from_response(case.status, case.reason, case.header_map(), case.body)
        if exc.message != case.message:
            wrong.append((case.name, exc.message))
    assert wrong == []


def test_azure_subclasses_for_auth_and_not_found() -> None:
    """401/403 and 404 are also azure-core's ClientAuthenticationError / ResourceNotFoundError."""
    auth = error_from_response(401, "Unauthorized", CIMultiDict(), b"")
    missing = error_from_response(404, "Not Found", CIMultiDict(), b"")
    assert isinstance(auth, azure_exceptions.ClientAuthenticationError)
    assert isinstance(missing, azure_exceptions.ResourceNotFoundError)
    assert str(auth) == "HTTP 401 Unauthorized"


def test_html_page_message_is_readable() -> None:
    """A proxy's HTML page becomes a one-line message without tags."""
    code, message = parse_error_body(BAD_GATEWAY_PAGE.encode(), "text/html")
    assert code is None
    assert message is not None
    assert "<" not in message and "\n" not in message
    assert message.startswith("the server sent text/html, not the API's JSON")
    assert "502 Bad Gateway" in message


def test_attempts_and_retry_after_are_reported() -> None:
    """After retries the message says how many attempts were made; 429 keeps retry_after."""
    case = next(c for c in CASES if c.name == "azure-429-wrapped")
    exc = error_from_response(
        case.status, case.reason, case.header_map(), case.body, attempts=4, retry_after=2.5
    )
    assert isinstance(exc, RateLimitError)
    assert exc.attempts == 4
    assert exc.retry_after == 2.5
    assert "after 4 attempts" in str(exc)
    assert "Retry after 2 seconds." in str(exc)


def test_content_safety_handler_from_the_document() -> None:
    """The reference document's handler reads ex.response.json()['error']['code']."""
    case = next(c for c in CASES if c.name == "model-inference-400-content-filter-wrapped")
    exc = error_from_response(case.status, case.reason, case.header_map(), case.body)
    printed = _document_handler(exc)
    assert printed.startswith("Your request triggered an content_filter error:")
    assert "content management policy" in printed


def _document_handler(ex: azure_exceptions.HttpResponseError) -> str:
    """The document's ``except HttpResponseError as ex`` block, returning what it prints."""
    assert ex.status_code == 400
    response = ex.response.json()  # type: ignore[union-attr]
    assert isinstance(response, dict) and "error" in response
    return (
        f"Your request triggered an {response['error']['code']} error:\n\t "
        f"{response['error']['message']}"
    )


# -- end to end through a loopback server --------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
@pytest.mark.anyio
async def test_error_bodies_end_to_end(case: Case, stream: bool) -> None:
    """The client raises the mapped exception for each error body a server sends."""
    reply = Exchange.make(case.status, case.body, case.headers)
    async with (
        ReplayServer([reply]) as server,
        ChatCompletionsClient(
            server.url, "key", endpoint_kind="azure_ai_serverless", retry=0
        ) as client,
    ):
        with pytest.raises(HttpResponseError) as info:
            await client.complete(messages=MESSAGES, stream=stream)
        assert client._transport.pool_stats()[0] == 0
    check(info.value, case)
    assert server.problems == []
    assert len(server.requests) == 1


@pytest.mark.anyio
async def test_error_on_model_info_end_to_end() -> None:
    """get_model_info() maps an error status the same way."""
    case = next(c for c in CASES if c.name == "aoai-404-wrapped")
    reply = Exchange.make(case.status, case.body, case.headers, method="GET", path="/info")
    async with (
        ReplayServer([reply]) as server,
        ChatCompletionsClient(
            server.url, "key", endpoint_kind="azure_ai_serverless", retry=0
        ) as client,
    ):
        with pytest.raises(ResourceNotFoundError) as info:
            await client.get_model_info()
    check(info.value, case)


@pytest.mark.parametrize(
    ("kind", "status", "cls", "code"),
    [
        ("azure_ai_models", 400, HttpResponseError, "BadRequest"),
        ("azure_ai_models", 401, ClientAuthenticationError, "401"),
        ("azure_ai_serverless", 401, ClientAuthenticationError, None),
        ("azure_ai_models", 403, ClientAuthenticationError, "Forbidden"),
        ("azure_openai_deployment", 404, ResourceNotFoundError, "404"),
        ("azure_ai_models", 429, RateLimitError, "RateLimitReached"),
        ("azure_openai_deployment", 429, RateLimitError, "429"),
        ("openai_compatible", 429, RateLimitError, "rate_limit_exceeded"),
        ("azure_ai_models", 500, ServiceError, "InternalServerError"),
        ("openai_compatible", 503, ServiceError, "service_unavailable"),
        ("azure_openai_v1", 504, ServiceError, "504"),
    ],
)
@pytest.mark.anyio
async def test_emulator_error_statuses(
    emulator: Emulator, kind: str, status: int, cls: type[HttpResponseError], code: str | None
) -> None:
    """Each endpoint kind's error bodies (from the emulator) map to the right exception."""
    extra: dict[str, Any] = {"endpoint_kind": kind} if kind == "azure_ai_serverless" else {}
    async with ChatCompletionsClient(
        emulator.endpoint(kind),
        "key",
        retry=0,
        headers={"x-emulator-status": str(status), "x-emulator-retry-after": "3"},
        **extra,
    ) as client:
        with pytest.raises(HttpResponseError) as info:
            await client.complete(messages=MESSAGES)
    exc = info.value
    assert type(exc) is cls
    assert exc.status_code == status
    assert exc.code == code
    response = exc.response
    assert isinstance(response, ErrorResponse)
    request_id = response.headers.get("x-request-id")
    assert request_id
    assert exc.request_id == request_id
    assert request_id in str(exc)
    body = response.json()
    service_message = body["error"]["message"] if "error" in body else body["message"]
    assert service_message in str(exc)
    if isinstance(exc, RateLimitError):
        assert exc.retry_after == 3.0
        assert response.headers["Retry-After"] == "3"


@pytest.mark.parametrize("kind", ["azure_ai_models", "azure_openai_deployment"])
@pytest.mark.anyio
async def test_content_filter_end_to_end_with_document_handler(
    emulator: Emulator, kind: str
) -> None:
    """The document's knife-skills prompt raises ContentFilterError; its handler pattern works."""
    async with ChatCompletionsClient(emulator.endpoint(kind), "key", retry=0) as client:
        try:
            await client.complete(
                messages=[
                    SystemMessage(
                        content="You are an AI assistant that helps people find information."
                    ),
                    UserMessage(
                        content="Chopping tomatoes and cutting them into cubes or wedges are "
                        "great ways to practice your knife skills."
                    ),
                ]
            )
        except azure_exceptions.HttpResponseError as ex:
            assert isinstance(ex, ContentFilterError)
            printed = _document_handler(ex)
            assert ex.code == "content_filter"
        else:
            pytest.fail("the content filter did not trigger")
    assert printed.startswith("Your request triggered an content_filter error:")
    assert "content management policy" in printed
