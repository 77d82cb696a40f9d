"""OpenAI instrumentation: tokens, cost, node and user on every OpenAI SDK call.

Usage::

    from otel_tokens.instrumentation.openai import OpenAIInstrumentor

    OpenAIInstrumentor().instrument()          # or otel_tokens.configure(), or zero-code
    client = openai.OpenAI()
    with otel_tokens.usage_context(user_id="u1"), otel_tokens.node("summarise"):
        client.chat.completions.create(model="gpt-4o-mini", messages=[...])

What is traced, sync and async (``OpenAI`` / ``AsyncOpenAI`` and the Azure clients):

- ``chat.completions.create`` (also ``stream=True``), ``.parse`` and ``.stream(...)``;
- ``responses.create`` (also ``stream=True``), ``.parse`` and ``.stream(...)``;
- ``embeddings.create``;
- the same methods through ``.with_raw_response``; through ``.with_streaming_response`` the
  call gets its span but no usage (the body is left unread for the caller).

Each call gets one CLIENT span ``"{operation} {model}"`` with ``gen_ai.provider.name``
(``openai``, or ``azure.ai.openai`` when the client's base URL is an Azure endpoint), request
and response model, response id, finish reasons, every usage attribute (input including cached,
output including reasoning, cache read, reasoning), the cost in USD with
``otel_tokens.pricing.ref``, and the user / node / correlation id of the active scope.

Streams: when the caller did not set ``stream_options.include_usage`` on a chat stream, it is
set, and the usage-only final chunk (it has no ``choices``) is hidden from the caller. A stream
that ends, is closed early, is abandoned (garbage-collected) or fails mid-way ends its span
exactly once with the usage known at that point (ERROR status where it failed). A response
without usage gets an estimate (~4 characters per token, no tokenizer download) flagged
``otel_tokens.usage.estimated=true``.

Errors of the API call are recorded (``error.type``, ERROR status) and re-raised unchanged;
errors inside this instrumentation are logged at debug level and swallowed.

Coexistence: if another instrumentation (e.g. ``opentelemetry-instrumentation-openai-v2``)
already opened a span for the call, no second span is created: usage, cost and scope
attributes are added to that span. When the other instrumentation wrapped the method first,
this one installs itself beneath it so the same holds.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Collection
from typing import Any

import wrapt
from opentelemetry import trace
from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)

from otel_tokens.instrumentation.openai import patch
from otel_tokens.instrumentation.openai.package import _instruments

logger = logging.getLogger(__name__)

# (module, class, method, kind, is_async); the first importable module of each tuple is used.
_TARGETS: tuple[tuple[tuple[str, ...], str, str, str, bool], ...] = (
    (("openai.resources.chat.completions.completions", "openai.resources.chat.completions"),
     "Completions", "create", "chat", False),
    (("openai.resources.chat.completions.completions", "openai.resources.chat.completions"),
     "Completions", "parse", "chat", False),
    (("openai.resources.chat.completions.completions", "openai.resources.chat.completions"),
     "AsyncCompletions", "create", "chat", True),
    (("openai.resources.chat.completions.completions", "openai.resources.chat.completions"),
     "AsyncCompletions", "parse", "chat", True),
    (("openai.resources.beta.chat.completions",), "Completions", "parse", "chat", False),
    (("openai.resources.beta.chat.completions",), "AsyncCompletions", "parse", "chat", True),
    (("openai.resources.responses.responses", "openai.resources.responses"),
     "Responses", "create", "responses", False),
    (("openai.resources.responses.responses", "openai.resources.responses"),
     "Responses", "parse", "responses", False),
    (("openai.resources.responses.responses", "openai.resources.responses"),
     "AsyncResponses", "create", "responses", True),
    (("openai.resources.responses.responses", "openai.resources.responses"),
     "AsyncResponses", "parse", "responses", True),
    (("openai.resources.embeddings",), "Embeddings", "create", "embeddings", False),
    (("openai.resources.embeddings",), "AsyncEmbeddings", "create", "embeddings", True),
)  # fmt: skip


def _find_class(modules: tuple[str, ...], name: str) -> type | None:
    for module_name in modules:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        cls = getattr(module, name, None)
        if isinstance(cls, type):
            return cls
    return None


class OpenAIInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Instruments the ``openai`` SDK (see the module docstring)."""

    def __init__(self) -> None:
        # (class, method, the descriptor we replaced or wrapped beneath, our wrapper, original)
        self._patched: list[tuple[type, str, Any, Any, Any]] = []

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        from otel_tokens.config import load_settings

        patch.set_estimate(load_settings().estimate)
        tracer = trace.get_tracer(
            "otel_tokens.instrumentation.openai", tracer_provider=kwargs.get("tracer_provider")
        )
        for modules, class_name, method, kind, is_async in _TARGETS:
            cls = _find_class(modules, class_name)
            if cls is None or method not in cls.__dict__:
                continue
            if any(c is cls and m == method for c, m, *_ in self._patched):
                continue  # the same class reached through two module paths
            factory = patch.create_async if is_async else patch.create
            self._wrap(cls, method, factory(tracer, kind))

    def _wrap(self, cls: type, method: str, wrapper: Any) -> None:
        current = cls.__dict__[method]
        if isinstance(current, wrapt.FunctionWrapper):
            # Another instrumentation wrapped this method first: go beneath its wrapper so its
            # span is current when ours runs and gets enriched instead of duplicated.
            original = current.__wrapped__
            ours = wrapt.FunctionWrapper(original, wrapper)
            current.__wrapped__ = ours
            self._patched.append((cls, method, current, ours, original))
        else:
            ours = wrapt.FunctionWrapper(current, wrapper)
            setattr(cls, method, ours)
            self._patched.append((cls, method, ours, ours, current))

    def _uninstrument(self, **kwargs: Any) -> None:
        for cls, method, outer, ours, original in reversed(self._patched):
            try:
                now = cls.__dict__.get(method)
                if now is ours:
                    setattr(cls, method, original)
                elif outer is not ours and getattr(outer, "__wrapped__", None) is ours:
                    outer.__wrapped__ = original
            except Exception:
                logger.warning("otel_tokens: could not unwrap %s.%s", cls.__name__, method)
        self._patched.clear()
