"""The scripts in ``examples/`` run against the emulator, and cover the reference document.

Each example runs in a subprocess (the way a user runs it) with ``AZURE_INFERENCE_ENDPOINT``
pointing at an emulator that requires the key ``test-key``. The Entra ID example gets its token
from a loopback server that speaks the App Service managed-identity protocol, so
``DefaultAzureCredential()`` works without any network.

The coverage test reads every ```python block of the reference document and checks that its
code, with ``azure.ai.inference`` renamed to ``inference``, appears in some example (lines
compared with surrounding whitespace stripped). The only departures allowed are listed in
:data:`ALLOWED_CHANGES`, each with its reason.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import attrs
import pytest

from inference.testing import Emulator, EmulatorOptions, RecordedRequest, _model

REPO = Path(__file__).resolve().parents[1]
EXAMPLES_DIR = REPO / "examples"
#: The user's reference document, carried in ``tests/data`` (see its README).
REFERENCE_DOC = REPO / "tests" / "data" / "chat-completions-howto.md"

KEY = "test-key"
IDENTITY_SECRET = "examples-identity-header"
RESOURCE = "https://cognitiveservices.azure.com"
RUN_TIMEOUT = 50.0  # seconds; below pytest's per-test timeout

#: Every example script; the test below checks this list matches the folder.
EXAMPLES = (
    "async_chat.py",
    "async_streaming.py",
    "chat_basic.py",
    "chat_content_safety.py",
    "chat_entra_id.py",
    "chat_image_input.py",
    "chat_json_output.py",
    "chat_model_extras.py",
    "chat_parameters.py",
    "chat_streaming.py",
    "chat_tools.py",
    "structured_output.py",
    "tool_loop.py",
)

#: Variables that would steer azure-identity to another credential, identity or host.
_IDENTITY_ENV = (
    "AZURE_TOKEN_CREDENTIALS",
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_CLIENT_CERTIFICATE_PASSWORD",
    "AZURE_USERNAME",
    "AZURE_PASSWORD",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_AUTHORITY_HOST",
    "AZURE_POD_IDENTITY_AUTHORITY_HOST",
    "AZURE_REGIONAL_AUTHORITY_NAME",
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "IDENTITY_SERVER_THUMBPRINT",
    "IMDS_ENDPOINT",
    "MSI_ENDPOINT",
    "MSI_SECRET",
)

#: The emulator model's answer to "How many languages are in the world?".
LANGUAGES_ANSWER = next(
    answer for keywords, answer in _model.CANNED_ANSWERS if keywords == ("language", "world")
)


@attrs.frozen
class Allowance:
    """A documented departure from the reference document in the examples.

    ``marker`` picks the one document block it applies to; ``replacements`` (old, new) are
    applied to that block before looking for it in the examples; None means the block is
    left out of the examples altogether.
    """

    marker: str
    replacements: tuple[tuple[str, str], ...] | None
    reason: str


ALLOWED_CHANGES = (
    Allowance(
        marker="def get_flight_info(loc_origin: str, loc_destination: str):",
        replacements=(
            ("loc_origin", "origin_city"),
            ("loc_destination", "destination_city"),
        ),
        reason="the tool definition declares origin_city/destination_city and a model calls the "
        "function with the declared names; the document's parameter names would make the "
        "call fail",
    ),
    Allowance(
        marker="image_url = ",
        replacements=(
            ("from urllib.request import urlopen, Request", "from pathlib import Path"),
            (
                'image_url = "https://news.microsoft.com/source/wp-content/uploads/2024/04/'
                'The-Phi-3-small-language-models-with-big-potential-1-1900x1069.jpg"',
                'image_path = Path(__file__).with_name("chart.jpg")',
            ),
            ('request = Request(image_url, headers={"User-Agent": "Mozilla/5.0"})', ""),
            ("urlopen(request).read()", "image_path.read_bytes()"),
        ),
        reason="no downloads: the example reads the JPEG chart shipped beside it",
    ),
    Allowance(
        marker="import IPython.display as Disp",
        replacements=None,
        reason="shows the image in a notebook (IPython and requests); a script cannot",
    ),
)


# --------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def examples_emulator() -> Iterator[Emulator]:
    """An emulator on a background thread that requires the key ``test-key``."""
    with Emulator(EmulatorOptions(key=KEY)).run_in_thread() as emu:
        yield emu


class _TokenHandler(BaseHTTPRequestHandler):
    """Answers GET requests the way the App Service managed-identity endpoint does."""

    server: _TokenServer

    def do_GET(self) -> None:
        """Record the request; hand out a token when the identity header is right."""
        query = dict(parse_qsl(urlsplit(self.path).query))
        seen = {**query, "x-identity-header": self.headers.get("X-IDENTITY-HEADER", "")}
        self.server.requests.append(seen)
        if seen["x-identity-header"] != IDENTITY_SECRET:
            self._reply(400, {"statusCode": 400, "message": "missing or wrong identity header"})
            return
        self._reply(
            200,
            {
                "access_token": KEY,
                "expires_on": str(int(time.time()) + 3600),
                "resource": query.get("resource", ""),
                "token_type": "Bearer",
                "client_id": "00000000-0000-0000-0000-000000000000",
            },
        )

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output quiet."""


class _TokenServer(ThreadingHTTPServer):
    """A loopback managed-identity token endpoint that records the requests it gets."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _TokenHandler)
        self.requests: list[dict[str, str]] = []

    @property
    def url(self) -> str:
        """The token endpoint URL, as ``IDENTITY_ENDPOINT`` gives it."""
        return f"http://127.0.0.1:{self.server_address[1]}/msi/token"


@pytest.fixture
def token_server() -> Iterator[_TokenServer]:
    """A running managed-identity token server."""
    server = _TokenServer()
    thread = threading.Thread(target=server.serve_forever, name="token-server", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# --------------------------------------------------------------------------------- helpers


@attrs.frozen
class Run:
    """What one example printed, and the requests the emulator received meanwhile."""

    returncode: int
    stdout: str
    stderr: str
    requests: list[RecordedRequest]


def run_example(
    name: str, emulator: Emulator, extra_env: dict[str, str] | None = None, key: bool = True
) -> Run:
    """Run ``examples/<name>`` with the emulator's endpoint (and key) in its environment."""
    env = {k: v for k, v in os.environ.items() if k not in _IDENTITY_ENV}
    env.pop("AZURE_INFERENCE_CREDENTIAL", None)
    env.update(
        AZURE_INFERENCE_ENDPOINT=emulator.endpoint("azure_ai_models"),
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONIOENCODING="utf-8",
    )
    if key:
        env["AZURE_INFERENCE_CREDENTIAL"] = KEY
    env.update(extra_env or {})
    before = len(emulator.requests)
    done = subprocess.run(
        [sys.executable, str(EXAMPLES_DIR / name)],
        cwd=EXAMPLES_DIR,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=RUN_TIMEOUT,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    run = Run(done.returncode, done.stdout, done.stderr, list(emulator.requests[before:]))
    assert run.returncode == 0, f"{name} failed:\n{run.stdout}\n{run.stderr}"
    assert "Traceback" not in run.stderr, run.stderr
    return run


def check_usage(stdout: str) -> None:
    """The three usage lines are there, with integers that add up."""
    numbers = {
        name: int(value)
        for name, value in re.findall(r"^\t(Prompt|Completion|Total) tokens: (\d+)$", stdout, re.M)
    }
    assert set(numbers) == {"Prompt", "Completion", "Total"}, stdout
    assert numbers["Prompt"] > 0
    assert numbers["Completion"] > 0
    assert numbers["Total"] == numbers["Prompt"] + numbers["Completion"]
    assert "\nUsage:\n" in stdout


def check_basic_output(stdout: str) -> None:
    """The document's basic printout: answer, model, usage."""
    assert f"Response: {LANGUAGES_ANSWER}\n" in stdout
    assert "7,000 languages" in stdout
    assert "\nModel: mistral-large-2407\n" in stdout
    check_usage(stdout)


def chat_requests(run: Run) -> list[RecordedRequest]:
    """The chat-completions requests among those the emulator received."""
    return [r for r in run.requests if r.path.endswith("/chat/completions")]


# --------------------------------------------------------------------------------- examples


def test_examples_list_matches_folder() -> None:
    """Every script in examples/ has a test here, and every listed one exists."""
    on_disk = {p.name for p in EXAMPLES_DIR.glob("*.py")}
    assert on_disk == set(EXAMPLES)


def test_chat_basic(examples_emulator: Emulator) -> None:
    """chat_basic.py prints the answer, the model and the usage, sent with the key."""
    run = run_example("chat_basic.py", examples_emulator)
    check_basic_output(run.stdout)
    (request,) = chat_requests(run)
    assert request.json["model"] == "mistral-large-2407"
    assert [m["role"] for m in request.json["messages"]] == ["system", "user"]


def test_sync_example_exits_quietly(examples_emulator: Emulator) -> None:
    """A sync example that never closes its client prints nothing on stderr at exit."""
    run = run_example("chat_basic.py", examples_emulator)
    assert run.stderr == ""


def test_chat_entra_id(examples_emulator: Emulator, token_server: _TokenServer) -> None:
    """chat_entra_id.py authenticates with a managed-identity token from DefaultAzureCredential."""
    run = run_example(
        "chat_entra_id.py",
        examples_emulator,
        {"IDENTITY_ENDPOINT": token_server.url, "IDENTITY_HEADER": IDENTITY_SECRET},
        key=False,
    )
    check_basic_output(run.stdout)
    assert token_server.requests, "DefaultAzureCredential never asked the token server"
    for seen in token_server.requests:
        assert seen["resource"] == RESOURCE
        assert seen["api-version"] == "2019-08-01"
        assert seen["x-identity-header"] == IDENTITY_SECRET
    (request,) = chat_requests(run)
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert "api-key" not in request.headers


def test_chat_streaming(examples_emulator: Emulator) -> None:
    """chat_streaming.py prints exactly the streamed answer (no ``None`` for the last chunk)."""
    run = run_example("chat_streaming.py", examples_emulator)
    assert run.stdout == LANGUAGES_ANSWER
    (request,) = chat_requests(run)
    body = request.json
    assert body["stream"] is True
    assert (body["temperature"], body["top_p"], body["max_tokens"]) == (0, 1, 2048)


def test_chat_parameters(examples_emulator: Emulator) -> None:
    """chat_parameters.py sends every parameter of the document's sample."""
    run = run_example("chat_parameters.py", examples_emulator)
    assert f"Response: {LANGUAGES_ANSWER}\n" in run.stdout
    assert "Finish reason: stop\n" in run.stdout
    (request,) = chat_requests(run)
    body = request.json
    assert body["presence_penalty"] == 0.1
    assert body["frequency_penalty"] == 0.8
    assert body["max_tokens"] == 2048
    assert body["stop"] == ["<|endoftext|>"]
    assert (body["temperature"], body["top_p"]) == (0, 1)
    assert body["response_format"] == {"type": "text"}


def test_chat_json_output(examples_emulator: Emulator) -> None:
    """chat_json_output.py asks for JSON mode and parses the answer."""
    run = run_example("chat_json_output.py", examples_emulator)
    content = json.dumps({"answer": LANGUAGES_ANSWER}, separators=(",", ":"))
    assert f"Response: {content}\n" in run.stdout
    parsed = {"answer": LANGUAGES_ANSWER}
    assert f"Parsed: {parsed!r}\n" in run.stdout
    (request,) = chat_requests(run)
    assert request.json["response_format"] == {"type": "json_object"}


def test_chat_model_extras(examples_emulator: Emulator) -> None:
    """chat_model_extras.py sends logprobs at the body root with extra-parameters: pass-through."""
    run = run_example("chat_model_extras.py", examples_emulator)
    assert f"Response: {LANGUAGES_ANSWER}\n" in run.stdout
    assert "Logprobs: " in run.stdout
    (request,) = chat_requests(run)
    assert request.json["logprobs"] is True
    assert request.headers["extra-parameters"] == "pass-through"
    assert request.extra_parameters == ["logprobs"]


def test_chat_tools(examples_emulator: Emulator) -> None:
    """chat_tools.py runs the whole tool flow and prints the final answer about the train."""
    run = run_example("chat_tools.py", examples_emulator)
    out = run.stdout
    assert "Finish reason: tool_calls\n" in out
    assert "Tool call: [" in out
    assert "name='get_flight_info'" in out
    assert (
        "Calling function `get_flight_info` with arguments "
        "{'origin_city': 'Miami', 'destination_city': 'Seattle'}\n"
    ) in out
    assert "-> {'info': 'There are no flights available from Miami to Seattle." in out
    final = re.search(r"^Final answer: (.*)$", out, re.M)
    assert final is not None, out
    assert "train" in final.group(1)
    first, second = chat_requests(run)
    assert first.json["tool_choice"] == "auto"
    assert first.json["tools"][0]["function"]["name"] == "get_flight_info"
    roles = [m["role"] for m in second.json["messages"]]
    assert roles == ["system", "user", "assistant", "tool"]
    assistant, tool = second.json["messages"][2:]
    assert tool["tool_call_id"] == assistant["tool_calls"][0]["id"]
    assert json.loads(tool["content"])["info"].startswith("There are no flights")


def test_chat_content_safety(examples_emulator: Emulator) -> None:
    """chat_content_safety.py prints the content-filter error, then stops on the re-raise."""
    run = run_example("chat_content_safety.py", examples_emulator)
    assert run.stdout.startswith("Your request triggered an content_filter error:\n\t ")
    assert "content management policy" in run.stdout
    assert "re-raised by the sample: ContentFilterError" in run.stderr
    (request,) = chat_requests(run)
    assert "knife skills" in request.json["messages"][1]["content"]


def test_chat_image_input(examples_emulator: Emulator) -> None:
    """chat_image_input.py sends the local chart as a data URL; the answer acknowledges it."""
    run = run_example("chat_image_input.py", examples_emulator)
    image = (EXAMPLES_DIR / "chart.jpg").read_bytes()
    assert run.stdout.startswith("ASSISTANT:\n\t")
    assert f"I received 1 image (image/jpeg, {len(image)} bytes)." in run.stdout
    assert "\nModel: mistral-large-2407\n" in run.stdout
    check_usage(run.stdout)
    (request,) = chat_requests(run)
    text, picture = request.json["messages"][1]["content"]
    assert text == {
        "type": "text",
        "text": "Which conclusion can be extracted from the following chart?",
    }
    prefix = "data:image/jpeg;base64,"
    url = picture["image_url"]["url"]
    assert url.startswith(prefix)
    assert base64.b64decode(url.removeprefix(prefix)) == image


def test_chart_is_a_jpeg() -> None:
    """The shipped chart is a baseline JPEG, as the document's ``image_format`` says."""
    data = (EXAMPLES_DIR / "chart.jpg").read_bytes()
    assert data.startswith(b"\xff\xd8\xff")
    assert data.endswith(b"\xff\xd9")
    assert b"\xff\xc0" in data  # start of frame, baseline


def test_async_chat(examples_emulator: Emulator) -> None:
    """async_chat.py prints the same as chat_basic.py."""
    run = run_example("async_chat.py", examples_emulator)
    check_basic_output(run.stdout)


def test_async_streaming(examples_emulator: Emulator) -> None:
    """async_streaming.py streams the answer, then prints the assembled completion's usage."""
    run = run_example("async_streaming.py", examples_emulator)
    assert run.stdout.startswith(LANGUAGES_ANSWER + "\n")
    assert "Finish reason: stop\n" in run.stdout
    assert "\nModel: mistral-large-2407\n" in run.stdout
    check_usage(run.stdout)
    (request,) = chat_requests(run)
    assert request.json["stream"] is True
    assert request.json["stream_options"] == {"include_usage": True}


def test_structured_output(examples_emulator: Emulator) -> None:
    """structured_output.py sends the Scientist schema and prints the parsed instance."""
    run = run_example("structured_output.py", examples_emulator)
    json_line = re.search(r"^JSON: (.*)$", run.stdout, re.M)
    assert json_line is not None, run.stdout
    data = json.loads(json_line.group(1))
    assert data["name"] == "Marie Curie"
    assert data["born"] == 1867
    assert "Parsed: Scientist(name='Marie Curie', born=1867, " in run.stdout
    assert "Marie Curie, born 1867, physics\n" in run.stdout
    (request,) = chat_requests(run)
    fmt = request.json["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["name"] == "Scientist"
    assert fmt["json_schema"]["strict"] is True
    schema = fmt["json_schema"]["schema"]
    assert schema["required"] == ["name", "born", "discipline", "known_for", "nickname"]
    assert schema["additionalProperties"] is False


def test_tool_loop(examples_emulator: Emulator) -> None:
    """tool_loop.py runs both tools in one round, prints the answer, then streams the same
    loop's events."""
    run = run_example("tool_loop.py", examples_emulator)
    out = run.stdout
    assert 'Call: get_weather({"city":"Lisbon"})\n' in out
    assert 'Call: get_local_time({"city":"Lisbon"})\n' in out
    assert "Result: It is 14:05 in Lisbon.\n" in out
    answer = re.search(r"^Answer after 1 round\(s\): (.*)$", out, re.M)
    assert answer is not None, out
    assert "According to get_local_time: It is 14:05 in Lisbon." in answer.group(1)
    streamed = out.split("Streamed:\n", 1)[1]
    assert streamed.startswith("  [calling get_weather]\n  [calling get_local_time]\n")
    assert "  [get_local_time returned It is 14:05 in Lisbon.]\n" in streamed
    assert streamed.endswith(answer.group(1) + "\n")
    requests = chat_requests(run)
    assert len(requests) == 4
    names = [t["function"]["name"] for t in requests[0].json["tools"]]
    assert names == ["get_weather", "get_local_time"]
    assert [r.json.get("stream", False) for r in requests] == [False, False, True, True]


# --------------------------------------------------------------------------------- coverage


def python_blocks(markdown: str) -> list[str]:
    """The contents of the document's ```python blocks, in order."""
    return re.findall(r"^```python\n(.*?)^```", markdown, re.DOTALL | re.MULTILINE)


def normalize(code: str) -> str:
    """The code's non-blank lines, each stripped of surrounding whitespace."""
    return "\n".join(line.strip() for line in code.splitlines() if line.strip())


def test_every_document_sample_is_in_an_example() -> None:
    """Each Python sample of the document appears verbatim (imports renamed) in an example."""
    blocks = python_blocks(REFERENCE_DOC.read_text(encoding="utf-8"))
    assert len(blocks) >= 15, "the document's Python blocks were not found"
    examples = {
        name: "\n" + normalize((EXAMPLES_DIR / name).read_text(encoding="utf-8")) + "\n"
        for name in EXAMPLES
    }
    for allowed in ALLOWED_CHANGES:
        matching = [b for b in blocks if allowed.marker in b]
        assert len(matching) == 1, f"allowance marker {allowed.marker!r} is stale"
    missing = []
    for block in blocks:
        code = block.replace("azure.ai.inference", "inference")
        allowance = next((a for a in ALLOWED_CHANGES if a.marker in block), None)
        if allowance is not None:
            if allowance.replacements is None:
                continue
            for old, new in allowance.replacements:
                assert old in code, f"stale replacement {old!r} ({allowance.reason})"
                code = code.replace(old, new)
        wanted = "\n" + normalize(code) + "\n"
        if not any(wanted in text for text in examples.values()):
            missing.append(block)
    assert not missing, "document samples not found in any example:\n\n" + "\n\n".join(missing)
