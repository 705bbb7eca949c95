"""The command line's arguments: the parser of ``python -m inference`` and its value checks.

Values are checked here, so a bad one is a usage error (exit code 2) that names the option,
before anything is sent.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shlex
import sys
import textwrap
from typing import Any, Final

from . import _version
from ._cli_errors import ENDPOINT_ENV, EXIT_CODES, EXIT_ERROR, EXIT_USAGE, KEY_ENV

#: The commands; ``chat`` is the default.
COMMANDS: Final = frozenset({"batch", "chat", "info", "serve"})
_TOP_LEVEL_OPTIONS: Final = frozenset({"-h", "--help", "--version"})
#: The largest ``--max-tokens``: a signed 32-bit count, which every service takes.
MAX_TOKENS_LIMIT: Final = 2**31 - 1


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr (exit code 2)."""

    def error(self, message: str) -> Any:  # argparse declares NoReturn
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _whole_number(text: str, minimum: int, maximum: int | None = None) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"{text!r} must be {minimum} or more")
    if maximum is not None and value > maximum:
        raise argparse.ArgumentTypeError(f"{text!r} is too large (at most {maximum})")
    return value


def _token_count(text: str) -> int:
    return _whole_number(text, 1, MAX_TOKENS_LIMIT)


def _non_negative_int(text: str) -> int:
    return _whole_number(text, 0)


def _not_empty(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty (leave the option out instead)")
    return text


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
    return _whole_number(text, 0, 65535)


def program_name() -> str:
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


def build_parser(prog: str) -> Parser:
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
    parser = Parser(
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

    connection = Parser(add_help=False)
    group = connection.add_argument_group("endpoint")
    group.add_argument(
        "--endpoint",
        type=_not_empty,
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
        "--allow-http",
        action="store_true",
        help="send the key over plain http:// to a host that is not this machine (a server on "
        "a network you trust; anyone on the path can read the key)",
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
    chat.add_argument(
        "--model", type=_not_empty, metavar="NAME", help="the model (or deployment) name"
    )
    chat.add_argument("--temperature", type=_number, metavar="T", help="sampling temperature")
    chat.add_argument(
        "--max-tokens", type=_token_count, metavar="N", help="the longest answer, in tokens"
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
        help="attach an image file of at most 20 MiB (sent as a data URL; repeatable; "
        "interactive: first turn)",
    )
    chat.add_argument(
        "--usage", action="store_true", help="print token counts on stderr after the answer"
    )

    info = commands.add_parser(
        "info",
        parents=[connection],
        help="print the endpoint's model info",
        description="Print what the endpoint's /info route says about its model.",
        epilog=_exit_code_text(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    info.add_argument("--json", action="store_true", help="print it as JSON")

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
        "--max-request-mib",
        type=_positive_number,
        default=None,
        metavar="MIB",
        help="the largest request body read, in MiB (default: 64); a larger one gets HTTP 413",
    )
    serve.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show tracebacks",
    )

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


def mistyped_command(argv: list[str]) -> tuple[str, str, str] | None:
    """``(word, command, prompt)`` when the first argument is one word that is no command but
    looks like one (``sevre``, ``Info``): sent as a prompt, it would cost a request that was
    never meant. ``prompt`` is how to give it as a prompt instead: the word, or quoted with
    the words that follow it up to the first option (``what is love`` typed unquoted). None
    otherwise (a command, an option, a quoted question of several words)."""
    index = 0
    while index < len(argv) and argv[index] == "--debug":
        index += 1
    if index == len(argv):
        return None
    word = argv[index]
    if word in COMMANDS or not word.isalpha() or len(word) > 12:
        return None
    close = [command for command in sorted(COMMANDS) if _slip(word.lower(), command)]
    if not close:
        return None
    words = list(itertools.takewhile(lambda arg: not arg.startswith("-"), argv[index:]))
    prompt = word if len(words) == 1 else shlex.quote(" ".join(words))
    return word, close[0], prompt


def _slip(word: str, command: str) -> bool:
    """True if ``word`` is ``command`` typed with two neighbouring letters swapped, one letter
    left out or one letter too many. A letter typed for another is not taken for a slip: too
    many English words are one letter away from a command (what, that, into, patch)."""
    if len(word) == len(command):
        apart = [i for i, (a, b) in enumerate(zip(word, command, strict=True)) if a != b]
        if not apart:
            return True  # the command in other letter case
        return (
            len(apart) == 2
            and apart[1] == apart[0] + 1
            and word[apart[0]] == command[apart[1]]
            and word[apart[1]] == command[apart[0]]
        )
    shorter, longer = sorted((word, command), key=len)
    if len(longer) - len(shorter) != 1:
        return False
    return any(longer[:i] + longer[i + 1 :] == shorter for i in range(len(longer)))


def with_default_command(argv: list[str]) -> list[str]:
    """Insert ``chat`` when no command is named (after leading ``--debug``)."""
    index = 0
    while index < len(argv) and argv[index] == "--debug":
        index += 1
    if index == len(argv) or argv[index] not in COMMANDS | _TOP_LEVEL_OPTIONS:
        return [*argv[:index], "chat", *argv[index:]]
    return argv
