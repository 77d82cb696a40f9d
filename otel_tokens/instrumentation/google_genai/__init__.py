"""Token usage and cost on every Google GenAI (Gemini API / Vertex AI) call (SPEC §2–§3).

Usage::

    from otel_tokens.instrumentation.google_genai import GoogleGenAIInstrumentor

    GoogleGenAIInstrumentor().instrument()        # optional: tracer_provider=...
    client = genai.Client()
    client.models.generate_content(model="gemini-2.5-flash", contents="Hello")

Under ``opentelemetry-instrument`` this happens by itself when ``google-genai`` is installed.

Traced: ``client.models.generate_content``, ``generate_content_stream`` and ``embed_content``,
and the same on ``client.aio.models``. Each API request is one CLIENT span
``generate_content {model}`` (or ``embeddings {model}``) with ``gen_ai.provider.name`` =
``gcp.vertex_ai`` when the client is configured for Vertex AI (``vertexai=True`` or
``GOOGLE_GENAI_USE_VERTEXAI``), else ``gcp.gemini``, and:

- ``gen_ai.usage.input_tokens`` = ``promptTokenCount`` (which already includes cached content)
  + ``toolUsePromptTokenCount``;
- ``gen_ai.usage.output_tokens`` = ``candidatesTokenCount + thoughtsTokenCount`` (Gemini reports
  thinking *beside* the candidates; the semantic conventions count output inclusive of it),
  ``gen_ai.usage.reasoning.output_tokens`` = ``thoughtsTokenCount``,
  ``gen_ai.usage.cache_read.input_tokens`` = ``cachedContentTokenCount``;
- embeddings: input tokens from ``usageMetadata`` (Gemini API) or the per-embedding
  ``statistics.token_count`` (Vertex AI);
- cost (``gen_ai.usage.cost.*``, ``otel_tokens.pricing.ref``), ``gen_ai.response.model`` (the
  response's ``modelVersion``), ``.id``, ``.finish_reasons``, request ``temperature`` /
  ``top_p`` / ``top_k`` / ``max_tokens`` (``max_output_tokens``), ``server.address`` / ``.port``.

Automatic function calling and automatic continuation make several requests for one
``generate_content`` call; each request is billed and gets its own span, so nothing is lost.
Streams: only the last chunk carries the counts; a stream that is exhausted, closed early,
dropped, or fails mid-way ends its span exactly once with what was reported so far (ERROR
status and ``error.type`` only when it failed). API errors set ``error.type`` (e.g.
``ClientError``) and ERROR status; the SDK's exception reaches the application unchanged. A
failure inside otel-tokens is logged at debug level and never reaches the application.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.instrumentation.utils import unwrap
from wrapt import wrap_function_wrapper

from otel_tokens.instrumentation.google_genai import patch
from otel_tokens.instrumentation.google_genai.package import _instruments

log = logging.getLogger(__name__)

_MODULE = "google.genai.models"

# (class, per-request method, public fallback, wrapper factory)
_TARGETS: tuple[tuple[str, str, str, Any], ...] = (
    ("Models", "_generate_content", "generate_content", patch.generate_content),
    (
        "Models",
        "_generate_content_stream",
        "generate_content_stream",
        patch.generate_content_stream,
    ),
    ("Models", "embed_content", "embed_content", patch.embed_content),
    ("AsyncModels", "_generate_content", "generate_content", patch.agenerate_content),
    (
        "AsyncModels",
        "_generate_content_stream",
        "generate_content_stream",
        patch.agenerate_content_stream,
    ),
    ("AsyncModels", "embed_content", "embed_content", patch.aembed_content),
)


class GoogleGenAIInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Instruments the ``google-genai`` SDK (see the module documentation)."""

    def __init__(self) -> None:
        super().__init__()
        self._wrapped: list[tuple[Any, str]] = []

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        tracer = trace.get_tracer(__name__, "0.1.0", tracer_provider=kwargs.get("tracer_provider"))
        self._wrapped = []
        try:
            from google.genai import models
        except ImportError:
            log.debug("otel_tokens: google-genai is not installed; nothing traced")
            return
        for cls_name, per_request, public, factory in _TARGETS:
            cls = getattr(models, cls_name, None)
            if cls is None:
                continue
            method = per_request if hasattr(cls, per_request) else public
            if not hasattr(cls, method):
                log.debug("otel_tokens: google-genai has no %s.%s", cls_name, method)
                continue
            try:
                wrap_function_wrapper(_MODULE, f"{cls_name}.{method}", factory(tracer))
                self._wrapped.append((cls, method))
            except Exception:
                log.debug("otel_tokens: could not wrap %s.%s", cls_name, method, exc_info=True)

    def _uninstrument(self, **kwargs: Any) -> None:
        for owner, attribute in reversed(self._wrapped):
            try:
                unwrap(owner, attribute)
            except Exception:
                log.debug("otel_tokens: could not unwrap %r.%s", owner, attribute, exc_info=True)
        self._wrapped = []


__all__ = ["GoogleGenAIInstrumentor"]
