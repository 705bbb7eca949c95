"""The async embeddings client: the body and answer of :mod:`inference._embeddings`, sent
through the chat client's request path (endpoint kinds, credentials, retries, timeouts and
error mapping are the very same)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Unpack, cast

from .._auth import Credential
from .._config import EMBEDDINGS_MAX_RESPONSE_BYTES, RetryPolicy, Timeout
from .._embeddings import check_extras, embeddings_body, loads_embeddings
from .._endpoint import Endpoint
from .._keywords import EXTRAS, checked_keywords
from .._load_client import client_kind, explain_missing_info, kwargs_for, probe_kwargs
from .._options import (
    ChatClientOptions,
    ClientOptions,
    EmbeddingsClientOptions,
    check_options,
    option_names,
)
from .._serialization import DecodeFailure, dumps
from .._tracing import traced_embed
from ..exceptions import ErrorResponse, ResourceNotFoundError, ResponseDecodeError
from ..models import EmbeddingEncodingFormat, EmbeddingInputType, EmbeddingsResult, ModelInfo
from ._client import ChatCompletionsClient

# The embeddings client's own options (its request defaults, in their declared order); the
# rest (ClientOptions) go to its connection.
_REQUEST_DEFAULTS = tuple(
    name
    for name in EmbeddingsClientOptions.__annotations__
    if name not in option_names(ClientOptions)
)

__all__ = ["EmbeddingsClient", "load_client"]


class EmbeddingsClient:
    """Async client for text embeddings.

    ``endpoint`` and ``credential`` are those of :class:`ChatCompletionsClient` (the same
    endpoint kinds; requests go to ``<endpoint>/embeddings``), and so are ``api_version=``,
    ``endpoint_kind=``, ``key_header=``, ``token_scope=``, ``credential_scopes=``,
    ``headers=``, ``timeout=``, ``retry=``, ``session=``, ``trust_env=``,
    ``log_request_body=``, ``enforce_https=``, ``response_hook=``, ``user_agent=``,
    ``logging_enable=`` and ``max_connections=``. ``max_response_bytes=`` is the largest
    response body read (after decompression); it defaults to 256 MiB here, since the vectors
    for a batch of inputs take far more room than a chat answer.

    Default request parameters (``model``, ``dimensions``, ``encoding_format``,
    ``input_type``, ``model_extras``) given here apply to every :meth:`embed` call that does
    not set them. The keywords are declared once, in
    :class:`~inference.EmbeddingsClientOptions`; an unknown one (or one of the chat client's
    only, such as ``temperature``) raises :class:`~inference.exceptions.RequestValidationError`.

    Use it as ``async with EmbeddingsClient(...) as client:`` or call :meth:`close`.
    """

    @checked_keywords(EXTRAS)
    def __init__(
        self,
        endpoint: str,
        credential: Credential | None = None,
        **options: Unpack[EmbeddingsClientOptions],
    ) -> None:
        check_options(options, EmbeddingsClientOptions, "EmbeddingsClient()")
        connection = {k: v for k, v in options.items() if k not in _REQUEST_DEFAULTS}
        connection.setdefault("max_response_bytes", EMBEDDINGS_MAX_RESPONSE_BYTES)
        # The connection (endpoint, credential, pool, retries): the chat client's, unused for
        # chat. Its request path is the one both clients send through.
        self._connection = ChatCompletionsClient(
            endpoint, credential, **cast(ChatClientOptions, connection)
        )
        self._connection._public_name = type(self).__name__
        self._defaults: dict[str, Any] = {
            name: options.get(name) for name in _REQUEST_DEFAULTS if name != "model_extras"
        }
        self._model_extras = dict(options.get("model_extras") or {})
        check_extras(self._model_extras)
        # Check the defaults now, so bad values fail here and not at the first call.
        embeddings_body({"input": ["?"], **self._defaults}, self._model_extras)

    @property
    def endpoint(self) -> Endpoint:
        """The resolved endpoint: kind, URLs, api-version, key headers and token scope."""
        return self._connection.endpoint

    def __repr__(self) -> str:
        return repr(self._connection).replace("ChatCompletionsClient", type(self).__name__, 1)

    @checked_keywords(EXTRAS)
    @traced_embed
    async def embed(
        self,
        *,
        input: Sequence[str] | str,
        dimensions: int | None = None,
        encoding_format: EmbeddingEncodingFormat | str | None = None,
        input_type: EmbeddingInputType | str | None = None,
        model: str | None = None,
        model_extras: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: Timeout | float | None = None,
        retry: RetryPolicy | int | None = None,
    ) -> EmbeddingsResult:
        """Embed texts: one vector per string of ``input``, in ``data[i].embedding``.

        ``dimensions`` (the vector length, for models that can shorten it),
        ``encoding_format`` (``"float"``, ``"base64"``, ``"int8"``, ...; base64 answers are
        decoded to floats), ``input_type`` (``"text"``, ``"query"``, ``"document"``) and
        ``model`` override the client's defaults. ``model_extras`` go at the body root with
        the header ``extra-parameters: pass-through``. ``headers``, ``timeout`` and ``retry``
        apply to this call only.
        """
        params = dict(self._defaults)
        params["input"] = input
        call = {
            "dimensions": dimensions,
            "encoding_format": encoding_format,
            "input_type": input_type,
            "model": model,
        }
        params.update((k, v) for k, v in call.items() if v is not None)
        extras = dict(self._model_extras)
        extras.update(model_extras or {})
        body, pass_through = embeddings_body(params, extras)
        extra_headers = {"extra-parameters": "pass-through"} if pass_through else {}
        extra_headers.update(headers or {})
        connection = self._connection
        response, data, attempts = await connection._send_json(
            connection.endpoint.embeddings_url, dumps(body), extra_headers, timeout, retry
        )
        try:
            return loads_embeddings(data, len(body["input"]))
        except DecodeFailure as exc:
            content_type = response.headers.get("content-type", "")
            raise ResponseDecodeError(
                f"HTTP {response.status} but the body is not the expected embeddings JSON "
                f"(content-type {content_type or 'missing'}): {exc}",
                ErrorResponse(response.status, response.reason, response.headers, data),
                attempts=attempts,
            ) from exc

    def _keep_model_info(self, info: ModelInfo) -> None:
        self._connection._keep_model_info(info)

    @checked_keywords()
    async def get_model_info(
        self,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: Timeout | float | None = None,
        retry: RetryPolicy | int | None = None,
    ) -> ModelInfo:
        """What ``/info`` says about the model behind the endpoint (Azure AI endpoints).

        The first answer is kept for the client's life (a call with other ``headers=`` asks
        once for itself; a failure is not kept), as azure-ai-inference does. Calls made while
        the first request is under way wait for its answer (or its error) instead of sending
        their own.

        Endpoint kinds without ``/info`` (Azure OpenAI v1, GitHub Models, OpenAI-compatible
        servers) raise :class:`~inference.exceptions.ResourceNotFoundError` without a request.
        """
        return await self._connection.get_model_info(headers=headers, timeout=timeout, retry=retry)

    async def close(self) -> None:
        """Close the connection pool (not a session you passed in). Idempotent."""
        await self._connection.close()

    async def __aenter__(self) -> EmbeddingsClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


@checked_keywords()
async def load_client(
    endpoint: str, credential: Credential | None = None, **kwargs: Any
) -> ChatCompletionsClient | EmbeddingsClient:
    """The client for the model behind ``endpoint``: a :class:`ChatCompletionsClient` or an
    :class:`EmbeddingsClient`, as the endpoint's ``/info`` says (``model_type``).

    ``kwargs`` go to the client's constructor (``api_version=``, ``timeout=``, ...). Only
    endpoints with ``/info`` (Azure AI model inference, serverless, Azure OpenAI
    deployments) can say; others raise :class:`~inference.exceptions.ResourceNotFoundError`.
    A model of another type raises :class:`~inference.exceptions.RequestValidationError`.
    """
    probe = EmbeddingsClient(
        endpoint, credential, **probe_kwargs(kwargs, ChatCompletionsClient, EmbeddingsClient)
    )
    try:
        info = await probe.get_model_info()
    except ResourceNotFoundError as exc:
        explain_missing_info(exc)
        raise
    finally:
        await probe.close()
    cls = ChatCompletionsClient if client_kind(info) == "chat" else EmbeddingsClient
    client = cls(endpoint, credential, **kwargs_for(kwargs, cls, info))
    client._keep_model_info(info)  # its get_model_info() answers without asking again
    return client
