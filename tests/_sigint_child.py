"""Child process for the Ctrl-C tests of the sync API (run by tests/test_sync.py).

It serves an emulator from a thread and runs, one after the other, scenarios that block in the
sync API: iterating a slow stream, a non-streamed call whose response never comes, a stream
whose first content event never comes, and a stream whose first event is held back (the
call that opens it is waiting). For each it prints ``READY <name>`` once the
request is in flight; the parent then sends SIGINT. The child catches the KeyboardInterrupt,
checks that the connection was released (pool and emulator counters back to 0, polled for a
bounded time) and that the same client still answers, and prints ``OK <name> ...`` or
``FAIL <name> <reason>``. It ends with ``DONE``.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from inference import ChatCompletionsClient
from inference.models import UserMessage
from inference.testing import Emulator

RELEASE_WAIT = 10.0


def say(line: str) -> None:
    """Print one protocol line for the parent."""
    print(line, flush=True)


def when_request_arrives(emulator: Emulator, count: int, line: str) -> None:
    """Print ``line`` from a helper thread once the emulator holds more than ``count`` requests."""

    def watch() -> None:
        deadline = time.monotonic() + 30
        while len(emulator.requests) <= count and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.05)  # let the client settle into waiting for the answer
        say(line)

    threading.Thread(target=watch, daemon=True).start()


def released(client: ChatCompletionsClient, emulator: Emulator) -> tuple[int, int]:
    """Poll (bounded) until no connection is in use and no stream runs; return both counts."""
    deadline = time.monotonic() + RELEASE_WAIT
    while True:
        in_use = client._async._transport.pool_stats()[0]
        active = emulator.active_streams
        if (in_use == 0 and active == 0) or time.monotonic() > deadline:
            return in_use, active
        time.sleep(0.01)


def slow_stream(client: ChatCompletionsClient, emulator: Emulator) -> None:
    """Iterate a stream that sends one token every 0.2 s; announce after three updates."""
    stream = client.complete(
        messages=[UserMessage("Tell me a long story")],
        stream=True,
        headers={"x-emulator-token-delay": "0.2"},
    )
    for count, _update in enumerate(stream, 1):
        if count == 3:
            say("READY stream")


def stalled_call(client: ChatCompletionsClient, emulator: Emulator) -> None:
    """A non-streamed call whose response never comes."""
    when_request_arrives(emulator, len(emulator.requests), "READY call")
    client.complete(
        messages=[UserMessage("Never answered")], headers={"x-emulator-stall-after": "0"}
    )


def stalled_stream(client: ChatCompletionsClient, emulator: Emulator) -> None:
    """A stream whose first content event never comes (only the role update arrives)."""
    when_request_arrives(emulator, len(emulator.requests), "READY stalled-stream")
    stream = client.complete(
        messages=[UserMessage("Never continued")],
        stream=True,
        headers={"x-emulator-stall-after": "0"},
    )
    for _update in stream:
        pass


def thinking_stream(client: ChatCompletionsClient, emulator: Emulator) -> None:
    """A stream whose head came but whose first event does not (the model is thinking):
    ``complete(stream=True)`` itself is waiting."""
    when_request_arrives(emulator, len(emulator.requests), "READY thinking-stream")
    client.complete(
        messages=[UserMessage("Think long")],
        stream=True,
        headers={"x-emulator-first-token-delay": "60"},
    )


SCENARIOS: dict[str, Callable[[ChatCompletionsClient, Emulator], None]] = {
    "stream": slow_stream,
    "call": stalled_call,
    "stalled-stream": stalled_stream,
    "thinking-stream": thinking_stream,
}


def main() -> None:
    """Run every scenario and report on stdout."""
    with Emulator().run_in_thread() as emulator:
        client = ChatCompletionsClient(emulator.endpoint(), "key", model="m")
        client.complete(messages=[UserMessage("warm up")])
        for name, scenario in SCENARIOS.items():
            try:
                scenario(client, emulator)
            except KeyboardInterrupt:
                in_use, active = released(client, emulator)
                prompt = f"still usable after {name}"
                answer = client.complete(messages=[UserMessage(prompt)])
                text = answer.choices[0].message.content or ""
                with client.complete(messages=[UserMessage(prompt)], stream=True) as stream:
                    streamed = "".join(stream.text_deltas())
                usable = prompt in text and streamed == text
                if in_use == 0 and active == 0 and usable:
                    say(f"OK {name} in_use={in_use} active={active} usable={usable}")
                else:
                    say(f"FAIL {name} in_use={in_use} active={active} usable={usable}")
            else:
                say(f"FAIL {name} the call ended without KeyboardInterrupt")
        client.close()
        say("DONE")


if __name__ == "__main__":
    main()
