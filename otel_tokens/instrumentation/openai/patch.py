"""Wrapper factories for OpenAI SDK methods: one CLIENT span per call, usage and cost on it."""

from __future__ import annotations

import logging
import weakref
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Tracer

from otel_tokens import attributes as attr
from otel_tokens.instrumentation.genai_span import LLMCall
from otel_tokens.instrumentation.openai import usage as extract
from otel_tokens.instrumentation.openai.stream import (
    AsyncStreamProxy,
    StreamProxy,
    StreamRecorder,
)

logger = logging.getLogger(__name__)

OPERATIONS = {"chat": "chat", "responses": "chat", "embeddings": "embeddings"}
AZURE = "azure.ai.openai"


# id(client) -> (weak reference to the client, its base URL object, provider/host/port). A plain
# dict keyed by id, checked against the weak reference, costs less per call than a
# WeakKeyDictionary (which builds a new weak reference on every lookup).
_servers: dict[int, tuple[Any, Any, tuple[str, str | None, int | None]]] = {}
_MAX_CLIENTS = 256  # clients remembered; beyond, start over


def provider_and_server(instance: Any) -> tuple[str, str | None, int | None]:
    """``openai`` or ``azure.ai.openai`` (from the client's class and base URL), host, port.

    Cached per client while its base URL object stays the same (it is read on every call).
    """
    client = getattr(instance, "_client", None)
    url = getattr(client, "_base_url", None)
    cached = _servers.get(id(client))
    if cached is not None and cached[0]() is client and cached[1] is url:
        return cached[2]
    result = _provider_and_server(client)
    try:
        reference = weakref.ref(client)
    except TypeError:  # not weak-referenceable: not cached
        return result
    if len(_servers) >= _MAX_CLIENTS:
        _servers.clear()
    _servers[id(client)] = (reference, url, result)
    return result


def _provider_and_server(client: Any) -> tuple[str, str | None, int | None]:
    url = getattr(client, "base_url", None)
    host = getattr(url, "host", None) or None
    port = getattr(url, "port", None)
    provider = "openai"
    if (host and (host.endswith(".azure.com") or host.endswith(".azure-api.net"))) or (
        "Azure" in type(client).__name__
    ):
        provider = AZURE
    return provider, host, port if isinstance(port, int) else None


_REQUEST_KEYS = frozenset(
    {"max_output_tokens", "max_completion_tokens", "max_tokens", "temperature", "top_p", "stream"}
)


def request_attributes(kind: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if _REQUEST_KEYS.isdisjoint(kwargs):  # most calls set none of them
        return out
    max_tokens = (
        kwargs.get("max_output_tokens")
        if kind == "responses"
        else kwargs.get("max_completion_tokens") or kwargs.get("max_tokens")
    )
    if isinstance(max_tokens, int):
        out[attr.GEN_AI_REQUEST_MAX_TOKENS] = max_tokens
    temperature = kwargs.get("temperature")
    if isinstance(temperature, int | float):
        out[attr.GEN_AI_REQUEST_TEMPERATURE] = temperature
    top_p = kwargs.get("top_p")
    if isinstance(top_p, int | float):
        out[attr.GEN_AI_REQUEST_TOP_P] = top_p
    if kwargs.get("stream") is True:
        out[attr.GEN_AI_REQUEST_STREAM] = True
    return out


def foreign_llm_span(context: Context | None = None) -> Span | None:
    """The span another GenAI instrumentation (e.g. openai-v2) opened for this very call.

    Its wrapper runs outside ours, so its span is current: a recording CLIENT span carrying
    ``gen_ai.operation.name`` (or the old ``gen_ai.system``). LLM client spans never nest, so
    such a current span is this call's.
    """
    span = trace.get_current_span(context)
    if not span.is_recording() or getattr(span, "kind", None) is not SpanKind.CLIENT:
        return None
    attributes = getattr(span, "attributes", None)
    if not attributes or (
        attr.GEN_AI_OPERATION_NAME not in attributes and attr.OLD_GEN_AI_SYSTEM not in attributes
    ):
        return None
    return span


def _inject_include_usage(kwargs: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Ask a chat stream for its usage chunk unless the caller decided; True when we asked."""
    options = kwargs.get("stream_options")
    if isinstance(options, dict):
        if "include_usage" in options:
            return kwargs, False
        return {**kwargs, "stream_options": {**options, "include_usage": True}}, True
    # None, or the SDK's NotGiven / Omit sentinel: the caller did not set it.
    return {**kwargs, "stream_options": {"include_usage": True}}, True


def _start(
    tracer: Tracer, kind: str, instance: Any, kwargs: dict[str, Any]
) -> tuple[LLMCall | None, dict[str, Any], bool]:
    try:
        provider, host, port = provider_and_server(instance)
        model = kwargs.get("model")
        hide = False
        if kind == "chat" and kwargs.get("stream") is True:
            kwargs, hide = _inject_include_usage(kwargs)
        context = otel_context.get_current()  # read once: foreign span, parent, activation
        call = LLMCall(
            tracer,
            provider=provider,
            operation=OPERATIONS[kind],
            request_model=model if isinstance(model, str) else None,
            attributes=request_attributes(kind, kwargs),
            server_address=host,
            server_port=port,
            existing_span=foreign_llm_span(context),
            context=context,
        )
        return call, kwargs, hide
    except Exception:
        logger.debug("otel_tokens: starting an OpenAI span failed", exc_info=True)
        return None, kwargs, False


def record_response(call: LLMCall, kind: str, response: Any, kwargs: dict[str, Any]) -> None:
    """Set model, id, finish reasons and usage (estimated when the response has none)."""
    # One branch for dicts, plain attribute reads for SDK models (the common case).
    if type(response) is dict:
        usage_field, model, choices = response.get("usage"), response.get("model"), None
        response_id = response.get("id")
        if kind == "chat":
            choices = response.get("choices")
    else:
        usage_field = getattr(response, "usage", None)
        model = getattr(response, "model", None)
        response_id = getattr(response, "id", None)
        choices = getattr(response, "choices", None) if kind == "chat" else None
    usage = extract.USAGE_OF_KIND[kind](usage_field)
    if kind == "chat":
        reasons = extract.chat_finish_reasons(choices)
    elif kind == "responses":
        reasons = extract.responses_finish_reasons(response)
    else:
        reasons = []
    if usage is None and _estimate:
        text = (
            extract.chat_output_text(choices)
            if kind == "chat"
            else extract.responses_output_text(response)
        )
        usage = extract.estimate_usage(kind, kwargs, text)
    call.set_response(
        response_model=model,
        response_id=response_id if kind != "embeddings" else None,
        finish_reasons=reasons,
        usage=usage,
    )


_estimate = True  # OTEL_TOKENS_ESTIMATE


def set_estimate(enabled: bool) -> None:
    """Estimate usage for responses without any (default on; estimates are flagged)."""
    global _estimate
    _estimate = enabled


def _is_legacy_response(result: Any) -> bool:
    # By name: a hasattr() probe on a pydantic response model raises inside (slow).
    return type(result).__name__ == "LegacyAPIResponse" and hasattr(result, "_parsed_by_type")


def _handle_result(
    call: LLMCall, kind: str, result: Any, kwargs: dict[str, Any], hide: bool, is_async: bool
) -> Any:
    """Hand ``result`` back: a stream wrapped so it ends the span, else the span ended now."""
    try:
        if type(result).__name__ not in _WRAPPER_NAMES:  # a parsed response: most calls
            record_response(call, kind, result, kwargs)
        elif _is_legacy_response(result):
            # ``with_raw_response``: the parsed object is cached on the raw response, so
            # parsing here costs the caller nothing; a stream is swapped for our proxy in the cache.
            parsed = result.parse()
            if _is_stream(parsed):
                proxy = _wrap_stream(call, kind, parsed, kwargs, hide, is_async)
                cache = result._parsed_by_type
                for key, value in list(cache.items()):
                    if value is parsed:
                        cache[key] = proxy
                return result
            record_response(call, kind, parsed, kwargs)
            call.end()
            return result
        elif _is_stream(result):
            return _wrap_stream(call, kind, result, kwargs, hide, is_async)
        elif type(result).__name__ in ("APIResponse", "AsyncAPIResponse"):
            # ``with_streaming_response``: the body is the caller's to read (perhaps as a
            # stream); reading it here would block or consume it, so the span has no usage.
            pass
        else:
            record_response(call, kind, result, kwargs)
    except Exception:
        logger.debug("otel_tokens: reading an OpenAI response failed", exc_info=True)
    call.end()
    return result


# Class names of what the SDK returns instead of a parsed response (raw, streaming, stream).
_WRAPPER_NAMES = frozenset(
    {"LegacyAPIResponse", "APIResponse", "AsyncAPIResponse", "Stream", "AsyncStream"}
)


def _is_stream(value: Any) -> bool:
    cls = type(value)
    return cls.__name__ in ("Stream", "AsyncStream") and cls.__module__.startswith("openai")


def _wrap_stream(
    call: LLMCall, kind: str, stream: Any, kwargs: dict[str, Any], hide: bool, is_async: bool
) -> Any:
    recorder = StreamRecorder(call, kind, kwargs, hide_usage_chunk=hide, estimate=_estimate)
    if type(stream).__name__ == "AsyncStream":
        return AsyncStreamProxy(stream, recorder)
    return StreamProxy(stream, recorder)


def create(tracer: Tracer, kind: str) -> Any:
    """Wrapper for a sync method (``kind``: chat, responses or embeddings)."""

    def traced_method(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        call, kwargs, hide = _start(tracer, kind, instance, kwargs)
        if call is None:
            return wrapped(*args, **kwargs)
        token = _activate(call)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            call.fail(exc)
            call.end()
            raise
        finally:
            _deactivate(token)
        return _handle_result(call, kind, result, kwargs, hide, False)

    return traced_method


def create_async(tracer: Tracer, kind: str) -> Any:
    """Wrapper for an async method."""

    async def traced_method(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        call, kwargs, hide = _start(tracer, kind, instance, kwargs)
        if call is None:
            return await wrapped(*args, **kwargs)
        token = _activate(call)
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            call.fail(exc)
            call.end()
            raise
        finally:
            _deactivate(token)
        return _handle_result(call, kind, result, kwargs, hide, True)

    return traced_method


def _activate(call: LLMCall) -> Any:
    # Our span is current while the SDK runs, so HTTP client spans nest under it.
    try:
        return call.attach()
    except Exception:
        return None


def _deactivate(token: Any) -> None:
    if token is not None:
        try:
            otel_context.detach(token)
        except Exception:
            logger.debug("otel_tokens: detaching context failed", exc_info=True)
