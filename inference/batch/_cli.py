"""``python -m inference batch INPUT.jsonl OUTPUT.jsonl``: the command line of a batch run.

The endpoint and credential come from ``--endpoint``/``--key`` (or ``--entra``), else from
``AZURE_INFERENCE_ENDPOINT`` / ``AZURE_INFERENCE_CREDENTIAL``, as for ``chat``. Unlike ``chat``,
a batch never falls back to the built-in emulator by itself: its answers would be stored as
results, and a rerun against the real endpoint would skip them. ``--emulator`` asks for it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import textwrap
from collections.abc import Iterator
from typing import Any, TextIO

import anyio

from ..exceptions import RequestValidationError
from ._output import check_output_path
from ._runner import BatchInputError, dry_run, run_batch

__all__ = ["add_command"]


def add_command(
    commands: Any,
    connection: argparse.ArgumentParser,
    *,
    epilog: str,
    endpoint_env: str,
    key_env: str,
    exit_failed: int,
) -> None:
    """Register the ``batch`` command on the ``commands`` subparsers of the main parser.

    ``connection``: the parent parser of the endpoint options; ``endpoint_env``/``key_env``:
    the environment variables read without them; ``exit_failed``: the exit code of a run whose
    results include failures. Other errors are raised, for the main parser to report.
    """
    batch = commands.add_parser(
        "batch",
        parents=[connection],
        help="send the requests of a JSONL file (OpenAI Batch format), resumably",
        description=textwrap.fill(
            "Send every request of INPUT (JSON lines with custom_id, method, url, body) that "
            "has no result in OUTPUT yet, and append each result to OUTPUT in OpenAI's batch "
            "output format. Run it again after an interruption: only what has no result is "
            "sent. The endpoint must be given (--endpoint or $AZURE_INFERENCE_ENDPOINT), or "
            "--emulator.",
            width=79,
        ),
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    batch.add_argument("input", metavar="INPUT", help="the requests (JSONL)")
    batch.add_argument("output", metavar="OUTPUT", help="the results (JSONL, appended to)")
    batch.add_argument(
        "--concurrency",
        type=int,
        default=16,
        metavar="N",
        help="requests in flight at most (default: 16)",
    )
    batch.add_argument(
        "--rpm",
        type=float,
        metavar="N",
        help="requests per minute at most (default: as the server's x-ratelimit headers say)",
    )
    batch.add_argument(
        "--tpm",
        type=float,
        metavar="N",
        help="tokens per minute at most (estimated before sending, corrected by usage)",
    )
    batch.add_argument(
        "--dry-run",
        action="store_true",
        help="check INPUT and estimate its tokens; send nothing, write nothing",
    )
    batch.add_argument(
        "--skip-invalid", action="store_true", help="send the valid lines when some are invalid"
    )
    batch.add_argument(
        "--retry-failed",
        action="store_true",
        help="remove failed results from OUTPUT and send those requests again",
    )
    batch.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show progress on stderr (default: when stderr is a terminal)",
    )
    batch.add_argument(
        "--emulator", action="store_true", help="send to the built-in emulator (for trying out)"
    )
    batch.set_defaults(
        handler=_cmd_batch, endpoint_env=endpoint_env, key_env=key_env, exit_failed=exit_failed
    )


@contextlib.contextmanager
def _endpoint(args: argparse.Namespace, err: TextIO) -> Iterator[tuple[str, Any]]:
    """The endpoint URL and credential the run uses."""
    endpoint = args.endpoint or os.environ.get(args.endpoint_env) or None
    credential: Any = args.key or os.environ.get(args.key_env) or None
    if args.emulator and (args.endpoint or args.entra):
        raise RequestValidationError("--emulator excludes --endpoint and --entra; pass one")
    if args.entra and args.key:
        raise RequestValidationError("--entra and --key exclude each other; pass one")
    with contextlib.ExitStack() as stack:
        if args.emulator:
            from ..testing import Emulator

            endpoint = stack.enter_context(Emulator().run_in_thread()).endpoint()
            credential = None
            err.write(f"batch: sending to the built-in emulator at {endpoint}\n")
        elif endpoint is None:
            raise RequestValidationError(
                f"no endpoint: pass --endpoint or set ${args.endpoint_env} (or --emulator to "
                "try the command against the built-in emulator)"
            )
        if args.entra:
            from azure.identity import DefaultAzureCredential

            credential = stack.enter_context(DefaultAzureCredential())
        yield endpoint, credential


def _client_options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if getattr(args, "allow_http", False):
        options["enforce_https"] = False
    if args.timeout is not None:
        options["timeout"] = args.timeout
    if args.retries is not None:
        options["retry"] = args.retries
    if args.allow_http:
        options["enforce_https"] = False
    return options


def _invalid(args: argparse.Namespace, count: int) -> BatchInputError:
    return BatchInputError(
        f"{count} invalid line(s) in {args.input}; nothing was sent (fix them, or send the "
        "valid lines with --skip-invalid)"
    )


def _run(args: argparse.Namespace, err: TextIO) -> Any:
    progress = args.progress if args.progress is not None else err.isatty()
    with _endpoint(args, err) as (endpoint, credential):
        return anyio.run(
            lambda: run_batch(
                args.input,
                args.output,
                endpoint=endpoint,
                credential=credential,
                concurrency=args.concurrency,
                requests_per_minute=args.rpm,
                tokens_per_minute=args.tpm,
                skip_invalid=args.skip_invalid,
                retry_failed=args.retry_failed,
                progress=progress,
                progress_stream=err,
                client_options=_client_options(args),
            )
        )


def _cmd_batch(args: argparse.Namespace, prog: str, out: Any, err: TextIO) -> int:
    if args.dry_run:
        plan = dry_run(args.input, args.output)
        out.write(plan.describe(args.tpm) + "\n")
        if plan.errors:
            raise _invalid(args, len(plan.errors))
        return 0
    check_output_path(args.output)  # before the emulator starts, or anything is sent
    try:
        summary = _run(args, err)
    except BatchInputError as exc:
        if not exc.errors:
            raise
        for error in exc.errors:
            err.write(f"{prog}: {args.input} {error}\n")
        raise _invalid(args, len(exc.errors)) from None
    for error in summary.invalid:
        err.write(f"{prog}: skipped {args.input} {error}\n")
    err.write(f"batch: {summary.describe()}\n")
    if summary.failures:
        err.write(
            f"batch: {summary.failures} request(s) failed; their errors are in {args.output}"
            + (" (--retry-failed sends them again)\n" if summary.failed_before else "\n")
        )
        return int(args.exit_failed)
    return 0
