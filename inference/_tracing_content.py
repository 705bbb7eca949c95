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


def _part(item: Mapping[str, Any]) -> dict[str, Any]:
    kind = item.get("type")
    if kind == "text":
        return {"type": "text", "content": item.get("text")}
    if kind == "image_url":
        url = item.get("image_url") or {}
        return {"type": "uri", "modality": "image", "uri": url.get("url")}
    if kind == "input_audio":
        audio = item.get("input_audio") or {}
        return {"type": "blob", "modality": "audio", "content": audio.get("data")}
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
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        parts.append(
            {
                "type": "tool_call",
                "id": call.get("id"),
                "name": function.get("name"),
                "arguments": function.get("arguments"),
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
    except Exception:  # the call itself reports bad messages
        return None
    return orjson.dumps([{"role": m.get("role"), "parts": _parts(m)} for m in wire]).decode()


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
