"""Message content in the GenAI semantic conventions' shape (recorded only on opt-in).

Each message is ``{"role": ..., "parts": [...]}``; a part is text, a tool call, a tool call's
response, or a media item (image URI, audio data). Output messages add ``finish_reason``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from .models import ChatCompletions

__all__ = ["input_messages", "output_messages"]


def _field(value: Any, name: str) -> Any:
    """``value[name]`` when ``value`` is a mapping, else None: message dicts are sent as
    given, so any part of them may be of another shape than the API's (a service may take
    it, or refuse it; recording it must not fail the call)."""
    return value.get(name) if isinstance(value, Mapping) else None


def _part(item: Mapping[str, Any]) -> dict[str, Any]:
    kind = item.get("type")
    if kind == "text":
        return {"type": "text", "content": item.get("text")}
    if kind == "image_url":
        url = item.get("image_url")
        uri = url if isinstance(url, str) else _field(url, "url")
        return {"type": "uri", "modality": "image", "uri": uri}
    if kind == "input_audio":
        audio = item.get("input_audio")
        return {"type": "blob", "modality": "audio", "content": _field(audio, "data")}
    return {"type": str(kind)}


def _parts(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    parts: list[dict[str, Any]] = []
    if isinstance(content, str):
        if message.get("role") == "tool":
            parts.append(
                {
                    "type": "tool_call_response",
                    "id": message.get("tool_call_id"),
                    "response": content,
                }
            )
        else:
            parts.append({"type": "text", "content": content})
    elif isinstance(content, list):
        parts.extend(_part(item) for item in content if isinstance(item, Mapping))
    calls = message.get("tool_calls")
    for call in calls if isinstance(calls, list | tuple) else ():
        function = _field(call, "function")
        parts.append(
            {
                "type": "tool_call",
                "id": _field(call, "id"),
                "name": _field(function, "name"),
                "arguments": _field(function, "arguments"),
            }
        )
    return parts


def input_messages(request: Mapping[str, Any]) -> str | None:
    """``gen_ai.input.messages``: the request's messages as JSON, or None without any."""
    from ._serialization import messages_to_wire

    messages = request.get("messages")
    if messages is None:
        return None
    try:
        wire = messages_to_wire(messages)
        recorded = [{"role": _field(m, "role"), "parts": _parts(m)} for m in wire]
        return orjson.dumps(recorded, default=str).decode()
    except Exception:  # the call itself reports bad messages; recording never fails a call
        return None


def output_messages(completion: ChatCompletions) -> str:
    """``gen_ai.output.messages``: one message per choice, as JSON."""
    messages = []
    for choice in completion.choices:
        message = choice.message.as_dict()
        messages.append(
            {
                "role": message.get("role", "assistant"),
                "parts": _parts(message),
                "finish_reason": str(choice.finish_reason or ""),
            }
        )
    return orjson.dumps(messages).decode()
