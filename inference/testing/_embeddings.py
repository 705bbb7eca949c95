"""The emulator's embeddings model: deterministic vectors derived from the input text.

Each text's vector comes from SHA-256 of the text (blocks of a counter and the text), read
as 16-bit numbers scaled to [-1, 1] and normalized to length 1. A shorter ``dimensions``
takes the first values of the same sequence and normalizes them again, as models trained
for shortened vectors do. The same text gives the same vector in every run and on every
platform; ``input_type`` does not change it. Values are float32 numbers, so a ``float`` and
a ``base64`` answer hold exactly the same vector.
"""

from __future__ import annotations

import base64
import hashlib
import math
import sys
from array import array
from typing import Any, Final

from ._model import InvalidRequest, tokenize

__all__ = [
    "DEFAULT_DIMENSIONS",
    "KNOWN_EMBEDDINGS_PARAMETERS",
    "embeddings_response",
    "validate_embeddings_request",
    "vector",
]

#: The vector length when a request sets no ``dimensions``.
DEFAULT_DIMENSIONS: Final = 64
#: The longest vector the emulator makes.
MAX_DIMENSIONS: Final = 4096
#: The body keys of the Azure AI Model Inference API's embeddings request.
KNOWN_EMBEDDINGS_PARAMETERS: Final = frozenset(
    {"input", "dimensions", "encoding_format", "input_type", "model"}
)
_FORMATS: Final = ("float", "base64", "int8", "uint8", "binary", "ubinary")
_INPUT_TYPES: Final = ("text", "query", "document")


def vector(text: str, dimensions: int = DEFAULT_DIMENSIONS) -> list[float]:
    """The unit-length float32 vector of ``text`` with ``dimensions`` values."""
    data = text.encode("utf-8")
    values: list[float] = []
    block = 0
    while len(values) < dimensions:
        digest = hashlib.sha256(block.to_bytes(4, "big") + data).digest()
        values.extend(
            int.from_bytes(digest[i : i + 2], "big") / 32767.5 - 1.0 for i in range(0, 32, 2)
        )
        block += 1
    del values[dimensions:]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return array("f", (v / norm for v in values)).tolist()


def _encoded(values: list[float], encoding_format: str) -> Any:
    if encoding_format == "float":
        return values
    if encoding_format == "base64":
        packed = array("f", values)
        if sys.byteorder == "big":
            packed.byteswap()
        return base64.b64encode(packed.tobytes()).decode("ascii")
    if encoding_format == "int8":
        return [max(-128, min(127, round(v * 127))) for v in values]
    if encoding_format == "uint8":
        return [max(0, min(255, round((v + 1.0) * 127.5))) for v in values]
    # binary / ubinary: one bit per value (1 for a positive value), eight to a byte.
    bits = [1 if v > 0 else 0 for v in values] + [0] * (-len(values) % 8)
    octets = [int("".join(map(str, bits[i : i + 8])), 2) for i in range(0, len(bits), 8)]
    if encoding_format == "binary":
        return [o - 256 if o > 127 else o for o in octets]
    return octets


def validate_embeddings_request(body: Any) -> dict[str, Any]:
    """Check an embeddings body; return it typed as a dict or raise :class:`InvalidRequest`."""
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_json")
    texts = body.get("input")
    if texts is None:
        raise InvalidRequest(
            "'input' is a required property.", param="input", code="missing_required_parameter"
        )
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, list) or not texts:
        raise InvalidRequest("'input' must be a string or a non-empty array.", param="input")
    for index, text in enumerate(texts):
        if not isinstance(text, str) or not text:
            raise InvalidRequest(f"'input[{index}]' must be a non-empty string.", param="input")
    dimensions = body.get("dimensions")
    if dimensions is not None and (
        isinstance(dimensions, bool)
        or not isinstance(dimensions, int)
        or not 1 <= dimensions <= MAX_DIMENSIONS
    ):
        raise InvalidRequest(
            f"'dimensions' must be an integer from 1 to {MAX_DIMENSIONS}, got {dimensions!r}.",
            param="dimensions",
        )
    for name, allowed in (("encoding_format", _FORMATS), ("input_type", _INPUT_TYPES)):
        value = body.get(name)
        if value is not None and value not in allowed:
            raise InvalidRequest(
                f"'{name}' must be one of {', '.join(allowed)}; got {value!r}.", param=name
            )
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise InvalidRequest("'model' must be a string.", param="model")
    return body


def embeddings_response(body: dict[str, Any], model: str) -> dict[str, Any]:
    """The response body for a validated request: one vector per input, and the usage."""
    texts = body["input"]
    if isinstance(texts, str):
        texts = [texts]
    dimensions = body.get("dimensions") or DEFAULT_DIMENSIONS
    encoding_format = body.get("encoding_format") or "float"
    tokens = sum(max(len(tokenize(text)), 1) for text in texts)
    return {
        "object": "list",
        "model": model,
        "data": [
            {
                "object": "embedding",
                "index": index,
                "embedding": _encoded(vector(text, dimensions), encoding_format),
            }
            for index, text in enumerate(texts)
        ],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
