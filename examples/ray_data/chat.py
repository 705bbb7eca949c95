"""Answer a dataset of questions with Ray Data: one client per actor, paced and retried.

Runs on a local Ray (``ray.init()``). With ``AZURE_INFERENCE_ENDPOINT`` (and
``AZURE_INFERENCE_CREDENTIAL``) set it asks that endpoint; without, the built-in emulator
answers, so the example runs offline::

    pip install 'aioinference[ray]'
    python examples/ray_data/chat.py
"""

from __future__ import annotations

import contextlib
import os

import ray

from inference.ray import ChatCompletions
from inference.testing import Emulator

ACTORS = 2


def main() -> None:
    """Build a dataset of questions, answer it on two actors, print a few rows."""
    with contextlib.ExitStack() as stack:
        endpoint = os.environ.get("AZURE_INFERENCE_ENDPOINT")
        key = os.environ.get("AZURE_INFERENCE_CREDENTIAL")
        if not endpoint:
            endpoint = stack.enter_context(Emulator().run_in_thread()).endpoint()
            print(f"no AZURE_INFERENCE_ENDPOINT: using the built-in emulator at {endpoint}")
        ray.init(num_cpus=ACTORS, include_dashboard=False, log_to_driver=False)
        stack.callback(ray.shutdown)
        questions = ray.data.from_items(
            [
                {"messages": [{"role": "user", "content": f"How many feet are in {n} miles?"}]}
                for n in range(1, 41)
            ]
        )
        answers = questions.map_batches(
            ChatCompletions,
            fn_constructor_kwargs={
                "endpoint": endpoint,
                "credential": key,
                "body_defaults": {"max_tokens": 60},
                "concurrency_per_actor": 8,
                # The account's limit divided by the number of actors:
                "requests_per_minute": 600 / ACTORS,
            },
            compute=ray.data.ActorPoolStrategy(size=ACTORS),
            batch_size=10,
        )
        rows = answers.take_all()
        failed = [row for row in rows if row["error"] is not None]
        tokens = sum(row["total_tokens"] or 0 for row in rows)
        for row in rows[:3]:
            print(f"{row['messages'][0]['content']} -> {row['content']}")
        print(f"{len(rows)} rows, {len(failed)} failed, {tokens} tokens")


if __name__ == "__main__":
    main()
