"""The output file: append-only JSON lines, read back on a rerun to skip what is done.

Each result is one ``os.write`` of a whole line on a file opened with ``O_APPEND``, so a process
killed at any moment (SIGKILL included) leaves every line it finished in the file: the bytes are
in the kernel as soon as the write returns. ``fsync`` (what protects against a machine crash or a
power cut) runs at most every ``fsync_interval`` seconds and when the file is closed.

On opening, bytes after the last line feed (a write cut by a kill or a crash) are removed, and
the rest is kept. A whole line that is not a result is not a torn write: the file is refused
rather than guessed at (it may be another file, such as the input given twice).

The open file holds an exclusive advisory lock (``flock``) for as long as a run writes it: a
second run on the same output file (the command started twice, overlapping scheduled runs) is
refused at once instead of sending every request a second time and writing duplicate results.
"""

from __future__ import annotations

import errno
import os
import sys
import time
from collections.abc import Mapping
from typing import Any

import attrs
import orjson

from ..exceptions import RequestValidationError

__all__ = ["ResultFile", "Scan", "check_output_path", "is_failure", "scan_results"]


def _unusable(path: str, code: int | None, reason: str) -> RequestValidationError:
    """The error for an output path a run cannot write: what is wrong, and what to do."""
    if code == errno.EISDIR:
        return RequestValidationError(
            f"the output {path} is a directory; give a file path for the results, such as "
            f"{os.path.join(path, 'results.jsonl')}"
        )
    parent = os.path.dirname(path) or "."
    if code == errno.ENOENT and not os.path.isdir(parent):
        return RequestValidationError(
            f"cannot create the output {path}: the folder {parent} does not exist; create it "
            "first, or choose an output path in an existing folder"
        )
    if code == errno.ENOTDIR:
        return RequestValidationError(
            f"cannot create the output {path}: a part of {parent} is a file, not a folder; "
            "choose another output path"
        )
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return RequestValidationError(
            f"cannot write the output {path} ({reason}); choose an output path you can write "
            "to, or change the permissions"
        )
    return RequestValidationError(
        f"cannot open the output {path} ({reason}); choose another output path"
    )


def check_output_path(path: str | os.PathLike[str]) -> None:
    """Refuse, without creating anything, an output path a run could not write: a directory,
    one in a folder that does not exist, or one that is not writable
    (:class:`~inference.exceptions.RequestValidationError` naming it and what to do)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise _unusable(path, errno.EISDIR, "")
    parent = os.path.dirname(path) or "."
    if not os.path.exists(parent):
        raise _unusable(path, errno.ENOENT, "")
    if not os.path.isdir(parent):
        raise _unusable(path, errno.ENOTDIR, "")
    target = path if os.path.exists(path) else parent
    if not os.access(target, os.W_OK):
        raise _unusable(path, errno.EACCES, "permission denied")


def _lock(fd: int, path: str) -> None:
    """Take the file's exclusive lock, or refuse: another run is writing it. Where the file
    system has no locks (or on Windows) the file is used without one."""
    if sys.platform == "win32":
        return
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise RequestValidationError(
            f"{path} is being written by another run (this batch started twice?); two runs "
            "on one output file would send every request twice. Wait for the other run to "
            "end (then run again to finish what it left), or choose another output file"
        ) from None
    except OSError:
        return  # a file system without flock (some network mounts): no lock to take


def is_failure(record: Mapping[str, Any]) -> bool:
    """True for a result line that holds an error (``error`` set, or an HTTP status >= 400)."""
    if record.get("error") is not None:
        return True
    response = record.get("response")
    status = response.get("status_code") if isinstance(response, dict) else None
    return not isinstance(status, int) or status >= 400


def _readable(line: bytes) -> dict[str, Any] | None:
    """The result a line holds: an object with a custom_id and a response or an error key."""
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if (
        isinstance(record, dict)
        and isinstance(record.get("custom_id"), str)
        and ("response" in record or "error" in record)
    ):
        return record
    return None


@attrs.frozen
class Scan:
    """What an output file holds: custom_id -> failed?, and where its last whole line ends."""

    done: dict[str, bool]
    good_end: int


def scan_results(data: bytes, path: str) -> Scan:
    """Read the result lines of an output file's ``data`` (``path`` for messages).

    Only the bytes after the last line feed can be a torn write (each result is written as one
    line, line feed included): they are left out of ``good_end``. Any whole line that is not a
    result raises :class:`RequestValidationError`, so a file that is not an output file (the
    input, given twice) is refused and never cut.
    """
    done: dict[str, bool] = {}
    whole = data.rfind(b"\n") + 1  # the end of the last whole line
    for number, line in enumerate(data[:whole].split(b"\n")[:-1], start=1):
        if not line.strip():
            continue
        record = _readable(line)
        if record is None:
            raise RequestValidationError(
                f"{path}: line {number} is not a result line (an object with custom_id and "
                "response or error); is this the right output file? Fix or remove that line, "
                "or choose another output file"
            )
        done[record["custom_id"]] = is_failure(record)
    return Scan(done, whole)


class ResultFile:
    """The results so far (:attr:`done`: custom_id -> failed?) and an appender for new ones."""

    def __init__(self, path: str | os.PathLike[str], *, fsync_interval: float = 1.0) -> None:
        self.path = os.fspath(path)
        self.fsync_interval = fsync_interval
        #: custom_id -> True when its result is a failure.
        self.done: dict[str, bool] = {}
        #: Bytes removed from the end of the file when it was opened (a torn last write).
        self.repaired_bytes = 0
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as exc:
            raise _unusable(self.path, exc.errno, exc.strerror or str(exc)) from exc
        self._last_sync = time.monotonic()
        self._unsynced = False
        try:
            _lock(self._fd, self.path)
            self._load()
        except BaseException:
            os.close(self._fd)
            raise

    def _load(self) -> None:
        with open(self._fd, "rb", closefd=False) as file:
            data = file.read()
        scan = scan_results(data, self.path)
        self.done = scan.done
        if scan.good_end < len(data):
            self.repaired_bytes = len(data) - scan.good_end
            os.ftruncate(self._fd, scan.good_end)
            os.fsync(self._fd)

    def append(self, record: Mapping[str, Any]) -> None:
        """Write one result line; fsync when the last one is ``fsync_interval`` seconds old."""
        line = orjson.dumps(record) + b"\n"
        view = memoryview(line)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self._unsynced = True
        if time.monotonic() - self._last_sync >= self.fsync_interval:
            self.sync()

    def sync(self) -> None:
        """Flush the written lines to the disk."""
        if self._unsynced:
            os.fsync(self._fd)
            self._unsynced = False
        self._last_sync = time.monotonic()

    def drop_failures(self) -> int:
        """Rewrite the file without its failed results (atomically); how many were dropped."""
        failed = {cid for cid, bad in self.done.items() if bad}
        if not failed:
            return 0
        with open(self._fd, "rb", closefd=False) as file:
            file.seek(0)
            lines = file.read().splitlines(keepends=True)
        kept = [line for line in lines if (_readable(line) or {}).get("custom_id") not in failed]
        temporary = f"{self.path}.rewrite"
        # The new file is locked before it takes the output's name, so no other run can take
        # it in between; it stays open as the file this run appends to.
        fd = os.open(temporary, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
        try:
            _lock(fd, self.path)
            with open(fd, "wb", closefd=False) as file:
                file.writelines(kept)
                file.flush()
            os.fsync(fd)
            os.replace(temporary, self.path)
        except BaseException:
            os.close(fd)
            raise
        directory = os.open(os.path.dirname(os.path.abspath(self.path)), os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        os.close(self._fd)
        self._fd = fd
        for custom_id in failed:
            del self.done[custom_id]
        return len(failed)

    def close(self) -> None:
        """Sync and close. Idempotent."""
        if self._fd >= 0:
            try:
                self.sync()
            finally:
                os.close(self._fd)
                self._fd = -1
