"""Resuming a batch killed with SIGKILL: a real ``python -m inference batch`` process is killed in
the middle of its run, and a rerun sends exactly what has no result, losing none."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from inference.testing import Emulator, EmulatorOptions

COUNT = 200


def write_requests(path: Path) -> None:
    """COUNT chat requests r0... whose prompts name their index."""
    with path.open("w") as file:
        for i in range(COUNT):
            body = {"messages": [{"role": "user", "content": f"Question {i}"}], "max_tokens": 3}
            request = {"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions"}
            file.write(json.dumps({**request, "body": body}) + "\n")


def start_batch(source: Path, target: Path, endpoint: str) -> subprocess.Popen[bytes]:
    """The batch command in a child process."""
    command = [sys.executable, "-m", "inference", "batch", str(source), str(target)]
    command += ["--endpoint", endpoint, "--concurrency", "4", "--no-progress"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AZURE_INFERENCE")}
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def lines_in(path: Path) -> int:
    """Complete lines written so far."""
    return path.read_bytes().count(b"\n") if path.exists() else 0


def sent_ids(emulator: Emulator, since: int) -> list[str]:
    """The custom_ids (from the prompts) of the requests the emulator got after ``since``."""
    prompts = [r.json["messages"][0]["content"] for r in emulator.requests[since:]]
    return [f"r{p.split()[1]}" for p in prompts]


def interrupt(source: Path, target: Path, emulator: Emulator, signum: int) -> int:
    """Start the batch, send it ``signum`` once 20 results are written; its exit code."""
    child = start_batch(source, target, emulator.endpoint())
    deadline = time.monotonic() + 30
    while lines_in(target) < 20 and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    child.send_signal(signum)
    child.communicate(timeout=30)
    return child.returncode


def finish(source: Path, target: Path, emulator: Emulator) -> tuple[list[str], bytes]:
    """Rerun the batch to its end: the custom_ids it sent, and its stderr."""
    before = len(emulator.requests)
    rerun = start_batch(source, target, emulator.endpoint())
    _, err = rerun.communicate(timeout=60)
    assert rerun.returncode == 0, err.decode()
    return sent_ids(emulator, before), err


def check_complete(target: Path, finished: set[str], resent: list[str]) -> None:
    """Each custom_id once in the output; exactly the unfinished ones were sent again."""
    ids = [json.loads(x)["custom_id"] for x in target.read_bytes().splitlines()]
    everything = {f"r{i}" for i in range(COUNT)}
    assert sorted(ids) == sorted(everything)
    assert sorted(resent) == sorted(everything - finished)


@pytest.mark.parametrize("torn", [False, True], ids=["clean-kill", "torn-last-line"])
def test_a_sigkilled_run_resumes_without_loss_or_duplicate(tmp_path: Path, torn: bool) -> None:
    """Kill -9 once results are being written; the rerun sends only the requests without a
    result (none twice), keeps every line written before the kill, and ends with each
    custom_id exactly once. With a torn last line (a write cut in half), that line is removed
    and its request sent again."""
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_requests(source)
    with Emulator(EmulatorOptions(first_token_delay=0.01)).run_in_thread() as emulator:
        assert interrupt(source, target, emulator, signal.SIGKILL) == -signal.SIGKILL
        written = target.read_bytes()
        kept = written[: written.rfind(b"\n") + 1]  # the complete lines (a kill may cut one)
        assert 20 <= kept.count(b"\n") < COUNT
        if torn:
            with target.open("ab") as file:
                file.write(b'{"id": "batch_req_x", "custom_id": "r1", "respo')
        finished = {json.loads(x)["custom_id"] for x in kept.splitlines()}
        resent, err = finish(source, target, emulator)
    assert target.read_bytes().startswith(kept)  # every finished line kept, in place
    check_complete(target, finished, resent)
    if torn:
        assert b"torn last line" in err


def test_ctrl_c_stops_the_run_cleanly_and_a_rerun_finishes_it(tmp_path: Path) -> None:
    """SIGINT (Ctrl-C): exit code 130, every line written is whole, and the rerun sends only
    what has no result."""
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_requests(source)
    with Emulator(EmulatorOptions(first_token_delay=0.01)).run_in_thread() as emulator:
        assert interrupt(source, target, emulator, signal.SIGINT) == 130
        kept = target.read_bytes()
        assert kept.endswith(b"\n") and 20 <= kept.count(b"\n") < COUNT
        finished = {json.loads(x)["custom_id"] for x in kept.splitlines()}
        resent, _ = finish(source, target, emulator)
    check_complete(target, finished, resent)


def test_a_second_run_on_the_same_output_is_refused_while_the_first_runs(tmp_path: Path) -> None:
    """The command started twice: the second run exits 2 at once, saying another run writes
    the output, and sends nothing; the first finishes with each custom_id once (both runs
    sent every request and wrote every result twice)."""
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_requests(source)
    # 0.1 s per answer, 4 at a time: the first run takes about 5 s, the second starts in it.
    with Emulator(EmulatorOptions(first_token_delay=0.1)).run_in_thread() as emulator:
        first = start_batch(source, target, emulator.endpoint())
        deadline = time.monotonic() + 30
        while lines_in(target) < 5 and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        assert first.poll() is None and lines_in(target) < COUNT
        second = start_batch(source, target, emulator.endpoint())
        _, err = second.communicate(timeout=30)
        assert second.returncode == 2, err.decode()
        assert b"is being written by another run" in err
        _, first_err = first.communicate(timeout=60)
        assert first.returncode == 0, first_err.decode()
        sent = sent_ids(emulator, 0)
    assert len(sent) == COUNT
    check_complete(target, set(), sent)


def test_the_output_stays_locked_after_retry_failed_rewrites_it(tmp_path: Path) -> None:
    """retry-failed rewrites the output under a new inode: the run holding it keeps it
    locked (another ResultFile on it is refused) until it closes it."""
    from inference.batch._output import ResultFile
    from inference.exceptions import RequestValidationError

    target = tmp_path / "out.jsonl"
    ok = {"custom_id": "a", "response": {"status_code": 200, "body": {}}, "error": None}
    failed = {"custom_id": "b", "response": None, "error": {"code": "x", "message": "y"}}
    target.write_text(json.dumps(ok) + "\n" + json.dumps(failed) + "\n")
    results = ResultFile(target)
    try:
        with pytest.raises(RequestValidationError, match="being written by another run"):
            ResultFile(target)
        assert results.drop_failures() == 1
        with pytest.raises(RequestValidationError, match="being written by another run"):
            ResultFile(target)
        results.append(failed)
    finally:
        results.close()
    reopened = ResultFile(target)
    reopened.close()
    assert reopened.done == {"a": False, "b": True}
