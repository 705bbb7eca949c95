"""The command line: ``python -m inference`` and the ``inference-chat`` script.

Commands (``chat`` is the default, so ``inference-chat "Hi"`` works)::

    python -m inference chat "How many feet are in a mile?"   # streams the answer
    echo "Hi" | python -m inference chat                      # prompt from stdin
    git diff | python -m inference chat "Review this patch"   # prompt, then stdin's text
    python -m inference chat                                  # interactive, on a terminal
    python -m inference info                                  # the endpoint's model info
    python -m inference serve --port 8000                     # the local emulator
    python -m inference batch requests.jsonl results.jsonl    # a batch file (see inference.batch)

The endpoint comes from ``--endpoint``/``--key`` or ``AZURE_INFERENCE_ENDPOINT`` /
``AZURE_INFERENCE_CREDENTIAL``; without one, ``chat`` and ``info`` start the built-in emulator
in-process and say so in one line on stderr. Errors are one line on stderr and a distinct exit
code (see :data:`EXIT_CODES`); ``--debug`` adds the traceback and the library's debug log.

Interactive sessions keep the conversation. Ctrl-C stops the answer being streamed and keeps
what was shown of it in the history (the model sees what the user saw); a turn stopped before
any text arrived is dropped, question included. Ctrl-D (or ``/exit``) leaves; ``/reset``
forgets the conversation.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import logging
import mimetypes
import os
import stat
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final, TextIO

from azure.core import exceptions as azure_exceptions

from ._cli_args import build_parser, mistyped_command, program_name, with_default_command
from ._cli_errors import (
    ENDPOINT_ENV,
    EXIT_AUTH,
    EXIT_BROKEN_PIPE,
    EXIT_CODES,
    EXIT_CONNECTION,
    EXIT_CONTENT_FILTER,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_SERVICE,
    EXIT_USAGE,
    KEY_ENV,
    describe,
    report,
    silence_broken_pipe,
)
from ._sync import ChatCompletionsClient, ChatCompletionsStream
from .exceptions import InferenceError, RequestValidationError
from .models import (
    AssistantMessage,
    ChatCompletions,
    CompletionsUsage,
    ContentItem,
    ImageContentItem,
    ImageUrl,
    SystemMessage,
    TextContentItem,
    UserMessage,
)

__all__ = [
    "ENDPOINT_ENV",
    "EXIT_AUTH",
    "EXIT_BROKEN_PIPE",
    "EXIT_CODES",
    "EXIT_CONNECTION",
    "EXIT_CONTENT_FILTER",
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_SERVICE",
    "EXIT_USAGE",
    "KEY_ENV",
    "main",
]

_JSON_HINT: Final = "Answer with a JSON object."


class _Output:
    """stdout for answers: remembers whether the cursor is at the start of a line."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._at_line_start = True

    def write(self, text: str) -> None:
        if text:
            self.stream.write(text)
            self.stream.flush()
            self._at_line_start = text.endswith("\n")

    def end_line(self) -> None:
        """Finish the current line, if text was written on it."""
        if not self._at_line_start:
            self.write("\n")


class _Answer:
    """The answer being received: filled as text arrives, so an interruption keeps it."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.usage: CompletionsUsage | None = None
        self.finish_reason: str | None = None

    @property
    def text(self) -> str:
        return "".join(self.parts)


# ------------------------------------------------------------------------------ connection


@contextlib.contextmanager
def _connect(args: argparse.Namespace, prog: str, err: TextIO) -> Iterator[ChatCompletionsClient]:
    """Yield a sync client for the configured endpoint, or for a built-in emulator."""
    endpoint = args.endpoint or os.environ.get(ENDPOINT_ENV) or None
    credential: Any = args.key or os.environ.get(KEY_ENV) or None
    if args.entra:
        if args.key:
            raise RequestValidationError("--entra and --key exclude each other; pass one")
        if endpoint is None:
            raise RequestValidationError(
                f"--entra needs an endpoint: pass --endpoint or set ${ENDPOINT_ENV}"
            )
    with contextlib.ExitStack() as stack:
        if args.entra:
            from azure.identity import DefaultAzureCredential

            credential = stack.enter_context(DefaultAzureCredential())
        if endpoint is None:
            from .testing import Emulator

            emulator = stack.enter_context(Emulator().run_in_thread())
            endpoint = emulator.endpoint()
            err.write(
                f"{prog}: no endpoint configured (--endpoint or ${ENDPOINT_ENV}); "
                f"using the built-in emulator at {endpoint}\n"
            )
            err.flush()
        client = ChatCompletionsClient(
            endpoint,
            credential,
            model=getattr(args, "model", None),
            timeout=args.timeout,
            retry=args.retries,
            enforce_https=not args.allow_http,
        )
        stack.callback(client.close)
        yield client


# ------------------------------------------------------------------------------ chat


def _user_message(text: str, images: Sequence[ImageUrl]) -> UserMessage:
    if not images:
        return UserMessage(text)
    items: list[ContentItem] = [TextContentItem(text=text)]
    items += [ImageContentItem(image_url=image) for image in images]
    return UserMessage(items)


def _system_messages(args: argparse.Namespace) -> list[SystemMessage]:
    text = args.system or ""
    if args.json and "json" not in text.lower():
        text = f"{text} {_JSON_HINT}".strip()
    return [SystemMessage(text)] if text else []


def _ask(
    client: ChatCompletionsClient,
    messages: list[Any],
    args: argparse.Namespace,
    out: _Output,
    answer: _Answer,
) -> None:
    """Send ``messages`` and print the answer as it arrives, filling ``answer``."""
    params: dict[str, Any] = {
        "temperature": args.temperature,
        "max_tokens": args.max_tokens,
        "response_format": "json_object" if args.json else None,
    }
    if args.no_stream:
        result = client.complete(messages=messages, **params)
        if not isinstance(result, ChatCompletions):  # the sync signature is not overloaded
            raise TypeError(f"complete() returned {type(result).__name__}")
        if result.choices:
            first = result.choices[0]
            answer.parts.append(first.message.content or "")
            answer.finish_reason = str(first.finish_reason) if first.finish_reason else None
        answer.usage = result.usage
        out.write(answer.text)
        out.end_line()
        return
    stream = client.complete(
        messages=messages,
        stream=True,
        stream_options={"include_usage": True} if args.usage else None,
        **params,
    )
    if not isinstance(stream, ChatCompletionsStream):
        raise TypeError(f"complete(stream=True) returned {type(stream).__name__}")
    with stream:
        for update in stream:
            for choice in update.choices:
                if choice.index != 0:
                    continue
                if choice.delta.content:
                    answer.parts.append(choice.delta.content)
                    out.write(choice.delta.content)
                if choice.finish_reason:
                    answer.finish_reason = str(choice.finish_reason)
            if update.usage is not None:
                answer.usage = update.usage
    out.end_line()


def _after_answer(prog: str, args: argparse.Namespace, answer: _Answer, err: TextIO) -> int:
    """Print usage and finish notes on stderr; the exit code the answer deserves."""
    if answer.finish_reason == "length":
        err.write(f"{prog}: note: the answer was cut at the token limit (--max-tokens)\n")
    if args.usage:
        usage = answer.usage
        if usage is None:
            err.write("usage: the service reported no token counts\n")
        else:
            err.write(
                f"usage: {usage.prompt_tokens} prompt + {usage.completion_tokens} completion "
                f"= {usage.total_tokens} tokens\n"
            )
    err.flush()
    if answer.finish_reason == "content_filter":
        err.write(f"{prog}: error: the content filter stopped the answer\n")
        return EXIT_CONTENT_FILTER
    if args.json and answer.finish_reason == "length":
        # What was printed is the start of a JSON document, not one: a pipe into a JSON
        # reader must see a failure, not a success with broken output.
        err.write(
            f"{prog}: error: the JSON answer was cut at the token limit and is not valid "
            "JSON; raise --max-tokens\n"
        )
        return EXIT_ERROR
    return EXIT_OK


#: The largest image file ``--image`` accepts, in bytes (the common service limit, 20 MiB).
MAX_IMAGE_BYTES: Final = 20 * 1024 * 1024

#: The first bytes of each image format (after ``image/``) the file name may claim.
_IMAGE_SIGNATURES: Final[dict[str, tuple[bytes, ...]]] = {
    "png": (b"\x89PNG\r\n\x1a\n",),
    "jpeg": (b"\xff\xd8\xff",),
    "gif": (b"GIF87a", b"GIF89a"),
    "bmp": (b"BM",),
    "tiff": (b"II*\x00", b"MM\x00*"),
}


def _looks_like(image_format: str, data: bytes) -> bool:
    """False if ``data`` does not start like an image of ``image_format`` (unknown: True)."""
    if image_format == "webp":
        return data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    signatures = _IMAGE_SIGNATURES.get(image_format)
    return signatures is None or data.startswith(signatures)


def _read_image(path: str) -> bytes:
    """The bytes of the image file ``path``: a regular file of at most MAX_IMAGE_BYTES."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise RequestValidationError(f"--image {path}: not a regular file")
        with open(path, "rb") as f:
            data = f.read(MAX_IMAGE_BYTES + 1)
    except OSError as exc:
        raise RequestValidationError(
            f"cannot read the image {path}: {exc.strerror or exc}"
        ) from exc
    if len(data) > MAX_IMAGE_BYTES:
        raise RequestValidationError(
            f"--image {path}: the file is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MiB, "
            "the limit for one image; shrink or compress it"
        )
    return data


def _load_images(files: Sequence[str]) -> list[ImageUrl]:
    images = []
    for path in files:
        guessed, _ = mimetypes.guess_type(path)
        if not guessed or not guessed.startswith("image/"):
            raise RequestValidationError(
                f"--image {path}: cannot tell the image format from the file name; "
                "use a .png, .jpg, .gif or .webp file"
            )
        image_format = guessed.removeprefix("image/")
        data = _read_image(path)
        if not _looks_like(image_format, data):
            raise RequestValidationError(
                f"--image {path}: the file name says {image_format.upper()}, but the file's "
                f"content is not a {image_format.upper()} image; rename it to its real "
                "format or pass the right file"
            )
        encoded = base64.b64encode(data).decode("ascii")
        images.append(ImageUrl(url=f"data:{guessed};base64,{encoded}"))
    return images


def _prompt(given: str | None) -> str | None:
    """The one-shot prompt, or None for an interactive session.

    The prompt argument (``-`` or none: stdin). With a prompt argument and stdin piped or
    redirected from a file (``git diff | chat "Review this"``), stdin's text follows the
    prompt after a blank line; a terminal or the null device on stdin adds nothing.
    """
    if given is not None and given != "-":
        if not given.strip():
            raise RequestValidationError(
                'the prompt is empty; ask something, e.g. chat "How many feet are in a mile?"'
            )
        _check_text(given, "the prompt argument")
        if _piped(sys.stdin):
            extra = _read_stdin()
            if extra.strip():
                return f"{given}\n\n{extra}"
        return given
    if given is None and sys.stdin is not None and sys.stdin.isatty():
        return None
    prompt = _read_stdin() if sys.stdin is not None else ""
    if not prompt.strip():
        raise RequestValidationError(
            "no prompt: pass it as an argument, pipe it on stdin, or run on a "
            "terminal for an interactive session"
        )
    return prompt


def _piped(stream: TextIO | None) -> bool:
    """True if ``stream`` is a pipe or a regular file (not a terminal, the null device or a
    stream with no file descriptor)."""
    if stream is None:
        return False
    try:
        mode = os.fstat(stream.fileno()).st_mode
    except (OSError, ValueError):  # io.UnsupportedOperation is an OSError
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISREG(mode)


def _read_stdin() -> str:
    """All of stdin as text, refused (naming the first bad byte) unless it is UTF-8."""
    raw = getattr(sys.stdin, "buffer", None)
    if raw is None:  # a text stream with no bytes beneath it
        text = sys.stdin.read()
        _check_text(text, "stdin")
        return text
    data = raw.read()
    try:
        return str(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise RequestValidationError(
            f"stdin is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "convert it first, e.g. with iconv -f latin1 -t utf-8"
        ) from None


def _check_text(text: str, what: str) -> None:
    """Refuse text holding lone surrogates (bytes that were not UTF-8, decoded with
    ``surrogateescape``, as the interpreter does for arguments and some stdin)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise RequestValidationError(
            f"{what} is not UTF-8 text (an undecodable byte at character {exc.start}); "
            "convert it first, e.g. with iconv -f latin1 -t utf-8"
        ) from None


def _cmd_chat(args: argparse.Namespace, prog: str, out: _Output, err: TextIO) -> int:
    images = _load_images(args.image)
    prompt = _prompt(args.prompt)
    with _connect(args, prog, err) as client:
        if prompt is None:
            return _interactive(client, args, prog, out, err, images)
        messages: list[Any] = [*_system_messages(args), _user_message(prompt, images)]
        answer = _Answer()
        try:
            _ask(client, messages, args, out, answer)
        finally:
            out.end_line()
        return _after_answer(prog, args, answer, err)


def _interactive(
    client: ChatCompletionsClient,
    args: argparse.Namespace,
    prog: str,
    out: _Output,
    err: TextIO,
    images: list[ImageUrl],
) -> int:
    with contextlib.suppress(ImportError):
        import readline  # noqa: F401  (line editing and history for input())
    base: list[Any] = list(_system_messages(args))
    history: list[Any] = list(base)
    endpoint = client.endpoint.base_url
    err.write(
        f"Chatting with {args.model or 'the default model'} at {endpoint}. Ctrl-C stops an "
        "answer, Ctrl-D (or /exit) leaves, /reset forgets the conversation.\n"
    )
    err.flush()
    while True:
        try:
            line = input("> ")
        except EOFError:
            out.write("\n")  # leave the shell prompt on a line of its own
            return EXIT_OK
        except KeyboardInterrupt:
            out.write("\n")
            continue
        text = line.strip()
        if not text:
            continue
        if text in ("/exit", "/quit"):
            return EXIT_OK
        if text == "/reset":
            history = list(base)
            err.write("(conversation forgotten)\n")
            continue
        user = _user_message(text, images)
        images = []
        answer = _Answer()
        answered = False
        try:
            _ask(client, [*history, user], args, out, answer)
            answered = True
            history += [user, AssistantMessage(answer.text)]
            _after_answer(prog, args, answer, err)
        except KeyboardInterrupt:
            out.end_line()
            if not answered:
                err.write("(stopped)\n")
                err.flush()
                if answer.text:  # keep what was shown; drop a turn that showed nothing
                    history += [user, AssistantMessage(answer.text)]
        except (InferenceError, azure_exceptions.AzureError) as exc:
            out.end_line()
            report(prog, exc, args.debug, err)


# ------------------------------------------------------------------------------ info, serve


def _cmd_info(args: argparse.Namespace, prog: str, out: _Output, err: TextIO) -> int:
    with _connect(args, prog, err) as client:
        info = client.get_model_info()
    if args.json:
        out.write(json.dumps(info.as_dict(), indent=2, default=str) + "\n")
    else:
        for name, value in info.as_dict().items():
            out.write(f"{name}: {value}\n")
    return EXIT_OK


def _cmd_serve(args: argparse.Namespace, prog: str, out: _Output, err: TextIO) -> int:
    from .testing import MAX_REQUEST_BYTES, EmulatorOptions, run

    for flag, value in (
        ("--token-delay", args.token_delay),
        ("--first-token-delay", args.first_token_delay),
    ):
        if value < 0:
            raise RequestValidationError(f"{flag} must be 0 or more")
    limit = MAX_REQUEST_BYTES
    if args.max_request_mib is not None:  # checked > 0 by the parser
        limit = max(int(args.max_request_mib * 1024 * 1024), 1)
    options = EmulatorOptions(
        token_delay=args.token_delay, first_token_delay=args.first_token_delay
    )
    try:
        run(args.host, args.port, args.key, options, max_request_bytes=limit)
    except OSError as exc:
        err.write(f"{prog}: error: cannot serve on {args.host}:{args.port}: {describe(exc)}\n")
        return EXIT_ERROR
    return EXIT_OK


# ------------------------------------------------------------------------------ entry point


def _configure_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        # Only the real console streams: a caller's replacement streams are left alone.
        if stream in (sys.__stdout__, sys.__stderr__) and isinstance(stream, io.TextIOWrapper):
            with contextlib.suppress(ValueError, io.UnsupportedOperation):
                stream.reconfigure(errors="replace")


_HANDLERS: Final[dict[str, Callable[[argparse.Namespace, str, _Output, TextIO], int]]] = {
    "chat": _cmd_chat,
    "info": _cmd_info,
    "serve": _cmd_serve,
}


def _configure_logging(debug: bool) -> None:
    if debug:
        logging.basicConfig(format="%(name)s %(levelname)s %(message)s", stream=sys.stderr)
        logging.getLogger("inference").setLevel(logging.DEBUG)
    elif not logging.getLogger().handlers:
        # Keep stderr to one line per error: azure-identity logs its own multi-line warnings
        # (shown with --debug), which Python would otherwise print through its last resort.
        logging.getLogger("azure").addHandler(logging.NullHandler())


def _run(args: argparse.Namespace, prog: str, out: _Output) -> int:
    """Run the command; every failure becomes an exit code (and one line on stderr)."""
    try:
        # A command registered by another module (``batch``) brings its own handler.
        handler = getattr(args, "handler", None) or _HANDLERS[args.command]
        return int(handler(args, prog, out, sys.stderr))
    except KeyboardInterrupt:
        with contextlib.suppress(Exception):
            out.end_line()
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (``| head``): stop quietly, as a tool ended by SIGPIPE does.
        silence_broken_pipe(sys.stdout)
        return EXIT_BROKEN_PIPE
    except (InferenceError, azure_exceptions.AzureError, OSError, ValueError) as exc:
        try:
            out.end_line()
        except BrokenPipeError:
            silence_broken_pipe(sys.stdout)
            return EXIT_BROKEN_PIPE
        except Exception:  # stdout is unusable otherwise: the error line still goes out
            pass
        return report(prog, exc, args.debug, sys.stderr)
    except Exception as exc:  # a bug: still one line, the traceback with --debug
        return report(prog, exc, args.debug, sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    _configure_streams()
    prog = program_name()
    given = list(sys.argv[1:] if argv is None else argv)
    mistyped = mistyped_command(given)
    if mistyped is not None:
        word, command, prompt = mistyped
        sys.stderr.write(
            f"{prog}: error: '{word}' is not a command; did you mean '{command}'? To send "
            f"it as a prompt: {prog} chat {prompt}\n"
        )
        return EXIT_USAGE
    arguments = with_default_command(given)
    parser = build_parser(prog)
    try:
        args = parser.parse_args(arguments)
    except SystemExit as exc:  # --help, --version, argument errors
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    args.debug = bool(getattr(args, "debug", False))
    _configure_logging(args.debug)
    return _run(args, prog, _Output(sys.stdout))
