"""Batch runs end to end against servers on 127.0.0.1: the output format, the concurrency bound,
progress, resuming, failures that are results and failures that stop the run, the CLI."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from inference import _cli
from inference.batch import (
    BatchInputError,
    Counts,
    PlainProgress,
    run_batch,
    run_batch_sync,
)
from inference.exceptions import (
    ClientAuthenticationError,
    RequestValidationError,
    ServiceRequestError,
)
from inference.testing import Emulator, EmulatorOptions


def write_requests(path: Path, count: int, start: int = 0) -> list[str]:
    """Chat requests r<start>... as JSONL; their custom_ids."""
    ids = []
    with path.open("w") as file:
        for i in range(start, start + count):
            body = {"messages": [{"role": "user", "content": f"Question {i}"}], "max_tokens": 4}
            request = {"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions"}
            file.write(json.dumps({**request, "body": body}) + "\n")
            ids.append(f"r{i}")
    return ids


def results(path: Path) -> list[dict[str, Any]]:
    """The output file's lines."""
    return [json.loads(x) for x in path.read_text().splitlines()]


@pytest.mark.anyio
async def test_results_have_the_openai_batch_output_shape(
    emulator: Emulator, tmp_path: Path
) -> None:
    """Each line: id, custom_id, response (status_code, request_id, body), error null; the body
    is the service's chat.completion, and usage adds up to the summary's tokens."""
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    ids = write_requests(source, 5)
    summary = await run_batch(source, target, endpoint=emulator.endpoint())
    lines = results(target)
    assert sorted(r["custom_id"] for r in lines) == ids
    for record in lines:
        assert set(record) == {"id", "custom_id", "response", "error"}
        assert record["id"].startswith("batch_req_")
        assert record["error"] is None
        response = record["response"]
        assert response["status_code"] == 200
        assert response["request_id"]
        assert response["body"]["object"] == "chat.completion"
        assert response["body"]["choices"][0]["message"]["content"]
    assert len({r["id"] for r in lines}) == 5
    served_ids = {r.headers.get("x-ms-client-request-id") for r in emulator.requests}
    assert len(served_ids) == 5
    assert summary.tokens == sum(r["response"]["body"]["usage"]["total_tokens"] for r in lines)
    assert (summary.total, summary.succeeded, summary.failed, summary.skipped) == (5, 5, 0, 0)
    assert summary.complete


class SlowServer:
    """A chat-completions server that answers after a delay and counts requests in flight."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.in_flight = 0
        self.most = 0
        self.served = 0

    async def handle(self, request: web.Request) -> web.Response:
        """Answer one request after the delay."""
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        self.served += 1
        body = {
            "id": "x",
            "object": "chat.completion",
            "model": "m",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "ok"},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
        return web.json_response(body)


@pytest.fixture
async def slow_server(anyio_backend: str) -> AsyncIterator[tuple[SlowServer, str]]:
    """A SlowServer on 127.0.0.1 and its OpenAI-compatible endpoint URL."""
    server = SlowServer(0.02)
    app = web.Application()
    app.router.add_post("/v1/chat/completions", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield server, f"http://127.0.0.1:{port}/v1"
    finally:
        await runner.cleanup()


@pytest.mark.anyio
@pytest.mark.parametrize("concurrency", [1, 4])
async def test_no_more_than_concurrency_requests_are_in_flight(
    slow_server: tuple[SlowServer, str], tmp_path: Path, concurrency: int
) -> None:
    """The server never sees more requests at once than the concurrency, and does see that
    many (the bound is used, not just respected)."""
    server, endpoint = slow_server
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_requests(source, 24)
    summary = await run_batch(source, target, endpoint=endpoint, concurrency=concurrency)
    assert summary.succeeded == 24
    assert server.most == concurrency


@pytest.mark.anyio
async def test_a_rerun_sends_only_what_has_no_result(emulator: Emulator, tmp_path: Path) -> None:
    """Results already in the output are skipped; the new ones are appended after them."""
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_requests(source, 3)
    await run_batch(source, target, endpoint=emulator.endpoint())
    first = target.read_bytes()
    write_requests(source, 6)  # the same three, and three more
    emulator.requests.clear()
    summary = await run_batch(source, target, endpoint=emulator.endpoint())
    assert (summary.skipped, summary.succeeded) == (3, 3)
    sent = sorted(r.json["messages"][0]["content"] for r in emulator.requests)
    assert sent == ["Question 3", "Question 4", "Question 5"]
    assert target.read_bytes().startswith(first)
    assert sorted(r["custom_id"] for r in results(target)) == [f"r{i}" for i in range(6)]


@pytest.mark.anyio
async def test_an_output_of_another_input_is_refused(emulator: Emulator, tmp_path: Path) -> None:
    """Results for custom_ids the input lacks mean the files do not belong together."""
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_requests(source, 2)
    target.write_text(json.dumps({"custom_id": "zzz", "response": None, "error": None}) + "\n")
    with pytest.raises(BatchInputError, match="'zzz'"):
        await run_batch(source, target, endpoint=emulator.endpoint())
    assert emulator.requests == []


@pytest.mark.anyio
async def test_request_errors_are_results_and_retry_failed_sends_them_again(
    emulator: Emulator, tmp_path: Path
) -> None:
    """A 400 (the content filter here) is written as that request's result, in OpenAI's
    shape; retry_failed removes it from the output and sends it again."""
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    lines = [
        {"custom_id": "ok", "body": {"messages": [{"role": "user", "content": "Hi"}]}},
        {
            "custom_id": "refused",
            "body": {"messages": [{"role": "user", "content": "[content-filter] no"}]},
        },
    ]
    source.write_text(
        "".join(
            json.dumps({**x, "method": "POST", "url": "/v1/chat/completions"}) + "\n" for x in lines
        )
    )
    summary = await run_batch(source, target, endpoint=emulator.endpoint())
    assert (summary.succeeded, summary.failed) == (1, 1)
    by_id = {r["custom_id"]: r for r in results(target)}
    refused = by_id["refused"]["response"]
    assert refused["status_code"] == 400
    assert refused["body"]["error"]["code"] == "content_filter"
    assert refused["request_id"]
    emulator.requests.clear()
    again = await run_batch(source, target, endpoint=emulator.endpoint(), retry_failed=True)
    assert (again.retried_failures, again.skipped, again.failed) == (1, 1, 1)
    assert len(emulator.requests) == 1
    assert sorted(r["custom_id"] for r in results(target)) == ["ok", "refused"]


@pytest.mark.anyio
async def test_a_refused_key_stops_the_run_and_writes_nothing(tmp_path: Path) -> None:
    """401 would fail every request the same way: the run stops with the error, and a rerun
    with the right key sends everything."""
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_requests(source, 10)
    async with Emulator(EmulatorOptions(key="right")) as emulator:
        with pytest.raises(ClientAuthenticationError):
            await run_batch(source, target, endpoint=emulator.endpoint(), credential="wrong")
        assert target.read_bytes() == b""
        summary = await run_batch(source, target, endpoint=emulator.endpoint(), credential="right")
    assert summary.succeeded == 10


@pytest.mark.anyio
async def test_an_unreachable_endpoint_stops_the_run(tmp_path: Path) -> None:
    """No server: ServiceRequestError after the client's retries, nothing written."""
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_requests(source, 3)
    async with Emulator() as emulator:
        endpoint = emulator.endpoint()
    with pytest.raises(ServiceRequestError):
        await run_batch(source, target, endpoint=endpoint, client_options={"retry": 0})
    assert target.read_bytes() == b""


def test_the_sync_wrapper_runs_the_same_batch(tmp_path: Path) -> None:
    """run_batch_sync runs a batch from synchronous code."""
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_requests(source, 4)
    with Emulator().run_in_thread() as emulator:
        summary = run_batch_sync(source, target, endpoint=emulator.endpoint(), concurrency=2)
    assert summary.succeeded == 4
    assert len(results(target)) == 4


@pytest.mark.anyio
async def test_the_sync_wrapper_refuses_a_running_loop(tmp_path: Path) -> None:
    """Inside async code run_batch_sync says to await run_batch instead (nothing sent)."""
    source = tmp_path / "in.jsonl"
    write_requests(source, 1)
    with pytest.raises(RequestValidationError, match=r"use await run_batch"):
        run_batch_sync(source, tmp_path / "out.jsonl", endpoint="http://127.0.0.1:9/v1")
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.anyio
async def test_progress_reports_each_result_and_the_end(emulator: Emulator, tmp_path: Path) -> None:
    """A progress sink gets the counts after every result (done, failed, tokens) and once at
    the end; skipped results count as done."""
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_requests(source, 2)
    await run_batch(source, target, endpoint=emulator.endpoint())
    write_requests(source, 5)

    class Recorder:
        def __init__(self) -> None:
            self.updates: list[tuple[int, int, int, int]] = []
            self.closed: Counts | None = None

        def update(self, counts: Counts) -> None:
            self.updates.append((counts.skipped, counts.succeeded, counts.failed, counts.tokens))

        def close(self, counts: Counts) -> None:
            self.closed = counts

    recorder = Recorder()
    summary = await run_batch(source, target, endpoint=emulator.endpoint(), progress=recorder)
    assert [u[:3] for u in recorder.updates] == [(2, 1, 0), (2, 2, 0), (2, 3, 0)]
    assert recorder.updates[-1][3] == summary.tokens > 0
    assert recorder.closed is not None and recorder.closed.total == 5


def test_the_plain_progress_line_shows_done_failed_rate_eta_and_tokens() -> None:
    """Without tqdm: a line every interval with done/total, failed, rate, ETA and tokens."""
    now = [0.0]
    stream = io.StringIO()
    progress = PlainProgress(stream, interval=5.0, clock=lambda: now[0])
    counts = Counts(total=100, skipped=10, succeeded=15, failed=5, tokens=12345)
    now[0] = 2.0
    progress.update(counts)
    assert stream.getvalue() == ""  # not yet: the interval has not passed
    now[0] = 10.0
    progress.update(counts)
    assert stream.getvalue() == (
        "batch: 30/100 done (5 failed), 2.0 req/s, ETA 00:35, 12,345 tokens\n"
    )
    progress.close(counts)
    assert stream.getvalue().count("\n") == 2


@pytest.mark.anyio
async def test_the_tqdm_bar_counts_done_and_shows_failed_and_tokens(
    emulator: Emulator, tmp_path: Path
) -> None:
    """progress=True with tqdm installed draws its bar with the failed and token counts."""
    pytest.importorskip("tqdm", reason="tqdm is the [batch] extra")
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_requests(source, 3)
    stream = io.StringIO()
    await run_batch(
        source, target, endpoint=emulator.endpoint(), progress=True, progress_stream=stream
    )
    text = stream.getvalue()
    assert "3/3" in text
    assert "failed=0" in text and "tokens=" in text


def run_cli(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run the command line; exit code, stdout, stderr."""
    code = _cli.main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_batch_against_the_emulator(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`batch IN OUT --emulator` writes the results and a summary; a second run sends nothing."""
    monkeypatch.delenv(_cli.ENDPOINT_ENV, raising=False)
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_requests(source, 3)
    code, _, err = run_cli("batch", str(source), str(target), "--emulator", capsys=capsys)
    assert code == 0
    assert "3 sent" in err and "3 succeeded, 0 failed" in err
    assert len(results(target)) == 3
    code, _, err = run_cli("batch", str(source), str(target), "--emulator", capsys=capsys)
    assert code == 0
    assert "0 sent" in err and "3 already done" in err


def test_cli_batch_needs_an_endpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --endpoint, $AZURE_INFERENCE_ENDPOINT or --emulator, batch refuses (exit 2)
    rather than storing emulator answers as results."""
    monkeypatch.delenv(_cli.ENDPOINT_ENV, raising=False)
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_requests(source, 1)
    code, _, err = run_cli("batch", str(source), str(target), capsys=capsys)
    assert code == _cli.EXIT_USAGE
    assert "no endpoint" in err and "--emulator" in err
    assert not target.exists()


def test_cli_batch_reports_invalid_lines_and_dry_run_estimates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Invalid lines: exit 2 with each line number; --dry-run prints the estimate."""
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_requests(source, 2)
    with source.open("a") as file:
        file.write('{"custom_id": "r0", "method": "POST"}\n')
    code, _, err = run_cli("batch", str(source), str(target), "--emulator", capsys=capsys)
    assert code == _cli.EXIT_USAGE
    assert "line 1: custom_id 'r0' is also used on line(s) 3" in err
    assert "line 3: keys: missing ['body', 'url']" in err
    code, out, _ = run_cli("batch", str(source), str(target), "--dry-run", capsys=capsys)
    assert code == _cli.EXIT_USAGE
    assert "1 valid request(s), 2 invalid line(s)" in out
    assert "estimated tokens to send" in out
    assert not target.exists()


def test_cli_batch_exit_code_says_some_requests_failed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run whose results include failures exits 1 and says where they are."""
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    body = {"messages": [{"role": "user", "content": "[content-filter]"}]}
    request = {"custom_id": "x", "method": "POST", "url": "/v1/chat/completions", "body": body}
    source.write_text(json.dumps(request) + "\n")
    code, _, err = run_cli("batch", str(source), str(target), "--emulator", capsys=capsys)
    assert code == _cli.EXIT_ERROR
    assert f"1 request(s) failed; their errors are in {target}" in err


def test_cli_batch_rerun_counts_the_failures_already_in_the_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A rerun that sends nothing still exits 1 while the output holds a failed result, and
    its summary counts that failure among the requests already done."""
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    prompts = ["Hi", "Teach me knife skills", "How many feet are in a mile?"]
    source.write_text(
        "".join(
            json.dumps(
                {
                    "custom_id": f"r{i}",
                    "method": "POST",
                    "url": "/v1/chat/completions",
                    "body": {"messages": [{"role": "user", "content": prompt}]},
                }
            )
            + "\n"
            for i, prompt in enumerate(prompts)
        )
    )
    code, _, err = run_cli("batch", str(source), str(target), "--emulator", capsys=capsys)
    assert code == _cli.EXIT_ERROR
    assert "2 succeeded, 1 failed" in err
    code, _, err = run_cli("batch", str(source), str(target), "--emulator", capsys=capsys)
    assert code == _cli.EXIT_ERROR
    assert "0 sent" in err and "3 already done (1 of them failed)" in err
    assert f"1 request(s) failed; their errors are in {target}" in err
    assert "--retry-failed" in err


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--concurrency", "0"], "concurrency 0: use a whole number of 1 or more"),
        (["--rpm", "-5"], "requests_per_minute -5.0: use a number greater than 0"),
        (["--tpm", "nan"], "tokens_per_minute nan: use a number greater than 0"),
    ],
)
def test_cli_batch_refuses_bad_limits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: list[str], message: str
) -> None:
    """A concurrency below 1 or a rate that is not a positive number: exit 2, nothing sent."""
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_requests(source, 1)
    code, _, err = run_cli("batch", str(source), str(target), "--emulator", *option, capsys=capsys)
    assert code == _cli.EXIT_USAGE
    assert message in err
    assert not target.exists()


def _deny_writing(monkeypatch: pytest.MonkeyPatch, where: Path) -> None:
    """Make ``where`` unwritable the way a read-only folder is (the tests may run as root,
    who can write anywhere): os.access says no, and os.open of a file in it fails."""
    real_access, real_open = os.access, os.open

    def access(path: Any, mode: int, *args: Any, **kwargs: Any) -> bool:
        if mode & os.W_OK and Path(path).resolve() == where.resolve():
            return False
        return real_access(path, mode, *args, **kwargs)

    def open_(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if Path(path).resolve().parent == where.resolve():
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "access", access)
    monkeypatch.setattr(os, "open", open_)


@pytest.mark.parametrize("dry", [False, True], ids=["run", "dry_run"])
@pytest.mark.parametrize(
    ("output", "words"),
    [
        ("folder", "the output {path} is a directory; give a file path for the results"),
        ("missing/out.jsonl", "the folder {parent} does not exist; create it first"),
        ("in.jsonl/out.jsonl", "a part of {parent} is a file, not a folder"),
        ("locked/out.jsonl", "cannot write the output {path} (permission denied); choose"),
    ],
    ids=["directory", "no_folder", "file_as_folder", "not_writable"],
)
def test_cli_batch_refuses_an_output_path_it_cannot_write(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    output: str,
    words: str,
    dry: bool,
) -> None:
    """An output path that is a directory, in a folder that does not exist (or is a file) or
    not writable showed Python's "[Errno ...]" text (exit 1), after the emulator started; a
    dry run said all was well. Now: one line naming the path and what to do, exit 2, before
    anything starts, nothing created."""
    source = tmp_path / "in.jsonl"
    write_requests(source, 1)
    (tmp_path / "folder").mkdir()
    (tmp_path / "locked").mkdir()
    _deny_writing(monkeypatch, tmp_path / "locked")
    target = tmp_path / output
    flags = ["--dry-run"] if dry else ["--emulator"]
    code, out, err = run_cli("batch", str(source), str(target), *flags, capsys=capsys)
    expected = words.format(path=target, parent=target.parent)
    assert (code, out) == (_cli.EXIT_USAGE, "")
    assert err.count("\n") == 1
    assert expected in err
    assert "Errno" not in err and "emulator" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "in.jsonl", "locked"]
    assert list((tmp_path / "folder").iterdir()) == list((tmp_path / "locked").iterdir()) == []


@pytest.mark.anyio
async def test_an_output_that_cannot_be_opened_is_a_clear_error_from_run_batch(
    emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """run_batch() refuses an unusable output path the same way, before sending; and an
    open that fails past the checks (os.access said yes) is told in the same words."""
    source = tmp_path / "in.jsonl"
    write_requests(source, 1)
    with pytest.raises(RequestValidationError, match="is a directory; give a file path"):
        await run_batch(source, tmp_path, endpoint=emulator.endpoint())
    (tmp_path / "locked").mkdir()
    _deny_writing(monkeypatch, tmp_path / "locked")
    monkeypatch.setattr(os, "access", lambda *args, **kwargs: True)
    target = tmp_path / "locked" / "out.jsonl"
    with pytest.raises(RequestValidationError) as info:
        await run_batch(source, target, endpoint=emulator.endpoint())
    assert str(info.value) == (
        f"cannot write the output {target} (Permission denied); choose an output path you can "
        "write to, or change the permissions"
    )
    assert emulator.requests == []


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_cli_batch_refuses_an_input_path_it_cannot_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    """An input path that does not exist or is a directory: one line naming it and what to
    give, exit 2, no output written."""
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    if kind == "directory":
        source.mkdir()
    code, _, err = run_cli("batch", str(source), str(target), "--emulator", capsys=capsys)
    assert code == _cli.EXIT_USAGE
    assert f"cannot read the input file {source}: " in err
    assert "give the path of the JSONL file of requests" in err
    assert "Errno" not in err
    assert not target.exists()


@pytest.mark.anyio
async def test_chat_and_embeddings_lines_go_to_their_endpoints(
    emulator: Emulator, tmp_path: Path
) -> None:
    """Each line is dispatched by its url: chat to /chat/completions, embeddings to
    /embeddings (named parameters by name, other keys passed through); both results are
    written in the batch output shape with their usage counted."""
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    lines = [
        {
            "custom_id": "chat",
            "url": "/v1/chat/completions",
            "body": {"messages": [{"role": "user", "content": "Hi"}]},
        },
        {
            "custom_id": "vectors",
            "url": "/v1/embeddings",
            "body": {"input": ["one", "two"], "dimensions": 8, "user": "u-1"},
        },
    ]
    source.write_text("".join(json.dumps({**x, "method": "POST"}) + "\n" for x in lines))
    summary = await run_batch(source, target, endpoint=emulator.endpoint())
    assert (summary.succeeded, summary.failed) == (2, 0)
    paths = sorted(r.path for r in emulator.requests)
    assert paths == ["/models/chat/completions", "/models/embeddings"]
    embedded = next(r for r in emulator.requests if r.path.endswith("/embeddings"))
    assert embedded.json == {"input": ["one", "two"], "dimensions": 8, "user": "u-1"}
    by_id = {r["custom_id"]: r for r in results(target)}
    vectors = by_id["vectors"]["response"]
    assert vectors["status_code"] == 200
    assert [len(item["embedding"]) for item in vectors["body"]["data"]] == [8, 8]
    tokens = [r["response"]["body"]["usage"]["total_tokens"] for r in by_id.values()]
    assert summary.tokens == sum(tokens)


@pytest.mark.anyio
async def test_embeddings_requests_are_rate_limited_too(tmp_path: Path) -> None:
    """The emulator's limit counts embeddings requests; the run learns it from their headers."""
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    line = {"method": "POST", "url": "/v1/embeddings", "body": {"input": "text"}}
    source.write_text("".join(json.dumps({**line, "custom_id": f"e{i}"}) + "\n" for i in range(12)))
    options = EmulatorOptions(rate_limit_requests=1200, rate_limit_window=0.25)  # holds 5
    async with Emulator(options) as emulator:
        summary = await run_batch(source, target, endpoint=emulator.endpoint(), concurrency=6)
    assert summary.requests_per_minute == 1200
    assert summary.succeeded == 12
    assert len(results(target)) == 12


def test_the_batch_example_runs_and_its_rerun_sends_nothing() -> None:
    """examples/batch/run.py estimates, runs and reruns its file against the emulator."""
    script = Path(__file__).resolve().parents[1] / "examples" / "batch" / "run.py"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AZURE_INFERENCE")}
    run = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=50, env=env
    )
    assert run.returncode == 0, run.stderr
    assert "5 valid request(s), 0 invalid line(s)" in run.stdout
    assert "5 sent" in run.stdout and "5 succeeded, 0 failed" in run.stdout
    assert "0 sent" in run.stdout and "5 already done" in run.stdout


def test_cli_batch_passes_allow_http_to_the_clients(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--allow-http reaches the clients: a key may then go to a non-loopback http host."""
    seen: dict[str, object] = {}

    async def fake_run_batch(*args: object, **kwargs: object) -> object:
        seen.update(kwargs)
        raise ServiceRequestError("stop here")

    monkeypatch.setattr("inference.batch._cli.run_batch", fake_run_batch)
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_requests(source, 1)
    endpoint = ["--endpoint", "http://inference.invalid:8000/v1", "--key", "k"]
    run_cli("batch", str(source), str(target), *endpoint, "--allow-http", capsys=capsys)
    assert seen["client_options"] == {"enforce_https": False}
    run_cli("batch", str(source), str(target), *endpoint, capsys=capsys)
    assert seen["client_options"] == {}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"max_conections": 5}, "client_options: ChatCompletionsClient() got an unknown parameter"),
        ({"timeout": "soon"}, "client_options: timeout='soon'"),
        ({"response_hook": 1}, "client_options['response_hook'] must be a function"),
    ],
)
async def test_client_options_the_client_refuses_stop_the_run_before_sending(
    emulator: Emulator, tmp_path: Path, options: dict[str, Any], words: str
) -> None:
    """A misspelt or mistyped client option fails every request the same way: it is raised
    before anything is sent (each request was written as a failed result; a response_hook
    raised a bare ExceptionGroup)."""
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_requests(source, 3)
    with pytest.raises(RequestValidationError) as info:
        await run_batch(source, target, endpoint=emulator.endpoint(), client_options=options)
    assert str(info.value).startswith(words)
    assert emulator.requests == []
    assert not target.exists() or target.read_bytes() == b""


@pytest.mark.anyio
async def test_a_response_hook_in_client_options_sees_every_answer(
    emulator: Emulator, tmp_path: Path
) -> None:
    """Your response_hook is called for every response head, after the runner's own (giving
    one raised TypeError inside the run, as a bare ExceptionGroup)."""
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_requests(source, 4)
    seen: list[int] = []
    summary = await run_batch(
        source,
        target,
        endpoint=emulator.endpoint(),
        client_options={"response_hook": lambda status, headers: seen.append(status)},
    )
    assert summary.succeeded == 4
    assert seen == [200] * 4


@pytest.mark.anyio
async def test_a_success_status_with_a_broken_body_is_a_failure(
    emulator: Emulator, tmp_path: Path
) -> None:
    """HTTP 200 with a body that is not the API's JSON (a proxy's HTML page) is a failed
    result with error.code 'invalid_response' (it was stored as status 200, counted as
    succeeded and skipped by every rerun); --retry-failed sends it again."""
    from _fault_server import FaultServer, raw

    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    ids = write_requests(source, 3)
    page = raw(200, b"<html>Sign in to the proxy</html>", content_type="text/html")
    async with FaultServer(default=page) as server:
        summary = await run_batch(source, target, endpoint=server.endpoint())
    assert (summary.succeeded, summary.failed) == (0, 3)
    lines = results(target)
    assert all(r["response"] is None for r in lines)
    assert {r["error"]["code"] for r in lines} == {"invalid_response"}
    assert "not the expected chat-completions JSON (content-type text/html)" in str(
        lines[0]["error"]["message"]
    )
    rerun = await run_batch(source, target, endpoint=emulator.endpoint(), retry_failed=True)
    assert rerun.succeeded == 3
    assert sorted(r["custom_id"] for r in results(target)) == ids
