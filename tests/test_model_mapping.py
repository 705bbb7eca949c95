"""Models read as mappings (azure-ai-inference habit) and dump as dicts and JSON
(openai-python habit); fields some services send are attributes, None when absent."""

from __future__ import annotations

import json

import pytest

from inference._serialization import loads_completions, loads_update
from inference.models import (
    ChatCompletionsToolDefinition,
    FunctionDefinition,
    ImageContentItem,
    StreamingChatResponseMessageUpdate,
    UserMessage,
)

BODY = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "gpt-4o",
    "system_fingerprint": "fp_abc",
    "service_tier": "default",
    "choices": [
        {
            "index": 0,
            "finish_reason": "stop",
            "message": {"role": "assistant", "content": None, "refusal": "I can't help."},
        }
    ],
    "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
}


def test_a_response_reads_as_nested_mappings() -> None:
    """response["choices"][0]["message"]["content"] and friends, as with azure's models."""
    response = loads_completions(json.dumps(BODY))
    assert response["choices"][0]["message"]["refusal"] == "I can't help."
    assert response["usage"]["total_tokens"] == 7
    assert response.keys() == [
        "id", "created", "model", "choices", "usage", "object", "system_fingerprint",
        "service_tier",
    ]  # fmt: skip
    assert list(response) == response.keys()
    assert dict(response.items())["model"] == "gpt-4o"
    assert response.values()[2] == "gpt-4o"
    assert "content" not in response["choices"][0]["message"]  # None counts as absent
    assert dict(response["usage"]) == {
        "completion_tokens": 4,
        "prompt_tokens": 3,
        "total_tokens": 7,
    }


def test_as_dict_to_dict_model_dump_and_to_json_agree() -> None:
    """The four dumps give the wire body back (None left out); json.dumps(as_dict()) works."""
    response = loads_completions(json.dumps(BODY))
    expected = json.loads(json.dumps(BODY))
    del expected["choices"][0]["message"]["content"]
    assert response.as_dict() == expected
    assert response.to_dict() == expected
    assert response.model_dump() == expected
    assert json.loads(json.dumps(response.as_dict())) == expected
    assert json.loads(response.to_json()) == expected
    assert response.to_json().startswith('{\n  "id"')
    assert "\n" not in response.to_json(indent=None)


def test_known_extra_fields_are_attributes() -> None:
    """system_fingerprint, service_tier and message.refusal, on responses and updates."""
    response = loads_completions(json.dumps(BODY))
    assert response.system_fingerprint == "fp_abc"
    assert response.service_tier == "default"
    assert response.choices[0].message.refusal == "I can't help."
    bare = loads_completions(b'{"id": "x", "choices": [{"message": {"content": "hi"}}]}')
    assert bare.system_fingerprint is None
    assert bare.service_tier is None
    assert bare.choices[0].message.refusal is None
    update = loads_update(
        b'{"id":"c","system_fingerprint":"fp","service_tier":"flex",'
        b'"choices":[{"index":0,"delta":{"refusal":"no"}}]}'
    )
    assert (update.system_fingerprint, update.service_tier) == ("fp", "flex")
    assert update.choices[0].delta.refusal == "no"
    assert loads_update(b'{"id":"c","choices":[]}').system_fingerprint is None


def test_request_models_are_mappings_too() -> None:
    """Request models read and dump like response models, in wire names."""
    message = UserMessage("hello", name="ann")
    assert message["role"] == "user"
    assert message.keys() == ["content", "name", "role"]
    assert message.as_dict() == {"content": "hello", "name": "ann", "role": "user"}
    tool = ChatCompletionsToolDefinition(function=FunctionDefinition(name="f"))
    assert tool["function"]["name"] == "f"
    assert json.loads(tool.to_json()) == {"function": {"name": "f"}, "type": "function"}
    image = ImageContentItem(image="https://example.invalid/a.png")
    assert image.keys() == ["image_url", "type"]  # the image= alias is not a wire field
    with pytest.raises(KeyError, match="fields present"):
        message["tool_calls"]


def test_an_empty_model_is_still_true() -> None:
    """Being a mapping does not make an empty streaming delta false in a condition."""
    delta = StreamingChatResponseMessageUpdate()
    assert delta.keys() == []
    assert bool(delta) is True
