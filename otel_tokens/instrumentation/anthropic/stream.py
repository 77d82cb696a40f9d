"""Proxies around Anthropic event streams that end the call's span exactly once.

A stream ends its span when it is exhausted, closed (``close()``, ``with``), fails mid-way, or is
dropped by the application without either (``__del__``); usage is whatever the events reported so
far. The proxies forward every other attribute (``response``, ``request_id``, …) to the SDK's
stream, so application code sees the object it expects.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import wrapt

from otel_tokens.instrumentation.anthropic.usage import StreamUsage
from otel_tokens.usage import Usage, estimate_tokens

log = logging.getLogger(__name__)


class StreamFinisher:
    """Observes events into a :class:`StreamUsage` and ends the call once. Never raises."""

    __slots__ = ("_done", "acc", "call", "estimate_input", "text_parts")

    def __init__(self, call: Any, estimate_input: Callable[[], int | None] | None = None) -> None:
        self.call = call
        self.acc = StreamUsage()
        # Only called when the stream reported no usage at all (rare), so it costs nothing.
        self.estimate_input = estimate_input
        self.text_parts: list[str] = []
        self._done = False

    def observe(self, event: Any) -> None:
        self.acc.observe(event)
        if not self.acc.counts:
            # Only kept for an estimate when the stream reports no usage at all.
            delta = getattr(event, "delta", None)
            text = getattr(delta, "text", None)
            if isinstance(text, str):
                self.text_parts.append(text)

    def finish(self, exc: BaseException | None = None) -> None:
        if self._done:
            return
        self._done = True
        try:
            if exc is not None:
                self.call.fail(exc)
            usage = self.acc.usage()
            if usage is None and self.acc.events:
                usage = Usage(
                    input_tokens=self.estimate_input() if self.estimate_input else None,
                    output_tokens=estimate_tokens("".join(self.text_parts)),
                    estimated=True,
                )
            self.call.set_response(
                response_model=self.acc.response_model,
                response_id=self.acc.response_id,
                finish_reasons=self.acc.finish_reasons,
                usage=usage,
            )
        except Exception:
            log.debug("otel_tokens: could not record an Anthropic stream", exc_info=True)
        finally:
            try:
                self.call.end()
            except Exception:
                log.debug("otel_tokens: could not end an Anthropic span", exc_info=True)


class TracedStream(wrapt.ObjectProxy):  # type: ignore[misc]
    """``anthropic.Stream`` (sync) that reports its events to a :class:`StreamFinisher`."""

    def __init__(self, stream: Any, finisher: StreamFinisher) -> None:
        super().__init__(stream)
        self._self_finisher = finisher

    def __iter__(self) -> TracedStream:
        return self

    def __next__(self) -> Any:
        try:
            event = self.__wrapped__.__next__()
        except StopIteration:
            self._self_finisher.finish()
            raise
        except BaseException as exc:
            self._self_finisher.finish(exc)
            raise
        self._self_finisher.observe(event)
        return event

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            self._self_finisher.finish()

    def __enter__(self) -> TracedStream:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __del__(self) -> None:
        finisher = getattr(self, "_self_finisher", None)
        if finisher is not None:
            finisher.finish()


class TracedAsyncStream(wrapt.ObjectProxy):  # type: ignore[misc]
    """``anthropic.AsyncStream`` that reports its events to a :class:`StreamFinisher`."""

    def __init__(self, stream: Any, finisher: StreamFinisher) -> None:
        super().__init__(stream)
        self._self_finisher = finisher

    def __aiter__(self) -> TracedAsyncStream:
        return self

    async def __anext__(self) -> Any:
        try:
            event = await self.__wrapped__.__anext__()
        except StopAsyncIteration:
            self._self_finisher.finish()
            raise
        except BaseException as exc:
            self._self_finisher.finish(exc)
            raise
        self._self_finisher.observe(event)
        return event

    async def close(self) -> None:
        try:
            await self.__wrapped__.close()
        finally:
            self._self_finisher.finish()

    async def __aenter__(self) -> TracedAsyncStream:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()

    def __del__(self) -> None:
        finisher = getattr(self, "_self_finisher", None)
        if finisher is not None:
            finisher.finish()
