"""What a request's JSON can carry, and the caller's values shown in error messages.

:func:`check_json_value` walks a caller's dicts, lists and tuples (without recursion) and
refuses what the JSON body cannot carry: a NaN or infinite float (the encoder would write
``null``), a whole number beyond 64 bits, a list or dict that holds itself, and nesting deeper
than the encoder takes (:data:`MAX_DEPTH`). :func:`show` and :func:`show_int` print a value for
a message without failing on the ones ``repr`` cannot print (a whole number of more than 4300
digits, a list nested 100,000 deep). Protocol code: no I/O, no clock.
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Iterator, Mapping
from typing import Any

from .exceptions import RequestValidationError

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "MAX_DEPTH",
    "UINT64_MAX",
    "check_json_value",
    "foreign_body_value",
    "plain_real",
    "plain_whole",
    "show",
    "show_int",
    "text_problem",
]

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
#: The JSON encoder (orjson) writes whole numbers from INT64_MIN to UINT64_MAX.
UINT64_MAX = 2**64 - 1
#: The most lists and dicts the JSON encoder (orjson) writes one inside another, the body's
#: own dict included: one more raises "Recursion limit reached".
MAX_DEPTH = 254

_FULL_DIGITS = 40  # whole numbers longer than this are described, not printed


def _digits(value: int) -> int:
    """How many decimal digits ``abs(value)`` has, without converting it to text."""
    magnitude = abs(value)
    if magnitude < 10**_FULL_DIGITS:
        return len(str(magnitude))
    count = int(magnitude.bit_length() * math.log10(2)) + 1  # exact or one too many
    return count if magnitude >= 10 ** (count - 1) else count - 1


def show_int(value: int) -> str:
    """A whole number as text: in full up to 40 digits, else as "a whole number of N
    digits" (Python refuses to print one of more than 4300 digits, and nobody reads one)."""
    digits = _digits(value)
    if digits <= _FULL_DIGITS:
        return str(int(value))
    sign = "a negative" if value < 0 else "a"
    return f"{sign} whole number of {digits} digits"


def show(value: Any) -> str:
    """``repr(value)`` cut to 60 characters, for error messages; never fails (a huge whole
    number is described by its length, an unprintable value by its type)."""
    if isinstance(value, int) and not isinstance(value, bool) and _digits(value) > _FULL_DIGITS:
        return show_int(value)
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # a huge int inside, or nesting too deep to print
        return f"<a {type(value).__name__} too large to print>"
    return text if len(text) <= 60 else text[:57] + "..."


def plain_whole(value: Any) -> int | None:
    """``value`` as a plain ``int`` when it is a whole number: an ``int``, a subclass of it
    (an ``IntEnum`` member) or any other integer type (one with ``__index__``, as numpy's
    are); None for anything else, ``True`` and ``False`` included."""
    if type(value) is int:
        return value
    if isinstance(value, bool):
        return None
    try:
        return int(operator.index(value))
    except TypeError:
        return None


def plain_real(value: Any) -> float | None:
    """``value`` as a plain ``float`` or ``int`` when it is a real number: a ``float`` or an
    ``int``, a subclass of either (``numpy.float64``, an ``IntEnum`` member), an integer type
    (``__index__``) or a registered :class:`numbers.Real` (``numpy.float32``); None for
    anything else, ``True`` and ``False`` included. Whole numbers stay whole."""
    cls = type(value)
    if cls is float or cls is int:
        return value  # type: ignore[no-any-return]
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        return float(value)
    whole = plain_whole(value)
    if whole is not None:
        return whole
    if isinstance(value, numbers.Real):
        try:
            return float(value)
        except (OverflowError, ValueError):
            return math.inf if value > 0 else -math.inf  # type: ignore[operator]  # too large
    return None


def json_number_problem(value: float) -> str | None:
    """What makes a float or int unfit for the JSON body (the end of a sentence naming its
    place, with how to fix it), or None when it is fit."""
    if isinstance(value, float):
        if math.isfinite(value):
            return None
        return (
            f"is {value!r}, which JSON cannot carry (it would be sent as null); pass a finite "
            "number, or None to send null"
        )
    if INT64_MIN <= value <= UINT64_MAX:
        return None
    return (
        f"is {show_int(value)}, beyond the 64-bit whole numbers JSON is sent with "
        f"({INT64_MIN} to {UINT64_MAX})"
    )


def _place(path: str, keys: list[Any]) -> str:
    """``path`` followed by ``keys`` as subscripts; a long chain is shortened."""
    parts = [f"[{key!r}]" for key in keys[:8]]
    if len(keys) > 8:
        parts.append(f"... ({len(keys)} levels below {path})")
    return path + "".join(parts)


def _items(container: Any) -> Iterator[tuple[Any, Any]]:
    if isinstance(container, Mapping):
        return iter(container.items())
    return enumerate(container)


def _too_deep(path: str, keys: list[Any], on_path: list[Any], depth: int) -> str:
    """The message for a container past MAX_DEPTH: a cycle when one of the containers on
    the way is an earlier one, else plain depth."""
    seen: dict[int, int] = {}
    for level, container in enumerate(on_path):
        first = seen.setdefault(id(container), level)
        if first != level:
            outer = _place(path, keys[:first])
            return (
                f"{outer} holds itself ({_place(path, keys[:level])} is {outer}): a cycle, "
                "which JSON cannot write; pass a copy without the loop"
            )
    return (
        f"{_place(path, keys)} is nested deeper than the JSON encoder writes: it takes at most "
        f"{MAX_DEPTH} levels of lists and dicts, the request body's own dict included "
        f"({path} is at level {depth}); flatten it, or send it as a JSON string"
    )


_NUMBERS = (float, int)
_CONTAINERS = (Mapping, list, tuple)


def check_json_value(value: Any, path: str, depth: int = 1) -> None:
    """Refuse what the JSON body cannot carry anywhere in ``value`` (dicts, lists and tuples
    are walked, iteratively): a NaN or infinite float, a whole number outside -2**63 to
    2**64 - 1, a list or dict holding itself, nesting past :data:`MAX_DEPTH`.

    ``path`` names ``value`` in the message; ``depth`` is its level in the body (the body
    dict is level 1, so ``model_extras`` and ``extra_body``, merged at its root, are too).
    Raises :class:`~inference.exceptions.RequestValidationError`.
    """
    if not isinstance(value, _CONTAINERS):
        if isinstance(value, _NUMBERS) and not isinstance(value, bool):
            problem = json_number_problem(value)
            if problem:
                raise RequestValidationError(f"{path} {problem}")
        return
    on_path: list[Any] = [value]
    keys: list[Any] = []
    iterators = [_items(value)]
    while iterators:
        for key, item in iterators[-1]:
            cls = type(item)
            if cls is str or cls is bool or item is None:
                continue
            if isinstance(item, _NUMBERS):
                problem = json_number_problem(item)
                if problem:
                    raise RequestValidationError(f"{_place(path, [*keys, key])} {problem}")
            elif cls is dict or cls is list or isinstance(item, _CONTAINERS):
                keys.append(key)
                on_path.append(item)
                if depth + len(keys) > MAX_DEPTH:
                    raise RequestValidationError(_too_deep(path, keys, on_path, depth))
                iterators.append(_items(item))
                break
        else:
            iterators.pop()
            on_path.pop()
            if keys:
                keys.pop()


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _first_unwritable(value: Any, *, text: bool) -> tuple[list[Any], Any, bool] | None:
    """The first thing in ``value`` that JSON cannot carry, depth first, a dict's key before
    its value: with ``text`` a str (key or value) that UTF-8 cannot encode, else a value that
    is not JSON data (str, a number, bool, None, and dicts with str keys, lists and tuples of
    them) or a key that is not a str. Returns the keys that lead to it (for a key, to its
    dict), it, and whether it is a dict's key; None when there is none. Iterative: only
    called once encoding has failed, on values of any depth."""
    stack: list[tuple[list[Any], Any, bool]] = [([], value, False)]
    while stack:
        keys, item, is_key = stack.pop()
        if isinstance(item, str):
            if text and not _encodes(item):
                return keys, item, is_key
        elif is_key:
            if not text:
                return keys, item, True
        elif isinstance(item, Mapping | list | tuple):
            mapping = isinstance(item, Mapping)
            for key, inner in reversed(list(_items(item))):
                stack.append(([*keys, key], inner, False))
                if mapping:
                    stack.append((keys, key, True))
        elif not text and not (
            item is None or isinstance(item, bool) or plain_real(item) is not None
        ):
            return keys, item, False
    return None


def text_problem(value: Any, path: str) -> str | None:
    """Where ``value`` (wire data: dicts, lists, strings) holds text that UTF-8 cannot encode
    (a lone surrogate, as ``bytes.decode(errors="surrogateescape")`` leaves for bytes that
    were not UTF-8), and what to do; None if nowhere."""
    found = _first_unwritable(value, text=True)
    if found is None:
        return None
    keys, item, is_key = found
    start = next(i for i, char in enumerate(item) if not _encodes(char))
    where = f"the key {item!r} in {_place(path, keys)}" if is_key else _place(path, keys)
    return (
        f"{where} holds text that is not valid Unicode: the lone surrogate "
        f"{item[start]!r} at character {start} (left by decoding bytes "
        "that were not UTF-8 with errors='surrogateescape'); decode the bytes "
        "with their real encoding, or with errors='replace'"
    )


def foreign_body_value(body: dict[str, Any]) -> str | None:
    """What a JSON body given to ``complete(body)`` holds that is not JSON, named by its place
    and with what to do: the keyword call for what keywords take (a class, a model, a
    function), its JSON form for anything else; None when it holds nothing of the kind."""
    found = _first_unwritable(body, text=False)
    if found is None:
        return None
    keys, value, is_key = found
    place = _place("body", keys)
    kind = type(value).__name__
    if is_key:
        return (
            f"{place} has the key {show(value)}, of type {kind}: JSON object keys are text; "
            "make it a str"
        )
    given = "a JSON body is sent as given, so it holds only JSON values"
    keywords = "complete(messages=[...], ...) takes this library's models and classes"
    if isinstance(value, type):
        named = f", {keys[0]}={value.__name__}" if len(keys) == 1 else ""
        return (
            f"{place} is the class {value.__qualname__}: {given}; pass the request as "
            f"keywords instead{named} ({keywords})"
        )
    if hasattr(value, "as_dict") or callable(value):
        form = ", or its JSON form (.as_dict())" if hasattr(value, "as_dict") else ""
        return (
            f"{place} is a {kind}: {given}; pass the request as keywords instead ({keywords}){form}"
        )
    return (
        f"{place} is a value of type {kind}, which JSON cannot carry: {given} (str, numbers, "
        "True/False/None, lists, and dicts with str keys); convert it to one"
    )
