"""The sync client across ``os.fork()`` and multiprocessing's 'fork' start method.

A script in a child process of the test uses a sync client, forks, and reports what the
forked child saw: the inherited client refuses calls with a clear error, a client built in the
child works (so does an inherited client that was never used), and the child exits on its
own at interpreter exit. The parent then checks that its own client still works over the
connection the child inherited. Every wait is bounded: a hang fails the test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from inference.testing import Emulator

ROOT = Path(__file__).resolve().parent.parent

FORK_SCRIPT = """
import multiprocessing, os, sys, time
from inference import ChatCompletionsClient, InferenceError
from inference.models import UserMessage

endpoint, how = sys.argv[1], sys.argv[2]
ask = [UserMessage("hello")]
used = ChatCompletionsClient(endpoint, "key", model="m")
used.complete(messages=ask)  # the loop thread runs; a keep-alive connection is pooled
unused = ChatCompletionsClient(endpoint, "key", model="m")


def child():
    try:
        used.complete(messages=ask)
        print("CHILD inherited: answered", flush=True)
    except InferenceError as exc:
        print("CHILD inherited: refused", "create a new client" in str(exc), flush=True)
    with ChatCompletionsClient(endpoint, "key", model="m") as own:
        print("CHILD own:", bool(own.complete(messages=ask).choices), flush=True)
    print("CHILD unused:", bool(unused.complete(messages=ask).choices), flush=True)
    unused.close()
    used.close()  # nothing to release in the child
    # The interpreter exits here, with the inherited client's finalizer still pending.


def wait_for(pid):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    return "hung"


if how == "os.fork":
    pid = os.fork()
    if pid == 0:
        child()
        sys.exit(0)
    code = wait_for(pid)
else:
    process = multiprocessing.get_context("fork").Process(target=child)
    process.start()
    process.join(20)
    code = process.exitcode if process.exitcode is not None else "hung"
    if process.is_alive():
        process.kill()
        process.join()
print("PARENT child exit:", code, flush=True)
answer = used.complete(messages=ask)
with used.complete(messages=ask, stream=True) as stream:
    streamed = "".join(stream.text_deltas())
print("PARENT still works:", streamed == answer.choices[0].message.content, flush=True)
used.close()
"""


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """An emulator served from a background thread (overrides the async conftest fixture)."""
    with Emulator().run_in_thread() as emu:
        yield emu


@pytest.mark.parametrize("how", ["os.fork", "multiprocessing"])
def test_forked_child_refuses_the_inherited_client_and_exits(
    emulator: Emulator, tmp_path: Path, how: str
) -> None:
    """After the sync client was used, a forked child gets a clear error from the inherited
    client, can build and use its own, and exits normally; the parent's client still works."""
    script = tmp_path / "fork_child.py"
    script.write_text(FORK_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-W", "error::ResourceWarning", str(script), emulator.endpoint(), how],
        capture_output=True,
        text=True,
        timeout=50,
        env=env,
        cwd=tmp_path,
    )
    assert proc.stdout.splitlines() == [
        "CHILD inherited: refused True",
        "CHILD own: True",
        "CHILD unused: True",
        "PARENT child exit: 0",
        "PARENT still works: True",
    ], proc.stderr
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "Warning" not in proc.stderr, proc.stderr
