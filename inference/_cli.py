"""The command line: ``python -m inference`` and the ``inference-chat`` script.

Commands (``chat`` is the default, so ``inference-chat "Hi"`` works)::

    python -m inference chat "How many feet are in a mile?"   # streams the answer
    echo "Hi" | python -m inference chat                      # prompt from stdin
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
import contextlib
import io
import json
import logging
import os
import re
import sys
import textwrap
import traceback
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final, TextIO

from azure.core import exceptions as azure_exceptions

from . import _version
from ._sync import ChatCompletionsClient, ChatCompletionsStream
from .exceptions import (
    ClientAuthenticationError,
    ContentFilterError,
    CredentialError,
    HttpResponseError,
    InferenceError,
    InferenceTimeoutError,
    RequestValidationError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
    StreamError,
)
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

#: Environment variable read when ``--endpoint`` is not given.
ENDPOINT_ENV: Final = "AZURE_INFERENCE_ENDPOINT"
#: Environment variable read when ``--key`` is not given.
KEY_ENV: Final = "AZURE_INFERENCE_CREDENTIAL"

#: Success.
EXIT_OK: Final = 0
#: Any other failure.
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

#: Exit code -> meaning, as printed by ``--help``.
EXIT_CODES: Final = {
    EXIT_OK: "success",
    EXIT_ERROR: "other error",
    EXIT_USAGE: "bad arguments (missing prompt, unreadable image, invalid value)",
    EXIT_AUTH: "authentication failed (HTTP 401/403, no token)",
    EXIT_NOT_FOUND: "not found (HTTP 404: endpoint URL, deployment or model name)",
    EXIT_CONTENT_FILTER: "refused by the content filter",
    EXIT_CONNECTION: "endpoint unreachable or too slow",
    EXIT_SERVICE: "service error (429, 5xx, broken stream or response body)",
    EXIT_INTERRUPTED: "stopped with Ctrl-C",
}

_COMMANDS: Final = frozenset({"batch", "chat", "info", "serve"})
_TOP_LEVEL_OPTIONS: Final = frozenset({"-h", "--help", "--version"})
_JSON_HINT: Final = "Answer with a JSON object."
_MAX_ERROR_LENGTH: Final = 500
_WHITESPACE: Final = re.compile(r"\s+")


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr (exit code 2)."""

    def error(self, message: str) -> Any:  # argparse declares NoReturn
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


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


# ------------------------------------------------------------------------------ parsing


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _positive_number(text: str) -> float:
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
    return value


def _port(text: str) -> int:
    value = _non_negative_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535)")
    return value


def _program_name() -> str:
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if not name or name in ("__main__.py", "-c", "-m"):
        return "python -m inference"
    return name.removesuffix(".exe")


def _exit_code_text() -> str:
    lines = ["exit codes:"]
    lines += [f"  {code:<4} {meaning}" for code, meaning in EXIT_CODES.items()]
    return "\n".join(lines)


def _wrap(text: str) -> str:
    return textwrap.fill(text, width=79)


def _build_parser(prog: str) -> _Parser:
    epilog = "\n".join(
        [
            _wrap(f'\'chat\' is the default command: {prog} "Hello" is {prog} chat "Hello".'),
            _wrap(
                f"Endpoint and key: --endpoint/--key, or ${ENDPOINT_ENV} / ${KEY_ENV}; "
                "with neither, the built-in emulator answers."
            ),
            "",
            _exit_code_text(),
        ]
    )
    parser = _Parser(
        prog=prog,
        description=_wrap(
            "Chat with a chat-completions endpoint (Azure AI Model Inference, Azure OpenAI, "
            "GitHub Models, any OpenAI-compatible server), or run the local emulator."
        ),
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version.__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show tracebacks and the library's debug log"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    connection = _Parser(add_help=False)
    group = connection.add_argument_group("endpoint")
    group.add_argument(
        "--endpoint",
        metavar="URL",
        help=f"the endpoint URL (default: ${ENDPOINT_ENV}; without it, the built-in emulator)",
    )
    group.add_argument("--key", metavar="KEY", help=f"the API key (default: ${KEY_ENV})")
    group.add_argument(
        "--entra",
        action="store_true",
        help="authenticate with Microsoft Entra ID (DefaultAzureCredential) instead of a key",
    )
    group.add_argument(
        "--timeout",
        type=_positive_number,
        metavar="SECONDS",
        help="connect/read/idle timeout (default: 10 s to connect, 600 s for an answer)",
    )
    group.add_argument(
        "--retries",
        type=_non_negative_int,
        metavar="N",
        help="retries after a failed attempt (default: 3; 0 disables)",
    )
    group.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show tracebacks and the library's debug log",
    )

    chat = commands.add_parser(
        "chat",
        parents=[connection],
        help="ask a question (or chat interactively on a terminal)",
        description=_wrap(
            "Stream the answer to PROMPT. Without PROMPT: on a terminal, an interactive "
            "session (Ctrl-C stops an answer and keeps what was shown of it in the "
            "conversation; Ctrl-D or /exit leaves; /reset forgets the conversation); with "
            "stdin piped, the prompt is read from stdin ('-' reads stdin too)."
        ),
        epilog=_exit_code_text(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    chat.add_argument("prompt", nargs="?", metavar="PROMPT", help="the question")
    chat.add_argument("--system", metavar="TEXT", help="a system message (instructions)")
    chat.add_argument("--model", metavar="NAME", help="the model (or deployment) name")
    chat.add_argument("--temperature", type=_number, metavar="T", help="sampling temperature")
    chat.add_argument(
        "--max-tokens", type=_positive_int, metavar="N", help="the longest answer, in tokens"
    )
    chat.add_argument(
        "--json",
        action="store_true",
        help="JSON mode (response_format json_object); asks for JSON in the system message "
        "when it does not mention JSON",
    )
    chat.add_argument(
        "--no-stream", action="store_true", help="wait for the whole answer instead of streaming"
    )
    chat.add_argument(
        "--image",
        action="append",
        default=[],
        metavar="FILE",
        help="attach an image file (sent as a data URL; repeatable; interactive: first turn)",
    )
    chat.add_argument(
        "--usage", action="store_true", help="print token counts on stderr after the answer"
    )
    chat.set_defaults(handler=_cmd_chat)

    info = commands.add_parser(
        "info",
        parents=[connection],
        help="print the endpoint's model info",
        description="Print what the endpoint's /info route says about its model.",
        epilog=_exit_code_text(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    info.add_argument("--json", action="store_true", help="print it as JSON")
    info.set_defaults(handler=_cmd_info)

    serve = commands.add_parser(
        "serve",
        help="run the local emulator (a chat-completions server for offline work and tests)",
        description="Serve the emulator until Ctrl-C. It speaks every endpoint kind: "
        "http://HOST:PORT/models (Azure AI), /openai/deployments/NAME (Azure OpenAI), "
        "/v1 (OpenAI-compatible), ...",
    )
    serve.add_argument("--host", default="127.0.0.1", help="the address (default: 127.0.0.1)")
    serve.add_argument(
        "--port", type=_port, default=8000, help="the port (default: 8000; 0: any free port)"
    )
    serve.add_argument("--key", metavar="KEY", help="require this key from clients")
    serve.add_argument(
        "--token-delay",
        type=_number,
        default=0.0,
        metavar="SECONDS",
        help="wait this long before each streamed token (default: 0)",
    )
    serve.add_argument(
        "--first-token-delay",
        type=_number,
        default=0.0,
        metavar="SECONDS",
        help="wait this long before the first token of each answer, as a model thinking "
        "(default: 0)",
    )
    serve.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show tracebacks",
    )
    serve.set_defaults(handler=_cmd_serve)

    from .batch._cli import add_command as add_batch_command

    add_batch_command(
        commands,
        connection,
        epilog=_exit_code_text(),
        endpoint_env=ENDPOINT_ENV,
        key_env=KEY_ENV,
        exit_failed=EXIT_ERROR,
    )
    return parser


def _with_default_command(argv: list[str]) -> list[str]:
    """Insert ``chat`` when no command is named (after leading ``--debug``)."""
    index = 0
    while index < len(argv) and argv[index] == "--debug":
        index += 1
    if index == len(argv) or argv[index] not in _COMMANDS | _TOP_LEVEL_OPTIONS:
        return [*argv[:index], "chat", *argv[index:]]
    return argv


# ------------------------------------------------------------------------------ errors


def _exit_code(exc: BaseException) -> int:
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


def _one_line(text: str) -> str:
    line = _WHITESPACE.sub(" ", text).strip()
    if len(line) > _MAX_ERROR_LENGTH:
        line = line[: _MAX_ERROR_LENGTH - 3] + "..."
    return line


def _describe(exc: BaseException) -> str:
    return _one_line(str(exc) or type(exc).__name__) + _hint(exc)


def _report(prog: str, exc: BaseException, debug: bool, err: TextIO) -> int:
    if debug:
        traceback.print_exception(exc, file=err)
    err.write(f"{prog}: error: {_describe(exc)}\n")
    err.flush()
    return _exit_code(exc)


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
    return EXIT_OK


def _load_images(files: Sequence[str]) -> list[ImageUrl]:
    images = []
    for path in files:
        try:
            images.append(ImageUrl.load(image_file=path))
        except OSError as exc:
            raise RequestValidationError(
                f"cannot read the image {path}: {exc.strerror or exc}"
            ) from exc
    return images


def _cmd_chat(args: argparse.Namespace, prog: str, out: _Output, err: TextIO) -> int:
    images = _load_images(args.image)
    prompt: str | None = args.prompt
    interactive = False
    if prompt is None or prompt == "-":
        if prompt is None and sys.stdin is not None and sys.stdin.isatty():
            interactive = True
        else:
            prompt = sys.stdin.read() if sys.stdin is not None else ""
            if not prompt.strip():
                raise RequestValidationError(
                    "no prompt: pass it as an argument, pipe it on stdin, or run on a "
                    "terminal for an interactive session"
                )
    with _connect(args, prog, err) as client:
        if interactive:
            return _interactive(client, args, prog, out, err, images)
        assert prompt is not None
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
            _report(prog, exc, args.debug, err)


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
    from .testing import EmulatorOptions, run

    for flag, value in (
        ("--token-delay", args.token_delay),
        ("--first-token-delay", args.first_token_delay),
    ):
        if value < 0:
            raise RequestValidationError(f"{flag} must be 0 or more")
    options = EmulatorOptions(
        token_delay=args.token_delay, first_token_delay=args.first_token_delay
    )
    try:
        run(args.host, args.port, args.key, options)
    except OSError as exc:
        err.write(f"{prog}: error: cannot serve on {args.host}:{args.port}: {_describe(exc)}\n")
        return EXIT_ERROR
    return EXIT_OK


# ------------------------------------------------------------------------------ entry point


def _configure_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        # Only the real console streams: a caller's replacement streams are left alone.
        if stream in (sys.__stdout__, sys.__stderr__) and isinstance(stream, io.TextIOWrapper):
            with contextlib.suppress(ValueError, io.UnsupportedOperation):
                stream.reconfigure(errors="replace")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    _configure_streams()
    prog = _program_name()
    arguments = _with_default_command(list(sys.argv[1:] if argv is None else argv))
    parser = _build_parser(prog)
    try:
        args = parser.parse_args(arguments)
    except SystemExit as exc:  # --help, --version, argument errors
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    debug = bool(getattr(args, "debug", False))
    args.debug = debug
    if debug:
        logging.basicConfig(format="%(name)s %(levelname)s %(message)s", stream=sys.stderr)
        logging.getLogger("inference").setLevel(logging.DEBUG)
    elif not logging.getLogger().handlers:
        # Keep stderr to one line per error: azure-identity logs its own multi-line warnings
        # (shown with --debug), which Python would otherwise print through its last resort.
        logging.getLogger("azure").addHandler(logging.NullHandler())
    out = _Output(sys.stdout)
    handler: Callable[[argparse.Namespace, str, _Output, TextIO], int] = args.handler
    try:
        return handler(args, prog, out, sys.stderr)
    except KeyboardInterrupt:
        with contextlib.suppress(Exception):
            out.end_line()
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (``| head``): nothing more to say, and nowhere to say it.
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return EXIT_ERROR
    except (InferenceError, azure_exceptions.AzureError, OSError, ValueError) as exc:
        with contextlib.suppress(Exception):
            out.end_line()
        return _report(prog, exc, debug, sys.stderr)
    except Exception as exc:  # a bug: still one line, the traceback with --debug
        return _report(prog, exc, debug, sys.stderr)
