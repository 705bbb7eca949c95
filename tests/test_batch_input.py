"""Batch input checks: each bad line is reported with its number and the rule it breaks, and
nothing is sent for it; token estimates; the output file's torn-line repair."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from inference.batch import (
    BatchInputError,
    check_input,
    dry_run,
    estimate_tokens,
    run_batch,
)
from inference.batch._input import parse_lines
from inference.batch._output import ResultFile, scan_results
from inference.exceptions import RequestValidationError
from inference.testing import Emulator


def line(custom_id: Any = "a", **changes: Any) -> bytes:
    """One input line (a chat request) with ``changes`` applied to its keys."""
    data: dict[str, Any] = {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 5},
    }
    data.update(changes)
    return json.dumps({k: v for k, v in data.items() if v is not ...}).encode()


BAD_LINES = [
    (b"{not json", "not valid JSON"),
    # It said "str is not valid UTF-8: surrogates not allowed".
    (
        line(body={"messages": [{"role": "user", "content": "caf\u00e9"}]}).replace(
            b"\\u00e9", b"\xe9"
        ),
        "not UTF-8 text (byte 0xe9 at offset",
    ),
    (b"[1, 2]", "a JSON list"),
    (line(method="GET"), "method must be 'POST'"),
    (line(url="/v1/completions"), "url '/v1/completions' is not supported"),
    (line(body=...), "missing ['body']"),
    (line(extra=1), "unknown ['extra']"),
    (line(body=[1]), "body must be a JSON object"),
    (line(body={"messages": []}), "body.messages must be a non-empty list"),
    (line(body={"messages": ["hi"]}), "body.messages[0] must be an object with a role"),
    (
        line(body={"messages": [{"role": "user", "content": "x"}], "stream": True}),
        "body.stream is not supported",
    ),
    (line(custom_id=""), "custom_id must be a non-empty string"),
    (line(custom_id=7), "custom_id must be a non-empty string"),
    (line(custom_id="x" * 513), "longer than 512"),
    (line(url="/v1/embeddings", body={"input": ""}), "body.input must be a non-empty"),
    # What EmbeddingsClient.embed() refuses is refused here (it was a failed result, after
    # the run had started and the valid lines were being sent).
    (
        line(url="/v1/embeddings", body={"input": [[1, 2, 3]]}),
        "body: input[0] is list, not str: embed() takes strings",
    ),
    (
        line(url="/v1/embeddings", body={"input": "a", "dimensions": "256"}),
        "body: dimensions must be a positive int",
    ),
    (
        line(url="/v1/embeddings", body={"input": "a", "encoding_format": "wat"}),
        "body: encoding_format must be one of",
    ),
    (
        line(url="/v1/embeddings", body={"input": "a", "model": 5}),
        "body: model must be a str",
    ),
]


@pytest.mark.parametrize(("raw", "expected"), BAD_LINES)
def test_each_rule_is_reported_with_the_line_number(raw: bytes, expected: str) -> None:
    """A bad line between two good ones is reported as line 2 with its rule."""
    requests, errors = parse_lines([line("first"), raw, line("last")])
    assert [r.custom_id for r in requests] == ["first", "last"]
    assert len(errors) == 1
    assert errors[0].line == 2
    assert expected in errors[0].message
    assert str(errors[0]).startswith("line 2: ")


def test_every_line_with_a_repeated_custom_id_is_refused() -> None:
    """Both lines of a duplicate are refused (which answer belongs to which is ambiguous),
    each naming the other line; blank lines keep the numbering."""
    requests, errors = parse_lines([line("a"), b"", line("b"), line("a"), b"  \n"])
    assert [r.custom_id for r in requests] == ["b"]
    assert [(e.line, e.custom_id) for e in errors] == [(1, "a"), (4, "a")]
    assert "also used on line(s) 4" in errors[0].message
    assert "also used on line(s) 1" in errors[1].message


def test_the_request_kind_comes_from_the_url() -> None:
    """Chat and embeddings urls, with or without /v1, map to their kinds."""
    lines = [
        line("c1", url="/v1/chat/completions"),
        line("c2", url="/chat/completions"),
        line("e1", url="/v1/embeddings", body={"input": ["a", "b"]}),
        line("e2", url="/embeddings", body={"input": "a"}),
        line("e3", url="/embeddings", body={"input": "a", "dimensions": 8, "user": "u"}),
    ]
    requests, errors = parse_lines(lines)
    assert errors == []
    assert [(r.custom_id, r.kind) for r in requests] == [
        ("c1", "chat"),
        ("c2", "chat"),
        ("e1", "embeddings"),
        ("e2", "embeddings"),
        ("e3", "embeddings"),
    ]


def test_a_kind_this_installation_cannot_send_is_an_error() -> None:
    """An embeddings line without an embeddings client is refused, not sent somewhere."""
    requests, errors = parse_lines(
        [line("e", url="/v1/embeddings", body={"input": "a"})], frozenset({"chat"})
    )
    assert requests == []
    assert "embeddings requests (/v1/embeddings) are not available" in errors[0].message


def write_lines(path: Path, lines: list[bytes]) -> None:
    """Write ``lines`` as a JSONL file."""
    path.write_bytes(b"".join(raw + b"\n" for raw in lines))


@pytest.mark.anyio
async def test_invalid_lines_stop_the_run_before_anything_is_sent(
    emulator: Emulator, tmp_path: Path
) -> None:
    """By default one bad line sends nothing at all, and the error lists it by number."""
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_lines(source, [line("a"), line("b", method="PUT"), line("c")])
    with pytest.raises(BatchInputError) as caught:
        await run_batch(source, target, endpoint=emulator.endpoint())
    assert isinstance(caught.value, RequestValidationError)
    assert [e.line for e in caught.value.errors] == [2]
    assert "line 2: method must be 'POST'" in str(caught.value)
    assert emulator.requests == []
    assert not target.exists() or target.read_bytes() == b""


@pytest.mark.anyio
async def test_skip_invalid_sends_only_the_valid_lines(emulator: Emulator, tmp_path: Path) -> None:
    """With skip_invalid the good lines are sent and answered; the bad ones are reported in
    the summary and never reach the server."""
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_lines(source, [line("a"), b"{oops", line("b"), line("a2", url="/v1/responses")])
    summary = await run_batch(source, target, endpoint=emulator.endpoint(), skip_invalid=True)
    assert [e.line for e in summary.invalid] == [2, 4]
    assert summary.succeeded == 2
    assert len(emulator.requests) == 2
    results = [json.loads(x) for x in target.read_text().splitlines()]
    assert sorted(r["custom_id"] for r in results) == ["a", "b"]


def test_an_unreadable_input_file_is_a_clear_error(tmp_path: Path) -> None:
    """A missing input file raises BatchInputError naming it."""
    with pytest.raises(BatchInputError, match="cannot read the input file"):
        check_input(tmp_path / "missing.jsonl")


def test_estimate_counts_text_messages_images_and_max_tokens() -> None:
    """The documented estimate: chars/4 rounded up, 4 per message, 3 per request, 85 per image,
    max_tokens (times n) for the answer; embeddings count their input."""
    body = {
        "messages": [
            {"role": "system", "content": "x" * 8},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "y" * 5},
                    {"type": "image_url", "image_url": {"url": "data:..."}},
                ],
            },
        ],
        "max_tokens": 10,
        "n": 2,
    }
    assert estimate_tokens("chat", body) == 3 + (4 + 2) + (4 + 2 + 85) + 20
    assert estimate_tokens("chat", {"messages": []}, default_completion=7) == 3 + 7
    assert estimate_tokens("embeddings", {"input": ["abcd", "abcde"]}) == 1 + 2


def test_dry_run_reports_lines_done_and_tokens_without_writing(tmp_path: Path) -> None:
    """--dry-run counts valid, invalid and already-done lines and estimates what is left; it
    neither creates nor changes the output file."""
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_lines(
        source,
        [
            line("a"),
            line("b"),
            b"nope",
            line("c", body={"messages": [{"role": "user", "content": "Hi"}]}),
        ],
    )
    done = {
        "id": "1",
        "custom_id": "a",
        "response": {"status_code": 200, "body": {}},
        "error": None,
    }
    target.write_text(json.dumps(done) + "\n" + '{"torn')
    before = target.read_bytes()
    plan = dry_run(source, target)
    assert (plan.requests, len(plan.errors), plan.done, plan.to_send) == (3, 1, 1, 2)
    per_request = 3 + 4 + 1  # framing, one message, "Hi"
    assert plan.prompt_tokens == 2 * per_request
    assert plan.completion_tokens == 5
    assert plan.unbounded == 1
    assert "line 3: not valid JSON" in plan.describe()
    assert target.read_bytes() == before
    assert dry_run(source, tmp_path / "absent.jsonl").done == 0
    assert not (tmp_path / "absent.jsonl").exists()


def test_a_torn_last_line_is_removed_and_the_rest_kept(tmp_path: Path) -> None:
    """A cut last write (no newline, half a JSON object) is truncated away; finished lines stay."""
    path = tmp_path / "out.jsonl"
    good = b'{"custom_id": "a", "response": {"status_code": 200}, "error": null}\n'
    failed = b'{"custom_id": "b", "response": null, "error": {"code": "timeout"}}\n'
    path.write_bytes(good + failed + b'{"custom_id": "c", "resp')
    results = ResultFile(path)
    try:
        assert results.done == {"a": False, "b": True}
        assert results.repaired_bytes == len(b'{"custom_id": "c", "resp')
        assert path.read_bytes() == good + failed
        results.append({"custom_id": "c", "response": {"status_code": 200}, "error": None})
    finally:
        results.close()
    assert path.read_bytes().count(b"\n") == 3
    assert scan_results(path.read_bytes(), str(path)).done == {"a": False, "b": True, "c": False}


def test_a_bad_line_in_the_middle_refuses_the_file(tmp_path: Path) -> None:
    """Garbage followed by good lines is not a torn write: the file is refused, not changed."""
    path = tmp_path / "out.jsonl"
    data = b'{"custom_id": "a", "error": null}\ngarbage\n{"custom_id": "b", "error": null}\n'
    path.write_bytes(data)
    with pytest.raises(RequestValidationError, match="line 2 is not a result line"):
        ResultFile(path)
    assert path.read_bytes() == data


def test_a_whole_line_that_is_not_a_result_is_refused_not_cut(tmp_path: Path) -> None:
    """Only bytes after the last line feed count as a torn write: a whole last line that is
    not a result (here a request line) refuses the file and leaves it as it was."""
    path = tmp_path / "out.jsonl"
    data = b'{"custom_id": "a", "error": null}\n' + line("b") + b"\n"
    path.write_bytes(data)
    with pytest.raises(RequestValidationError, match="line 2 is not a result line"):
        ResultFile(path)
    assert path.read_bytes() == data


@pytest.mark.anyio
async def test_the_input_given_as_the_output_is_refused_and_kept(
    emulator: Emulator, tmp_path: Path
) -> None:
    """The same file twice (or a swapped pair) is refused before anything is sent or cut."""
    source = tmp_path / "in.jsonl"
    write_lines(source, [line("a"), line("b")])
    before = source.read_bytes()
    with pytest.raises(BatchInputError, match="is the input file"):
        await run_batch(source, source, endpoint=emulator.endpoint())
    other = tmp_path / "other.jsonl"
    write_lines(other, [line("a"), line("b")])
    with pytest.raises(RequestValidationError, match="line 1 is not a result line"):
        await run_batch(source, other, endpoint=emulator.endpoint())
    assert source.read_bytes() == before
    assert other.read_bytes() == before
    assert emulator.requests == []
