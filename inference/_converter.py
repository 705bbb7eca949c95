"""The one cattrs converter and its generic rules, independent of any model class.

Built once at import, in a fixed order (primitive hooks, hook factories), never per request.
Every rule here is chosen by the shape of a class, not by its name, so the model modules can
use the converter (``as_dict()``) without it importing them: the import graph has no cycle
(``models`` -> ``_converter``; ``_serialization`` -> ``models``, ``_converter``).

Rules on the wire: field names as in the API spec, no ``null`` values (unset fields are
omitted), enums as their values, datetimes as Unix seconds. A class with an ``extra`` field
keeps the unknown keys of what it is built from there, and writes them back when unstructured.
Protocol code: no I/O, no clocks.
"""

from __future__ import annotations

import enum
import json
import types
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar, Union, get_args, get_origin

import attrs
from cattrs import Converter
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

T = TypeVar("T")

__all__ = [
    "DecodeFailure",
    "converter",
    "keep_unread_dates",
    "structure",
    "to_json",
    "unstructure",
]


class DecodeFailure(ValueError):
    """A response body or event could not be turned into a model (bad JSON or wrong shape)."""


converter = Converter(detailed_validation=False)

# -- primitives: the wire already has the right types; pass them through without copies.


def _identity(value: Any, _type: Any) -> Any:
    return value


for _t in (str, int, float, bool):
    converter.register_structure_hook(_t, _identity)
converter.register_structure_hook(Any, _identity)


def _int_or_none(value: Any, _type: Any) -> int | None:
    if value is None or type(value) is int:
        return value
    raise DecodeFailure(f"expected a whole number, got {value!r}")


converter.register_structure_hook(int | None, _int_or_none)

# The last conversion, as one tuple (replaced in one assignment: safe across threads).
_created_cache: tuple[Any, datetime | None] = (None, None)


def structure_created(value: Any, _type: Any = None) -> datetime | None:
    """A response's ``created`` (Unix seconds or milliseconds, or ISO text) as a datetime;
    None when it cannot be read (the answer matters more than its date). The model builders
    then keep the value as sent in ``extra`` (see :func:`keep_unread_dates`)."""
    # Stream chunks repeat the same ``created``: keep the last conversion.
    global _created_cache
    if value is None:
        return None
    last, converted = _created_cache
    if value == last and type(value) is type(last):
        return converted
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            seconds = value / 1000 if value > 100_000_000_000 else value  # milliseconds?
            result: datetime | None = datetime.fromtimestamp(seconds, UTC)
        elif isinstance(value, str):
            result = datetime.fromisoformat(value)
        else:
            result = None
    except (OverflowError, OSError, ValueError):
        result = None
    _created_cache = (value, result)
    return result


converter.register_structure_hook(datetime | None, structure_created)


def keep_unread_dates(result: Any, obj: Mapping[str, Any], names: Iterable[str]) -> None:
    """Put the values of ``obj`` for the date fields ``names`` that could not be read as dates
    (out of datetime's range, not a number nor ISO text) into ``result.extra``, as sent: the
    field stays None and ``as_dict()`` / ``to_json()`` write the value back, so nothing the
    service sent is lost."""
    kept: dict[str, Any] | None = None
    for name in names:
        raw = obj.get(name)
        if raw is not None and getattr(result, name) is None:
            if kept is None:
                kept = dict(result.extra)
            kept[name] = raw
    if kept is not None:
        result.extra = kept


converter.register_unstructure_hook(datetime, lambda d: int(d.timestamp()))
converter.register_unstructure_hook(enum.Enum, lambda e: e.value)

# -- ``SomeEnum | str`` (and ``| None``): known values become members, unknown ones stay text.


def _enum_of(t: Any) -> type[enum.Enum] | None:
    if get_origin(t) not in (Union, types.UnionType):
        return None
    enums = [a for a in get_args(t) if isinstance(a, type) and issubclass(a, enum.Enum)]
    return enums[0] if len(enums) == 1 and str in get_args(t) else None


def _enum_or_str_factory(t: Any) -> Callable[[Any, Any], Any]:
    enum_cls = _enum_of(t)
    assert enum_cls is not None
    table: dict[Any, Any] = {e.value: e for e in enum_cls}

    def hook(value: Any, _type: Any) -> Any:
        if value is None:
            return None
        return table.get(value, value)

    return hook


converter.register_structure_hook_factory(lambda t: _enum_of(t) is not None, _enum_or_str_factory)

# -- response models (attrs classes with an ``extra`` field): unknown keys kept in ``extra``.


# Attributes that are not wire fields: never read from, nor written to, the wire.
_LOCAL = frozenset({"extra", "parsed"})
_DATE = datetime | None


def _has_extra(t: Any) -> bool:
    return isinstance(t, type) and attrs.has(t) and "extra" in attrs.fields_dict(t)


def _extensible_structure_factory(cls: type[Any]) -> Callable[[Any, Any], Any]:
    omitted: dict[str, Any] = {
        a.name: override(omit=True) for a in attrs.fields(cls) if a.name in _LOCAL
    }
    base = make_dict_structure_fn(cls, converter, **omitted)
    known: frozenset[str] = frozenset(a.name for a in attrs.fields(cls) if a.name not in _LOCAL)
    dates = tuple(a.name for a in attrs.fields(attrs.resolve_types(cls)) if a.type == _DATE)

    def hook(obj: Any, _type: Any) -> Any:
        if obj is None:
            return cls()
        result = base(obj, cls)
        if not obj.keys() <= known:
            result.extra = {k: v for k, v in obj.items() if k not in known}
        if dates:
            keep_unread_dates(result, obj, dates)
        return result

    return hook


converter.register_structure_hook_factory(_has_extra, _extensible_structure_factory)

# -- unstructuring: omit None, merge ``extra``, drop the ``image`` alias (not a wire field).


def _unstructure_factory(cls: type[Any]) -> Callable[[Any], dict[str, Any]]:
    overrides: dict[str, Any] = {}
    for a in attrs.fields(cls):
        if a.name in _LOCAL or a.name == "image":
            overrides[a.name] = override(omit=True)
    base = make_dict_unstructure_fn(cls, converter, _cattrs_include_init_false=True, **overrides)
    has_extra = _has_extra(cls)

    def hook(obj: Any) -> dict[str, Any]:
        raw = base(obj)
        result = {k: v for k, v in raw.items() if v is not None}
        if has_extra and obj.extra:
            for k, v in obj.extra.items():
                if v is not None:  # no nulls on the wire, as for known fields
                    result.setdefault(k, v)
        return result

    return hook


converter.register_unstructure_hook_factory(attrs.has, _unstructure_factory)


def brief(exc: BaseException) -> str:
    """An exception's text, cut to 200 characters (for error messages)."""
    text = str(exc) or type(exc).__name__
    return text if len(text) < 200 else text[:200] + "..."


def structure(data: Any, cls: type[T]) -> T:
    """Build model ``cls`` from parsed JSON; raises :class:`DecodeFailure` on a shape mismatch."""
    try:
        return converter.structure(data, cls)
    except DecodeFailure:
        raise
    except Exception as exc:  # cattrs, KeyError, TypeError, ValueError from a hook
        raise DecodeFailure(f"unexpected {cls.__name__} shape: {brief(exc)}") from exc


def unstructure(obj: Any) -> Any:
    """Wire data (dicts, lists, scalars) for a model or a structure holding models."""
    return converter.unstructure(obj)


def to_json(obj: Any, indent: int | None = 2) -> str:
    """A model (or data holding models) as JSON text, in wire names; ``indent=None`` for one
    line. Non-ASCII characters are written as they are."""
    return json.dumps(unstructure(obj), indent=indent, ensure_ascii=False)
