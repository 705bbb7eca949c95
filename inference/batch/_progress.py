"""Progress of a batch: counts, rate, ETA and tokens, shown with tqdm when it is installed.

``pip install 'aioinference[batch]'`` brings tqdm. Without it, a plain line is written every
few seconds instead (and at the end), so a job started without the extra still shows it.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from typing import Any, Protocol, TextIO

import attrs

__all__ = ["Counts", "PlainProgress", "ProgressSink", "TqdmProgress", "make_progress"]


@attrs.define
class Counts:
    """What a run has done so far."""

    #: Requests in the input (valid lines).
    total: int = 0
    #: Results already in the output file when the run started.
    skipped: int = 0
    #: Requests answered with a success in this run.
    succeeded: int = 0
    #: Requests that failed in this run (error or HTTP status >= 400).
    failed: int = 0
    #: Tokens used by this run's answers (their ``usage.total_tokens``).
    tokens: int = 0

    @property
    def finished(self) -> int:
        """Results written in this run."""
        return self.succeeded + self.failed


class ProgressSink(Protocol):
    """Receives the counts after each result, and once more when the run ends."""

    def update(self, counts: Counts) -> None:
        """A result was written."""

    def close(self, counts: Counts) -> None:
        """The run ended."""


def _eta(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


class PlainProgress:
    """One line on ``stream`` every ``interval`` seconds: done, failed, rate, ETA, tokens."""

    def __init__(
        self,
        stream: TextIO,
        interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream
        self._interval = interval
        self._clock = clock
        self._start = clock()
        self._shown = self._start

    def line(self, counts: Counts) -> str:
        """The progress line for ``counts``."""
        elapsed = max(self._clock() - self._start, 1e-9)
        rate = counts.finished / elapsed
        left = counts.total - counts.skipped - counts.finished
        eta = _eta(left / rate) if rate > 0 else "?"
        done = counts.skipped + counts.finished
        return (
            f"batch: {done}/{counts.total} done ({counts.failed} failed), "
            f"{rate:.1f} req/s, ETA {eta}, {counts.tokens:,} tokens"
        )

    def update(self, counts: Counts) -> None:
        """Show the line when ``interval`` seconds have passed since the last one."""
        now = self._clock()
        if now - self._shown >= self._interval:
            self._shown = now
            self._stream.write(self.line(counts) + "\n")
            self._stream.flush()

    def close(self, counts: Counts) -> None:
        """Show the final line."""
        self._stream.write(self.line(counts) + "\n")
        self._stream.flush()


class TqdmProgress:
    """A tqdm bar (rate and ETA are tqdm's), with failed and tokens as its postfix."""

    def __init__(self, stream: TextIO, counts: Counts) -> None:
        tqdm: Any = importlib.import_module("tqdm").tqdm
        self._bar: Any = tqdm(
            total=counts.total,
            initial=counts.skipped,
            unit="req",
            file=stream,
            dynamic_ncols=True,
            smoothing=0.1,
        )
        self._shown = counts.skipped

    def update(self, counts: Counts) -> None:
        """Move the bar to the counts."""
        done = counts.skipped + counts.finished
        self._bar.update(done - self._shown)
        self._shown = done
        self._bar.set_postfix(failed=counts.failed, tokens=counts.tokens, refresh=False)

    def close(self, counts: Counts) -> None:
        """Finish the bar."""
        self.update(counts)
        self._bar.close()


def make_progress(stream: TextIO, counts: Counts) -> ProgressSink:
    """A tqdm bar when tqdm is installed, else :class:`PlainProgress`."""
    try:
        return TqdmProgress(stream, counts)
    except ImportError:
        return PlainProgress(stream)
