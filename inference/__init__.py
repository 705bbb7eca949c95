"""inference: an async-first client for chat-completion endpoints, with a sync API.

Sync (scripts, notebooks)::

    from inference import ChatCompletionsClient
    from inference.models import UserMessage

    with ChatCompletionsClient(endpoint, AzureKeyCredential(key), model="...") as client:
        print(client.complete(messages=[UserMessage("Hi")]).choices[0].message.content)

Async: the clients and streams of :mod:`inference.aio`; configuration (``Timeout``,
``RetryPolicy``) and the exceptions are imported from here for both. Models in
:mod:`inference.models`, errors in :mod:`inference.exceptions` (re-exported here), the local
emulator in :mod:`inference.testing`, the event-stream decoder in :mod:`inference.sse`.
"""

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from ._accumulate import ChatCompletionsAccumulator
    from ._config import RetryPolicy, Timeout
    from ._embeddings_sync import EmbeddingsClient, load_client
    from ._endpoint import Endpoint, EndpointKind
    from ._options import ChatClientOptions, ClientOptions, EmbeddingsClientOptions
    from ._params import CompleteParams, RequestParams, ToolLoopParams
    from ._parse import partial_json
    from ._sync import ChatCompletionsClient, ChatCompletionsStream
    from ._tools import (
        TextDeltaEvent,
        Tool,
        ToolCallEvent,
        ToolResultEvent,
        ToolRunDoneEvent,
        ToolRunEvent,
        ToolRunResult,
        tool,
    )
    from .exceptions import (
        ClientAuthenticationError,
        ConnectTimeoutError,
        ContentFilterError,
        CredentialError,
        ErrorResponse,
        HttpResponseError,
        IdleTimeoutError,
        InferenceError,
        InferenceTimeoutError,
        RateLimitError,
        ReadTimeoutError,
        RefusalError,
        RequestValidationError,
        ResourceNotFoundError,
        ResponseDecodeError,
        ResponseTooLargeError,
        ServiceError,
        ServiceRequestError,
        ServiceResponseError,
        SSEError,
        StreamError,
        StreamInterruptedError,
        StreamServiceError,
        StructuredOutputError,
        ToolCallError,
        ToolRoundsExceededError,
        TotalTimeoutError,
        TruncatedOutputError,
    )

# ``import inference`` loads the version only. Every other public name loads its module on
# first access (the module __getattr__ below): importing the package imports neither aiohttp
# nor azure-core, attrs or cattrs; a client imports what it needs when it is first used.
_LAZY: dict[str, str] = {
    "ChatCompletionsAccumulator": "._accumulate",
    "RetryPolicy": "._config",
    "Timeout": "._config",
    "EmbeddingsClient": "._embeddings_sync",
    "load_client": "._embeddings_sync",
    "Endpoint": "._endpoint",
    "EndpointKind": "._endpoint",
    "ChatClientOptions": "._options",
    "ClientOptions": "._options",
    "EmbeddingsClientOptions": "._options",
    "CompleteParams": "._params",
    "RequestParams": "._params",
    "ToolLoopParams": "._params",
    "partial_json": "._parse",
    "ChatCompletionsClient": "._sync",
    "ChatCompletionsStream": "._sync",
    "TextDeltaEvent": "._tools",
    "Tool": "._tools",
    "ToolCallEvent": "._tools",
    "ToolResultEvent": "._tools",
    "ToolRunDoneEvent": "._tools",
    "ToolRunEvent": "._tools",
    "ToolRunResult": "._tools",
    "tool": "._tools",
    "ClientAuthenticationError": ".exceptions",
    "ConnectTimeoutError": ".exceptions",
    "ContentFilterError": ".exceptions",
    "CredentialError": ".exceptions",
    "ErrorResponse": ".exceptions",
    "HttpResponseError": ".exceptions",
    "IdleTimeoutError": ".exceptions",
    "InferenceError": ".exceptions",
    "InferenceTimeoutError": ".exceptions",
    "RateLimitError": ".exceptions",
    "ReadTimeoutError": ".exceptions",
    "RefusalError": ".exceptions",
    "RequestValidationError": ".exceptions",
    "ResourceNotFoundError": ".exceptions",
    "ResponseDecodeError": ".exceptions",
    "ResponseTooLargeError": ".exceptions",
    "ServiceError": ".exceptions",
    "ServiceRequestError": ".exceptions",
    "ServiceResponseError": ".exceptions",
    "SSEError": ".exceptions",
    "StreamError": ".exceptions",
    "StreamInterruptedError": ".exceptions",
    "StreamServiceError": ".exceptions",
    "StructuredOutputError": ".exceptions",
    "ToolCallError": ".exceptions",
    "ToolRoundsExceededError": ".exceptions",
    "TotalTimeoutError": ".exceptions",
    "TruncatedOutputError": ".exceptions",
}
_SUBMODULES = frozenset({"aio", "batch", "exceptions", "models", "sse", "testing"})


def __getattr__(name: str) -> Any:
    """Import a public name's module on first access and keep the name here."""
    if name in _SUBMODULES:  # ``import inference`` then ``inference.models.UserMessage``
        return importlib.import_module(f".{name}", __name__)
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'inference' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The public names, loaded or not."""
    return sorted({*globals(), *__all__})


__all__ = [
    "ChatClientOptions",
    "ChatCompletionsAccumulator",
    "ChatCompletionsClient",
    "ChatCompletionsStream",
    "ClientAuthenticationError",
    "ClientOptions",
    "CompleteParams",
    "ConnectTimeoutError",
    "ContentFilterError",
    "CredentialError",
    "EmbeddingsClient",
    "EmbeddingsClientOptions",
    "Endpoint",
    "EndpointKind",
    "ErrorResponse",
    "HttpResponseError",
    "IdleTimeoutError",
    "InferenceError",
    "InferenceTimeoutError",
    "RateLimitError",
    "ReadTimeoutError",
    "RefusalError",
    "RequestParams",
    "RequestValidationError",
    "ResourceNotFoundError",
    "ResponseDecodeError",
    "ResponseTooLargeError",
    "RetryPolicy",
    "SSEError",
    "ServiceError",
    "ServiceRequestError",
    "ServiceResponseError",
    "StreamError",
    "StreamInterruptedError",
    "StreamServiceError",
    "StructuredOutputError",
    "TextDeltaEvent",
    "Timeout",
    "Tool",
    "ToolCallError",
    "ToolCallEvent",
    "ToolLoopParams",
    "ToolResultEvent",
    "ToolRoundsExceededError",
    "ToolRunDoneEvent",
    "ToolRunEvent",
    "ToolRunResult",
    "TotalTimeoutError",
    "TruncatedOutputError",
    "__version__",
    "load_client",
    "partial_json",
    "tool",
]
