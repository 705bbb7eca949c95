"""The command line, driven the way people use it: subprocesses, pipes and a pseudo-terminal.

Every test talks to an emulator started in this process (in a thread) or to the CLI's own
built-in emulator; every wait is bounded so a bug fails the test instead of hanging the suite.
"""

from __future__ import annotations

import importlib.metadata
import io
import json
import logging
import os
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import anyio
import pytest
from _fault_server import FaultServer, chunk_event, error, raw, reset, sse

from inference import ChatCompletionsClient
from inference._cli import (
    EXIT_AUTH,
    EXIT_BROKEN_PIPE,
    EXIT_CONNECTION,
    EXIT_CONTENT_FILTER,
    EXIT_ERROR,
    EXIT_NOT_FOUND,
    EXIT_SERVICE,
    EXIT_USAGE,
    main,
)
from inference._cli_args import build_parser
from inference._cli_errors import cli_terms, describe
from inference._streamparser import StreamParser
from inference.batch._cli import _client_options as batch_client_options
from inference.exceptions import ResponseTooLargeError
from inference.models import ChatCompletions, UserMessage
from inference.testing import Emulator, EmulatorOptions

KEY = "test-key"
MILE_QUESTION = "How many feet are in a mile?"
MILE_ANSWER = (
    "There are 5,280 feet in a mile. The figure comes from the imperial and U.S. customary "
    "systems, where a mile is defined as 1,760 yards of three feet each."
)
JOKE_ANSWER = "Why did the developer go broke? Because they used up all their cache."
RUN_TIMEOUT = 30.0  # seconds; a healthy run takes about one


# ------------------------------------------------------------------------------ helpers


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    """An emulator that requires the key ``KEY``, served from a thread of this process."""
    with Emulator(EmulatorOptions(key=KEY)).run_in_thread() as emu:
        yield emu


@pytest.fixture
def fresh_emulator() -> Iterator[Emulator]:
    """A private emulator (key ``KEY``) whose options a test may change."""
    with Emulator(EmulatorOptions(key=KEY)).run_in_thread() as emu:
        yield emu


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without endpoint settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AZURE_INFERENCE_")}
    env.update(extra)
    return env


def run_cli(
    *args: str,
    input: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m inference ARGS`` to its end (stdin: ``input`` or nothing)."""
    return subprocess.run(
        [sys.executable, "-m", "inference", *args],
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=dict(env) if env is not None else clean_env(),
        cwd=cwd,
        timeout=RUN_TIMEOUT,
        check=False,
    )


def run_cli_bytes(
    *args: str | bytes, input: bytes | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m inference ARGS`` with arguments and stdin given as bytes where they
    are not text (stdin: ``input`` or nothing); stdout and stderr decoded."""
    done = subprocess.run(
        [sys.executable.encode(), b"-m", b"inference", *(os.fsencode(arg) for arg in args)],
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        env=clean_env(),
        timeout=RUN_TIMEOUT,
        check=False,
    )
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode(errors="replace"), done.stderr.decode()
    )


def connect(emu: Emulator) -> list[str]:
    """The options that point the CLI at ``emu``."""
    return ["--endpoint", emu.endpoint(), "--key", KEY]


def assert_one_error_line(result: subprocess.CompletedProcess[str], exit_code: int) -> str:
    """The run failed with ``exit_code`` and exactly one stderr line, no traceback."""
    assert result.returncode == exit_code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "error:" in lines[0]
    return lines[0]


def tiny_png() -> bytes:
    """A valid 2x1 RGB PNG image, built by hand."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", 2, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00\x00\x00\xff")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass; its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


# ------------------------------------------------------------------------------ one-shot


def test_chat_prints_the_answer(emulator: Emulator) -> None:
    """`chat "prompt"` prints the whole answer on stdout and nothing on stderr."""
    result = run_cli("chat", MILE_QUESTION, *connect(emulator))
    assert result.returncode == 0, result.stderr
    assert result.stdout == MILE_ANSWER + "\n"
    assert result.stderr == ""
    body = emulator.requests[-1].json
    assert body["stream"] is True
    assert body["messages"] == [{"role": "user", "content": MILE_QUESTION}]


def test_chat_streams_tokens_as_they_arrive(fresh_emulator: Emulator) -> None:
    """The answer reaches stdout in several pieces while the command is still running."""
    fresh_emulator.options.token_delay = 0.03
    proc = subprocess.Popen(
        [sys.executable, "-m", "inference", "chat", MILE_QUESTION, *connect(fresh_emulator)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=clean_env(),
    )
    assert proc.stdout is not None and proc.stderr is not None
    pieces: list[bytes] = []
    pieces_while_running = 0
    deadline = time.monotonic() + RUN_TIMEOUT
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], deadline - time.monotonic())
            if not ready:
                break
            data = os.read(proc.stdout.fileno(), 65536)
            if not data:
                break
            pieces.append(data)
            if proc.poll() is None:
                pieces_while_running += 1
        assert proc.wait(timeout=RUN_TIMEOUT) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert b"".join(pieces).decode() == MILE_ANSWER + "\n"
    assert pieces_while_running >= 3, pieces


def test_environment_variables_and_model(emulator: Emulator) -> None:
    """AZURE_INFERENCE_ENDPOINT / _CREDENTIAL configure the endpoint; --model is sent."""
    env = clean_env(AZURE_INFERENCE_ENDPOINT=emulator.endpoint(), AZURE_INFERENCE_CREDENTIAL=KEY)
    result = run_cli("chat", "Hello", "--model", "my-model", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Hello! How can I help you today?\n"
    assert result.stderr == ""
    request = emulator.requests[-1]
    assert request.json["model"] == "my-model"
    assert request.headers["api-key"] == KEY


def test_without_endpoint_starts_the_builtin_emulator() -> None:
    """With no endpoint configured, the built-in emulator answers and stderr says so once."""
    result = run_cli("chat", MILE_QUESTION)
    assert result.returncode == 0, result.stderr
    assert result.stdout == MILE_ANSWER + "\n"
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "built-in emulator" in lines[0]
    assert re.search(r"http://127\.0\.0\.1:\d+/models", lines[0])


def test_prompt_from_piped_stdin(emulator: Emulator) -> None:
    """With stdin piped and no prompt argument, the prompt is read from stdin."""
    result = run_cli("chat", *connect(emulator), input=MILE_QUESTION + "\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == MILE_ANSWER + "\n"
    assert emulator.requests[-1].json["messages"][-1]["content"] == MILE_QUESTION + "\n"


def test_prompt_then_piped_stdin(emulator: Emulator) -> None:
    """A prompt argument with a piped stdin (`git diff | chat "Review this"`): the piped text
    follows the prompt after a blank line, nothing dropped."""
    patch = "diff --git a/x b/x\n+new line\n"
    result = run_cli("chat", "Review this patch", *connect(emulator), input=patch)
    assert result.returncode == 0, result.stderr
    sent = emulator.requests[-1].json["messages"][-1]["content"]
    assert sent == "Review this patch\n\n" + patch


def test_prompt_from_a_redirected_file(emulator: Emulator, tmp_path: Path) -> None:
    """stdin redirected from a file counts as piped; the null device adds nothing."""
    notes = tmp_path / "notes.txt"
    notes.write_text("line one\nline two\n", encoding="utf-8")
    with notes.open("rb") as stdin:
        result = subprocess.run(
            [sys.executable, "-m", "inference", "chat", "Summarise", *connect(emulator)],
            stdin=stdin,
            capture_output=True,
            text=True,
            env=clean_env(),
            timeout=RUN_TIMEOUT,
            check=False,
        )
    assert result.returncode == 0, result.stderr
    assert emulator.requests[-1].json["messages"][-1]["content"] == (
        "Summarise\n\nline one\nline two\n"
    )
    result = run_cli("chat", "Summarise", *connect(emulator))  # stdin: the null device
    assert result.returncode == 0, result.stderr
    assert emulator.requests[-1].json["messages"][-1]["content"] == "Summarise"


@pytest.mark.parametrize("with_prompt", [False, True], ids=["stdin-only", "prompt-and-stdin"])
def test_stdin_that_is_not_utf8_is_refused_naming_the_byte(
    emulator: Emulator, with_prompt: bool
) -> None:
    """Latin-1 bytes on stdin: a usage error naming the byte and its offset, nothing sent."""
    before = len(emulator.requests)
    prompt = ["Translate"] if with_prompt else []
    result = run_cli_bytes("chat", *prompt, *connect(emulator), input=b"caf\xe9 au lait")
    line = assert_one_error_line(result, EXIT_USAGE)
    assert "stdin is not UTF-8 text (byte 0xe9 at offset 3)" in line
    assert "iconv" in line
    assert len(emulator.requests) == before


def test_a_prompt_argument_that_is_not_utf8_is_refused(emulator: Emulator) -> None:
    """An argument of Latin-1 bytes (decoded by the interpreter with surrogateescape) is a
    usage error saying so, not a serialization error in library terms."""
    before = len(emulator.requests)
    result = run_cli_bytes("chat", b"caf\xe9", *connect(emulator))
    line = assert_one_error_line(result, EXIT_USAGE)
    assert "the prompt argument is not UTF-8 text (an undecodable byte at character 3)" in line
    assert len(emulator.requests) == before


def test_a_json_answer_cut_at_the_token_limit_fails(emulator: Emulator) -> None:
    """--json with an answer cut by --max-tokens: what arrived is printed, but the exit
    status is a failure with a line saying the output is not valid JSON."""
    result = run_cli("chat", "--json", "--max-tokens", "3", "List colours", *connect(emulator))
    assert result.returncode == EXIT_ERROR, result.stderr
    with pytest.raises(json.JSONDecodeError):
        json.loads(result.stdout)
    assert "the JSON answer was cut at the token limit and is not valid JSON" in result.stderr
    assert "raise --max-tokens" in result.stderr
    complete = run_cli("chat", "--json", "List colours", *connect(emulator))
    assert complete.returncode == 0, complete.stderr
    assert isinstance(json.loads(complete.stdout), dict)


@pytest.mark.parametrize("args", [["chat", "-"], []], ids=["dash", "default-command"])
def test_prompt_from_stdin_in_process(
    emulator: Emulator,
    args: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """'-' reads the prompt from stdin, and `chat` is the command when none is named."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(MILE_QUESTION))
    assert main([*args, *connect(emulator)]) == 0
    assert capsys.readouterr().out == MILE_ANSWER + "\n"
    assert emulator.requests[-1].json["messages"][-1]["content"] == MILE_QUESTION


def test_request_options_reach_the_service(
    emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """--system, --temperature and --max-tokens go into the request; --no-stream waits."""
    code = main(
        [
            "chat",
            MILE_QUESTION,
            *connect(emulator),
            "--system",
            "Be brief.",
            "--temperature",
            "0.2",
            "--max-tokens",
            "4",
            "--no-stream",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.out == "There are 5,\n"
    assert "token limit" in captured.err
    body = emulator.requests[-1].json
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert body["temperature"] == 0.2
    assert body["max_tokens"] == 4
    assert "stream" not in body or body["stream"] is False


def test_json_mode_output_parses(emulator: Emulator) -> None:
    """--json asks for json_object and stdout is a JSON document."""
    result = run_cli("chat", MILE_QUESTION, "--json", *connect(emulator))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"answer": MILE_ANSWER}
    body = emulator.requests[-1].json
    assert body["response_format"] == {"type": "json_object"}
    assert "json" in body["messages"][0]["content"].lower()


def assert_usage_line(stderr: str) -> None:
    """stderr is exactly the usage line of the mile question's answer."""
    match = re.fullmatch(r"usage: (\d+) prompt \+ (\d+) completion = (\d+) tokens\n", stderr)
    assert match, stderr
    counts = tuple(map(int, match.groups()))
    assert counts == (8, 39, 47)  # what the emulator counts (word-ish tokens)


def test_usage_prints_token_counts(emulator: Emulator) -> None:
    """--usage asks the stream for usage and prints the token counts after the answer."""
    result = run_cli("chat", MILE_QUESTION, "--usage", *connect(emulator))
    assert result.returncode == 0, result.stderr
    assert result.stdout == MILE_ANSWER + "\n"
    assert_usage_line(result.stderr)
    assert emulator.requests[-1].json["stream_options"] == {"include_usage": True}


def test_usage_without_streaming(emulator: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    """--usage with --no-stream prints the counts of the whole response."""
    assert main(["chat", MILE_QUESTION, "--usage", "--no-stream", *connect(emulator)]) == 0
    captured = capsys.readouterr()
    assert captured.out == MILE_ANSWER + "\n"
    assert_usage_line(captured.err)


def test_image_is_sent_as_a_data_url(emulator: Emulator, tmp_path: Path) -> None:
    """--image FILE sends the file as a base64 data URL beside the prompt."""
    png = tiny_png()
    image = tmp_path / "dot.png"
    image.write_bytes(png)
    result = run_cli("chat", "What is this?", "--image", str(image), *connect(emulator))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"I received 1 image (image/png, {len(png)} bytes).")
    content = emulator.requests[-1].json["messages"][0]["content"]
    assert content[0] == {"type": "text", "text": "What is this?"}
    assert content[1]["type"] == "image_url"
    assert content[1]["image_url"]["url"].startswith("data:image/png;base64,")


def image_refusal(emulator: Emulator, path: Path) -> str:
    """Run ``chat --image PATH`` in a subprocess; the one error line of its usage error."""
    result = run_cli("chat", "What is this?", "--image", str(path), *connect(emulator))
    line = assert_one_error_line(result, EXIT_USAGE)
    assert "--image" in line and str(path) in line
    assert result.stdout == ""
    return line


def test_image_over_the_size_limit_is_a_usage_error(emulator: Emulator, tmp_path: Path) -> None:
    """An image file over 20 MiB is refused before anything is sent (exit 2)."""
    big = tmp_path / "big.png"
    with big.open("wb") as file:
        file.write(tiny_png())
        file.truncate(20 * 1024 * 1024 + 1)  # sparse: no 20 MiB written to disk
    before = len(emulator.requests)
    assert "larger than 20 MiB" in image_refusal(emulator, big)
    assert len(emulator.requests) == before


def test_image_that_is_not_a_regular_file_is_a_usage_error(
    emulator: Emulator, tmp_path: Path
) -> None:
    """A named pipe or a directory given as --image is refused (a pipe is not even opened)."""
    pipe = tmp_path / "pipe.png"
    os.mkfifo(pipe)
    assert "not a regular file" in image_refusal(emulator, pipe)
    folder = tmp_path / "folder.jpg"
    folder.mkdir()
    assert "not a regular file" in image_refusal(emulator, folder)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("photo.png", b"\xff\xd8\xff\xe0" + b"\x00" * 32),  # JPEG bytes
        ("photo.jpg", None),  # PNG bytes
        ("photo.gif", b"not an image at all"),
        ("photo.webp", b"RIFF\x00\x00\x00\x00WAVEfmt "),
    ],
)
def test_image_whose_content_is_not_its_named_format_is_a_usage_error(
    emulator: Emulator, tmp_path: Path, name: str, content: bytes | None
) -> None:
    """A file whose first bytes are not those of the format its name claims is refused."""
    path = tmp_path / name
    path.write_bytes(tiny_png() if content is None else content)
    assert "content is not a" in image_refusal(emulator, path)


def test_info_prints_model_info(emulator: Emulator) -> None:
    """`info` prints the /info fields, as text or as JSON."""
    result = run_cli("info", *connect(emulator))
    assert result.returncode == 0, result.stderr
    assert "model_name: emulator-1" in result.stdout.splitlines()
    assert "model_provider_name: Emulator" in result.stdout.splitlines()
    assert emulator.requests[-1].path == "/models/info"


def test_info_as_json(emulator: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    """`info --json` prints the model info as a JSON object."""
    assert main(["info", "--json", *connect(emulator)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info == {
        "model_name": "emulator-1",
        "model_type": "chat-completion",
        "model_provider_name": "Emulator",
    }


def test_console_script_entry_point(emulator: Emulator) -> None:
    """The `inference-chat` script runs the same CLI, with `chat` as its default command."""
    (entry,) = importlib.metadata.entry_points(group="console_scripts", name="inference-chat")
    assert entry.load() is main
    script = Path(sys.executable).parent / "inference-chat"
    assert script.exists(), "the package is not installed: run `pip install -e .`"
    result = subprocess.run(
        [str(script), MILE_QUESTION, *connect(emulator)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == MILE_ANSWER + "\n"


def test_help_documents_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    """--help describes the commands and the exit codes."""
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for word in ("chat", "info", "serve", "exit codes", "AZURE_INFERENCE_ENDPOINT"):
        assert word in out
    assert re.search(r"^\s+3\s+authentication", out, re.MULTILINE)


# ------------------------------------------------------------------------------ errors


def test_wrong_key_is_one_line_and_exit_code_3(emulator: Emulator) -> None:
    """A refused key gives one stderr line naming HTTP 401, exit code 3, no traceback."""
    result = run_cli("chat", "Hello", "--endpoint", emulator.endpoint(), "--key", "wrong")
    line = assert_one_error_line(result, EXIT_AUTH)
    assert "401" in line
    assert result.stdout == ""


def test_unreachable_endpoint_is_one_line(emulator: Emulator) -> None:
    """A refused connection gives one stderr line and exit code 6."""
    result = run_cli("chat", "Hello", "--endpoint", "http://127.0.0.1:1", "--retries", "0")
    line = assert_one_error_line(result, EXIT_CONNECTION)
    assert "127.0.0.1:1" in line


def test_content_filter_is_one_line(emulator: Emulator) -> None:
    """A prompt refused by the content filter gives one line and exit code 5."""
    result = run_cli("chat", "Teach me knife skills", *connect(emulator))
    line = assert_one_error_line(result, EXIT_CONTENT_FILTER)
    assert "content_filter" in line


def test_not_found_is_one_line(emulator: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    """A wrong endpoint path (HTTP 404) gives one line and exit code 4."""
    code = main(["chat", "Hello", "--endpoint", emulator.url + "/nothing", "--key", KEY])
    assert code == EXIT_NOT_FOUND
    (line,) = capsys.readouterr().err.splitlines()
    assert "error: HTTP 404" in line


def test_bad_argument_in_a_subprocess(emulator: Emulator) -> None:
    """A bad option value gives one line (no usage dump) and exit code 2."""
    result = run_cli("chat", "Hi", "--temperature", "warm", *connect(emulator))
    line = assert_one_error_line(result, EXIT_USAGE)
    assert "--temperature" in line


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["chat", "Hi", "--temperature", "warm"], "--temperature"),
        (["chat", "Hi", "--max-tokens", "0"], "--max-tokens"),
        (["chat", "Hi", "--image", "/nonexistent/picture.png"], "/nonexistent/picture.png"),
        (["chat"], "no prompt"),
        (["chat", "Hi", "--bogus"], "--bogus"),
        (["chat", "Hi", "--entra"], "--entra and --key"),
    ],
)
def test_bad_arguments_are_one_line(
    emulator: Emulator,
    args: list[str],
    fragment: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Bad arguments, an unreadable image and a missing prompt give one line and exit 2."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    before = len(emulator.requests)
    assert main([*args, *connect(emulator)]) == EXIT_USAGE
    captured = capsys.readouterr()
    (line,) = captured.err.splitlines()
    assert "error:" in line
    assert fragment in line
    assert captured.out == ""
    assert len(emulator.requests) == before  # nothing was sent


def test_debug_shows_the_traceback(emulator: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    """--debug adds the traceback to the error line."""
    root = logging.getLogger()
    library = logging.getLogger("inference")
    saved_handlers, saved_level = list(root.handlers), library.level
    try:
        code = main(["chat", "Hello", "--debug", "--endpoint", emulator.endpoint(), "--key", "no"])
    finally:  # --debug configures logging for the process: undo it for the other tests
        for handler in root.handlers[:]:
            if handler not in saved_handlers:
                root.removeHandler(handler)
        library.setLevel(saved_level)
    assert code == EXIT_AUTH
    err = capsys.readouterr().err
    assert "Traceback" in err
    assert "ClientAuthenticationError" in err
    assert "error: HTTP 401" in err.rstrip().splitlines()[-1]


# ------------------------------------------------------------------------------ serve


def free_port() -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def read_line(stream: Any, timeout: float) -> str:
    """One line from a pipe, or what arrived before ``timeout`` seconds passed."""
    data = b""
    deadline = time.monotonic() + timeout
    while not data.endswith(b"\n") and time.monotonic() < deadline:
        ready, _, _ = select.select([stream], [], [], max(deadline - time.monotonic(), 0))
        if not ready:
            break
        byte = os.read(stream.fileno(), 1)
        if not byte:
            break
        data += byte
    return data.decode()


@pytest.mark.parametrize("flag", ["--token-delay", "--first-token-delay"])
def test_serve_refuses_negative_delays(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`serve` with a negative delay gives one line naming the option and exit code 2."""
    assert main(["serve", "--port", "0", flag, "-1"]) == EXIT_USAGE
    (line,) = capsys.readouterr().err.splitlines()
    assert f"{flag} must be 0 or more" in line


def test_serve_takes_the_request_body_limit(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`serve --max-request-mib N` gives the emulator that limit (the 413 it sends names this
    option); 0 or less is refused, and without it the emulator's default applies."""
    import inference.testing

    seen: list[int] = []

    def fake_run(*args: Any, max_request_bytes: int) -> None:
        seen.append(max_request_bytes)

    monkeypatch.setattr(inference.testing, "run", fake_run)
    assert main(["serve", "--port", "0", "--max-request-mib", "0.5"]) == 0
    assert main(["serve", "--port", "0"]) == 0
    assert seen == [512 * 1024, inference.testing.MAX_REQUEST_BYTES]
    assert main(["serve", "--port", "0", "--max-request-mib", "0"]) == EXIT_USAGE
    assert "--max-request-mib" in capsys.readouterr().err


def test_serve_runs_the_emulator() -> None:
    """`serve --port P --key K` answers requests with that key and stops on Ctrl-C."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "inference", "serve", "--port", str(port), "--key", "sekrit"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=clean_env(),
    )
    assert proc.stdout is not None and proc.stderr is not None
    try:
        line = read_line(proc.stdout, RUN_TIMEOUT)
        assert f"http://127.0.0.1:{port}/models" in line, (line, proc.poll())
        assert "key required" in line
        endpoint = f"http://127.0.0.1:{port}/models"
        with ChatCompletionsClient(endpoint, "sekrit", retry=0) as client:
            answer = client.complete(messages=[UserMessage(MILE_QUESTION)])
        assert isinstance(answer, ChatCompletions)
        assert answer.choices[0].message.content == MILE_ANSWER
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=RUN_TIMEOUT) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


# ------------------------------------------------------------------------------ interactive

# Makes the pseudo-terminal on stdin the controlling terminal of this new session (so Ctrl-C
# typed on it sends SIGINT), then becomes the CLI.
_LAUNCHER = (
    "import fcntl, os, sys, termios\n"
    "fcntl.ioctl(0, termios.TIOCSCTTY, 0)\n"
    "os.execv(sys.executable, [sys.executable, '-m', 'inference', *sys.argv[1:]])\n"
)


class Terminal:
    """A process on a pseudo-terminal: type into it, wait for what it prints."""

    def __init__(self, args: list[str], env: Mapping[str, str]) -> None:
        import fcntl
        import pty
        import termios

        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
        self.master = master
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER, *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
            env=dict(env),
        )
        os.close(slave)
        self.transcript = ""
        self._seen = 0  # transcript offset already matched by expect()

    def send(self, text: str) -> None:
        """Type ``text`` (use ``\\r`` for Enter, ``\\x03`` for Ctrl-C, ``\\x04`` for Ctrl-D)."""
        os.write(self.master, text.encode())

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return False
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: the other side closed
            return False
        if not data:
            return False
        self.transcript += data.decode(errors="replace")
        return True

    def expect(self, text: str, timeout: float = 10.0) -> str:
        """Wait until ``text`` appears after the previous match; the output up to its end."""
        deadline = time.monotonic() + timeout
        while True:
            position = self.transcript.find(text, self._seen)
            if position >= 0:
                start, self._seen = self._seen, position + len(text)
                return self.transcript[start : self._seen]
            left = deadline - time.monotonic()
            if left <= 0 or (not self._read(min(left, 0.5)) and self.proc.poll() is not None):
                raise AssertionError(
                    f"{text!r} did not appear within {timeout} s; transcript:\n{self.transcript}"
                )

    def interrupt_at_prompt(self, attempts: int = 5) -> None:
        """Press Ctrl-C at the prompt until a new prompt appears.

        Python's readline can miss a SIGINT that lands in the instant between showing the
        prompt and waiting for input (it then surfaces at the next key); a person never types
        that fast, a test does, so the key is pressed again when no new prompt follows.
        """
        for _ in range(attempts):
            self.send("\x03")
            try:
                self.expect("> ", timeout=2.0)
                return
            except AssertionError:
                continue
        raise AssertionError(f"Ctrl-C at the prompt gave no new prompt:\n{self.transcript}")

    def close(self) -> None:
        """Kill the process if it still runs and close the terminal."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)


def test_interactive_session_on_a_terminal(fresh_emulator: Emulator) -> None:
    """On a terminal: multi-turn history, Ctrl-C stops a slow answer and the session goes
    on (keeping the partial answer), errors do not end it, Ctrl-D leaves with exit code 0."""
    emu = fresh_emulator
    term = Terminal(["chat", *connect(emu)], clean_env(TERM="dumb"))
    try:
        term.expect("Ctrl-D")
        term.expect("> ")
        term.send(MILE_QUESTION + "\r")
        term.expect(MILE_ANSWER)
        term.expect("> ")

        # A second turn is sent with the first one as history.
        term.send("And in a kilometre?\r")
        term.expect('You asked: "And in a kilometre?"')
        term.expect("> ")
        messages = emu.requests[-1].json["messages"]
        assert [m["role"] for m in messages] == ["user", "assistant", "user"]
        assert messages[1]["content"] == MILE_ANSWER

        # Ctrl-C in the middle of a slow answer stops it and releases the connection.
        emu.options.token_delay = 0.1
        emu.options.repeat = 20
        term.send("Tell me a joke\r")
        term.expect("Why did the developer")
        assert wait_until(lambda: emu.active_streams == 1)
        term.send("\x03")
        term.expect("(stopped)")
        term.expect("> ")
        assert wait_until(lambda: emu.active_streams == 0), "the stream was not released"
        emu.options.token_delay = 0.0
        emu.options.repeat = 1

        # Ctrl-C at the prompt does not leave either.
        term.interrupt_at_prompt()

        # An error is one line and the session goes on; the failed turn is not kept.
        term.send("Teach me knife skills\r")
        term.expect("error: HTTP 400")
        term.expect("> ")

        # The session continues; the partial answer is part of the history.
        term.send("Go on\r")
        term.expect('You asked: "Go on"')
        term.expect("> ")
        messages = emu.requests[-1].json["messages"]
        assert [m["role"] for m in messages] == ["user", "assistant"] * 3 + ["user"]
        partial = messages[5]["content"]
        full = " ".join([JOKE_ANSWER] * 20)
        assert partial.startswith("Why did the developer")
        assert full.startswith(partial)
        assert len(partial) < len(full)

        term.send("\x04")
        assert term.proc.wait(timeout=RUN_TIMEOUT) == 0, term.transcript
        assert "Traceback" not in term.transcript
    finally:
        term.close()


# ------------------------------------------------------------------------------ edges


@pytest.mark.parametrize("prompt", ["", "   \n"], ids=["empty", "blank"])
def test_empty_prompt_is_a_usage_error(emulator: Emulator, prompt: str) -> None:
    """`chat ""` is refused with one line and exit code 2; nothing is sent."""
    before = len(emulator.requests)
    result = run_cli("chat", prompt, *connect(emulator))
    line = assert_one_error_line(result, EXIT_USAGE)
    assert "the prompt is empty" in line
    assert result.stdout == ""
    assert len(emulator.requests) == before


def test_piping_into_head_ends_quietly(fresh_emulator: Emulator) -> None:
    """The reader closes stdout mid-answer (`| head -c 5`): no traceback, no error text.

    The exit status is the one of a tool ended by SIGPIPE (141), as shells expect.
    """
    fresh_emulator.options.token_delay = 0.2  # the answer takes seconds: the cut is mid-answer
    read_end, write_end = os.pipe()
    proc = subprocess.Popen(
        [sys.executable, "-m", "inference", "chat", MILE_QUESTION, *connect(fresh_emulator)],
        stdin=subprocess.DEVNULL,
        stdout=write_end,
        stderr=subprocess.PIPE,
        env=clean_env(),
    )
    os.close(write_end)
    try:
        with os.fdopen(read_end, "rb") as reader:
            head = reader.read(5)  # what `head -c 5` reads; then it leaves
        _, stderr = proc.communicate(timeout=RUN_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert head == MILE_ANSWER[:5].encode()
    assert stderr == b""
    assert proc.returncode == EXIT_BROKEN_PIPE


@pytest.mark.anyio
@pytest.mark.parametrize("then", ["eof", "reset"])
async def test_cut_stream_is_reported_in_the_projects_words(then: Any) -> None:
    """A stream cut before its end: the partial answer stays on stdout; one plain error line."""
    events = (chunk_event("Hello"), chunk_event(" world"))
    async with FaultServer(default=sse(*events, then=then)) as server:
        command = ["chat", "Hi", "--endpoint", server.endpoint(), "--key", KEY, "--retries", "0"]
        done = await anyio.run_process(
            [sys.executable, "-m", "inference", *command],
            env=clean_env(),
            check=False,
        )
    stderr = done.stderr.decode()
    result = subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(), stderr)
    line = assert_one_error_line(result, EXIT_SERVICE)
    assert result.stdout == "Hello world\n"
    assert "the answer was cut off" in line
    assert not re.search(r"[A-Z]\w*(Error|Exception)\b|aiohttp|\.partial|DONE", line), line


@pytest.mark.anyio
async def test_connection_reset_is_reported_without_class_names() -> None:
    """A connection reset before any answer: one line with the reason, no library class names."""
    async with FaultServer(default=reset()) as server:
        command = ["chat", "Hi", "--endpoint", server.endpoint(), "--key", KEY, "--retries", "0"]
        done = await anyio.run_process(
            [sys.executable, "-m", "inference", *command], env=clean_env(), check=False
        )
    result = subprocess.CompletedProcess(done.args, done.returncode, "", done.stderr.decode())
    line = assert_one_error_line(result, EXIT_CONNECTION)
    assert "failed before a response arrived" in line
    assert "the connection was reset" in line
    assert not re.search(r"[A-Z]\w*(Error|Exception)\b|aiohttp", line), line


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--max-tokens", "99999999999999999999"], "--max-tokens"),
        (["--model", ""], "--model"),
        (["--endpoint", " "], "--endpoint"),
        (["--image", "notes.txt"], "--image"),
    ],
)
def test_bad_values_are_named_by_their_option(
    emulator: Emulator, args: list[str], option: str, tmp_path: Path
) -> None:
    """A value the service or the library would refuse is a usage error naming the option."""
    (tmp_path / "notes.txt").write_text("not an image")
    before = len(emulator.requests)
    result = run_cli("chat", "Hi", *connect(emulator), *args, cwd=tmp_path)
    line = assert_one_error_line(result, EXIT_USAGE)
    assert option in line
    assert not re.search(r"\b(max_tokens|image_format|image_file|JSON-serializable)\b", line)
    assert len(emulator.requests) == before


def test_plain_http_refusal_names_the_cli_option() -> None:
    """A key for plain http to a LAN host is refused before connecting, naming --allow-http."""
    result = run_cli("chat", "Hi", "--endpoint", "http://10.0.0.5:8000/v1", "--key", KEY)
    line = assert_one_error_line(result, EXIT_USAGE)
    assert "--allow-http" in line
    assert "enforce_https" not in line


def test_allow_http_sends_the_key_to_a_lan_host(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--allow-http lets the key go over plain http to a LAN name (resolved to 127.0.0.1)."""
    real_getaddrinfo = socket.getaddrinfo
    asked: list[str] = []

    def lan_only(host: Any, *args: Any, **kwargs: Any) -> Any:
        asked.append(host)
        if host != "llm.lan":
            raise socket.gaierror(socket.EAI_NONAME, f"{host} is not resolved in this test")
        return real_getaddrinfo("127.0.0.1", *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", lan_only)
    port = emulator.url.rsplit(":", 1)[1]
    endpoint = f"http://llm.lan:{port}/models"
    assert main(["chat", "Hello", "--endpoint", endpoint, "--key", KEY, "--allow-http"]) == 0
    assert capsys.readouterr().out == "Hello! How can I help you today?\n"
    assert asked == ["llm.lan"]
    request = emulator.requests[-1]
    assert request.headers["api-key"] == KEY
    assert request.headers["Host"] == f"llm.lan:{port}"


@pytest.mark.parametrize(
    ("library", "cli"),
    [
        ("max_tokens must be a whole number >= 0, got -1", "--max-tokens must be a whole"),
        ("model=5: pass a string", "--model=5: pass a string"),
        ("temperature must be a finite number", "--temperature must be a finite number"),
        ("use https, or pass enforce_https=False", "use https, or pass --allow-http"),
        ("the model answered; timeout is fine", "the model answered; timeout is fine"),
        ("response_format={'type': 'x'}", "--json={'type': 'x'}"),
    ],
)
def test_library_parameter_names_become_options(library: str, cli: str) -> None:
    """Validation messages naming the library's parameters name the CLI's options instead."""
    assert cli_terms(library).startswith(cli)


def test_batch_takes_allow_http() -> None:
    """`batch --allow-http` gives its clients enforce_https=False (and only with the option)."""
    parser = build_parser("inference")
    allowed = parser.parse_args(["batch", "in.jsonl", "out.jsonl", "--allow-http"])
    assert batch_client_options(allowed)["enforce_https"] is False
    default = parser.parse_args(["batch", "in.jsonl", "out.jsonl"])
    assert "enforce_https" not in batch_client_options(default)


@pytest.mark.anyio
async def test_an_oversized_answer_is_reported_as_such() -> None:
    """A body larger than the client's limit: the line says so, with the limit, not that the
    connection broke."""
    oversized = raw(200, b"{}", headers={"Content-Length": str(9 * 1024 * 1024)})
    async with FaultServer(default=oversized) as server:
        command = ["chat", "Hi", "--no-stream", "--endpoint", server.endpoint(), "--key", KEY]
        done = await anyio.run_process(
            [sys.executable, "-m", "inference", *command], env=clean_env(), check=False
        )
    result = subprocess.CompletedProcess(done.args, done.returncode, "", done.stderr.decode())
    line = assert_one_error_line(result, EXIT_SERVICE)
    assert "the answer was larger than the client's limit of 8 MiB and was not read" in line
    assert len(server.attempts) == 1  # not retried


def test_an_oversized_stream_is_reported_as_such() -> None:
    """A stream past max_stream_bytes: the line names the limit and says the text is above."""
    parser = StreamParser(max_stream_bytes=2 * 1024 * 1024, server="http://127.0.0.1:1")
    event = chunk_event("x" * 1000)
    with pytest.raises(ResponseTooLargeError) as info:
        for _ in range(3000):
            parser.feed(event)
            while parser.next_update() is not None:
                pass
    assert describe(info.value) == (
        "the stream brought more than the client's limit of 2 MiB and was stopped (what "
        "arrived is shown above)"
    )


@pytest.mark.anyio
async def test_a_service_error_line_names_settings_in_the_command_lines_words() -> None:
    """A 429 asking for a day's wait: the library's note after the service's message uses the
    command line's words; the service's own text is left as it is."""
    refused = error(
        429, message="Rate limit of model=x exceeded.", headers={"Retry-After": "86400"}
    )
    async with FaultServer(default=refused) as server:
        command = ["chat", "Hi", "--no-stream", "--endpoint", server.endpoint(), "--key", KEY]
        done = await anyio.run_process(
            [sys.executable, "-m", "inference", *command], env=clean_env(), check=False
        )
    result = subprocess.CompletedProcess(done.args, done.returncode, "", done.stderr.decode())
    line = assert_one_error_line(result, EXIT_SERVICE)
    assert "Rate limit of model=x exceeded." in line  # the service's words, untouched
    assert "longer than the longest wait the client accepts, 60 s" in line
    assert "RetryPolicy" not in line


def test_a_library_made_not_found_uses_the_command_lines_words() -> None:
    """A not-found the client made itself (no service answered) names --model, not model=."""
    from inference.exceptions import ResourceNotFoundError

    made_here = ResourceNotFoundError("no /info route; the model name is what you pass as model=")
    assert "what you pass as --model" in describe(made_here)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("the stream sent no event for 5 s (Timeout.idle)", "for 5 s (--timeout)"),
        ("report it, or send the request with stream=False", "report it, or use --no-stream"),
        ("longer than RetryPolicy.max_retry_after, 60 s", "the longest wait the client accepts"),
    ],
)
def test_library_settings_are_named_as_the_command_line_spells_them(
    message: str, expected: str
) -> None:
    """Timeouts, streaming and the retry wait in an error line are the command line's words."""
    assert expected in cli_terms(message)


@pytest.mark.parametrize(
    ("word", "command"), [("sevre", "serve"), ("Info", "info"), ("chta", "chat"), ("bach", "batch")]
)
def test_a_mistyped_command_is_not_sent_as_a_prompt(
    emulator: Emulator, word: str, command: str
) -> None:
    """One word that looks like a command is refused with the command it resembles and the way
    to send it as a prompt, instead of costing a request."""
    before = len(emulator.requests)
    result = run_cli(word, *connect(emulator))
    line = assert_one_error_line(result, EXIT_USAGE)
    assert f"'{word}' is not a command; did you mean '{command}'?" in line
    assert f"chat {word}" in line
    assert len(emulator.requests) == before
    sent = run_cli("chat", word, *connect(emulator))  # named as a prompt: sent
    assert sent.returncode == 0, sent.stderr
    assert emulator.requests[-1].json["messages"][-1]["content"] == word
    plain = run_cli("Hello", *connect(emulator))  # a word like no command: a prompt
    assert plain.returncode == 0, plain.stderr
    assert emulator.requests[-1].json["messages"][-1]["content"] == "Hello"


def test_an_unquoted_question_starting_like_a_command_is_shown_quoted(
    emulator: Emulator,
) -> None:
    """``chart the growth`` typed without quotes starts with a word like 'chat': the way to
    send it as a prompt quotes the whole question (it said 'chat chart', which would fail on
    the other words), and that way sends it."""
    before = len(emulator.requests)
    result = run_cli("chart", "the", "growth", *connect(emulator))
    line = assert_one_error_line(result, EXIT_USAGE)
    assert "'chart' is not a command; did you mean 'chat'?" in line
    assert line.endswith("To send it as a prompt: python -m inference chat 'chart the growth'")
    assert len(emulator.requests) == before
    sent = run_cli("chat", "chart the growth", *connect(emulator))
    assert sent.returncode == 0, sent.stderr
    assert emulator.requests[-1].json["messages"][-1]["content"] == "chart the growth"


@pytest.mark.parametrize("word", ["what", "that", "into", "patch", "seven"])
def test_words_a_letter_away_from_a_command_are_prompts(emulator: Emulator, word: str) -> None:
    """English words one letter off a command (what/chat, into/info, patch/batch) are not
    taken for typos: the word is sent as the prompt."""
    result = run_cli(word, *connect(emulator))
    assert result.returncode == 0, result.stderr
    assert emulator.requests[-1].json["messages"][-1]["content"] == word
