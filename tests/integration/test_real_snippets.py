"""The README's quick start and the examples, run as written against the real server.

Each script runs in a subprocess with ``AZURE_INFERENCE_ENDPOINT`` set to the server. The
scripts set no ``max_tokens``, and a small local model asked for a story writes until its
context is full (minutes on one CPU thread). So the subprocess gets a ``sitecustomize`` that
gives every client the documented client-level defaults ``max_tokens``, ``temperature`` and
``seed`` when the script sets none: the scripts' own text is unchanged.

``async_streaming.py`` asks for ``max_tokens=2048`` itself, but greedily (``temperature=0``):
SmolLM2's answer to its question is two sentences. Left out: ``chat_streaming.py`` (the
guide's ``print_stream`` prints ``delta.content`` unchecked, so ``None`` for llama.cpp's
role-only first chunk and empty last chunk), ``chat_parameters.py`` (``max_tokens=2048`` with
sampling), ``chat_content_safety.py`` (needs a content filter), ``chat_entra_id.py``
(Microsoft Entra ID), ``chat_image_input.py`` (a vision model) and ``chat_model_extras.py``
(logprobs).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from _real import MAX_TOKENS, RealServer
from test_readme import quick_start_blocks

REPO = Path(__file__).resolve().parents[2]
EXAMPLES_DIR = REPO / "examples"
RUN_TIMEOUT = 280.0  # seconds; below the suite's per-test timeout

#: Installed in the script's process before it runs: client-level defaults for short,
#: greedy answers, used only where the script passes none.
SITECUSTOMIZE = f"""\
import functools

from inference.aio import ChatCompletionsClient

_init = ChatCompletionsClient.__init__


@functools.wraps(_init)
def _short_answers(self, *args, **kwargs):
    for name, value in (("max_tokens", {MAX_TOKENS}), ("temperature", 0.0), ("seed", 7)):
        if kwargs.get(name) is None:
            kwargs[name] = value
    _init(self, *args, **kwargs)


ChatCompletionsClient.__init__ = _short_answers
"""


def run_script(script: Path, real_server: RealServer, tmp_path: Path) -> str:
    """Run ``script`` against the real server; check it succeeded and return its stdout."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
    env = dict(os.environ)
    env.update(
        AZURE_INFERENCE_ENDPOINT=real_server.base_url,
        AZURE_INFERENCE_CREDENTIAL=real_server.key or "no-key",
        PYTHONPATH=os.pathsep.join(filter(None, [str(hooks), env.get("PYTHONPATH")])),
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
        PYTHONIOENCODING="utf-8",
    )
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=script.parent,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=RUN_TIMEOUT,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert done.returncode == 0, f"{script.name} failed:\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr, done.stderr
    return done.stdout


@pytest.mark.parametrize("index", [0, 1], ids=["sync", "async"])
def test_readme_quick_start(index: int, real_server: RealServer, tmp_path: Path) -> None:
    """The README's quick-start snippet runs as written and prints an answer and a story."""
    script = tmp_path / "chat.py"
    script.write_text(quick_start_blocks()[index], encoding="utf-8")
    out = run_script(script, real_server, tmp_path)
    assert len(out.strip()) > 20, out


def test_example_chat_basic(real_server: RealServer, tmp_path: Path) -> None:
    """chat_basic.py prints an answer and usage numbers that add up."""
    out = run_script(EXAMPLES_DIR / "chat_basic.py", real_server, tmp_path)
    assert out.startswith("Response: ")
    numbers = {
        line.split(":")[0].strip(): int(line.split(":")[1])
        for line in out.splitlines()
        if line.startswith("\t")
    }
    assert numbers["Total tokens"] == numbers["Prompt tokens"] + numbers["Completion tokens"]
    assert 0 < numbers["Completion tokens"] <= MAX_TOKENS


def test_example_async_chat(real_server: RealServer, tmp_path: Path) -> None:
    """async_chat.py prints an answer with the async client."""
    out = run_script(EXAMPLES_DIR / "async_chat.py", real_server, tmp_path)
    assert out.startswith("Response: ")
    assert len(out.splitlines()[0]) > len("Response: ")


def test_example_async_streaming(real_server: RealServer, tmp_path: Path) -> None:
    """async_streaming.py streams text, then prints the assembled completion's finish reason.

    llama-cpp-python 0.3 ignores ``stream_options``: no usage, which the script allows for.
    """
    out = run_script(EXAMPLES_DIR / "async_streaming.py", real_server, tmp_path)
    text, _, rest = out.partition("\nFinish reason: ")
    assert text.strip()
    assert rest.startswith("stop\n")


def test_example_chat_tools(real_server: RealServer, tmp_path: Path) -> None:
    """chat_tools.py: the model calls the tool, the script answers it, the model replies."""
    out = run_script(EXAMPLES_DIR / "chat_tools.py", real_server, tmp_path)
    assert "Calling function `get_flight_info`" in out
    assert "Final answer: " in out


def test_command_line_chat(real_server: RealServer) -> None:
    """`python -m inference chat` streams an answer from the real server to stdout."""
    options = ["--endpoint", real_server.base_url, "--max-tokens", str(MAX_TOKENS)]
    options += ["--temperature", "0"]
    options += ["--model", real_server.model] if real_server.model else []
    options += ["--key", real_server.key] if real_server.key else []
    done = subprocess.run(
        [sys.executable, "-m", "inference", "chat", "Say hello.", *options],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
    assert "error" not in done.stderr  # a note that --max-tokens cut the answer is fine
