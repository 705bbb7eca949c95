"""Cold start: how long a fresh interpreter takes to import this library and azure-ai-inference.

Each statement runs in a new process (``python -c <statement>``), ``--runs`` times, the
statements interleaved run by run (so a busy moment of the machine hits all of them); the
report gives the median wall time of each and its difference to a bare interpreter
(``python -c pass``):

* ``import inference`` against ``import azure.ai.inference``;
* importing the sync client of each (``from ... import ChatCompletionsClient``).

azure-ai-inference comes with the ``bench`` extra; without it only this library is timed.

Usage: ``python benchmarks/bench_import.py [--runs N] [--quick]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

STATEMENTS = {
    "python (nothing imported)": "pass",
    "import inference": "import inference",
    "import azure.ai.inference": "import azure.ai.inference",
    "from inference import ChatCompletionsClient": "from inference import ChatCompletionsClient",
    "from azure.ai.inference import ChatCompletionsClient": (
        "from azure.ai.inference import ChatCompletionsClient"
    ),
}


def time_once(statement: str) -> float:
    """Wall seconds of one fresh interpreter running ``statement``."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", statement], cwd=ROOT, check=True)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    """Time every statement and print the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=21, help="fresh processes per statement")
    parser.add_argument("--quick", action="store_true", help="three runs: the harness works")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs = 3
    if args.runs < 1:
        parser.error("--runs must be >= 1")
    statements = dict(STATEMENTS)
    try:
        installed = importlib.util.find_spec("azure.ai.inference") is not None
    except ModuleNotFoundError:  # not even the azure.ai namespace is installed
        installed = False
    if not installed:
        print("azure-ai-inference is not installed (pip install -e '.[bench]'): skipped")
        statements = {k: v for k, v in statements.items() if "azure" not in k}
    samples: dict[str, list[float]] = {label: [] for label in statements}
    for run in range(args.runs):
        order = list(statements.items())
        if run % 2:
            order.reverse()
        for label, statement in order:
            samples[label].append(time_once(statement))
    medians = {label: statistics.median(times) for label, times in samples.items()}
    bare = medians["python (nothing imported)"]
    print(
        f"Python {sys.version.split()[0]}; {args.runs} fresh processes each, interleaved; medians"
    )
    for label, median in medians.items():
        print(f"  {label:<55} {median * 1000:7.1f} ms  (+{(median - bare) * 1000:6.1f} ms)")
    pairs = (
        ("import inference", "import azure.ai.inference"),
        (
            "from inference import ChatCompletionsClient",
            "from azure.ai.inference import ChatCompletionsClient",
        ),
    )
    for ours, theirs in pairs:
        if theirs in medians:
            ratio = (medians[ours] - bare) / (medians[theirs] - bare)
            print(f"  {ours!r} over {theirs!r}, interpreter start excluded: {ratio:.2f}x")


if __name__ == "__main__":
    main()
