"""The Ray Data callable classes: called as Ray Data calls them (a dict of columns per batch),
against servers on 127.0.0.1, and the example run on a real local Ray when Ray is installed."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from inference.exceptions import ClientAuthenticationError
from inference.ray import ChatCompletions, Embeddings
from inference.testing import Emulator, EmulatorOptions

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def emulator_thread() -> Iterator[Emulator]:
    """An emulator served from a background thread (the stages are called synchronously)."""
    with Emulator().run_in_thread() as emulator:
        yield emulator


def questions(count: int) -> dict[str, list[object]]:
    """A batch of ``count`` rows with a ``messages`` column and an ``n`` column."""
    return {
        "messages": [[{"role": "user", "content": f"Question {i}"}] for i in range(count)],
        "n": list(range(count)),
    }


def test_rows_come_back_with_the_answer_columns(emulator_thread: Emulator) -> None:
    """Every row keeps its columns, in order, and gains content, usage, status and the whole
    response; body_defaults and model reach the request."""
    stage = ChatCompletions(
        emulator_thread.endpoint(), body_defaults={"max_tokens": 5}, model="m-1"
    )
    try:
        out = stage(questions(6))
    finally:
        stage.close()
    assert out["n"] == list(range(6))
    assert out["messages"][2] == [{"role": "user", "content": "Question 2"}]
    assert all(status == 200 for status in out["status_code"])
    assert out["error"] == [None] * 6
    assert all(text for text in out["content"])
    assert out["completion_tokens"] == [5] * 6
    assert out["finish_reason"] == ["length"] * 6
    first = json.loads(out["response"][0])
    assert first["object"] == "chat.completion"
    assert first["model"] == "m-1"
    sent = [r.json for r in emulator_thread.requests]
    assert all(body["max_tokens"] == 5 and body["model"] == "m-1" for body in sent)


def test_numpy_columns_are_read_as_plain_data(emulator_thread: Emulator) -> None:
    """Ray hands numpy arrays (object arrays of lists and dicts): they are sent as JSON."""
    numpy = pytest.importorskip("numpy", reason="numpy comes with Ray")
    messages = numpy.empty(2, dtype=object)
    messages[0] = numpy.array([{"role": "user", "content": "Hi"}], dtype=object)
    messages[1] = numpy.array([{"role": "user", "content": "Hello"}], dtype=object)
    stage = ChatCompletions(emulator_thread.endpoint())
    try:
        out = stage({"messages": messages, "id": numpy.arange(2)})
    finally:
        stage.close()
    assert out["id"] == [0, 1]
    assert out["status_code"] == [200, 200]
    assert [r.json["messages"][0]["content"] for r in emulator_thread.requests] == ["Hi", "Hello"]


def test_a_whole_body_column_is_sent_as_written(emulator_thread: Emulator) -> None:
    """A ``body`` column replaces messages and defaults."""
    body = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3, "seed": 7}
    stage = ChatCompletions(emulator_thread.endpoint(), body_defaults={"max_tokens": 50})
    try:
        out = stage({"body": [body]})
    finally:
        stage.close()
    assert out["completion_tokens"] == [3]
    assert emulator_thread.requests[0].json == body


def test_failed_rows_carry_their_error_and_the_rest_succeed(emulator_thread: Emulator) -> None:
    """An invalid row (no messages) is not sent; a refused one (HTTP 400) keeps its status and
    message; the others are answered."""
    batch = {
        "messages": [
            [{"role": "user", "content": "fine"}],
            None,
            [{"role": "user", "content": "[content-filter] no"}],
        ]
    }
    stage = ChatCompletions(emulator_thread.endpoint())
    try:
        out = stage(batch)
    finally:
        stage.close()
    assert out["status_code"] == [200, None, 400]
    assert out["error"][0] is None
    assert out["error"][1].startswith("invalid request: body.messages must be")
    assert out["error"][2].startswith("HTTP 400: ")
    assert out["content"][2] is None
    assert len(emulator_thread.requests) == 2


def test_a_refused_key_fails_the_batch() -> None:
    """An error every row would meet is raised (the dataset fails), not written in each row."""
    with Emulator(EmulatorOptions(key="right")).run_in_thread() as emulator:
        stage = ChatCompletions(emulator.endpoint(), "wrong")
        try:
            with pytest.raises(ClientAuthenticationError):
                stage(questions(3))
        finally:
            stage.close()


def test_an_actor_learns_and_keeps_the_pace_across_batches() -> None:
    """The pace lives in the actor: 429s of the first batch teach the limit, and later
    batches are sent under it with every row answered."""
    options = EmulatorOptions(rate_limit_requests=1200, rate_limit_window=0.25)  # holds 5
    with Emulator(options).run_in_thread() as emulator:
        stage = ChatCompletions(emulator.endpoint(), concurrency_per_actor=10)
        try:
            first = stage(questions(12))
            second = stage(questions(12))
        finally:
            stage.close()
        refused = len(emulator.requests) - 24
    assert first["status_code"] == second["status_code"] == [200] * 12
    assert refused > 0
    assert stage._limiter.requests_per_minute == 1200


def test_embeddings_rows_get_their_vectors(emulator_thread: Emulator) -> None:
    """Embeddings: one ``input`` text per row, its vector in ``embedding``."""
    stage = Embeddings(emulator_thread.endpoint(), body_defaults={"dimensions": 4})
    try:
        out = stage({"input": ["a", "b", "c"]})
    finally:
        stage.close()
    assert [len(vector) for vector in out["embedding"]] == [4, 4, 4]
    assert out["status_code"] == [200] * 3
    assert all(tokens for tokens in out["total_tokens"])


def test_an_embeddings_row_with_several_texts_is_a_row_error(emulator_thread: Emulator) -> None:
    """A row has one embedding column: a row whose input holds several texts gets an error
    saying to split it, and nothing is sent for it (it got the first text's vector, the
    others' lost); a one-text list is still one text."""
    stage = Embeddings(emulator_thread.endpoint(), body_defaults={"dimensions": 4})
    try:
        out = stage({"input": ["a", ["b", "c", "d"], ["e"]]})
    finally:
        stage.close()
    assert [len(vector or []) for vector in out["embedding"]] == [4, 0, 4]
    assert out["error"][0] is None and out["error"][2] is None
    assert out["error"][1] == (
        "invalid request: input holds 3 texts, but a row has one embedding column: put each "
        "text in a row of its own"
    )
    assert sorted(r.json["input"] for r in emulator_thread.requests) == [["a"], ["e"]]


def test_close_is_idempotent_and_bad_concurrency_is_refused(emulator_thread: Emulator) -> None:
    """close() twice is fine; concurrency_per_actor below 1 is refused at construction."""
    stage = ChatCompletions(emulator_thread.endpoint())
    stage.close()
    stage.close()
    with pytest.raises(ValueError, match="concurrency_per_actor=0"):
        ChatCompletions(emulator_thread.endpoint(), concurrency_per_actor=0)


@pytest.mark.timeout(240)
def test_the_ray_data_example_runs_on_a_local_ray() -> None:
    """examples/ray_data/chat.py answers 40 rows on two actors of a local Ray, against the
    emulator, with no failure. scripts/test.sh installs the ``[ray]`` extra: without Ray the
    test fails, saying what to install."""
    if importlib.util.find_spec("ray") is None:
        pytest.fail(
            "Ray is not installed (pip install 'aioinference[ray]'): the example cannot run"
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AZURE_INFERENCE")}
    run = subprocess.run(
        [sys.executable, str(REPO / "examples" / "ray_data" / "chat.py")],
        capture_output=True,
        text=True,
        timeout=220,
        env=env,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "40 rows, 0 failed" in run.stdout
    # Rows come back in the order the actors finish them.
    assert re.search(r"How many feet are in \d+ miles\? -> \S", run.stdout)


def test_client_options_the_client_refuses_fail_the_constructor(
    emulator_thread: Emulator,
) -> None:
    """A misspelt client option is refused when the actor's stage is built, not written into
    every row's error."""
    with pytest.raises(
        ValueError, match=r"client_options: ChatCompletionsClient\(\) got an unknown"
    ):
        ChatCompletions(emulator_thread.endpoint(), client_options={"max_conections": 2})
    with pytest.raises(
        ValueError, match=r"client_options: EmbeddingsClient\(\) does not take max_stream_bytes"
    ):
        Embeddings(emulator_thread.endpoint(), client_options={"max_stream_bytes": 2})
    assert emulator_thread.requests == []
