"""A local chat-completions emulator for developing and testing offline.

:class:`Emulator` is an aiohttp.web server on 127.0.0.1 that speaks the chat-completions API
of every endpoint kind the client supports, answers with a deterministic built-in model, and
can inject the faults real services show (slow or cut streams, error events, error statuses).
For pytest, enable the fixtures with ``pytest_plugins = ["inference.testing.pytest_plugin"]``.
"""

from ._emulator import ENDPOINT_KINDS, Emulator, EmulatorOptions, RecordedRequest, run

__all__ = ["ENDPOINT_KINDS", "Emulator", "EmulatorOptions", "RecordedRequest", "run"]
