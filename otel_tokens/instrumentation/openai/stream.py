"""Stream proxies: read usage from chunks, hide the injected usage-only chunk, end the span once."""

from __future__ import annotations

import logging
from typing import Any

import wrapt

from otel_tokens.instrumentation.genai_span import LLMCall
from otel_tokens.instrumentation.openai import usage as extract
from otel_tokens.usage import Usage

logger = logging.getLogger(__name__)

_RESPONSE_DONE_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})


class StreamRecorder:
    """What a stream has told us so far, and the one place its span is ended."""

    __slots__ = (
        "call",
        "done",
        "estimate",
        "hide_usage_chunk",
        "kind",
        "kwargs",
        "model",
        "reasons",
        "response_id",
        "texts",
        "usage",
    )

    def __init__(
        self,
        call: LLMCall,
        kind: str,
        kwargs: dict[str, Any],
        *,
        hide_usage_chunk: bool,
        estimate: bool,
    ) -> None:
        self.call = call
        self.kind = kind
        self.kwargs = kwargs
        self.hide_usage_chunk = hide_usage_chunk
        self.estimate = estimate
        self.done = False
        self.usage: Usage | None = None
        self.model: str | None = None
        self.response_id: str | None = None
        self.reasons: dict[int, str] = {}
        self.texts: list[str] = []

    def on_item(self, item: Any) -> bool:
        """Take what ``item`` carries; True when the caller must not see it."""
        try:
            if self.kind == "chat":
                return self._on_chunk(item)
            self._on_event(item)
        except Exception:
            logger.debug("otel_tokens: reading a stream item failed", exc_info=True)
        return False

    def _on_chunk(self, chunk: Any) -> bool:
        if self.model is None:
            self.model = getattr(chunk, "model", None)
            self.response_id = getattr(chunk, "id", None)
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            self.usage = extract.chat_usage(usage)
        choices = getattr(chunk, "choices", None)
        if not choices:
            # The usage-only final chunk we asked for: callers index choices[0].
            return self.hide_usage_chunk and usage is not None
        for choice in choices:
            reason = getattr(choice, "finish_reason", None)
            if reason:
                self.reasons[getattr(choice, "index", 0) or 0] = str(reason)
            content = getattr(getattr(choice, "delta", None), "content", None)
            if content:
                self.texts.append(content)
        return False

    def _on_event(self, event: Any) -> None:
        kind = getattr(event, "type", None)
        if kind == "response.output_text.delta":
            delta = getattr(event, "delta", None)
            if isinstance(delta, str):
                self.texts.append(delta)
        elif kind in _RESPONSE_DONE_EVENTS or kind == "response.created":
            response = getattr(event, "response", None)
            self.model = getattr(response, "model", None) or self.model
            self.response_id = getattr(response, "id", None) or self.response_id
            if kind in _RESPONSE_DONE_EVENTS:
                self.usage = extract.responses_usage(getattr(response, "usage", None))
                status = getattr(response, "status", None)
                if status:
                    self.reasons[0] = str(status)

    def finish(self, exc: BaseException | None = None) -> None:
        """End the span with whatever usage is known; only the first call acts."""
        if self.done:
            return
        self.done = True
        try:
            usage = self.usage
            if usage is None and self.estimate:
                usage = extract.estimate_usage(self.kind, self.kwargs, "".join(self.texts))
            self.call.set_response(
                response_model=self.model,
                response_id=self.response_id,
                finish_reasons=[self.reasons[i] for i in sorted(self.reasons)],
                usage=usage,
            )
            if exc is not None:
                self.call.fail(exc)
        except Exception:
            logger.debug("otel_tokens: finishing a stream failed", exc_info=True)
        self.call.end()


class StreamProxy(wrapt.ObjectProxy):  # type: ignore[misc]
    """Wraps ``openai.Stream``: same object to the caller, minus the injected usage chunk."""

    def __init__(self, stream: Any, recorder: StreamRecorder) -> None:
        super().__init__(stream)
        self._self_recorder = recorder

    def __iter__(self) -> StreamProxy:
        return self

    def __next__(self) -> Any:
        recorder = self._self_recorder
        while True:
            try:
                item = self.__wrapped__.__next__()
            except StopIteration:
                recorder.finish()
                raise
            except BaseException as exc:
                recorder.finish(exc)
                raise
            if not recorder.on_item(item):
                return item

    def __enter__(self) -> StreamProxy:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(exc_type, exc, tb)
        finally:
            self._self_recorder.finish(exc)

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            self._self_recorder.finish()

    def __del__(self) -> None:
        # An abandoned stream still ends its span (with what it had read).
        recorder = getattr(self, "_self_recorder", None)
        if recorder is not None:
            recorder.finish()


class AsyncStreamProxy(wrapt.ObjectProxy):  # type: ignore[misc]
    """Wraps ``openai.AsyncStream`` like :class:`StreamProxy`."""

    def __init__(self, stream: Any, recorder: StreamRecorder) -> None:
        super().__init__(stream)
        self._self_recorder = recorder

    def __aiter__(self) -> AsyncStreamProxy:
        return self

    async def __anext__(self) -> Any:
        recorder = self._self_recorder
        while True:
            try:
                item = await self.__wrapped__.__anext__()
            except StopAsyncIteration:
                recorder.finish()
                raise
            except BaseException as exc:
                recorder.finish(exc)
                raise
            if not recorder.on_item(item):
                return item

    async def __aenter__(self) -> AsyncStreamProxy:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(exc_type, exc, tb)
        finally:
            self._self_recorder.finish(exc)

    async def close(self) -> None:
        try:
            await self.__wrapped__.close()
        finally:
            self._self_recorder.finish()

    def __del__(self) -> None:
        recorder = getattr(self, "_self_recorder", None)
        if recorder is not None:
            recorder.finish()
