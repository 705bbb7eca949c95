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

from ._accumulate import ChatCompletionsAccumulator
from ._config import RetryPolicy, Timeout
from ._embeddings_sync import EmbeddingsClient, load_client
from ._endpoint import Endpoint, EndpointKind
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
from ._version import __version__
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

__all__ = [
    "ChatCompletionsAccumulator",
    "ChatCompletionsClient",
    "ChatCompletionsStream",
    "ClientAuthenticationError",
    "CompleteParams",
    "ConnectTimeoutError",
    "ContentFilterError",
    "CredentialError",
    "EmbeddingsClient",
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
