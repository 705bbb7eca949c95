"""Embeddings on the wire: the request body and the decoding of the answer.

Protocol code: no I/O, no clock. The clients (:mod:`inference.aio._embeddings` and its sync
twin) send what :func:`embeddings_body` builds and read the answer with
:func:`loads_embeddings`, which turns base64 vectors into lists of floats.
"""

from __future__ import annotations

import base64
import binascii
import enum
import math
import sys
from array import array
from collections.abc import Mapping, Sequence
from typing import Any

from . import models as m
from ._params import check_json_numbers
from ._serialization import DecodeFailure, _loads, structure, unstructure
from ._values import INT64_MAX, plain_whole, show
from .exceptions import RequestValidationError

__all__ = [
    "NAMED",
    "check_extras",
    "decode_base64_vector",
    "embeddings_body",
    "loads_embeddings",
    "split_body",
]

#: The body keys ``embed()`` sets from its named parameters (the Azure AI Model Inference
#: API's EmbeddingsOptions): a ``model_extras`` key with one of these names is a mistake.
NAMED = frozenset({"input", "dimensions", "encoding_format", "input_type", "model"})


def check_extras(extras: Mapping[str, Any]) -> None:
    """Refuse ``model_extras`` keys that ``embed()`` names itself, and numbers JSON cannot
    carry."""
    check_json_numbers(extras, "model_extras")
    clash = sorted(k for k in extras if k in NAMED)
    if clash:
        raise RequestValidationError(
            f"model_extras {clash} collide with named parameters of embed(); pass "
            f"{', '.join(f'{k}=...' for k in clash)} as the named parameter instead"
        )


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Sequence) or isinstance(value, bytes | bytearray):
        raise RequestValidationError(
            f"embed() needs input=[...], a list of strings; got {type(value).__name__}"
        )
    texts = list(value)
    if not texts:
        raise RequestValidationError("embed() got an empty input list; pass at least one string")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise RequestValidationError(
                f"input[{i}] is {type(text).__name__}, not str: embed() takes strings"
            )
    return texts


def _dimensions(value: Any) -> int:
    whole = plain_whole(value)  # an int subclass or numpy integer is sent as a plain int
    if whole is None or not 1 <= whole <= INT64_MAX:
        raise RequestValidationError(
            "dimensions must be a positive int up to 2**63 - 1 (the length of each vector), "
            f"got {show(value)}"
        )
    return whole


def _choice(name: str, value: Any, enum_cls: type[enum.StrEnum]) -> str:
    """The wire spelling of ``value``: a member of ``enum_cls``, or its value in any letter
    case (``"BASE64"`` sends ``"base64"``, as azure-ai-inference's case-insensitive enums do;
    services compare these values exactly)."""
    if isinstance(value, enum_cls):
        return value.value
    if isinstance(value, str):
        for member in enum_cls:
            if member.value.casefold() == value.casefold():
                return member.value
    allowed = ", ".join(repr(e.value) for e in enum_cls)
    raise RequestValidationError(
        f"{name} must be one of {allowed}, got {show(value)} (letter case does not matter)"
    )


def split_body(body: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """An embeddings request body (a batch line's) as ``embed()``'s named parameters and the
    rest, its ``model_extras``."""
    named = {k: v for k, v in body.items() if k in NAMED}
    return named, {k: v for k, v in body.items() if k not in NAMED}


def embeddings_body(
    params: Mapping[str, Any], model_extras: Mapping[str, Any]
) -> tuple[dict[str, Any], bool]:
    """The JSON body of an embeddings request, and whether it needs the header
    ``extra-parameters: pass-through`` (it has keys the Azure AI API does not define).

    ``params`` holds the named parameters that are set (``input``, ``dimensions``,
    ``encoding_format``, ``input_type``, ``model``); ``model_extras`` go at the body root.
    """
    body: dict[str, Any] = {"input": _texts(params.get("input"))}
    for name, value in params.items():
        if value is None or name == "input":
            continue
        if name == "dimensions":
            body[name] = _dimensions(value)
        elif name == "encoding_format":
            body[name] = _choice(name, value, m.EmbeddingEncodingFormat)
        elif name == "input_type":
            body[name] = _choice(name, value, m.EmbeddingInputType)
        elif name == "model":
            if not isinstance(value, str):
                raise RequestValidationError(f"model must be a str, got {type(value).__name__}")
            body[name] = value
        else:
            raise RequestValidationError(f"embed() has no parameter {name!r}")
    if model_extras:
        check_extras(model_extras)
        body.update(unstructure(dict(model_extras)))
    return body, bool(model_extras)


def decode_base64_vector(text: str) -> list[float]:
    """The float32 values (little endian) that ``text`` holds in base64, as Python floats."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DecodeFailure(f"an embedding is a string but not base64: {exc}") from exc
    if len(raw) % 4:
        raise DecodeFailure(
            f"a base64 embedding holds {len(raw)} bytes, not a whole number of float32 values"
        )
    values = array("f", raw)
    if sys.byteorder == "big":
        values.byteswap()
    return values.tolist()


def loads_embeddings(data: bytes | str, count: int | None = None) -> m.EmbeddingsResult:
    """Parse an embeddings response body; base64 vectors become lists of floats.

    ``count``: the number of input texts. The answer must then hold one embedding for each,
    indexes 0 to ``count - 1``; they are put in that order (``data[i]`` is the vector of
    ``input[i]``) when the service sent them in another.
    """
    obj = _loads(data, "the response body")
    if not isinstance(obj, dict):
        raise DecodeFailure(f"the response body is JSON but not an object: {type(obj).__name__}")
    # JSON's true and false read as bools, which sum() counts as numbers: looked for value by
    # value only when the body has either word (a search of the bytes, not a Python loop).
    if isinstance(data, bytes):
        maybe_bools = b"true" in data or b"false" in data
    else:
        maybe_bools = "true" in data or "false" in data
    items = obj.get("data")
    if not isinstance(items, list):
        raise DecodeFailure("the response body has no 'data' list of embeddings")
    seen: set[object] = set()
    for position, item in enumerate(items):
        if not isinstance(item, dict):
            raise DecodeFailure(f"data[{position}] is not an embedding object")
        if isinstance(item.get("embedding"), str):
            item["embedding"] = decode_base64_vector(item["embedding"])
        _check_vector(item.get("embedding"), position, maybe_bools)
        index = item.get("index", position)
        if type(index) is not int:
            raise DecodeFailure(f"data[{position}].index is {index!r}, not a whole number")
        if index in seen:
            raise DecodeFailure(f"data[{position}] repeats index {index!r} of an earlier embedding")
        seen.add(index)
    if count is not None:
        _check_count(items, count)
    return structure(obj, m.EmbeddingsResult)


def _check_count(items: list[dict[str, Any]], count: int) -> None:
    """One embedding per input text (indexes already known unique), put in input order."""
    texts = "text" if count == 1 else "texts"
    if len(items) != count:
        raise DecodeFailure(
            f"the answer holds {len(items)} embedding(s) for {count} input {texts} (one per "
            "text was expected), so the vectors cannot be matched to the texts"
        )
    ordered: list[dict[str, Any]] = list(items)
    for position, item in enumerate(items):
        index = item.get("index", position)
        if not 0 <= index < count:
            raise DecodeFailure(
                f"data[{position}].index is {index}, but there are {count} input {texts} "
                f"(indexes 0 to {count - 1})"
            )
        ordered[index] = item
    items[:] = ordered


def _check_vector(vector: object, position: int, maybe_bools: bool = False) -> None:
    """Refuse an embedding that is not a flat list of finite numbers. ``sum`` makes the check
    one pass in C: it fails on anything that is not a number, and its total is finite only
    when every value is (or, rarely, when finite values overflow: those are looked at one by
    one)."""
    if not isinstance(vector, list):
        raise DecodeFailure(f"data[{position}].embedding is not a list of numbers")
    try:
        total = sum(vector)
    except TypeError:
        wrong = next(v for v in vector if not isinstance(v, int | float))
        raise DecodeFailure(
            f"data[{position}].embedding holds {type(wrong).__name__} values, not only numbers"
        ) from None
    if not math.isfinite(total):
        for offset, value in enumerate(vector):
            if not math.isfinite(value):
                raise DecodeFailure(
                    f"data[{position}].embedding[{offset}] is {value!r}, not a finite number"
                )
    if maybe_bools and bool in set(map(type, vector)):
        offset = next(i for i, value in enumerate(vector) if type(value) is bool)
        raise DecodeFailure(
            f"data[{position}].embedding[{offset}] is {str(vector[offset]).lower()}, not a number"
        )
