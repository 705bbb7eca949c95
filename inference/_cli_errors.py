"""The command line's exit codes and error lines, in the command line's own terms.

An error is one line on stderr: what went wrong, in words about the command line (its options,
not the library's parameter names; no class names of the HTTP library underneath), and a hint
where one helps. :func:`exit_code` picks the exit code that tells the kinds apart.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
import traceback
from typing import Final, TextIO

from azure.core import exceptions as azure_exceptions

from .exceptions import (
    ClientAuthenticationError,
    ContentFilterError,
    CredentialError,
    HttpResponseError,
    InferenceTimeoutError,
    RequestValidationError,
    ResourceNotFoundError,
    ResponseTooLargeError,
    ServiceRequestError,
    ServiceResponseError,
    StreamError,
    StreamInterruptedError,
)

#: Environment variable read when ``--endpoint`` is not given.
ENDPOINT_ENV: Final = "AZURE_INFERENCE_ENDPOINT"
#: Environment variable read when ``--key`` is not given.
KEY_ENV: Final = "AZURE_INFERENCE_CREDENTIAL"

#: Success.
EXIT_OK: Final = 0
#: Any other failure (also: a ``--json`` answer cut at the token limit, which is not JSON).
EXIT_ERROR: Final = 1
#: Bad arguments or options (a missing prompt, an unreadable image, an invalid value).
EXIT_USAGE: Final = 2
#: The key or token was refused (HTTP 401/403) or could not be obtained.
EXIT_AUTH: Final = 3
#: HTTP 404: wrong endpoint URL, deployment or model name.
EXIT_NOT_FOUND: Final = 4
#: The content filter refused the prompt or stopped the answer.
EXIT_CONTENT_FILTER: Final = 5
#: The endpoint is unreachable, or did not answer in time.
EXIT_CONNECTION: Final = 6
#: Any other service error: throttling (429), server errors (5xx), a broken stream.
EXIT_SERVICE: Final = 7
#: Stopped with Ctrl-C (a one-shot command).
EXIT_INTERRUPTED: Final = 130
#: The reader of the output went away (``| head``): the status a tool killed by SIGPIPE has.
EXIT_BROKEN_PIPE: Final = 128 + signal.SIGPIPE

#: Exit code -> meaning, as printed by ``--help``.
EXIT_CODES: Final = {
    EXIT_OK: "success",
    EXIT_ERROR: "other error (also: a --json answer cut at the token limit)",
    EXIT_USAGE: "bad arguments (missing prompt, unreadable image, invalid value)",
    EXIT_AUTH: "authentication failed (HTTP 401/403, no token)",
    EXIT_NOT_FOUND: "not found (HTTP 404: endpoint URL, deployment or model name)",
    EXIT_CONTENT_FILTER: "refused by the content filter",
    EXIT_CONNECTION: "endpoint unreachable or too slow",
    EXIT_SERVICE: "service error (429, 5xx, broken stream or response body)",
    EXIT_INTERRUPTED: "stopped with Ctrl-C",
    EXIT_BROKEN_PIPE: "the output was closed by its reader (| head), quietly",
}

_MAX_ERROR_LENGTH: Final = 500
_WHITESPACE: Final = re.compile(r"\s+")

#: Library parameter names, as the command line spells them. Names with an underscore are
#: replaced wherever they stand; plain words only where they are written as a parameter
#: (``model=...``) or open the message (``temperature must be ...``).
_OPTIONS: Final = {
    "max_tokens": "--max-tokens",
    "response_format": "--json",
    "image_file": "--image",
    "image_format": "--image",
    "image_url": "--image",
    "model": "--model",
    "temperature": "--temperature",
    "timeout": "--timeout",
    "retry": "--retries",
    "endpoint": "--endpoint",
    "credential": "--key",
}
_PARAMETER: Final = re.compile(
    r"(?<![\w.-])(?:(?P<code>[a-z]+(?:_[a-z]+)+)\b"
    r"|(?P<word>[a-z]+)(?==)"
    r"|^(?P<first>[a-z]+)(?= ))"
)
#: "pass enforce_https=False": the command line's option for it.
_ENFORCE_HTTPS: Final = re.compile(r"\benforce_https=False\b")
#: The library's words for settings the command line spells otherwise.
_LIBRARY_WORDS: Final = (
    (re.compile(r"\bTimeout\.(?:connect|read|idle|total)\b"), "--timeout"),
    (re.compile(r"\bsend the request with stream=False\b"), "use --no-stream"),
    (re.compile(r"\bRetryPolicy\.max_retry_after\b"), "the longest wait the client accepts"),
)
#: "ServerDisconnectedError: " and the like, in front of a lower layer's own message.
_CLASS_PREFIX: Final = re.compile(r"\b[A-Z][A-Za-z]*(?:Error|Exception): ")


def exit_code(exc: BaseException) -> int:
    """The exit code for a failure."""
    if isinstance(exc, ContentFilterError):
        return EXIT_CONTENT_FILTER
    if isinstance(exc, CredentialError | azure_exceptions.ClientAuthenticationError):
        return EXIT_AUTH
    if isinstance(exc, ResourceNotFoundError):
        return EXIT_NOT_FOUND
    if isinstance(exc, RequestValidationError):
        return EXIT_USAGE
    if isinstance(exc, ServiceRequestError | InferenceTimeoutError):
        return EXIT_CONNECTION
    if isinstance(exc, HttpResponseError | StreamError | ServiceResponseError):
        return EXIT_SERVICE
    return EXIT_ERROR


def cli_terms(text: str) -> str:
    """``text`` with the library's parameter names spelled as the command line's options."""

    def option(match: re.Match[str]) -> str:
        name = match.group(0)
        return _OPTIONS.get(name, name)

    text = _ENFORCE_HTTPS.sub("--allow-http", text)
    return _PARAMETER.sub(option, library_words(text))


def library_words(text: str) -> str:
    """``text`` with the library's names of settings the command line spells otherwise
    (``Timeout.read``, ``RetryPolicy.max_retry_after``) in the command line's words. Safe on
    any text, a service's message included: only those exact names are replaced."""
    for pattern, words in _LIBRARY_WORDS:
        text = pattern.sub(words, text)
    return text


def _hint(exc: BaseException) -> str:
    if isinstance(exc, ClientAuthenticationError):
        return f" - check --key (or ${KEY_ENV}) and that it belongs to this endpoint"
    if isinstance(exc, CredentialError):
        return " - check that you are signed in (az login) or drop --entra and pass --key"
    if isinstance(exc, ResourceNotFoundError) and exc.status_code is not None:
        return " - check the endpoint URL and the --model (or deployment) name"
    if isinstance(exc, ServiceRequestError):
        return f" - check --endpoint (or ${ENDPOINT_ENV}) and your network"
    return ""


def one_line(text: str) -> str:
    """``text`` on one line, shortened to a readable length."""
    line = _WHITESPACE.sub(" ", text).strip()
    if len(line) > _MAX_ERROR_LENGTH:
        line = line[: _MAX_ERROR_LENGTH - 3] + "..."
    return line


def _text(exc: BaseException) -> str:
    if isinstance(exc, StreamInterruptedError):
        return (
            "the answer was cut off: the connection closed before the stream ended "
            "(what arrived is shown above)"
        )
    if isinstance(exc, ResponseTooLargeError):
        return _too_large(exc)
    text = _CLASS_PREFIX.sub("", str(exc))
    if isinstance(exc, RequestValidationError | ServiceResponseError | InferenceTimeoutError) or (
        isinstance(exc, HttpResponseError) and exc.status_code is None
    ):
        # The library's own words (no service sent them), with the command line's names
        # for its settings.
        return cli_terms(text)
    # A service's message, perhaps with the library's note after it ("not retried: ...").
    return library_words(text) or type(exc).__name__


def _too_large(exc: ResponseTooLargeError) -> str:
    size = f" of {exc.limit / (1024 * 1024):g} MiB" if exc.limit else ""
    if exc.option == "max_stream_bytes":
        return (
            f"the stream brought more than the client's limit{size} and was stopped (what "
            "arrived is shown above)"
        )
    return f"the answer was larger than the client's limit{size} and was not read"


def describe(exc: BaseException) -> str:
    """One line saying what went wrong and, where it helps, what to check."""
    return one_line(_text(exc)) + _hint(exc)


def report(prog: str, exc: BaseException, debug: bool, err: TextIO) -> int:
    """Write the error line (and with ``debug`` the traceback) on ``err``; the exit code."""
    try:
        if debug:
            traceback.print_exception(exc, file=err)
        err.write(f"{prog}: error: {describe(exc)}\n")
        err.flush()
    except BrokenPipeError:  # stderr goes to a reader that left too (``2>&1 | head``)
        silence_broken_pipe(sys.stderr)
    return exit_code(exc)


def silence_broken_pipe(stream: TextIO) -> None:
    """Point ``stream``'s file descriptor at the null device.

    Its reader has gone: the interpreter's flush at exit would fail again and print a
    warning. Nothing more is written where no one reads.
    """
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
