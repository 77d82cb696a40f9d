"""Token usage and cost on every Anthropic Messages call (SPEC §2–§3).

Usage::

    from otel_tokens.instrumentation.anthropic import AnthropicInstrumentor

    AnthropicInstrumentor().instrument()          # optional: tracer_provider=...
    client = anthropic.Anthropic()
    client.messages.create(model="claude-sonnet-4-5", max_tokens=100, messages=[...])

Under ``opentelemetry-instrument`` this happens by itself when ``anthropic`` is installed.

Traced: ``messages.create`` (also ``stream=True``), ``messages.stream(...)`` (the context manager,
whichever of iteration, ``text_stream`` or ``get_final_message()`` is used), ``messages.parse``,
and the same methods on ``client.beta.messages``; sync and async clients; ``with_raw_response``
and ``with_streaming_response``. Each call is one CLIENT span ``chat {model}`` with
``gen_ai.provider.name=anthropic`` (``gcp.vertex_ai`` / ``aws.bedrock`` for the ``AnthropicVertex``
/ ``AnthropicBedrock`` clients) and:

- ``gen_ai.usage.input_tokens`` = ``input_tokens + cache_read_input_tokens +
  cache_creation_input_tokens`` (Anthropic reports input *exclusive* of cache; the semantic
  conventions count it inclusive), ``gen_ai.usage.output_tokens`` (thinking included),
  ``gen_ai.usage.cache_read.input_tokens``, ``gen_ai.usage.cache_creation.input_tokens``, and
  ``gen_ai.usage.reasoning.output_tokens`` when the API reports thinking tokens separately;
- cost (``gen_ai.usage.cost.*``, ``otel_tokens.pricing.ref``) from the price catalogue;
- ``gen_ai.response.model`` / ``.id`` / ``.finish_reasons``, ``gen_ai.request.max_tokens`` /
  ``temperature`` / ``top_p``, ``server.address`` / ``server.port``.

Streams: ``message_start`` gives the input and cache counts, the last ``message_delta`` the final
output count. A stream that is exhausted, closed early, dropped, or fails mid-way ends its span
exactly once with the usage known at that point (ERROR status and ``error.type`` only when it
failed). API errors set ``error.type`` (e.g. ``NotFoundError``) and ERROR status; the SDK's
exception reaches the application unchanged. A failure inside otel-tokens is logged at debug
level and never reaches the application.

The SDK's own tracing (anthropic >= 2 opens a span ``anthropic.messages.create`` per call when a
global tracer provider is set) is switched off *for the calls this instrumentation traces*:
otherwise every call would be two LLM spans and counted twice. Calls of other SDK methods keep
the SDK's spans. If another instrumentation has already opened an LLM span for the call (its
wrapper runs outside ours), usage and cost are added to that span instead of opening a second.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.instrumentation.utils import unwrap
from wrapt import wrap_function_wrapper

from otel_tokens.instrumentation.anthropic import patch
from otel_tokens.instrumentation.anthropic.package import _instruments

log = logging.getLogger(__name__)

_MESSAGES = "anthropic.resources.messages.messages"
_BETA_MESSAGES = "anthropic.resources.beta.messages.messages"

# (module, class, method, wrapper factory)
_TARGETS: tuple[tuple[str, str, str, Any], ...] = tuple(
    (module, cls, method, factory)
    for module in (_MESSAGES, _BETA_MESSAGES)
    for cls, method, factory in (
        ("Messages", "create", patch.create),
        ("Messages", "parse", patch.create),
        ("Messages", "stream", patch.stream),
        ("AsyncMessages", "create", patch.acreate),
        ("AsyncMessages", "parse", patch.acreate),
        ("AsyncMessages", "stream", patch.stream),
    )
)
_SDK_SPAN = ("anthropic._base_client", "start_api_call_span")


class AnthropicInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Instruments the ``anthropic`` SDK (see the module documentation)."""

    def __init__(self) -> None:
        super().__init__()
        self._wrapped: list[tuple[Any, str]] = []

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        tracer = trace.get_tracer(__name__, "0.1.0", tracer_provider=kwargs.get("tracer_provider"))
        self._wrapped = []
        for module, cls, method, factory in _TARGETS:
            self._wrap(module, f"{cls}.{method}", factory(tracer))
        self._wrap(_SDK_SPAN[0], _SDK_SPAN[1], patch.suppress_sdk_span)

    def _wrap(self, module: str, name: str, wrapper: Any) -> None:
        try:
            wrap_function_wrapper(module, name, wrapper)
        except (ImportError, AttributeError):
            # Older or newer SDKs lack some methods (e.g. beta parse): trace what exists.
            log.debug("otel_tokens: anthropic has no %s.%s; not traced", module, name)
            return
        owner_path, _, attribute = name.rpartition(".")
        owner: Any = __import__(module, fromlist=["_"])
        for part in owner_path.split(".") if owner_path else ():
            owner = getattr(owner, part)
        self._wrapped.append((owner, attribute))

    def _uninstrument(self, **kwargs: Any) -> None:
        for owner, attribute in reversed(self._wrapped):
            try:
                unwrap(owner, attribute)
            except Exception:
                log.debug("otel_tokens: could not unwrap %r.%s", owner, attribute, exc_info=True)
        self._wrapped = []


__all__ = ["AnthropicInstrumentor"]
