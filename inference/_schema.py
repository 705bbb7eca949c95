"""JSON schemas derived from Python types: classes for structured output, functions for tools.

A class given as ``response_format`` (an attrs class, a dataclass, a TypedDict or a pydantic
model) becomes a strict schema: every object has ``additionalProperties: false`` and lists
all its fields as required, ``X | None`` is a union with ``null``, enums and ``Literal`` are
``enum`` lists, nested classes are ``$defs`` entries referenced by ``$ref`` (recursive
classes included). A function given as a tool becomes a function definition: its name, the
first part of its docstring as description, and a parameter schema from its type hints
(parameters with defaults are optional) with descriptions from the docstring's parameter
section (Google, NumPy or reST style).

Protocol code: no I/O. Types the strict subset of JSON Schema cannot describe (``Any``,
``dict``, fixed-length tuples, ...) raise :class:`~inference.exceptions.RequestValidationError`
naming the field and what to use instead; so does a TypedDict key that may be left out
(``NotRequired``, ``total=False``), which a strict schema cannot express.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import functools
import inspect
import re
import sys
import types
import typing
import unicodedata
import uuid
from collections import abc
from collections.abc import Callable
from typing import Any

import attrs

from ._values import show
from .exceptions import RequestValidationError
from .models import JsonSchemaFormat

__all__ = [
    "class_kind",
    "function_definition",
    "json_schema_format",
    "object_schema",
    "parameter_hints",
]

_PRIMITIVES: dict[Any, dict[str, Any]] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    type(None): {"type": "null"},
    datetime.datetime: {"type": "string", "format": "date-time"},
    datetime.date: {"type": "string", "format": "date"},
    uuid.UUID: {"type": "string", "format": "uuid"},
}
_SEQUENCES: frozenset[Any] = frozenset(
    {list, set, frozenset, abc.Sequence, abc.MutableSequence, abc.Set, abc.MutableSet}
)
_JSON_TYPES = {str: "string", bool: "boolean", int: "integer", float: "number"}


def _pydantic_model(tp: Any) -> bool:
    """True for a pydantic model class (pydantic imported only if the caller already did)."""
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and isinstance(tp, type) and issubclass(tp, pydantic.BaseModel)


def class_kind(tp: Any) -> str | None:
    """``attrs``, ``dataclass``, ``typeddict``, ``pydantic`` or None for other types."""
    if not isinstance(tp, type):
        return None
    if attrs.has(tp):
        return "attrs"
    if dataclasses.is_dataclass(tp):
        return "dataclass"
    if typing.is_typeddict(tp):
        return "typeddict"
    if _pydantic_model(tp):
        return "pydantic"
    return None


@attrs.define
class _Field:
    name: str
    tp: Any
    description: str | None = None


def _own_doc(cls: type) -> str | None:
    """The class's own docstring (not inherited, not the one dataclasses write)."""
    doc = cls.__dict__.get("__doc__")
    if not isinstance(doc, str) or not doc.strip():
        return None
    if dataclasses.is_dataclass(cls) and doc.startswith(f"{cls.__name__}("):
        return None
    return inspect.cleandoc(doc)


def _hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls, include_extras=True)
    except Exception as exc:  # NameError for a forward reference that cannot be resolved
        raise RequestValidationError(
            f"cannot read the type hints of {cls.__qualname__}: {exc}; define the types it "
            "names at module level (or import them) before using the class"
        ) from exc


def _fields(cls: type, kind: str) -> list[_Field]:
    """The fields a JSON object of ``cls`` has, in declaration order."""
    if kind == "pydantic":
        return [
            _Field(f.alias or name, f.annotation, f.description)
            for name, f in cls.model_fields.items()  # type: ignore[attr-defined]
        ]
    hints = _hints(cls)
    if kind == "attrs":
        return [
            _Field(a.name, hints.get(a.name, a.type), a.metadata.get("description"))
            for a in attrs.fields(cls)
            if a.init
        ]
    if kind == "dataclass":
        return [
            _Field(f.name, hints[f.name], f.metadata.get("description"))
            for f in dataclasses.fields(cls)
            if f.init
        ]
    optional: frozenset[str] = getattr(cls, "__optional_keys__", frozenset())
    fields: list[_Field] = []
    for name, tp in hints.items():
        marker, base = _key_marker(tp)
        if marker is typing.NotRequired or (name in optional and marker is not typing.Required):
            raise _optional_key(cls, name, marker is typing.NotRequired)
        fields.append(_Field(name, base))
    return fields


def _key_marker(tp: Any) -> tuple[Any, Any]:
    """A TypedDict key's ``Required``/``NotRequired`` marker (None without one) and its type
    without it, inside ``Annotated`` too. (With ``from __future__ import annotations``
    Python 3.11 leaves such a key out of ``__optional_keys__``: the hint is what tells.)"""
    markers = (typing.Required, typing.NotRequired)
    if typing.get_origin(tp) in markers:
        return typing.get_origin(tp), typing.get_args(tp)[0]
    if typing.get_origin(tp) is typing.Annotated:
        base, *meta = typing.get_args(tp)
        if typing.get_origin(base) in markers:
            return typing.get_origin(base), typing.Annotated[(typing.get_args(base)[0], *meta)]
    return None, tp


def _optional_key(cls: type, name: str, marked: bool) -> RequestValidationError:
    """The error for a TypedDict key that may be left out: a strict schema cannot say so."""
    if marked:
        why, fix = "is NotRequired[...]", "drop NotRequired"
    else:
        why = "may be left out (it is declared in a TypedDict with total=False)"
        fix = "drop total=False or write Required[...]"
    return RequestValidationError(
        f"{cls.__qualname__}.{name} {why}, but a strict JSON schema (what services take for "
        "structured output and tool arguments) lists every key as required: the model always "
        f"sends it. Make the key required ({fix}), with a type such as `{name}: str | None` if the "
        "model may have no value for it (it then sends null)"
    )


def _strip_annotated(tp: Any) -> tuple[Any, str | None]:
    """``Annotated[X, "text", ...]`` -> ``(X, "text")``; other types unchanged."""
    if typing.get_origin(tp) is typing.Annotated:
        base, *meta = typing.get_args(tp)
        text = next((m for m in meta if isinstance(m, str)), None)
        return base, text
    return tp, None


def _described(schema: dict[str, Any], text: str | None) -> dict[str, Any]:
    """``schema`` with a description; a reference is wrapped in a one-item ``anyOf`` first
    (strict mode allows no keyword beside ``$ref``)."""
    if not text:
        return schema
    if "$ref" in schema:
        return {"anyOf": [schema], "description": text}
    return {**schema, "description": text}


def _literal_schema(values: tuple[Any, ...], where: str) -> dict[str, Any]:
    kinds = {_JSON_TYPES.get(type(v)) for v in values}
    if None in kinds:
        raise RequestValidationError(
            f"{where}: Literal values must be str, int, float or bool, got {values!r}"
        )
    schema: dict[str, Any] = {"enum": list(values)}
    if len(kinds) == 1:
        schema = {"type": kinds.pop(), **schema}
    return schema


def _enum_schema(tp: type[enum.Enum], where: str) -> dict[str, Any]:
    return _literal_schema(tuple(member.value for member in tp), where)


class _Builder:
    """Builds one schema; nested classes go to ``defs`` under unique names."""

    def __init__(self, root: type | None = None) -> None:
        self.root = root
        self.defs: dict[str, dict[str, Any]] = {}
        self.names: dict[type, str] = {}

    def ref(self, cls: type, kind: str) -> dict[str, Any]:
        """A reference to the schema of ``cls``, added to ``defs`` on first use."""
        if cls is self.root:
            return {"$ref": "#"}  # a recursive class refers to the root schema
        name = self.names.get(cls)
        if name is None:
            name = cls.__name__
            if name in self.defs:
                name = f"{cls.__module__}.{cls.__qualname__}".replace(".", "_")
            self.names[cls] = name
            self.defs[name] = {}  # reserved first: a recursive class refers to itself
            self.defs[name] = self.object(cls, kind)
        return {"$ref": f"#/$defs/{name}"}

    def object(self, cls: type, kind: str) -> dict[str, Any]:
        """The object schema of ``cls``: its fields, all required, nothing else allowed."""
        properties: dict[str, Any] = {}
        for f in _fields(cls, kind):
            tp, text = _strip_annotated(f.tp)
            schema = self.schema(tp, f"{cls.__qualname__}.{f.name}")
            properties[f.name] = _described(schema, f.description or text)
        result: dict[str, Any] = {"type": "object"}
        doc = _own_doc(cls)
        if doc:
            result["description"] = doc
        result.update(properties=properties, required=list(properties), additionalProperties=False)
        return result

    def schema(self, tp: Any, where: str) -> dict[str, Any]:
        """The schema of one type (``where`` names it in error messages)."""
        tp, _ = _strip_annotated(tp)
        tp = getattr(tp, "__supertype__", tp)  # NewType
        if tp in _PRIMITIVES:
            return dict(_PRIMITIVES[tp])
        kind = class_kind(tp)
        if kind is not None:
            return self.ref(tp, kind)
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            return _enum_schema(tp, where)
        return self.generic(tp, where)

    def generic(self, tp: Any, where: str) -> dict[str, Any]:
        """The schema of a ``Literal``, a union or a sequence; an error for other types."""
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if origin is typing.Literal:
            return _literal_schema(args, where)
        if origin is typing.Union or origin is types.UnionType:
            return {"anyOf": [self.schema(arg, where) for arg in args]}
        if origin in _SEQUENCES and len(args) == 1:
            return {"type": "array", "items": self.schema(args[0], where)}
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return {"type": "array", "items": self.schema(args[0], where)}
        raise RequestValidationError(
            f"{where}: the type {_type_name(tp)} cannot be described by a strict JSON schema; "
            "use str, int, float, bool, None, an enum, Literal[...], list[...], X | None, or "
            "a class (attrs, dataclass, TypedDict or pydantic model) for nested objects"
        )


def _type_name(tp: Any) -> str:
    return tp.__qualname__ if isinstance(tp, type) else repr(tp)


def object_schema(cls: type) -> dict[str, Any]:
    """The strict JSON schema of a class (see the module docstring)."""
    kind = class_kind(cls)
    if kind is None:
        raise RequestValidationError(
            f"{_type_name(cls)} is not a class this library can describe: use an attrs class, "
            "a dataclass, a TypedDict or a pydantic model"
        )
    builder = _Builder(cls)
    root = builder.object(cls, kind)
    if builder.defs:
        root["$defs"] = builder.defs
    return root


def format_name(cls: type) -> str:
    """The class name as a response format's name, which services take as 1 to 64 ASCII
    letters, digits, underscores and hyphens: accents dropped (``Résumé`` gives ``Resume``),
    any other character made ``_``, cut at 64. The name only labels the schema; the answer is
    parsed into ``cls`` whatever it is."""
    letters = unicodedata.normalize("NFKD", cls.__name__)
    name = "".join("" if unicodedata.combining(c) else c for c in letters)
    name = re.sub(r"[^A-Za-z0-9_-]", "_", name)[:64]
    return name if name.strip("_") else "response"


def json_schema_format(cls: type) -> JsonSchemaFormat:
    """The strict structured-output format for ``cls``: its name (see :func:`format_name`),
    description and schema."""
    schema = object_schema(cls)
    description = schema.pop("description", None)
    return JsonSchemaFormat(
        name=format_name(cls), schema=schema, description=description, strict=True
    )


# -- functions -------------------------------------------------------------------------------


def _unwrapped(func: Callable[..., Any]) -> Callable[..., Any]:
    """The function a ``functools.partial`` (nested or not) calls; ``func`` otherwise."""
    while isinstance(func, functools.partial):
        func = func.func
    return func


def _call_method(func: Callable[..., Any]) -> Callable[..., Any] | None:
    """The ``__call__`` method of a callable object's class (None for functions, methods,
    builtins and classes, which describe themselves)."""
    if isinstance(func, type) or inspect.isroutine(func):
        return None
    method = inspect.getattr_static(type(func), "__call__", None)  # the class's, inherited too
    return method if inspect.isfunction(method) else None


def callable_name(func: Callable[..., Any]) -> str | None:
    """A tool's default name: a function's name, the name of the function a
    ``functools.partial`` calls, or the class name of a callable object."""
    func = _unwrapped(func)
    if _call_method(func) is not None:
        return type(func).__name__
    name = getattr(func, "__name__", None)
    return name if isinstance(name, str) else None


def _docstring(func: Callable[..., Any]) -> tuple[str | None, dict[str, str]]:
    """The description (summary and body) and the parameter descriptions of a tool's
    docstring: the function's, the one of the function a ``functools.partial`` calls, or a
    callable object's ``__call__`` (its class docstring as the description when ``__call__``
    has none)."""
    func = _unwrapped(func)
    method = _call_method(func)
    if method is None:
        doc = inspect.getdoc(func)
    else:  # its own docstring (getdoc would give an inherited "Call self as a function.")
        doc = inspect.cleandoc(method.__doc__) if method.__doc__ else None
    if not doc:
        return (_own_doc(type(func)) if method is not None else None), {}
    import docstring_parser

    parsed = docstring_parser.parse(doc)
    parts = [p for p in (parsed.short_description, parsed.long_description) if p]
    described = {p.arg_name: p.description for p in parsed.params if p.description}
    if not parts and method is not None:
        return _own_doc(type(func)), described
    return "\n\n".join(parts) or None, described


def parameter_hints(func: Callable[..., Any]) -> dict[str, inspect.Parameter]:
    """The parameters of a tool function, each checked to have a type hint. A
    ``functools.partial``'s bound keywords are not parameters (they stay as bound); a
    callable object's are those of its ``__call__``."""
    name = callable_name(func) or repr(func)
    try:
        signature = inspect.signature(func, eval_str=True)
    except (NameError, TypeError, ValueError) as exc:
        raise RequestValidationError(f"cannot read the signature of tool {name}: {exc}") from exc
    bound = set(func.keywords) if isinstance(func, functools.partial) else set()
    params: dict[str, inspect.Parameter] = {}
    for p in signature.parameters.values():
        if p.name in bound:
            continue
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.POSITIONAL_ONLY):
            raise RequestValidationError(
                f"tool {name}: parameter {p.name!r} is {p.kind.description}; a tool takes "
                "named parameters only (the model passes them as a JSON object)"
            )
        if p.annotation is p.empty:
            raise RequestValidationError(
                f"tool {name}: parameter {p.name!r} has no type hint; add one (e.g. "
                f"{p.name}: str) so its JSON schema can be derived"
            )
        params[p.name] = p
    return params


# The tool (function) names OpenAI-compatible services accept.
_TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def function_definition(
    func: Callable[..., Any], *, name: str | None = None, description: str | None = None
) -> dict[str, Any]:
    """The wire ``function`` object of a tool function: name, description, parameters."""
    name = name or callable_name(func)
    if name == "<lambda>":
        raise RequestValidationError(
            "a tool function needs a name: use a def, not a lambda (or wrap it with "
            "inference.tool(func, name=...))"
        )
    if not name:
        raise RequestValidationError(
            f"a tool needs a name and {type(func).__qualname__} object {show(func)} has none; "
            "give it one with inference.tool(func, name=...)"
        )
    if not _TOOL_NAME.fullmatch(name):
        raise RequestValidationError(
            f"tool name {name[:80]!r}: services take 1 to 64 ASCII letters, digits, "
            "underscores and hyphens; give another with inference.tool(func, name=...)"
        )
    doc, described = _docstring(func)
    builder = _Builder()
    properties: dict[str, Any] = {}
    required: list[str] = []
    for p in parameter_hints(func).values():
        tp, text = _strip_annotated(p.annotation)
        schema = builder.schema(tp, f"tool {name}, parameter {p.name!r}")
        properties[p.name] = _described(schema, described.get(p.name) or text)
        if p.default is p.empty:
            required.append(p.name)
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }
    if builder.defs:
        parameters["$defs"] = builder.defs
    result: dict[str, Any] = {"name": name}
    if description or doc:
        result["description"] = description or doc
    result["parameters"] = parameters
    return result
