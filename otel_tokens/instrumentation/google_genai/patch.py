"""Wrapper factories for the google-genai SDK's ``models`` methods; each closes over a tracer.

Generation is traced per API request (``Models._generate_content`` and
``_generate_content_stream``, which the public ``generate_content`` / ``generate_content_stream``
call once per request): automatic function calling and automatic continuation send several
requests for one public call, and each is billed, so each gets its own span with its own usage.
Where an SDK version lacks those methods the public ones are wrapped instead (see
``__init__``). Our own failures are logged and swallowed; results and exceptions pass through.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.trace import Tracer

from otel_tokens import attributes as attr
from otel_tokens.instrumentation.genai_span import Covering, LLMCall, foreign_llm_span
from otel_tokens.instrumentation.google_genai.stream import (
    StreamFinisher,
    estimate_text,
    traced_async_iterator,
    traced_iterator,
)
from otel_tokens.instrumentation.google_genai.usage import (
    field_of,
    finish_reasons_of,
    usage_from_embed_response,
    usage_from_response,
)
from otel_tokens.usage import Usage, estimate_tokens

log = logging.getLogger(__name__)

GEMINI = "gcp.gemini"
VERTEX_AI = "gcp.vertex_ai"
GENERATE_CONTENT = "generate_content"
EMBEDDINGS = "embeddings"

# True while one of our spans covers a request: a public method wrapped as a fallback that
# calls another wrapped method then adds no second span.
_IN_CALL: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "otel_tokens_google_genai", default=False
)


Wrapper = Callable[[Any, Any, tuple[Any, ...], dict[str, Any]], Any]


_PROVIDER_HINTS = ("gemini", "vertex", "google")


def provider_of(instance: Any) -> str:
    """``gcp.vertex_ai`` for a client configured for Vertex AI, else ``gcp.gemini``."""
    try:
        return VERTEX_AI if instance._api_client.vertexai else GEMINI
    except Exception:
        return GEMINI


def server_of(instance: Any) -> tuple[str | None, int | None]:
    try:
        url = urlsplit(str(instance._api_client._http_options.base_url))
        return url.hostname, url.port or (443 if url.scheme == "https" else 80)
    except Exception:
        return None, None


def request_attributes(kwargs: dict[str, Any]) -> dict[str, Any]:
    config = kwargs.get("config")
    out: dict[str, Any] = {}
    if config is None:
        return out
    for key, name in (
        ("max_output_tokens", attr.GEN_AI_REQUEST_MAX_TOKENS),
        ("temperature", attr.GEN_AI_REQUEST_TEMPERATURE),
        ("top_p", attr.GEN_AI_REQUEST_TOP_P),
        ("top_k", attr.GEN_AI_REQUEST_TOP_K),
    ):
        value = field_of(config, key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[name] = value
    return out


def start_call(
    tracer: Tracer, instance: Any, kwargs: dict[str, Any], operation: str
) -> LLMCall | None:
    try:
        model = kwargs.get("model")
        address, port = server_of(instance)
        return LLMCall(
            tracer,
            provider=provider_of(instance),
            operation=operation,
            request_model=model if isinstance(model, str) else None,
            attributes=request_attributes(kwargs),
            server_address=address,
            server_port=port,
            existing_span=foreign_llm_span(_PROVIDER_HINTS),
        )
    except Exception:
        log.debug("otel_tokens: could not start a Gemini span", exc_info=True)
        return None


def _fail(call: LLMCall, exc: BaseException) -> None:
    call.fail(exc)
    call.end()


def record_response(call: LLMCall, response: Any, kwargs: dict[str, Any]) -> None:
    try:
        usage = usage_from_response(response)
        if usage is None:
            text = "".join(
                part_text
                for candidate in field_of(response, "candidates") or ()
                for part in field_of(field_of(candidate, "content"), "parts") or ()
                if isinstance(part_text := field_of(part, "text"), str)
            )
            usage = Usage(
                input_tokens=estimate_text(kwargs.get("contents")),
                output_tokens=estimate_tokens(text),
                estimated=True,
            )
        call.set_response(
            response_model=field_of(response, "model_version"),
            response_id=field_of(response, "response_id"),
            finish_reasons=finish_reasons_of(response),
            usage=usage,
        )
    except Exception:
        log.debug("otel_tokens: could not record a Gemini response", exc_info=True)
    call.end()


def record_embeddings(call: LLMCall, response: Any, kwargs: dict[str, Any]) -> None:
    try:
        usage = usage_from_embed_response(response)
        if usage is None:
            usage = Usage(input_tokens=estimate_text(kwargs.get("contents")), estimated=True)
        call.set_response(usage=usage)
    except Exception:
        log.debug("otel_tokens: could not record Gemini embeddings", exc_info=True)
    call.end()


def _traced(
    tracer: Tracer, operation: str, record: Callable[[LLMCall, Any, dict[str, Any]], None]
) -> Wrapper:
    def traced(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        if _IN_CALL.get():
            return wrapped(*args, **kwargs)
        call = start_call(tracer, instance, kwargs, operation)
        if call is None:
            return wrapped(*args, **kwargs)
        try:
            with Covering(call, _IN_CALL):
                result = wrapped(*args, **kwargs)
        except BaseException as exc:
            _fail(call, exc)
            raise
        record(call, result, kwargs)
        return result

    return traced


def _atraced(
    tracer: Tracer, operation: str, record: Callable[[LLMCall, Any, dict[str, Any]], None]
) -> Wrapper:
    async def traced(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        if _IN_CALL.get():
            return await wrapped(*args, **kwargs)
        call = start_call(tracer, instance, kwargs, operation)
        if call is None:
            return await wrapped(*args, **kwargs)
        try:
            with Covering(call, _IN_CALL):
                result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            _fail(call, exc)
            raise
        record(call, result, kwargs)
        return result

    return traced


def generate_content(tracer: Tracer) -> Wrapper:
    """``Models._generate_content`` (or ``generate_content``): one request, one response."""
    return _traced(tracer, GENERATE_CONTENT, record_response)


def agenerate_content(tracer: Tracer) -> Wrapper:
    return _atraced(tracer, GENERATE_CONTENT, record_response)


def embed_content(tracer: Tracer) -> Wrapper:
    return _traced(tracer, EMBEDDINGS, record_embeddings)


def aembed_content(tracer: Tracer) -> Wrapper:
    return _atraced(tracer, EMBEDDINGS, record_embeddings)


def generate_content_stream(tracer: Tracer) -> Wrapper:
    """``Models._generate_content_stream``: the request is sent on the first ``next()``."""

    def traced(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        if _IN_CALL.get():
            return wrapped(*args, **kwargs)
        call = start_call(tracer, instance, kwargs, GENERATE_CONTENT)
        if call is None:
            return wrapped(*args, **kwargs)
        try:
            with Covering(call, _IN_CALL):
                stream = wrapped(*args, **kwargs)
        except BaseException as exc:
            _fail(call, exc)
            raise
        try:
            finisher = StreamFinisher(call, lambda: estimate_text(kwargs.get("contents")))
            return traced_iterator(stream, finisher)
        except Exception:
            log.debug("otel_tokens: could not wrap a Gemini stream", exc_info=True)
            call.end()
            return stream

    return traced


def agenerate_content_stream(tracer: Tracer) -> Wrapper:
    """``AsyncModels._generate_content_stream``: a coroutine that returns an async iterator."""

    async def traced(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        if _IN_CALL.get():
            return await wrapped(*args, **kwargs)
        call = start_call(tracer, instance, kwargs, GENERATE_CONTENT)
        if call is None:
            return await wrapped(*args, **kwargs)
        try:
            with Covering(call, _IN_CALL):
                stream = await wrapped(*args, **kwargs)
        except BaseException as exc:
            _fail(call, exc)
            raise
        try:
            finisher = StreamFinisher(call, lambda: estimate_text(kwargs.get("contents")))
            return traced_async_iterator(stream, finisher)
        except Exception:
            log.debug("otel_tokens: could not wrap a Gemini stream", exc_info=True)
            call.end()
            return stream

    return traced
