"""Wrapper factories for the Anthropic SDK's Messages methods; each closes over a tracer.

``create(tracer)`` traces ``messages.create`` / ``messages.parse`` (and their beta and async
twins), including ``stream=True`` and ``with_raw_response`` / ``with_streaming_response``;
``stream(tracer)`` traces the ``messages.stream(...)`` context manager. Our own failures are
logged and swallowed; the SDK's results and exceptions pass through unchanged.
"""

from __future__ import annotations

import contextvars
import logging
import sys
from collections.abc import Callable
from typing import Any

import wrapt
from opentelemetry.trace import Tracer

from otel_tokens import attributes as attr
from otel_tokens.instrumentation.anthropic.stream import (
    StreamFinisher,
    TracedAsyncStream,
    TracedStream,
)
from otel_tokens.instrumentation.anthropic.usage import (
    field_of,
    finish_reasons_of,
    usage_from_message,
)
from otel_tokens.instrumentation.genai_span import Covering, LLMCall, foreign_llm_span
from otel_tokens.usage import Usage, estimate_tokens

log = logging.getLogger(__name__)

PROVIDER = "anthropic"
OPERATION = "chat"
_RAW_RESPONSE_HEADER = "X-Stainless-Raw-Response"

# True while one of our spans covers an SDK call: nested SDK methods (and the SDK's own
# "anthropic.messages.create" span, see suppress_sdk_span) then add no second span.
_IN_CALL: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "otel_tokens_anthropic", default=False
)


def suppress_sdk_span(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    """Wrapper for ``anthropic._base_client.start_api_call_span``.

    anthropic >= 2 opens its own span per API call, with output and cache counts but not input
    tokens, cost, or streamed usage. Under one of our spans that would be a second LLM span
    for the same call and double its tokens in every roll-up, so the SDK is told there is no
    span (``None``: its documented "go on without one" path). Outside our calls it is untouched.
    """
    if _IN_CALL.get():
        return None
    return wrapped(*args, **kwargs)


_PROVIDER_HINTS = ("anthropic", "claude", "bedrock")


def request_attributes(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Semconv request attributes; parameters the SDK has no argument for come in extra_body."""
    extra = kwargs.get("extra_body")
    sources = (kwargs, extra) if isinstance(extra, dict) else (kwargs,)
    out: dict[str, Any] = {}
    for key, name in (
        ("max_tokens", attr.GEN_AI_REQUEST_MAX_TOKENS),
        ("temperature", attr.GEN_AI_REQUEST_TEMPERATURE),
        ("top_p", attr.GEN_AI_REQUEST_TOP_P),
        ("top_k", attr.GEN_AI_REQUEST_TOP_K),
    ):
        for source in sources:
            value = source.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                out[name] = value
                break
    return out


_PROVIDER_BY_CLIENT = {
    "AnthropicBedrock": "aws.bedrock",
    "AsyncAnthropicBedrock": "aws.bedrock",
    "AnthropicVertex": "gcp.vertex_ai",
    "AsyncAnthropicVertex": "gcp.vertex_ai",
}


def provider_of(instance: Any) -> str:
    """``anthropic``, or the cloud serving Claude (``aws.bedrock``, ``gcp.vertex_ai``).

    anthropic >= 2 names it on the client (``_gen_ai_provider_name``); older SDKs by class.
    """
    try:
        client = instance._client
        name = getattr(type(client), "_gen_ai_provider_name", None)
        if isinstance(name, str) and name:
            return name
        return _PROVIDER_BY_CLIENT.get(type(client).__name__, PROVIDER)
    except Exception:
        return PROVIDER


def server_of(instance: Any) -> tuple[str | None, int | None]:
    try:
        url = instance._client.base_url
        return url.host or None, url.port
    except Exception:
        return None, None


def estimate_input(kwargs: dict[str, Any]) -> int | None:
    """Tokenizer-free estimate of the prompt, for the rare response without usage."""
    try:
        parts: list[str] = []

        def collect(value: Any) -> None:
            if isinstance(value, str):
                parts.append(value)
            elif isinstance(value, dict):
                for key in ("text", "content"):
                    if key in value:
                        collect(value[key])
            elif isinstance(value, list | tuple):
                for item in value:
                    collect(item)

        collect(kwargs.get("system"))
        collect(kwargs.get("messages"))
        return estimate_tokens("".join(parts)) if parts else None
    except Exception:
        return None


def start_call(tracer: Tracer, instance: Any, kwargs: dict[str, Any]) -> LLMCall | None:
    try:
        model = kwargs.get("model")
        address, port = server_of(instance)
        return LLMCall(
            tracer,
            provider=provider_of(instance),
            operation=OPERATION,
            request_model=model if isinstance(model, str) else None,
            attributes=request_attributes(kwargs),
            server_address=address,
            server_port=port,
            existing_span=foreign_llm_span(_PROVIDER_HINTS),
        )
    except Exception:
        log.debug("otel_tokens: could not start an Anthropic span", exc_info=True)
        return None


def _fail(call: LLMCall, exc: BaseException) -> None:
    call.fail(exc)
    call.end()


def record_message(call: LLMCall, message: Any, kwargs: dict[str, Any]) -> None:
    """Set the response of a complete (non-streamed) message and end the call."""
    try:
        usage = usage_from_message(message)
        if usage is None:
            usage = _estimated(kwargs, message)
        call.set_response(
            response_model=field_of(message, "model"),
            response_id=field_of(message, "id"),
            finish_reasons=finish_reasons_of(message),
            usage=usage,
        )
    except Exception:
        log.debug("otel_tokens: could not record an Anthropic message", exc_info=True)
    call.end()


def _estimated(kwargs: dict[str, Any], message: Any) -> Usage:
    text = "".join(
        block_text
        for block in field_of(message, "content") or ()
        if isinstance(block_text := field_of(block, "text"), str)
    )
    return Usage(
        input_tokens=estimate_input(kwargs), output_tokens=estimate_tokens(text), estimated=True
    )


def _is_api_response(result: Any) -> bool:
    """``with_raw_response`` / ``with_streaming_response`` results (not messages, not streams)."""
    classes = tuple(
        cls
        for module, name in (
            ("anthropic._response", "BaseAPIResponse"),
            ("anthropic._legacy_response", "LegacyAPIResponse"),  # anthropic < 1
        )
        if isinstance(cls := getattr(sys.modules.get(module), name, None), type)
    )
    if classes:
        return isinstance(result, classes)
    return hasattr(result, "http_response") and hasattr(result, "parse")


def _is_stream(result: Any, is_async: bool) -> bool:
    sdk = sys.modules.get("anthropic")
    stream_cls = getattr(sdk, "AsyncStream" if is_async else "Stream", None)
    if isinstance(stream_cls, type):
        return isinstance(result, stream_cls)
    if is_async:  # an SDK without those names: recognise a stream by its shape
        return hasattr(result, "__anext__") and hasattr(result, "response")
    return hasattr(result, "__next__") and hasattr(result, "response")


def handle_result(call: LLMCall, result: Any, kwargs: dict[str, Any], is_async: bool) -> Any:
    """What the wrapper returns: ``result`` itself, or a stream proxy that ends the span."""
    try:
        if _is_stream(result, is_async):
            finisher = StreamFinisher(call, lambda: estimate_input(kwargs))
            return (
                TracedAsyncStream(result, finisher) if is_async else TracedStream(result, finisher)
            )
        if _is_api_response(result):
            return _handle_api_response(call, result, kwargs, is_async)
        record_message(call, result, kwargs)
    except Exception:
        log.debug("otel_tokens: could not handle an Anthropic result", exc_info=True)
        call.end()
    return result


def raw_mode(kwargs: dict[str, Any]) -> str | None:
    """``"raw"`` (with_raw_response), ``"stream"`` (with_streaming_response) or None."""
    headers = kwargs.get("extra_headers")
    return headers.get(_RAW_RESPONSE_HEADER) if isinstance(headers, dict) else None


def _handle_api_response(
    call: LLMCall, response: Any, kwargs: dict[str, Any], is_async: bool
) -> Any:
    """``with_raw_response`` / ``with_streaming_response``: the body is read when the app parses.

    A non-streamed raw response is recorded now (``parse()`` is cached, so the application gets
    the same object); otherwise the response is proxied so that ``parse()`` records the message
    or wraps the event stream it returns, and ``close()`` ends the span if it never parsed.
    """
    if not is_async and raw_mode(kwargs) == "raw" and not _streams(response, kwargs):
        record_message(call, response.parse(), kwargs)
        return response
    proxy_cls = AsyncTracedAPIResponse if is_async else TracedAPIResponse
    return proxy_cls(response, call, kwargs)


def _streams(response: Any, kwargs: dict[str, Any]) -> bool:
    return bool(getattr(response, "_is_sse_stream", False)) or kwargs.get("stream") is True


class TracedAPIResponse(wrapt.ObjectProxy):  # type: ignore[misc]
    """An ``APIResponse`` whose ``parse()`` result is recorded (message) or traced (stream)."""

    def __init__(self, response: Any, call: LLMCall, kwargs: dict[str, Any]) -> None:
        super().__init__(response)
        self._self_call = call
        self._self_kwargs = kwargs
        self._self_handled = False
        self._self_parsed: Any = None
        self._self_result: Any = None

    def parse(self, *args: Any, **kwargs: Any) -> Any:
        try:
            parsed = self.__wrapped__.parse(*args, **kwargs)
        except BaseException as exc:
            _fail(self._self_call, exc)
            raise
        return self._self_observe(parsed, is_async=False)

    def _self_observe(self, parsed: Any, is_async: bool) -> Any:
        if self._self_handled:
            # The SDK caches parse(): hand back the proxy made the first time.
            return self._self_result if parsed is self._self_parsed else parsed
        self._self_handled = True
        self._self_parsed = parsed
        self._self_result = handle_result(self._self_call, parsed, self._self_kwargs, is_async)
        return self._self_result

    def _self_end_unparsed(self) -> None:
        if not self._self_handled:
            self._self_handled = True
            # The application read the body itself: the usage is unknown, so estimate the prompt.
            estimate = estimate_input(self._self_kwargs)
            if estimate is not None:
                self._self_call.set_response(usage=Usage(input_tokens=estimate, estimated=True))
            self._self_call.end()

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            self._self_end_unparsed()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_self_call", None) is not None:
            self._self_end_unparsed()


class AsyncTracedAPIResponse(TracedAPIResponse):
    """``AsyncAPIResponse``: ``parse()`` and ``close()`` are coroutines."""

    async def parse(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        try:
            parsed = await self.__wrapped__.parse(*args, **kwargs)
        except BaseException as exc:
            _fail(self._self_call, exc)
            raise
        return self._self_observe(parsed, is_async=True)

    async def close(self) -> None:  # type: ignore[override]
        try:
            await self.__wrapped__.close()
        finally:
            self._self_end_unparsed()

    async def __aenter__(self) -> Any:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()


Wrapper = Callable[[Any, Any, tuple[Any, ...], dict[str, Any]], Any]


def create(tracer: Tracer) -> Wrapper:
    """Wrapper for sync ``Messages.create`` / ``Messages.parse`` (plain and beta)."""

    def traced_create(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        if _IN_CALL.get():
            return wrapped(*args, **kwargs)
        call = start_call(tracer, instance, kwargs)
        if call is None:
            return wrapped(*args, **kwargs)
        try:
            with Covering(call, _IN_CALL):
                result = wrapped(*args, **kwargs)
        except BaseException as exc:
            _fail(call, exc)
            raise
        return handle_result(call, result, kwargs, is_async=False)

    return traced_create


def acreate(tracer: Tracer) -> Wrapper:
    """Wrapper for async ``AsyncMessages.create`` / ``AsyncMessages.parse`` (plain and beta)."""

    async def traced_acreate(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        if _IN_CALL.get():
            return await wrapped(*args, **kwargs)
        call = start_call(tracer, instance, kwargs)
        if call is None:
            return await wrapped(*args, **kwargs)
        try:
            with Covering(call, _IN_CALL):
                result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            _fail(call, exc)
            raise
        if raw_mode(kwargs) == "raw" and _is_api_response(result) and not _streams(result, kwargs):
            # Read and parse now, as the application will (the SDK caches the parsed message).
            try:
                message = await result.parse()
            except Exception:
                call.end()  # the application's own parse() will raise the same error
                return result
            record_message(call, message, kwargs)
            return result
        return handle_result(call, result, kwargs, is_async=True)

    return traced_acreate


class TracedStreamManager(wrapt.ObjectProxy):  # type: ignore[misc]
    """``MessageStreamManager``: the request is sent, and the span started, on ``__enter__``."""

    def __init__(self, manager: Any, tracer: Tracer, instance: Any, kwargs: Any) -> None:
        super().__init__(manager)
        self._self_tracer = tracer
        self._self_instance = instance
        self._self_kwargs = kwargs
        self._self_finisher: StreamFinisher | None = None

    def _self_start(self) -> LLMCall | None:
        if _IN_CALL.get():
            return None
        return start_call(self._self_tracer, self._self_instance, self._self_kwargs)

    def _self_attach(self, call: LLMCall, message_stream: Any, is_async: bool) -> None:
        kwargs = self._self_kwargs
        finisher = StreamFinisher(call, lambda: estimate_input(kwargs))
        self._self_finisher = finisher
        try:
            # MessageStream reads its events from ``_raw_stream`` lazily, whichever of
            # text_stream / iteration / get_final_message() the application uses.
            raw = message_stream._raw_stream
            proxy = TracedAsyncStream if is_async else TracedStream
            message_stream._raw_stream = proxy(raw, finisher)
        except Exception:
            log.debug("otel_tokens: could not observe an Anthropic message stream", exc_info=True)

    def __enter__(self) -> Any:
        call = self._self_start()
        if call is None:
            return self.__wrapped__.__enter__()
        try:
            with Covering(call, _IN_CALL):
                message_stream = self.__wrapped__.__enter__()
        except BaseException as exc:
            _fail(call, exc)
            raise
        self._self_attach(call, message_stream, is_async=False)
        return message_stream

    def __exit__(self, *exc_info: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(*exc_info)
        finally:
            if self._self_finisher is not None:
                self._self_finisher.finish()

    async def __aenter__(self) -> Any:
        call = self._self_start()
        if call is None:
            return await self.__wrapped__.__aenter__()
        try:
            with Covering(call, _IN_CALL):
                message_stream = await self.__wrapped__.__aenter__()
        except BaseException as exc:
            _fail(call, exc)
            raise
        self._self_attach(call, message_stream, is_async=True)
        return message_stream

    async def __aexit__(self, *exc_info: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(*exc_info)
        finally:
            if self._self_finisher is not None:
                self._self_finisher.finish()


def stream(tracer: Tracer) -> Wrapper:
    """Wrapper for ``Messages.stream`` / ``AsyncMessages.stream`` (plain and beta)."""

    def traced_stream(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        manager = wrapped(*args, **kwargs)
        try:
            return TracedStreamManager(manager, tracer, instance, kwargs)
        except Exception:
            log.debug("otel_tokens: could not wrap an Anthropic stream manager", exc_info=True)
            return manager

    return traced_stream
