"""Wrappers around Gemini response streams that end the call's span exactly once.

The SDK returns a plain (async) generator, so a wrapping generator is enough: its ``finally``
runs when the stream is exhausted, closed early, fails mid-way, or is garbage-collected.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from otel_tokens.instrumentation.google_genai.usage import StreamUsage
from otel_tokens.usage import Usage, estimate_tokens

log = logging.getLogger(__name__)


class StreamFinisher:
    """Observes chunks into a :class:`StreamUsage` and ends the call once. Never raises."""

    __slots__ = ("_done", "acc", "call", "estimate_input")

    def __init__(self, call: Any, estimate_input: Callable[[], int | None] | None = None) -> None:
        self.call = call
        self.acc = StreamUsage()
        # Only called when the stream reported no usage at all, so it costs nothing otherwise.
        self.estimate_input = estimate_input
        self._done = False

    def finish(self, exc: BaseException | None = None) -> None:
        if self._done:
            return
        self._done = True
        try:
            if exc is not None:
                self.call.fail(exc)
            usage = self.acc.usage()
            if usage is None and self.acc.chunks:
                estimate = self.estimate_input() if self.estimate_input else None
                usage = Usage(input_tokens=estimate, estimated=True)
            self.call.set_response(
                response_model=self.acc.response_model,
                response_id=self.acc.response_id,
                finish_reasons=self.acc.finish_reasons,
                usage=usage,
            )
        except Exception:
            log.debug("otel_tokens: could not record a Gemini stream", exc_info=True)
        finally:
            try:
                self.call.end()
            except Exception:
                log.debug("otel_tokens: could not end a Gemini span", exc_info=True)


def traced_iterator(stream: Iterator[Any], finisher: StreamFinisher) -> Iterator[Any]:
    error: BaseException | None = None
    try:
        for chunk in stream:
            finisher.acc.observe(chunk)
            yield chunk
    except GeneratorExit:
        raise  # closed early by the application: not a failure
    except BaseException as exc:
        error = exc
        raise
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            try:
                close()
            except Exception:
                log.debug("otel_tokens: closing a Gemini stream failed", exc_info=True)
        finisher.finish(error)


async def traced_async_iterator(
    stream: AsyncIterator[Any], finisher: StreamFinisher
) -> AsyncIterator[Any]:
    error: BaseException | None = None
    try:
        async for chunk in stream:
            finisher.acc.observe(chunk)
            yield chunk
    except GeneratorExit:
        raise
    except BaseException as exc:
        error = exc
        raise
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            try:
                await aclose()
            except Exception:
                log.debug("otel_tokens: closing a Gemini stream failed", exc_info=True)
        finisher.finish(error)


def estimate_text(value: Any) -> int | None:
    """Tokenizer-free estimate of a ``contents`` argument (str, Content, parts, lists, dicts)."""
    parts: list[str] = []

    def collect(item: Any, depth: int = 0) -> None:
        if depth > 6 or item is None:
            return
        if isinstance(item, str):
            parts.append(item)
        elif isinstance(item, dict):
            collect(item.get("text"), depth + 1)
            collect(item.get("parts"), depth + 1)
        elif isinstance(item, list | tuple):
            for sub in item:
                collect(sub, depth + 1)
        else:
            collect(getattr(item, "text", None), depth + 1)
            collect(getattr(item, "parts", None), depth + 1)

    try:
        collect(value)
    except Exception:
        return None
    return estimate_tokens("".join(parts)) if parts else None
