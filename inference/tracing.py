"""OpenTelemetry tracing and metrics (the ``[otel]`` extra: ``pip install aioinference[otel]``).

With ``opentelemetry-api`` installed and a tracer provider (or meter provider) set by the
application, every ``complete()`` and ``embed()`` call, sync or async, records one span and
the GenAI client metrics, with no code change:

- span ``chat {model}`` / ``embeddings {model}`` (kind ``CLIENT``) with
  ``gen_ai.operation.name``, ``gen_ai.provider.name`` (and the older ``gen_ai.system``),
  ``gen_ai.request.*`` (``model``, ``temperature``, ``top_p``, ``max_tokens``, penalties,
  ``seed``, ``stop_sequences``, ``choice.count``; for embeddings
  ``gen_ai.embeddings.dimension.count`` and ``gen_ai.request.encoding_formats``),
  ``gen_ai.response.id``, ``gen_ai.response.model``, ``gen_ai.response.finish_reasons``,
  ``gen_ai.usage.input_tokens`` / ``output_tokens``, ``server.address`` / ``server.port``,
  and on failure ``error.type`` (the HTTP status, else the exception's class) with the span
  status ERROR. A streamed call's span lasts until the stream ends, fails or is closed, and
  carries ``gen_ai.response.time_to_first_chunk`` (seconds).
- histograms ``gen_ai.client.operation.duration`` (s), ``gen_ai.client.token.usage``
  (``gen_ai.token.type`` ``input``/``output``) and, for streams,
  ``gen_ai.client.operation.time_to_first_chunk`` (s).

``gen_ai.provider.name`` is ``azure.ai.inference`` for Azure AI model inference, serverless
and GitHub Models endpoints, ``azure.ai.openai`` for Azure OpenAI, ``openai`` for other
OpenAI-compatible servers.

Message content (``gen_ai.input.messages``, ``gen_ai.output.messages``) is recorded only when
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`` or after
``AIInferenceInstrumentor().instrument(enable_content_recording=True)``: prompts and answers
are often personal data.

Without ``opentelemetry-api``, or with no provider set, a call pays one attribute check.
"""

from __future__ import annotations

import os

from ._tracing import AZURE_CAPTURE_ENV, STATE, capture_content

__all__ = ["AIInferenceInstrumentor"]


class AIInferenceInstrumentor:
    """Switch tracing on and off, as ``azure.ai.inference.tracing.AIInferenceInstrumentor``
    does, for code written for that SDK.

    Here tracing is on from the start (spans appear once a tracer provider is set), so
    :meth:`instrument` is needed only to turn it back on after :meth:`uninstrument`, or to
    choose content recording. All instances share one setting; both methods are idempotent.
    """

    def instrument(self, enable_content_recording: bool | None = None) -> None:
        """Turn tracing on. ``enable_content_recording``: record message content in spans;
        None reads ``AZURE_TRACING_GEN_AI_CONTENT_RECORDING_ENABLED`` and, when that is not
        set, leaves it to ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``, call by
        call."""
        if enable_content_recording is None:
            azure = os.environ.get(AZURE_CAPTURE_ENV)
            if azure is not None:
                enable_content_recording = azure.strip().lower() in ("true", "1", "yes", "on")
        STATE.content = enable_content_recording
        STATE.enabled = True

    def uninstrument(self) -> None:
        """Turn tracing off: no spans and no metrics from this library until
        :meth:`instrument`."""
        STATE.enabled = False

    def is_instrumented(self) -> bool:
        """True while tracing is on (the default)."""
        return STATE.enabled

    def is_content_recording_enabled(self) -> bool:
        """True when message content would be recorded now."""
        return capture_content()
