"""What every model shares: the enumerations, and the mapping behaviour of the models.

Every model reads like the Azure AI Inference SDK's models, which are mappings:
``response["choices"][0]["message"]["content"]``, ``"usage" in response``, ``keys()``,
``items()``, ``get()``, ``as_dict()``; and like openai-python's: ``to_dict()``,
``model_dump()``, ``to_json()``. All of them speak wire names and leave unset (None) fields
out. Response models also keep the fields this library does not know in ``extra``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any, ClassVar, TypeVar

import attrs

from . import _converter

__all__ = [
    "NO_EXTRA",
    "AudioContentFormat",
    "ChatCompletionsToolChoicePreset",
    "ChatRole",
    "CompletionsFinishReason",
    "ImageDetailLevel",
    "ModelType",
]

C = TypeVar("C", bound=type)


# --------------------------------------------------------------------------------------------
# Enumerations. All are ``str`` enums: they compare equal to their wire values.


class _StrEnum(enum.StrEnum):
    def __str__(self) -> str:
        return str(self.value)


class ChatRole(_StrEnum):
    """The author of a chat message. Formats as its upper-case name (``f"{role}"`` is
    ``ASSISTANT``) and compares equal to its wire value (``role == "assistant"``)."""

    SYSTEM = "system"
    DEVELOPER = "developer"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"

    def __str__(self) -> str:
        return self.name

    def __format__(self, spec: str) -> str:
        return format(self.name, spec)


class CompletionsFinishReason(_StrEnum):
    """Why the model stopped generating. Unknown reasons from a server stay plain strings."""

    STOPPED = "stop"
    TOKEN_LIMIT_REACHED = "length"
    CONTENT_FILTERED = "content_filter"
    TOOL_CALLS = "tool_calls"


class ImageDetailLevel(_StrEnum):
    """How closely the model looks at an image."""

    AUTO = "auto"
    LOW = "low"
    HIGH = "high"


class AudioContentFormat(_StrEnum):
    """The encoding of audio input."""

    WAV = "wav"
    MP3 = "mp3"


class ChatCompletionsToolChoicePreset(_StrEnum):
    """How the model may use the offered tools: ``auto``, ``none`` or ``required``."""

    AUTO = "auto"
    NONE = "none"
    REQUIRED = "required"


class ModelType(_StrEnum):
    """The kind of model behind an endpoint, as reported by ``/info``."""

    EMBEDDINGS = "embeddings"
    CHAT_COMPLETION = "chat-completion"
    IMAGE_EMBEDDINGS = "image_embeddings"
    CHAT = "chat"
    TEXT_GENERATION = "text_generation"
    COMPLETION = "completion"


# --------------------------------------------------------------------------------------------
# The mapping behaviour.

NO_EXTRA: Mapping[str, Any] = MappingProxyType({})
"""The (shared, read-only) ``extra`` of an object that has no unknown fields."""


class _WireMapping:
    """Mixin: item access, ``keys()``/``items()``/``values()``, ``get()``, ``as_dict()``,
    ``to_dict()``, ``model_dump()`` and ``to_json()``, all in wire names.

    A field set to None counts as absent (it is not sent and not listed), as on the wire.
    Iterating yields the names of the fields present. Truth value: always true (an empty
    streaming delta is still an object).
    """

    __slots__ = ()
    extra: Mapping[str, Any] = NO_EXTRA
    _wire_names: ClassVar[frozenset[str]] = frozenset()
    _wire_order: ClassVar[tuple[str, ...]] = ()

    def __getitem__(self, name: str) -> Any:
        if name in self._wire_names:
            return getattr(self, name)
        try:
            return self.extra[name]
        except KeyError:
            raise KeyError(
                f"{type(self).__name__} has no field {name!r}; fields present: "
                f"{sorted(self._present())}"
            ) from None

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (
            (name in self._wire_names and getattr(self, name) is not None) or name in self.extra
        )

    def __iter__(self) -> Iterator[str]:
        return self._present()

    def __bool__(self) -> bool:
        return True

    def get(self, name: str, default: Any = None) -> Any:
        """The field ``name`` (known or unknown), or ``default`` when absent."""
        try:
            value = self[name]
        except KeyError:
            return default
        return default if value is None else value

    def keys(self) -> list[str]:
        """The names of the fields present (known ones in declaration order, then unknown)."""
        return list(self._present())

    def values(self) -> list[Any]:
        """The values of the fields present, in the order of :meth:`keys`."""
        return [self[name] for name in self._present()]

    def items(self) -> list[tuple[str, Any]]:
        """``(name, value)`` of the fields present, in the order of :meth:`keys`."""
        return [(name, self[name]) for name in self._present()]

    def _present(self) -> Iterator[str]:
        for name in self._wire_order:
            if getattr(self, name) is not None:
                yield name
        yield from self.extra

    def as_dict(self) -> dict[str, Any]:
        """This object as JSON-ready data (dicts, lists, text, numbers), in wire names,
        unknown fields included, None values left out: ``json.dumps(obj.as_dict())`` works.
        """
        result: dict[str, Any] = _converter.unstructure(self)
        return result

    def to_dict(self) -> dict[str, Any]:
        """The same as :meth:`as_dict` (openai-python's name)."""
        return self.as_dict()

    def model_dump(self) -> dict[str, Any]:
        """The same as :meth:`as_dict` (pydantic's name): wire names, None values left out."""
        return self.as_dict()

    def to_json(self, indent: int | None = 2) -> str:
        """This object as JSON text (see :meth:`as_dict`); ``indent=None`` for one line."""
        return _converter.to_json(self, indent)


class _Extensible(_WireMapping):
    """Mixin for response models: unknown fields are kept in the ``extra`` attrs field."""

    __slots__ = ()

    def _extra_text(self, name: str) -> str | None:
        value = self.extra.get(name)
        return value if isinstance(value, str) else None


def wire_names(cls: C) -> C:
    """Class decorator (after ``@define``): record the wire names of an attrs model's fields
    for the mapping behaviour (``extra``, the ``image`` alias and the client-set ``parsed``
    are not wire fields)."""
    order = tuple(a.name for a in attrs.fields(cls) if a.name not in ("extra", "image", "parsed"))
    cls._wire_order = order  # type: ignore[attr-defined]
    cls._wire_names = frozenset(order)  # type: ignore[attr-defined]
    return cls
