"""``load_client``: the client that fits the model behind an endpoint, from its ``/info``.

This module decides (no I/O); :func:`inference.load_client` and
:func:`inference.aio.load_client` ask ``/info`` and build the client.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, Literal

from ._keywords import closest
from ._options import option_names, unpacked_options
from .exceptions import RequestValidationError, ResourceNotFoundError
from .models import ModelInfo

__all__ = ["client_kind", "explain_missing_info", "kwargs_for", "probe_kwargs"]

# The model types services report, normalized (lower case, "-" and " " as "_").
_CHAT = frozenset(
    {
        "chat",
        "chat_completion",
        "chat_completions",
        "completion",
        "completions",
        "text_generation",
    }
)
_EMBEDDINGS = frozenset({"embeddings", "embedding", "text_embedding", "text_embeddings"})


def client_kind(info: ModelInfo) -> Literal["chat", "embeddings"]:
    """Which client serves the model ``info`` describes; a clear error for other kinds."""
    raw = str(info.model_type or "")
    normalized = raw.strip().lower().replace("-", "_").replace(" ", "_")
    if normalized in _CHAT:
        return "chat"
    if normalized in _EMBEDDINGS:
        return "embeddings"
    if not normalized:
        raise RequestValidationError(
            "the endpoint's /info names no model_type, so load_client() cannot choose a "
            "client; construct ChatCompletionsClient or EmbeddingsClient directly"
        )
    raise RequestValidationError(
        f"the endpoint serves a model of type {raw!r} (model {info.model_name!r}); this "
        "library has clients for chat completions and text embeddings only"
    )


def _parameters(cls: type) -> frozenset[str]:
    """The keywords the constructor of ``cls`` takes: its named parameters and the keys of
    its ``**options: Unpack[...]`` (a TypedDict of :mod:`inference._options`)."""
    names = {
        param.name
        for param in inspect.signature(cls).parameters.values()
        if param.kind is not param.VAR_KEYWORD
    }
    declared = unpacked_options(cls.__init__)  # type: ignore[misc]
    if declared is not None:
        names |= option_names(declared)
    return frozenset(names - {"endpoint", "credential"})


# Request defaults, not connection settings: the probe that reads /info goes without them.
_REQUEST_DEFAULTS = frozenset({"model", "model_extras"})


def probe_kwargs(kwargs: Mapping[str, Any], chat: type, embeddings: type) -> dict[str, Any]:
    """The ``kwargs`` for the client that reads ``/info``: the connection settings both
    clients take. A keyword neither client takes is refused before any request."""
    chat_names, embeddings_names = _parameters(chat), _parameters(embeddings)
    unknown = sorted(set(kwargs) - chat_names - embeddings_names)
    if unknown:
        candidates = chat_names | embeddings_names | {"endpoint", "credential"}
        meant = [m for m in (closest(k, candidates) for k in unknown) if m is not None]
        hint = f"; did you mean {', '.join(f'{m}=' for m in meant)}?" if meant else ""
        raise RequestValidationError(
            f"load_client() got {', '.join(f'{k}=' for k in unknown)}, which neither "
            f"ChatCompletionsClient nor EmbeddingsClient takes{hint}"
        )
    shared = (chat_names & embeddings_names) - _REQUEST_DEFAULTS
    return {k: v for k, v in kwargs.items() if k in shared}


def kwargs_for(kwargs: Mapping[str, Any], cls: type, info: ModelInfo) -> dict[str, Any]:
    """``kwargs`` checked against the constructor of ``cls``, the client ``info`` asks for."""
    wrong = sorted(set(kwargs) - _parameters(cls))
    if wrong:
        raise RequestValidationError(
            f"the endpoint serves a model of type {str(info.model_type)!r}, so load_client() "
            f"makes a {cls.__name__}, which does not take "
            f"{', '.join(f'{k}=' for k in wrong)}; leave them out"
        )
    return dict(kwargs)


def explain_missing_info(error: ResourceNotFoundError) -> None:
    """Add what to do instead to the error of an endpoint without ``/info``."""
    error.add_note(
        "load_client() needs the endpoint's /info route (Azure AI model inference endpoints); "
        "for this endpoint construct ChatCompletionsClient or EmbeddingsClient directly"
    )
