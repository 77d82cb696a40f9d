"""Who and what an LLM call is made for: contextvars scopes (user, node, ids) and baggage."""

from __future__ import annotations

import contextvars
import functools
import inspect
import logging
import sys
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from types import TracebackType
from typing import Any, TypeVar

from opentelemetry import baggage, trace
from opentelemetry import context as otel_context
from opentelemetry.trace import SpanKind, Status, StatusCode

from otel_tokens import attributes as attr

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

AttributeValue = str | bool | int | float

# Scope field -> span attribute it is stamped as (SPEC §2).
FIELD_ATTRIBUTES: Mapping[str, str] = {
    "node": attr.OTEL_TOKENS_NODE,
    "user_id": attr.ENDUSER_ID,
    "session_id": attr.SESSION_ID,
    "conversation_id": attr.GEN_AI_CONVERSATION_ID,
    "correlation_id": attr.OTEL_TOKENS_CORRELATION_ID,
    "tenant": attr.OTEL_TOKENS_TENANT,
    "job_type": attr.OTEL_TOKENS_JOB_TYPE,
}


class Scope:
    """One immutable layer of context; ``attributes`` is precomputed so stamping is one call."""

    __slots__ = ("attributes", "fields")

    def __init__(self, fields: Mapping[str, AttributeValue]) -> None:
        self.fields: dict[str, AttributeValue] = dict(fields)
        self.attributes: dict[str, AttributeValue] = {
            FIELD_ATTRIBUTES.get(name, name): value for name, value in self.fields.items()
        }

    def derive(self, changes: Mapping[str, Any]) -> Scope:
        fields = dict(self.fields)
        for name, value in changes.items():
            if value is not None:
                fields[name] = _attribute_value(value)
        return Scope(fields)

    def get(self, name: str) -> AttributeValue | None:
        return self.fields.get(name)

    def __repr__(self) -> str:
        return f"Scope({self.fields!r})"


EMPTY_SCOPE = Scope({})
#: The innermost active scope. Hot paths (the stamping processor, every LLM call) read it with
#: ``ACTIVE_SCOPE.get()``, one C call; everything else uses :func:`current_scope`.
ACTIVE_SCOPE: ContextVar[Scope | None] = ContextVar("otel_tokens_scope", default=None)
_propagate = False


def _attribute_value(value: Any) -> AttributeValue:
    if isinstance(value, str | bool | int | float):
        return value
    return str(value)


def current_scope() -> Scope | None:
    """The innermost active scope in this context, or None."""
    return ACTIVE_SCOPE.get()


def current_node() -> str | None:
    return node_of(ACTIVE_SCOPE.get())


def node_of(scope: Scope | None) -> str | None:
    """The node name of ``scope`` (None without a scope or a node)."""
    node = None if scope is None else scope.fields.get("node")
    return None if node is None else str(node)


def set_propagate(enabled: bool) -> None:
    """Switch W3C baggage propagation of scopes on or off (off by default: ids leave)."""
    global _propagate
    _propagate = bool(enabled)


def propagation_enabled() -> bool:
    return _propagate


def _tracer() -> trace.Tracer:
    return trace.get_tracer("otel_tokens")


class _ScopeManager:
    """A context manager that is also a decorator (sync, async and generator functions).

    Each ``with`` entry pushes its own tokens, so one instance may be entered more than once;
    the decorator form enters a fresh copy per call.
    """

    def __init__(self, changes: Mapping[str, Any]) -> None:
        self._changes = {k: v for k, v in changes.items() if v is not None}
        self._tokens: list[tuple[tuple[Any, Any], trace.Span | None]] = []

    # Hooks for subclasses that open a span.
    def _start_span(self) -> trace.Span | None:
        return None

    def _copy(self) -> _ScopeManager:
        return type(self).__new__(type(self))._init_from(self)

    def _init_from(self, other: _ScopeManager) -> _ScopeManager:
        self.__dict__.update(other.__dict__)
        self._tokens = []
        return self

    def _scope(self) -> Scope:
        return (ACTIVE_SCOPE.get() or EMPTY_SCOPE).derive(self._changes)

    @staticmethod
    def _activate(scope: Scope, span: trace.Span | None) -> tuple[Any, Any]:
        scope_token = ACTIVE_SCOPE.set(scope)
        ctx = None
        if _propagate:
            ctx = otel_context.get_current()
            for name, value in scope.attributes.items():
                if name in attr.BAGGAGE_KEYS:
                    ctx = baggage.set_baggage(name, str(value), ctx)
        if span is not None:
            ctx = trace.set_span_in_context(span, ctx)
        ctx_token = otel_context.attach(ctx) if ctx is not None else None
        return scope_token, ctx_token

    @staticmethod
    def _deactivate(tokens: tuple[Any, Any]) -> None:
        scope_token, ctx_token = tokens
        try:
            if ctx_token is not None:
                otel_context.detach(ctx_token)
        except Exception:  # never break the application
            logger.debug("otel_tokens: leaving a scope failed", exc_info=True)
        finally:
            ACTIVE_SCOPE.reset(scope_token)

    @staticmethod
    def _end_span(span: trace.Span | None, exc: BaseException | None) -> None:
        if span is None:
            return
        try:
            if exc is not None and not isinstance(exc, GeneratorExit):
                span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
                span.set_attribute(attr.ERROR_TYPE, type(exc).__qualname__)
            span.end()
        except Exception:
            logger.debug("otel_tokens: ending a node span failed", exc_info=True)

    def __enter__(self) -> Scope:
        scope = self._scope()
        # The scope is set before the span starts so the node span itself is stamped too.
        scope_token = ACTIVE_SCOPE.set(scope)
        try:
            span = self._start_span()
        finally:
            ACTIVE_SCOPE.reset(scope_token)
        self._tokens.append((self._activate(scope, span), span))
        return scope

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        tokens, span = self._tokens.pop()
        self._end_span(span, exc)
        self._deactivate(tokens)

    def __call__(self, func: F) -> F:
        if inspect.isasyncgenfunction(func):
            return self._wrap_async_generator(func)
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with self._copy():
                    return await func(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]
        if inspect.isgeneratorfunction(func):
            return self._wrap_generator(func)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self._copy():
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    def _wrap_generator(self, func: F) -> F:
        # A generator runs in its caller's context at every resumption; running each step in a
        # private copied context keeps the scope inside the generator and out of the caller.
        @functools.wraps(func)
        def gen_wrapper(*args: Any, **kwargs: Any) -> Any:
            ctx = contextvars.copy_context()
            manager = self._copy()
            ctx.run(manager.__enter__)
            exc_info: tuple[Any, Any, Any] = (None, None, None)
            try:
                gen = ctx.run(func, *args, **kwargs)
                send_value: Any = None
                while True:
                    try:
                        item = ctx.run(gen.send, send_value)
                    except StopIteration as stop:
                        return stop.value
                    try:
                        send_value = yield item
                    except GeneratorExit:
                        ctx.run(gen.close)
                        raise
                    except BaseException:
                        # Forward a thrown exception; what the generator yields next continues.
                        while True:
                            try:
                                item = ctx.run(gen.throw, *sys.exc_info())
                            except StopIteration as stop:
                                return stop.value
                            try:
                                send_value = yield item
                                break
                            except GeneratorExit:
                                ctx.run(gen.close)
                                raise
                            except BaseException:
                                continue
            except BaseException:
                exc_info = sys.exc_info()
                raise
            finally:
                ctx.run(manager.__exit__, *exc_info)

        return gen_wrapper  # type: ignore[return-value]

    def _wrap_async_generator(self, func: F) -> F:
        @functools.wraps(func)
        async def agen_wrapper(*args: Any, **kwargs: Any) -> Any:
            # An async generator's steps cannot each run in a private context, so the scope
            # (and the one node span) is made current around each step and left before each
            # yield, which keeps it out of the code iterating the generator.
            manager = self._copy()
            scope = manager._scope()
            scope_token = ACTIVE_SCOPE.set(scope)
            try:
                span = manager._start_span()
            finally:
                ACTIVE_SCOPE.reset(scope_token)
            agen = func(*args, **kwargs)
            send_value: Any = None
            error: BaseException | None = None
            try:
                while True:
                    tokens = manager._activate(scope, span)
                    try:
                        item = await agen.asend(send_value)
                    except StopAsyncIteration:
                        return
                    finally:
                        manager._deactivate(tokens)
                    send_value = yield item
            except BaseException as exc:
                error = exc
                raise
            finally:
                try:
                    await agen.aclose()
                finally:
                    manager._end_span(span, error)

        return agen_wrapper  # type: ignore[return-value]


class usage_context(_ScopeManager):
    """Attribute every span started inside to a user, request, tenant, conversation and session.

    Nested contexts inherit what they do not override. ``extra`` keys are stamped as span
    attributes as given (use ``**{"app.plan": "pro"}`` for dotted names).
    """

    def __init__(
        self,
        user_id: str | None = None,
        correlation_id: str | None = None,
        tenant: str | None = None,
        conversation_id: str | None = None,
        session_id: str | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(
            {
                "user_id": user_id,
                "correlation_id": correlation_id,
                "tenant": tenant,
                "conversation_id": conversation_id,
                "session_id": session_id,
                **extra,
            }
        )


class node(_ScopeManager):
    """A graph node / agent step / feature: opens INTERNAL span ``node <name>`` and stamps it.

    Context manager and decorator (sync, async, generators). The innermost node wins.
    """

    def __init__(self, name: str, **extra: Any) -> None:
        super().__init__({**extra, "node": name})
        self.name = name

    def _start_span(self) -> trace.Span | None:
        try:
            return _tracer().start_span(f"node {self.name}", kind=SpanKind.INTERNAL)
        except Exception:
            logger.debug("otel_tokens: starting node span failed", exc_info=True)
            return None


class background_job(_ScopeManager):
    """Work that is not an interactive request (``ingest_emails``…): stamps ``job_type``."""

    def __init__(
        self,
        job_type: str,
        user_id: str | None = None,
        tenant: str | None = None,
        correlation_id: str | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(
            {
                "job_type": job_type,
                "user_id": user_id,
                "tenant": tenant,
                "correlation_id": correlation_id,
                **extra,
            }
        )
