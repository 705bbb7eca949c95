"""The emulator's built-in model: deterministic answers computed from the request body.

Everything here is a pure function of the request dictionary: no I/O, no clock, no randomness.
The same request always yields the same answer, so tests can assert on it.

How the model answers, in order of precedence:

* Content filter: any user text containing ``knife skills`` or the marker ``[content-filter]``
  (case-insensitive) is refused with :class:`ContentFiltered` (the server answers HTTP 400).
* The last message is a tool message (and no call is demanded, see below): an answer built
  from the tool results, e.g.
  ``According to get_flight_info: There are no flights available ...``.
* Tools are offered, ``tool_choice`` is not ``"none"`` and the last message is a user message
  (or ``tool_choice`` is ``"required"`` or names a tool, whatever the last message): a call
  to the tool named by ``tool_choice``, else one call to each offered tool whose name the
  user's text contains (parallel calls), else to each whose name has a word of four letters
  or more that the text holds (``get_weather`` for "Weather in Oslo?"), else a call to the
  first tool. The arguments are built from the tool's JSON schema and the user's text (see
  :func:`value_for_schema`).
* Otherwise a text answer: a canned answer when the last user message contains one of the
  keywords of :data:`CANNED_ANSWERS`, else a short reply that quotes the question. Images and
  audio in the user message are acknowledged first (count, media type and size).
* ``response_format`` ``json_object`` wraps the answer as ``{"answer": "..."}`` (or, when
  it carries a ``schema`` as llama-cpp-python's server takes it, follows that schema);
  ``json_schema`` yields an object that satisfies the schema.
* ``stop`` cuts the answer at the first stop string; ``max_tokens`` truncates it to that many
  tokens with finish reason ``length``; ``n`` yields that many identical choices.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import attrs
import orjson

from .._params import SPEC_PARAMS

__all__ = [
    "CANNED_ANSWERS",
    "CONTENT_FILTER_TRIGGERS",
    "KNOWN_PARAMETERS",
    "Choice",
    "Completion",
    "ContentFiltered",
    "InvalidRequest",
    "ModelError",
    "ToolCall",
    "complete",
    "count_prompt_tokens",
    "tokenize",
    "unknown_parameters",
    "validate_request",
    "value_for_schema",
]

#: Body keys the Azure AI Model Inference API defines for chat completions. Any other key at the
#: body root is an "extra parameter": refused unless the request carries the header
#: ``extra-parameters: pass-through`` (or ``drop``). ``stream_options`` is accepted as well.
KNOWN_PARAMETERS: frozenset[str] = SPEC_PARAMS | {"stream_options"}

#: Case-insensitive substrings of user text that make the content filter refuse the prompt.
CONTENT_FILTER_TRIGGERS: tuple[str, ...] = ("knife skills", "[content-filter]")

#: Canned answers: the first entry whose keywords all occur (case-insensitive) in the last user
#: message wins.
CANNED_ANSWERS: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        ("language", "world"),
        "Linguists estimate that about 7,000 languages are spoken in the world today. The exact "
        "count keeps changing, because some languages lose their last speakers while others "
        "are newly recognised as distinct. A handful of languages have hundreds of millions of "
        "speakers, while many others are spoken by only a few hundred people.",
    ),
    (
        ("feet", "mile"),
        "There are 5,280 feet in a mile. The figure comes from the imperial and U.S. customary "
        "systems, where a mile is defined as 1,760 yards of three feet each.",
    ),
    (
        ("exercise",),
        "Here are three good reasons to exercise every day:\n\n"
        "1. It strengthens your heart and lungs.\n"
        "2. It lifts your mood and helps you sleep better.\n"
        "3. It keeps your muscles and bones strong as you age.",
    ),
    (
        ("chart",),
        "The chart suggests that larger models usually reach higher quality scores, but some "
        "smaller models come close to much bigger ones. Size is therefore not the only factor "
        "that decides how well a model performs.",
    ),
    (
        ("capital", "france"),
        "The capital of France is Paris. It is also the country's largest city.",
    ),
    (
        ("weather",),
        "I cannot look up live weather data myself. Offer me a weather tool and I will call it "
        "for you.",
    ),
    (
        ("joke",),
        "Why did the developer go broke? Because they used up all their cache.",
    ),
    (
        ("hello",),
        "Hello! How can I help you today?",
    ),
)

_ROLES = ("system", "developer", "user", "assistant", "tool")
_CONTENT_TYPES = ("text", "image_url", "input_audio", "audio_url")
_RESPONSE_FORMATS = ("text", "json_object", "json_schema")

_TOKEN_RE = re.compile(r" ?\w+(?:['’]\w+)*| ?[^\w\s]|\s+")
_WORD_RE = re.compile(r"\w+(?:['’-]\w+)*|[^\w\s]")
_NUMBER_RE = re.compile(r"-?\d+(?:\.\d+)?")
_NUMBER_WORDS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "today": 0,
    "tomorrow": 1,
}
_DATA_URL_RE = re.compile(r"^data:([^;,]*)((?:;[^;,]*)*),(.*)$", re.DOTALL)
_SENTENCE_END = frozenset(".!?")
_FROM_HINTS = ("origin", "from", "source", "departure", "depart", "start")
_TO_HINTS = ("destination", "dest", "to", "target", "arrival", "arrive", "end")
_TEXT_HINTS = ("query", "question", "text", "prompt", "message", "input", "content", "search")
_NUMBER_HINTS = ("number", "count", "days", "amount", "quantity", "how many")
_MAX_SCHEMA_DEPTH = 8
# From this depth on, arrays are empty and unions take null where the schema allows: a
# recursive schema (a class that holds a list of itself) ends.
_NESTING_ENDS = 3


class ModelError(Exception):
    """Base class of the reasons the model refuses a request."""


class InvalidRequest(ModelError):
    """The request body is malformed; the server answers HTTP 400 with this message."""

    def __init__(self, message: str, *, param: str | None = None, code: str = "invalid_value"):
        super().__init__(message)
        #: The human-readable reason.
        self.message = message
        #: The offending parameter (``messages[1].role``), when one is to blame.
        self.param = param
        #: A short machine-readable code (``invalid_json``, ``missing_required_parameter``...).
        self.code = code


class ContentFiltered(ModelError):
    """The prompt triggered the content filter; the server answers HTTP 400 ``content_filter``."""

    def __init__(self, trigger: str, message_index: int) -> None:
        super().__init__(f"messages[{message_index}] contains {trigger!r}")
        #: The trigger found in the prompt.
        self.trigger = trigger
        #: Index of the message that contained it.
        self.message_index = message_index


@attrs.frozen
class ToolCall:
    """One function call the model asks the caller to make."""

    id: str
    name: str
    arguments: str


@attrs.frozen
class Choice:
    """One answer: text content or tool calls, how it ended, and its tokens."""

    index: int
    content: str | None
    finish_reason: str
    tokens: tuple[str, ...] = ()
    tool_calls: tuple[ToolCall, ...] = ()


@attrs.frozen
class Completion:
    """The model's whole answer to one request."""

    choices: tuple[Choice, ...]
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens


# --------------------------------------------------------------------------- tokens


def tokenize(text: str) -> list[str]:
    """Split text into word-ish tokens that keep their leading space: ``"Hi you!"`` gives
    ``["Hi", " you", "!"]``. Joining the tokens gives the text back exactly."""
    return _TOKEN_RE.findall(text)


def count_prompt_tokens(messages: Sequence[Mapping[str, Any]]) -> int:
    """A deterministic prompt size: the number of word-ish tokens in every message's text
    (content, text items, tool-call arguments) plus one per image or audio item."""
    total = 0
    for message in messages:
        for text in _message_texts(message):
            total += len(tokenize(text))
        content = message.get("content")
        if isinstance(content, list):
            total += sum(
                1 for item in content if isinstance(item, dict) and item.get("type") != "text"
            )
        for call in message.get("tool_calls") or ():
            if isinstance(call, dict) and isinstance(call.get("function"), dict):
                total += len(tokenize(str(call["function"].get("arguments", ""))))
    return max(total, 1)


# --------------------------------------------------------------------------- validation


def validate_request(body: Any) -> dict[str, Any]:
    """Check a chat-completions body; return it typed as a dict or raise :class:`InvalidRequest`.

    Checks the shapes the real services check: messages (non-empty list, known roles, content
    where required, ``tool_call_id`` on tool messages, known content item types), the types of
    the optional parameters, and the rules of a tool conversation the real services enforce
    with HTTP 400: an assistant message's ``tool_calls`` are each answered by a tool message
    right after it, a tool message answers a call of the assistant message before it, and a
    ``tool_choice`` that demands a call (``required``, a named function) has ``tools`` to
    choose from, the named function among them.
    """
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_json")
    messages = body.get("messages")
    if messages is None:
        raise InvalidRequest(
            "'messages' is a required property.",
            param="messages",
            code="missing_required_parameter",
        )
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty array.", param="messages")
    for index, message in enumerate(messages):
        _validate_message(index, message)
    _validate_tool_turns(messages)
    _check_type(body, "model", str, "a string")
    _check_type(body, "stream", bool, "a boolean")
    _check_type(body, "seed", int, "an integer")
    for name in ("temperature", "top_p", "presence_penalty", "frequency_penalty"):
        _check_number(body, name)
    for name in ("max_tokens", "max_completion_tokens", "n"):
        value = body.get(name)
        if value is not None and (not _is_int(value) or value < 1):
            raise InvalidRequest(f"'{name}' must be a positive integer, got {value!r}.", param=name)
    stream_options = body.get("stream_options")
    if stream_options is not None:
        if not isinstance(stream_options, dict):
            raise InvalidRequest("'stream_options' must be an object.", param="stream_options")
        _check_type(stream_options, "include_usage", bool, "a boolean", "stream_options.")
    stop = body.get("stop")
    if stop is not None and not (
        isinstance(stop, str) or (isinstance(stop, list) and all(isinstance(s, str) for s in stop))
    ):
        raise InvalidRequest("'stop' must be a string or an array of strings.", param="stop")
    _validate_response_format(body.get("response_format"))
    _validate_tools(body.get("tools"), body.get("tool_choice"))
    return body


def unknown_parameters(body: Mapping[str, Any]) -> list[str]:
    """The body's root keys that the Azure AI Model Inference API does not define."""
    return [key for key in body if key not in KNOWN_PARAMETERS]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_type(obj: Mapping[str, Any], name: str, kind: type, what: str, prefix: str = "") -> None:
    value = obj.get(name)
    if value is None:
        return
    ok = _is_int(value) if kind is int else isinstance(value, kind)
    if not ok:
        raise InvalidRequest(
            f"'{prefix}{name}' must be {what}, got {value!r}.", param=f"{prefix}{name}"
        )


def _check_number(obj: Mapping[str, Any], name: str) -> None:
    value = obj.get(name)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise InvalidRequest(f"'{name}' must be a number, got {value!r}.", param=name)


def _validate_role(where: str, message: Any) -> str:
    """The message's role, checked: an object with a known ``role``."""
    if not isinstance(message, dict):
        raise InvalidRequest(f"'{where}' must be an object.", param=where)
    role = message.get("role")
    if role is None:
        raise InvalidRequest(
            f"'{where}.role' is a required property.",
            param=f"{where}.role",
            code="missing_required_parameter",
        )
    if role not in _ROLES:
        raise InvalidRequest(
            f"'{where}.role' is {role!r}; expected one of {', '.join(_ROLES)}.",
            param=f"{where}.role",
        )
    return str(role)


def _validate_content(where: str, role: str, content: Any) -> None:
    """A message's ``content``: present where the role needs it, a string or content items."""
    if role in ("system", "developer", "user") and content is None:
        raise InvalidRequest(
            f"'{where}.content' is required for a {role} message.",
            param=f"{where}.content",
            code="missing_required_parameter",
        )
    if content is not None and not isinstance(content, str | list):
        raise InvalidRequest(
            f"'{where}.content' must be a string or an array of content items.",
            param=f"{where}.content",
        )
    if isinstance(content, list):
        allowed = _CONTENT_TYPES if role == "user" else ("text",)
        for item_index, item in enumerate(content):
            _validate_content_item(f"{where}.content[{item_index}]", item, allowed)


def _validate_tool_calls(where: str, role: str, tool_calls: Any) -> None:
    """An assistant message's ``tool_calls``: an array of calls that each name a function."""
    if tool_calls is None:
        return
    if role != "assistant" or not isinstance(tool_calls, list):
        raise InvalidRequest(
            f"'{where}.tool_calls' is only allowed as an array on assistant messages.",
            param=f"{where}.tool_calls",
        )
    for call_index, call in enumerate(tool_calls):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise InvalidRequest(
                f"'{where}.tool_calls[{call_index}].function.name' is required.",
                param=f"{where}.tool_calls[{call_index}]",
                code="missing_required_parameter",
            )
        if not isinstance(call.get("id"), str) or not call["id"]:
            raise InvalidRequest(
                f"'{where}.tool_calls[{call_index}].id' is required: the id that the tool "
                "message answering the call gives as its tool_call_id.",
                param=f"{where}.tool_calls[{call_index}].id",
                code="missing_required_parameter",
            )


def _validate_tool_turns(messages: Sequence[Mapping[str, Any]]) -> None:
    """Every tool call is answered right after its assistant message, and only those are.

    An assistant message with ``tool_calls`` must be followed directly by tool messages, one
    per call id, before any other message (or the end of the conversation); a tool message
    must belong to such a run and answer one of the calls of the assistant message it follows.
    """
    asker: int | None = None  # the assistant message whose calls the tool messages answer
    asked: list[str] = []
    unanswered: list[str] = []
    for index, message in enumerate(messages):
        if message.get("role") == "tool":
            call_id = str(message["tool_call_id"])
            _check_tool_answer(index, call_id, asker, asked)
            if call_id in unanswered:
                unanswered.remove(call_id)
            continue
        if asker is not None and unanswered:
            raise _unanswered_calls(asker, unanswered, index, message)
        calls = message.get("tool_calls") if message.get("role") == "assistant" else None
        asker = index if calls else None
        asked = [str(call["id"]) for call in calls or ()]
        unanswered = list(asked)
    if asker is not None and unanswered:
        raise _unanswered_calls(asker, unanswered, None, None)


def _check_tool_answer(index: int, call_id: str, asker: int | None, asked: Sequence[str]) -> None:
    """Raise when the tool message ``messages[index]`` answers no call of ``messages[asker]``."""
    where = f"messages[{index}]"
    if asker is None:
        raise InvalidRequest(
            f"'{where}' is a tool message (tool_call_id {call_id!r}) that does not follow an "
            "assistant message with tool_calls: a tool message answers a tool call, so it "
            "must come right after the assistant message that made the call (after that "
            "message's other tool results, if any). Move it there or remove it.",
            param=f"{where}.tool_call_id",
        )
    if call_id not in asked:
        raise InvalidRequest(
            f"'{where}.tool_call_id' is {call_id!r}, but the assistant message it follows, "
            f"messages[{asker}], made no tool call with that id (its calls: "
            f"{', '.join(repr(i) for i in asked)}). Set tool_call_id to the id of the call "
            "the message answers.",
            param=f"{where}.tool_call_id",
        )


def _unanswered_calls(
    asker: int, unanswered: Sequence[str], index: int | None, message: Mapping[str, Any] | None
) -> InvalidRequest:
    """The error for tool calls of ``messages[asker]`` that no tool message answers."""
    ids = ", ".join(repr(i) for i in unanswered)
    after = (
        "the conversation ends"
        if index is None or message is None
        else f"messages[{index}] ({message.get('role')}) comes"
    )
    return InvalidRequest(
        f"'messages[{asker}]' is an assistant message with tool_calls, but {after} before a "
        f"tool message answers {_plural(len(unanswered), 'call')} ({ids}). Add one tool "
        f"message per tool call right after messages[{asker}], each with tool_call_id set "
        "to the id of the call it answers.",
        param=f"messages[{asker}].tool_calls",
    )


def _validate_message(index: int, message: Any) -> None:
    where = f"messages[{index}]"
    role = _validate_role(where, message)
    _validate_content(where, role, message.get("content"))
    if role == "tool" and not isinstance(message.get("tool_call_id"), str):
        raise InvalidRequest(
            f"'{where}.tool_call_id' is required for a tool message.",
            param=f"{where}.tool_call_id",
            code="missing_required_parameter",
        )
    _validate_tool_calls(where, role, message.get("tool_calls"))


def _validate_content_item(where: str, item: Any, allowed: Sequence[str]) -> None:
    if not isinstance(item, dict):
        raise InvalidRequest(f"'{where}' must be an object.", param=where)
    kind = item.get("type")
    if kind not in allowed:
        raise InvalidRequest(
            f"'{where}.type' is {kind!r}; expected one of {', '.join(allowed)}.",
            param=f"{where}.type",
        )
    if kind == "text" and not isinstance(item.get("text"), str):
        raise InvalidRequest(f"'{where}.text' must be a string.", param=f"{where}.text")
    if kind in ("image_url", "audio_url"):
        ref = item.get(kind)
        if not isinstance(ref, dict) or not isinstance(ref.get("url"), str):
            raise InvalidRequest(f"'{where}.{kind}.url' must be a string.", param=where)
    if kind == "input_audio":
        audio = item.get("input_audio")
        if not isinstance(audio, dict) or not isinstance(audio.get("data"), str):
            raise InvalidRequest(
                f"'{where}.input_audio.data' must be a base64 string.", param=where
            )


def _validate_response_format(response_format: Any) -> None:
    if response_format is None:
        return
    if not isinstance(response_format, dict):
        raise InvalidRequest("'response_format' must be an object.", param="response_format")
    kind = response_format.get("type")
    if kind not in _RESPONSE_FORMATS:
        raise InvalidRequest(
            f"'response_format.type' is {kind!r}; supported types are "
            f"{', '.join(_RESPONSE_FORMATS)}.",
            param="response_format.type",
        )
    if kind == "json_schema":
        definition = response_format.get("json_schema")
        if not isinstance(definition, dict):
            raise InvalidRequest(
                "'response_format.json_schema' is required when the type is json_schema.",
                param="response_format.json_schema",
                code="missing_required_parameter",
            )
        schema = definition.get("schema")
        if schema is not None and not isinstance(schema, dict):
            raise InvalidRequest(
                "'response_format.json_schema.schema' must be an object.",
                param="response_format.json_schema.schema",
            )


def _validate_tools(tools: Any, tool_choice: Any) -> None:
    if tools is not None:
        if not isinstance(tools, list):
            raise InvalidRequest("'tools' must be an array.", param="tools")
        for index, tool in enumerate(tools):
            function = tool.get("function") if isinstance(tool, dict) else None
            if (
                not isinstance(tool, dict)
                or tool.get("type", "function") != "function"
                or not isinstance(function, dict)
                or not isinstance(function.get("name"), str)
            ):
                raise InvalidRequest(
                    f"'tools[{index}]' must be a function tool with a 'function.name'.",
                    param=f"tools[{index}]",
                )
            parameters = function.get("parameters")
            if parameters is not None and not isinstance(parameters, dict):
                raise InvalidRequest(
                    f"'tools[{index}].function.parameters' must be a JSON schema object.",
                    param=f"tools[{index}].function.parameters",
                )
    _validate_tool_choice([t["function"]["name"] for t in tools or ()], tool_choice)


def _validate_tool_choice(names: Sequence[str], tool_choice: Any) -> None:
    """``tool_choice`` is a known value; one that demands a call has a declared tool to call."""
    if tool_choice is None or tool_choice in ("auto", "none"):
        return
    if tool_choice == "required":
        if not names:
            raise InvalidRequest(
                "'tool_choice' is 'required' but the request declares no 'tools' to call. "
                "Declare the functions the model may call in 'tools', or leave tool_choice out.",
                param="tool_choice",
            )
        return
    function = tool_choice.get("function") if isinstance(tool_choice, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise InvalidRequest(
            "'tool_choice' must be 'auto', 'none', 'required' or "
            "{'type': 'function', 'function': {'name': ...}}.",
            param="tool_choice",
        )
    wanted = function["name"]
    if wanted not in names:
        offered = (
            f"it declares {', '.join(repr(n) for n in names)}"
            if names
            else "the request declares no 'tools'"
        )
        raise InvalidRequest(
            f"'tool_choice' names the function {wanted!r}, which is not among 'tools' "
            f"({offered}). Name a declared function, or declare {wanted!r} in 'tools'.",
            param="tool_choice.function.name",
        )


# --------------------------------------------------------------------------- answering


def complete(body: Mapping[str, Any], *, repeat: int = 1) -> Completion:
    """Answer a validated chat-completions body (see the module docstring for the rules).

    ``repeat`` repeats a text answer that many times (longer streams for tests and benchmarks).
    Raises :class:`ContentFiltered` when the prompt triggers the content filter.
    """
    messages: list[dict[str, Any]] = list(body["messages"])
    _check_content_filter(messages)
    prompt_tokens = count_prompt_tokens(messages)
    n = body.get("n") or 1
    last = messages[-1]
    tools = [t["function"] for t in body.get("tools") or () if isinstance(t, dict)]
    tool_choice = body.get("tool_choice")
    if _calls_tools(last, tools, tool_choice):
        user_text = _last_user_text(messages)
        calls = tuple(
            _tool_call(tool, user_text, len(messages))
            for tool in _chosen_tools(tools, tool_choice, user_text)
        )
        choice = Choice(index=0, content=None, finish_reason="tool_calls", tool_calls=calls)
        per_choice = sum(len(tokenize(call.arguments)) + 1 for call in calls)
        return Completion(
            choices=tuple(attrs.evolve(choice, index=i) for i in range(n)),
            prompt_tokens=prompt_tokens,
            completion_tokens=per_choice * n,
        )
    text = _answer_text(messages)
    if repeat > 1:
        text = " ".join([text] * repeat)
    text = _apply_response_format(text, body.get("response_format"), messages)
    finish_reason = "stop"
    stop = body.get("stop")
    for marker in [stop] if isinstance(stop, str) else stop or ():
        if marker and marker in text:
            text = text[: text.index(marker)]
    tokens = tokenize(text)
    limit = body.get("max_tokens") or body.get("max_completion_tokens")
    if limit is not None and len(tokens) > limit:
        tokens = tokens[:limit]
        text = "".join(tokens)
        finish_reason = "length"
    choice = Choice(index=0, content=text, finish_reason=finish_reason, tokens=tuple(tokens))
    return Completion(
        choices=tuple(attrs.evolve(choice, index=i) for i in range(n)),
        prompt_tokens=prompt_tokens,
        completion_tokens=len(tokens) * n,
    )


def _check_content_filter(messages: Sequence[Mapping[str, Any]]) -> None:
    for index, message in enumerate(messages):
        if message.get("role") != "user":
            continue
        for text in _message_texts(message):
            lowered = text.lower()
            for trigger in CONTENT_FILTER_TRIGGERS:
                if trigger in lowered:
                    raise ContentFiltered(trigger, index)


def _message_texts(message: Mapping[str, Any]) -> Iterator[str]:
    content = message.get("content")
    if isinstance(content, str):
        yield content
    elif isinstance(content, list):
        for item in content:
            if isinstance(item, dict) and isinstance(item.get("text"), str):
                yield item["text"]


def _last_user_text(messages: Sequence[Mapping[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return " ".join(_message_texts(message)).strip()
    for message in reversed(messages):
        text = " ".join(_message_texts(message)).strip()
        if text:
            return text
    return ""


def _answer_text(messages: Sequence[Mapping[str, Any]]) -> str:
    if messages[-1].get("role") == "tool":
        return _tool_result_answer(messages)
    question = _last_user_text(messages)
    media = ""
    for message in reversed(messages):
        if message.get("role") == "user":
            media = _describe_media(message.get("content"))
            break
    answer = _text_answer(question, has_media=bool(media))
    return f"{media} {answer}" if media else answer


def _text_answer(question: str, *, has_media: bool) -> str:
    lowered = question.lower()
    for keywords, answer in CANNED_ANSWERS:
        if all(keyword in lowered for keyword in keywords):
            return answer
    if not question:
        if has_media:
            return "The emulator cannot see what it shows, but it arrived intact."
        return "Hello! How can I help you today?"
    quoted = question if len(question) <= 200 else question[:197] + "..."
    return (
        f'You asked: "{quoted}" This is the emulator\'s built-in model, which answers '
        "deterministically so that tests can rely on its replies."
    )


def _describe_media(content: Any) -> str:
    if not isinstance(content, list):
        return ""
    images: list[str] = []
    audio: list[str] = []
    for item in content:
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind == "image_url":
            images.append(_describe_url(str(item["image_url"]["url"])))
        elif kind == "audio_url":
            audio.append(_describe_url(str(item["audio_url"]["url"])))
        elif kind == "input_audio":
            data = item["input_audio"]
            size = _base64_size(str(data.get("data", "")))
            audio.append(f"{data.get('format', 'audio')}, {_bytes(size)}")
    parts = []
    if images:
        parts.append(_plural(len(images), "image") + f" ({'; '.join(images)})")
    if audio:
        parts.append(_plural(len(audio), "audio clip") + f" ({'; '.join(audio)})")
    return f"I received {' and '.join(parts)}." if parts else ""


def _describe_url(url: str) -> str:
    match = _DATA_URL_RE.match(url)
    if match is None:
        return url
    media_type = match.group(1) or "text/plain"
    if ";base64" in match.group(2):
        size = _base64_size(match.group(3))
        return f"{media_type}, {_bytes(size)}" if size >= 0 else f"{media_type}, unreadable data"
    return f"{media_type}, {_bytes(len(match.group(3).encode()))}"


def _base64_size(data: str) -> int:
    try:
        return len(base64.b64decode(data, validate=False))
    except (binascii.Error, ValueError):
        return -1


def _bytes(size: int) -> str:
    return "1 byte" if size == 1 else f"{size} bytes"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _tool_result_answer(messages: Sequence[Mapping[str, Any]]) -> str:
    names: dict[str, str] = {}
    for message in messages:
        for call in message.get("tool_calls") or ():
            if isinstance(call, dict) and isinstance(call.get("function"), dict):
                names[str(call.get("id"))] = str(call["function"].get("name"))
    results: list[Mapping[str, Any]] = []
    for message in reversed(messages):
        if message.get("role") != "tool":
            break
        results.insert(0, message)
    sentences = []
    for result in results:
        name = names.get(str(result.get("tool_call_id")), "the tool")
        info = _tool_info(" ".join(_message_texts(result)))
        sentences.append(f"According to {name}: {info}")
    return " ".join(sentences)


def _tool_info(content: str) -> str:
    try:
        data = orjson.loads(content)
    except orjson.JSONDecodeError:
        data = content
    if isinstance(data, dict):
        strings = [str(v) for v in data.values() if isinstance(v, str | int | float)]
        single = len(strings) == 1
        data = strings[0] if single else "; ".join(f"{k}: {v}" for k, v in data.items())
    text = str(data).strip() or "(no result)"
    return text if text[-1] in _SENTENCE_END else text + "."


def _apply_response_format(
    text: str, response_format: Any, messages: Sequence[Mapping[str, Any]]
) -> str:
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    schema: Any = None
    if kind == "json_object":
        schema = response_format.get("schema")  # JSON mode with a schema (llama-cpp-python)
        if not isinstance(schema, dict):
            return orjson.dumps({"answer": text}).decode()
    if kind == "json_schema":
        schema = response_format["json_schema"].get("schema") or {"type": "object"}
    if schema is not None:
        context = _Context(_last_user_text(messages))
        value = value_for_schema(schema, context=context, root=schema)
        return orjson.dumps(value).decode()
    return text


# --------------------------------------------------------------------------- tool calls


def _calls_tools(last: Mapping[str, Any], tools: Sequence[Any], tool_choice: Any) -> bool:
    """Whether the answer is tool calls: after a user message when tools are offered, and
    after anything when ``tool_choice`` demands a call (``required`` or a named tool)."""
    if not tools or tool_choice == "none":
        return False
    return last.get("role") == "user" or tool_choice == "required" or isinstance(tool_choice, dict)


# The shortest word of a tool's name that chooses the tool when the user's text holds it.
_NAME_WORD_LENGTH = 4


def _chosen_tools(
    tools: Sequence[Mapping[str, Any]], tool_choice: Any, user_text: str
) -> list[Mapping[str, Any]]:
    """The named tool of ``tool_choice``; else every offered tool the user's text names (one
    call each, in the order offered); else every tool a word of whose name the text holds
    (``convert_temperature`` for "Convert 20 celsius", ``get_weather`` for "Weather in
    Oslo?"); else the first tool."""
    if isinstance(tool_choice, dict):
        wanted = tool_choice["function"]["name"]
        return [next((t for t in tools if t.get("name") == wanted), {"name": wanted})]
    named = [t for t in tools if str(t.get("name")) in user_text]
    if named:
        return named
    said = set(re.findall(r"[a-z]+", user_text.lower()))
    hinted = [t for t in tools if _name_words(str(t.get("name"))) & said]
    return hinted or [tools[0]]


def _name_words(name: str) -> set[str]:
    """The words of a tool name (``get_flight_info``, ``getFlightInfo``: flight, info), short
    ones (get, set, to) left out: they say nothing about what the user asked for."""
    words = re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])", name)
    return {word.lower() for word in words if len(word) >= _NAME_WORD_LENGTH}


def _tool_call(chosen: Mapping[str, Any], user_text: str, turn: int) -> ToolCall:
    schema = chosen.get("parameters") or {"type": "object", "properties": {}}
    value = value_for_schema(schema, context=_Context(user_text), root=schema)
    arguments = orjson.dumps(value).decode()
    name = str(chosen["name"])
    digest = hashlib.sha256(f"{name}\n{arguments}\n{user_text}\n{turn}".encode()).hexdigest()
    return ToolCall(id=f"call_{digest[:24]}", name=name, arguments=arguments)


class _Context:
    """What the schema filler knows about the user's text, and which names it already used."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.words: list[str] = _WORD_RE.findall(text)
        self.names = _proper_names(self.words)
        self.used_names: set[str] = set()
        self.numbers = _numbers(self.words)
        self.used_numbers = 0

    def next_name(self) -> str | None:
        for name in self.names:
            if name not in self.used_names:
                self.used_names.add(name)
                return name
        return None

    def name_after(self, keywords: Sequence[str]) -> str | None:
        lowered = [w.lower() for w in self.words]
        for keyword in keywords:
            for index, word in enumerate(lowered[:-1]):
                if word != keyword:
                    continue
                following = self.words[index + 1]
                name = next((n for n in self.names if n.split()[0] == following), following)
                if name[0].isalnum():
                    self.used_names.add(name)
                    return name
        return None

    def next_number(self) -> float | int:
        if self.used_numbers < len(self.numbers):
            self.used_numbers += 1
            return self.numbers[self.used_numbers - 1]
        return 1


def _proper_names(words: Sequence[str]) -> list[str]:
    """Runs of capitalised words that do not start a sentence: ``Miami``, ``New York``."""
    names: list[str] = []
    current: list[str] = []
    sentence_start = True
    for word in words:
        is_name = word[0].isupper() and not sentence_start and word != "I"
        if is_name:
            current.append(word)
        elif current:
            names.append(" ".join(current))
            current = []
        sentence_start = not word[0].isalnum() and word in _SENTENCE_END
    if current:
        names.append(" ".join(current))
    return list(dict.fromkeys(names))


def _numbers(words: Sequence[str]) -> list[float | int]:
    found: list[float | int] = []
    for word in words:
        lowered = word.lower()
        if lowered in _NUMBER_WORDS:
            found.append(_NUMBER_WORDS[lowered])
        elif _NUMBER_RE.fullmatch(word):
            found.append(float(word) if "." in word else int(word))
    return found


def _hint(name: str, description: str) -> str | None:
    name_parts = set(re.split(r"[^a-z]+", name.lower()))
    desc = description.lower()
    if any(part.startswith(h) for part in name_parts for h in _FROM_HINTS):
        return "from"
    if any(h in name_parts for h in _TO_HINTS):
        return "to"
    if any(h in name_parts for h in _NUMBER_HINTS):
        return "number"
    if any(h in name_parts for h in _TEXT_HINTS):
        return "text"
    if "originat" in desc or "departure" in desc or "where from" in desc:
        return "from"
    if "destination" in desc or "arrival" in desc:
        return "to"
    if any(h in desc for h in _NUMBER_HINTS):
        return "number"
    return None


def value_for_schema(
    schema: Mapping[str, Any],
    *,
    context: _Context | None = None,
    root: Mapping[str, Any] | None = None,
    name: str = "",
    depth: int = 0,
) -> Any:
    """A small value that satisfies ``schema``, filled from the user's text where it can.

    Objects get their required properties (all of them when none is listed); a string property
    hinting at an origin (``origin_city``, "where the flight originates") takes the name after
    "from", one hinting at a destination the name after "to", a number-like one the first
    number in the text; other strings take the next capitalised name not yet used (``Miami``,
    ``Seattle``), or else the whole question. Integers and numbers take numbers from the text
    (or 1), arrays get one item, enums their first value.
    """
    context = context or _Context("")
    root = root if root is not None else schema
    if depth > _MAX_SCHEMA_DEPTH:
        return None
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return value_for_schema(
            _resolve_ref(root, ref), context=context, root=root, name=name, depth=depth + 1
        )
    if "const" in schema:
        return schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    for combinator in ("anyOf", "oneOf", "allOf"):
        options = schema.get(combinator)
        if isinstance(options, list) and options:
            return _option_value(options, context, root, name, depth)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "string"
    if kind == "object":
        return _object_value(schema, context, root, depth)
    if kind == "array":
        return _array_value(schema, context, root, name, depth)
    return _scalar_value(kind, schema, context, name)


def _option_value(
    options: list[Any], context: _Context, root: Mapping[str, Any], name: str, depth: int
) -> Any:
    usable = [o for o in options if isinstance(o, dict) and o.get("type") != "null"]
    if depth >= _NESTING_ENDS and len(usable) < len(options):
        return None  # deep in a recursive schema: end it where null is allowed
    first = usable[0] if usable else options[0]
    return value_for_schema(first, context=context, root=root, name=name, depth=depth + 1)


def _array_value(
    schema: Mapping[str, Any], context: _Context, root: Mapping[str, Any], name: str, depth: int
) -> list[Any]:
    items = schema.get("items")
    least = int(schema.get("minItems", 0))
    count = min(max(0 if depth >= _NESTING_ENDS else 1, least), 10)
    if not isinstance(items, dict):
        return ["item"] * count
    return [
        value_for_schema(items, context=context, root=root, name=name, depth=depth + 1)
        for _ in range(count)
    ]


def _scalar_value(kind: Any, schema: Mapping[str, Any], context: _Context, name: str) -> Any:
    if kind == "integer":
        return int(context.next_number())
    if kind == "number":
        return context.next_number()
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return _string_value(schema, context, name)


def _object_value(
    schema: Mapping[str, Any], context: _Context, root: Mapping[str, Any], depth: int
) -> dict[str, Any]:
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return {}
    required = schema.get("required")
    names = [n for n in properties if n in required] if isinstance(required, list) else None
    if not names:
        names = list(properties)
    result: dict[str, Any] = {}
    # Origin and destination first, so that generic string properties take the other names.
    ordered = sorted(
        names,
        key=lambda n: 0 if _hint(n, str(properties[n].get("description", ""))) else 1,
    )
    for prop in ordered:
        sub = properties[prop] if isinstance(properties[prop], dict) else {}
        result[prop] = value_for_schema(sub, context=context, root=root, name=prop, depth=depth + 1)
    return {prop: result[prop] for prop in names}


def _string_value(schema: Mapping[str, Any], context: _Context, name: str) -> str:
    fmt = schema.get("format")
    if fmt == "date":
        return "2025-01-01"
    if fmt == "date-time":
        return "2025-01-01T00:00:00Z"
    hint = _hint(name, str(schema.get("description", "")))
    value: str | None = None
    if hint == "from":
        value = context.name_after(("from",)) or context.next_name()
    elif hint == "to":
        value = context.name_after(("to",)) or context.next_name()
    elif hint == "number":
        number = context.next_number()
        value = str(number)
    elif hint == "text":
        value = context.text
    if value is None:
        value = context.next_name() or context.text or name or "text"
    return value


def _resolve_ref(root: Mapping[str, Any], ref: str) -> Mapping[str, Any]:
    if ref == "#":
        return root
    if not ref.startswith("#/"):
        return {}
    node: Any = root
    for part in ref[2:].split("/"):
        if not isinstance(node, dict):
            return {}
        node = node.get(part.replace("~1", "/").replace("~0", "~"))
    return node if isinstance(node, dict) else {}
