"""What the opt-in suite knows about the real server: where it is and what to ask of it."""

from __future__ import annotations

import attrs

BASE_URL_ENV = "INFERENCE_REAL_BASE_URL"
MODEL_ENV = "INFERENCE_REAL_MODEL"
KEY_ENV = "INFERENCE_REAL_KEY"

#: The longest answer any test asks for, in tokens (a few seconds on one slow CPU thread).
MAX_TOKENS = 32
#: Seconds a test may take: generous, the server may be shared and slow.
TEST_TIMEOUT = 300


@attrs.frozen
class RealServer:
    """Where the real server is, and what to send it."""

    base_url: str
    model: str | None
    key: str | None

    def client_kwargs(self) -> dict[str, object]:
        """Client keyword arguments: the model, and greedy short answers."""
        return {
            "model": self.model,
            "max_tokens": MAX_TOKENS,
            "temperature": 0.0,
            "seed": 7,
        }
