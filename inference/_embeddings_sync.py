"""The sync embeddings client: :class:`inference.aio.EmbeddingsClient` on a portal of its
own (see :mod:`inference._portal`); every method is one hop."""

from __future__ import annotations

import functools
import weakref
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Unpack

from ._auth import Credential
from ._config import RetryPolicy, Timeout
from ._endpoint import Endpoint
from ._keywords import EXTRAS, checked_keywords
from ._load_client import client_kind, explain_missing_info, kwargs_for, probe_kwargs
from ._options import EmbeddingsClientOptions
from ._portal import Portal
from ._sync import ChatCompletionsClient
from .aio._embeddings import EmbeddingsClient as _AsyncEmbeddingsClient
from .exceptions import ResourceNotFoundError
from .models import EmbeddingEncodingFormat, EmbeddingInputType, EmbeddingsResult, ModelInfo

__all__ = ["EmbeddingsClient", "load_client"]


class EmbeddingsClient:
    """Sync client for text embeddings: the same constructor, methods and parameters as
    :class:`inference.aio.EmbeddingsClient`, which it runs on a background event loop.

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

    Use it as ``with EmbeddingsClient(...) as client:`` or call :meth:`close`. One client may
    be shared by many threads. Its event loop starts on first use; Ctrl-C during a call
    cancels the request and leaves the client usable.
    """

    @checked_keywords(EXTRAS)
    def __init__(
        self,
        endpoint: str,
        credential: Credential | None = None,
        **options: Unpack[EmbeddingsClientOptions],
    ) -> None:
        # Building the async client needs no event loop: arguments are checked right here.
        self._async = _AsyncEmbeddingsClient(endpoint, credential, **options)
        self._portal = Portal(self._async.close)
        # Safety net: stop the loop when the client is garbage collected or at exit.
        self._finalizer = weakref.finalize(self, self._portal.stop)

    @property
    def endpoint(self) -> Endpoint:
        """The resolved endpoint: kind, URLs, api-version, key headers and token scope."""
        return self._async.endpoint

    def __repr__(self) -> str:
        return repr(self._async).replace("<", "<sync ", 1)

    @checked_keywords(EXTRAS)
    def embed(
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
        return self._portal.call(
            functools.partial(
                self._async.embed,
                input=input,
                dimensions=dimensions,
                encoding_format=encoding_format,
                input_type=input_type,
                model=model,
                model_extras=model_extras,
                headers=headers,
                timeout=timeout,
                retry=retry,
            )
        )

    def _keep_model_info(self, info: ModelInfo) -> None:
        self._async._keep_model_info(info)

    @checked_keywords()
    def get_model_info(
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
        return self._portal.call(
            functools.partial(
                self._async.get_model_info, headers=headers, timeout=timeout, retry=retry
            )
        )

    def close(self) -> None:
        """Close the connection pool (not a session you passed in) and stop the background
        event loop; calls still running in other threads are cancelled. Idempotent."""
        self._finalizer()

    def __enter__(self) -> EmbeddingsClient:
        """Return the client; leaving the block closes it."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the client."""
        self.close()


@checked_keywords()
def load_client(
    endpoint: str, credential: Credential | None = None, **kwargs: Any
) -> ChatCompletionsClient | EmbeddingsClient:
    """The client for the model behind ``endpoint``: a :class:`ChatCompletionsClient` or an
    :class:`EmbeddingsClient`, as the endpoint's ``/info`` says (``model_type``).

    ``kwargs`` go to the client's constructor (``api_version=``, ``timeout=``, ...). Only
    endpoints with ``/info`` (Azure AI model inference, serverless, Azure OpenAI
    deployments) can say; others raise :class:`~inference.exceptions.ResourceNotFoundError`.
    A model of another type raises :class:`~inference.exceptions.RequestValidationError`.
    """
    with EmbeddingsClient(
        endpoint, credential, **probe_kwargs(kwargs, ChatCompletionsClient, EmbeddingsClient)
    ) as probe:
        try:
            info = probe.get_model_info()
        except ResourceNotFoundError as exc:
            explain_missing_info(exc)
            raise
    cls = ChatCompletionsClient if client_kind(info) == "chat" else EmbeddingsClient
    client = cls(endpoint, credential, **kwargs_for(kwargs, cls, info))
    client._keep_model_info(info)  # its get_model_info() answers without asking again
    return client
