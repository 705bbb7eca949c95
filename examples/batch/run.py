"""Run a batch file from Python, then run it again: the second run sends nothing.

With ``AZURE_INFERENCE_ENDPOINT`` (and ``AZURE_INFERENCE_CREDENTIAL``) set it asks that
endpoint; without, the built-in emulator answers::

    python examples/batch/run.py
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

from inference.batch import dry_run, run_batch_sync
from inference.testing import Emulator

REQUESTS = Path(__file__).with_name("requests.jsonl")


def main() -> None:
    """Estimate, run, rerun, and show one result."""
    with contextlib.ExitStack() as stack:
        endpoint = os.environ.get("AZURE_INFERENCE_ENDPOINT")
        key = os.environ.get("AZURE_INFERENCE_CREDENTIAL")
        if not endpoint:
            endpoint = stack.enter_context(Emulator().run_in_thread()).endpoint()
            print(f"no AZURE_INFERENCE_ENDPOINT: using the built-in emulator at {endpoint}")
        results = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "results.jsonl"
        print(dry_run(REQUESTS, results).describe())
        for _ in range(2):
            summary = run_batch_sync(
                REQUESTS, results, endpoint=endpoint, credential=key, requests_per_minute=600
            )
            print(summary.describe())
        first = json.loads(results.read_text().splitlines()[0])
        print(first["custom_id"], "->", json.dumps(first["response"]["body"])[:120], "...")


if __name__ == "__main__":
    main()
