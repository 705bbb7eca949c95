"""The embeddings models: the request enumerations and the response.

Public under :mod:`inference.models`; they behave like the other models (item access in wire
names, unknown response fields kept in ``extra``; see ``_model_base``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attrs import define, field

from ._model_base import NO_EXTRA, _Extensible, _StrEnum, wire_names

__all__ = [
    "EmbeddingEncodingFormat",
    "EmbeddingInputType",
    "EmbeddingItem",
    "EmbeddingsResult",
    "EmbeddingsUsage",
]


class EmbeddingEncodingFormat(_StrEnum):
    """The number format asked of an embeddings model. ``BASE64`` (float32 values, little
    endian, base64-encoded: a smaller response) is decoded by the client, so
    :attr:`EmbeddingItem.embedding` is a list of numbers whatever the format."""

    BASE64 = "base64"
    BINARY = "binary"
    FLOAT = "float"
    INT8 = "int8"
    UBINARY = "ubinary"
    UINT8 = "uint8"


class EmbeddingInputType(_StrEnum):
    """What the embedded texts are, for models that embed queries and documents differently."""

    TEXT = "text"
    QUERY = "query"
    DOCUMENT = "document"


@wire_names
@define
class EmbeddingItem(_Extensible):
    """One embedding: the vector of the input at ``index``.

    ``embedding`` is a list of numbers: floats, or whole numbers for the ``int8``, ``uint8``,
    ``binary`` and ``ubinary`` formats. A base64 answer (``encoding_format="base64"``) has
    already been decoded from its float32 little-endian bytes.
    """

    embedding: list[float] = field(factory=list)
    index: int = 0
    object: str = "embedding"
    extra: Mapping[str, Any] = field(default=NO_EXTRA, kw_only=True, repr=False)


@wire_names
@define
class EmbeddingsUsage(_Extensible):
    """Token counts of an embeddings request."""

    prompt_tokens: int = 0
    total_tokens: int = 0
    extra: Mapping[str, Any] = field(default=NO_EXTRA, kw_only=True, repr=False)


@wire_names
@define
class EmbeddingsResult(_Extensible):
    """An embeddings response: ``data[i].embedding`` is the vector of input ``i``."""

    id: str = ""
    data: list[EmbeddingItem] = field(factory=list)
    usage: EmbeddingsUsage | None = None
    model: str = ""
    object: str = "list"
    extra: Mapping[str, Any] = field(default=NO_EXTRA, kw_only=True, repr=False)
