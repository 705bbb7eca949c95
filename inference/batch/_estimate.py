"""Token estimates for a request body, before it is sent (no tokenizer needed).

The method, the same for ``--dry-run`` and for the tokens-per-minute pace:

- text: one token per 4 characters (rounded up), the usual rule of thumb for English with
  the GPT tokenizers; every string in a message counts (content parts, tool call arguments,
  names);
- 4 tokens per message and 3 per request for the chat format's framing;
- an image: 85 tokens (a low-detail image; a high-detail one costs more);
- tool definitions and ``response_format`` schemas: their JSON text, by the same rule;
- the answer: ``max_completion_tokens`` or ``max_tokens`` when the body sets it, else
  ``default_completion`` (the rate limiters of Azure OpenAI count ``max_tokens`` the same way).

Embeddings count their input text only. Real counts differ by model and language (code and
non-English text take more tokens per character); the runner corrects its pace with the
``usage`` of every answer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

import orjson

__all__ = ["estimate_tokens"]

_CHARS_PER_TOKEN: Final = 4
_PER_MESSAGE: Final = 4
_PER_REQUEST: Final = 3
_PER_IMAGE: Final = 85


def _text_tokens(text: str) -> int:
    return math.ceil(len(text) / _CHARS_PER_TOKEN)


def _content_tokens(value: Any) -> int:
    """Tokens of a message field: strings count, images count as one image, the rest recurse."""
    if isinstance(value, str):
        return _text_tokens(value)
    if isinstance(value, list):
        return sum(_content_tokens(item) for item in value)
    if isinstance(value, dict):
        if value.get("type") in ("image_url", "input_image"):
            return _PER_IMAGE
        return sum(_content_tokens(item) for key, item in value.items() if key != "type")
    return 0


def _json_tokens(value: Any) -> int:
    return 0 if value is None else _text_tokens(orjson.dumps(value).decode())


def estimate_tokens(kind: str, body: Mapping[str, Any], default_completion: int = 0) -> int:
    """Estimated prompt plus completion tokens of one request (see the module docstring)."""
    if kind == "embeddings":
        return _content_tokens(body.get("input"))
    messages = body.get("messages") or []
    prompt = _PER_REQUEST + sum(
        _PER_MESSAGE + _content_tokens({k: v for k, v in m.items() if k != "role"})
        for m in messages
        if isinstance(m, dict)
    )
    prompt += _json_tokens(body.get("tools")) + _json_tokens(body.get("response_format"))
    completion = body.get("max_completion_tokens") or body.get("max_tokens")
    if not isinstance(completion, int) or isinstance(completion, bool) or completion < 0:
        completion = default_completion
    choices = body.get("n")
    if isinstance(choices, int) and not isinstance(choices, bool) and choices > 1:
        completion *= choices
    return prompt + completion
