"""One in-flight LLM call as a CLIENT span: usage, cost and metrics set before it ends."""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import INVALID_SPAN, Span, SpanKind, Status, StatusCode, Tracer

from otel_tokens import attributes as attr
from otel_tokens.context import ACTIVE_SCOPE, node_of
from otel_tokens.metrics import MetricAttributes, get_metrics
from otel_tokens.processor import set_valid_attributes
from otel_tokens.usage import Usage

if TYPE_CHECKING:
    from otel_tokens.pricing import PriceBook

logger = logging.getLogger(__name__)

_price_book: PriceBook | None = None


def set_price_book(book: PriceBook | None) -> None:
    """Use ``book`` for every later call (``configure(prices=...)``); None: the default book."""
    global _price_book
    _price_book = book


def price_book() -> PriceBook | None:
    """The book costs are computed with, or None when pricing is unavailable."""
    global _price_book
    if _price_book is None:
        try:
            from otel_tokens.pricing import default_price_book

            _price_book = default_price_book()
        except Exception:
            logger.warning("otel_tokens: price catalogue unavailable; no cost", exc_info=True)
            return None
    return _price_book


def put_usage_attributes(values: dict[str, Any], usage: Usage) -> None:
    """Add the SPEC §2 usage attributes of ``usage`` to ``values`` (unreported counts left out)."""
    if usage.input_tokens is not None:
        values[attr.GEN_AI_USAGE_INPUT_TOKENS] = usage.input_tokens
    if usage.output_tokens is not None:
        values[attr.GEN_AI_USAGE_OUTPUT_TOKENS] = usage.output_tokens
    if usage.cache_read_tokens is not None:
        values[attr.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = usage.cache_read_tokens
    if usage.cache_creation_tokens is not None:
        values[attr.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] = usage.cache_creation_tokens
    if usage.reasoning_tokens is not None:
        values[attr.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = usage.reasoning_tokens
    if usage.estimated:
        values[attr.OTEL_TOKENS_USAGE_ESTIMATED] = True


_PLAIN_TYPES = frozenset({str, bool, int, float})


class _Shape:
    """What every call with one provider, operation, request model and server has in common.

    Span name and attribute dicts are built once and reused: the SDK copies the attributes a
    span starts with, and ``set_valid_attributes`` copies into the span's own dict.
    """

    __slots__ = ("metric_base", "metric_by_node", "name", "server_attributes", "start_attributes")

    def __init__(
        self,
        provider: str,
        operation: str,
        request_model: str | None,
        server_address: str | None,
        server_port: int | None,
    ) -> None:
        self.name = f"{operation} {request_model}" if request_model else operation
        # What a sampler may look at goes in at span creation (validated by the SDK).
        self.start_attributes: dict[str, Any] = {
            attr.GEN_AI_OPERATION_NAME: operation,
            attr.GEN_AI_PROVIDER_NAME: provider,
        }
        self.metric_base: dict[str, Any] = {
            attr.GEN_AI_PROVIDER_NAME: provider,
            attr.GEN_AI_OPERATION_NAME: operation,
        }
        if request_model:
            self.start_attributes[attr.GEN_AI_REQUEST_MODEL] = str(request_model)
            self.metric_base[attr.GEN_AI_REQUEST_MODEL] = request_model
        self.server_attributes: dict[str, Any] = {}
        if server_address:
            self.server_attributes[attr.SERVER_ADDRESS] = str(server_address)
            if isinstance(server_port, int):
                self.server_attributes[attr.SERVER_PORT] = server_port
        self.metric_by_node: dict[str | None, MetricAttributes] = {}

    def metric_attributes(self, node: str | None) -> MetricAttributes:
        """Provider, operation, request model and node (the node comes from the call's scope)."""
        found = self.metric_by_node.get(node)
        if found is None:
            call = dict(self.metric_base)
            if node is not None:
                call[attr.OTEL_TOKENS_NODE] = node
            if len(self.metric_by_node) >= _MAX_SHAPES:
                self.metric_by_node.clear()
            found = self.metric_by_node[node] = MetricAttributes(call)
        return found


_MAX_SHAPES = 256  # distinct models x servers (or nodes per shape) kept; beyond, start over
_shapes: dict[tuple[str, str, str | None, str | None, int | None], _Shape] = {}


def _shape(
    provider: str,
    operation: str,
    request_model: str | None,
    server_address: str | None,
    server_port: int | None,
) -> _Shape:
    key = (provider, operation, request_model, server_address, server_port)
    found = _shapes.get(key)
    if found is None:
        if len(_shapes) >= _MAX_SHAPES:
            _shapes.clear()
        found = _shapes[key] = _Shape(*key)
    return found


class LLMCall:
    """One in-flight LLM call; never raises into the application.

    Starts a CLIENT span ``"{operation} {request_model}"`` as a child of the current span.
    ``existing_span`` (coexistence with another instrumentation that already opened a span for
    this call): no second span is created; usage and cost are added to that span, and it is left
    to its owner to end (token and duration metrics are left to the owner too, the cost counter
    is still recorded).
    """

    __slots__ = (
        "_context",
        "_ended",
        "_error_type",
        "_owned",
        "_provider_cost",
        "_response_model",
        "_scope",
        "_shape",
        "_start",
        "_usage",
        "_values",
        "provider",
        "request_model",
        "span",
    )

    def __init__(
        self,
        tracer: Tracer,
        *,
        provider: str,
        operation: str,
        request_model: str | None,
        attributes: dict[str, Any] | None = None,
        server_address: str | None = None,
        server_port: int | None = None,
        existing_span: Span | None = None,
        context: Context | None = None,
    ) -> None:
        """``context``: the current context when the caller already read it (saves reading
        it again for the parent span and for :meth:`attach`)."""
        self._start = time.perf_counter()
        self._context = context
        self._ended = False
        self._usage: Usage | None = None
        self._provider_cost: float | None = None
        self._response_model: str | None = None
        self._error_type: str | None = None
        self.provider = provider
        self.request_model = request_model
        self._owned = existing_span is None
        # The scope at the start of the call gives the metrics' node (a stream may end elsewhere).
        self._scope = ACTIVE_SCOPE.get()
        self.span: Span = existing_span or INVALID_SPAN
        self._values: dict[str, Any] = {}
        self._shape: _Shape | None = None
        try:
            shape = self._shape = _shape(
                provider, operation, request_model, server_address, server_port
            )
            if existing_span is None:
                span = self.span = tracer.start_span(
                    shape.name, context, SpanKind.CLIENT, shape.start_attributes
                )
                # Server and request attributes are written with the response's in end(): one
                # write per span.
                self._values = dict(shape.server_attributes)
                if attributes:
                    if all(type(v) in _PLAIN_TYPES for v in attributes.values()):
                        self._values.update(attributes)
                    elif span.is_recording():
                        span.set_attributes(attributes)  # sequences etc.: validated by the SDK
            elif attributes and existing_span.is_recording():
                # Only add what the owner did not set.
                known = getattr(existing_span, "attributes", None) or {}
                existing_span.set_attributes(
                    {k: v for k, v in attributes.items() if k not in known}
                )
        except Exception:
            logger.debug("otel_tokens: starting an LLM span failed", exc_info=True)

    def attach(self) -> object:
        """Make this call's span current (HTTP spans nest under it); detach the returned token."""
        return otel_context.attach(trace.set_span_in_context(self.span, self._context))

    def use(self) -> Any:
        """Context manager making this call's span current (HTTP spans nest under it)."""
        return trace.use_span(
            self.span, end_on_exit=False, record_exception=False, set_status_on_exception=False
        )

    def set_response(
        self,
        *,
        response_model: str | None = None,
        response_id: str | None = None,
        finish_reasons: Sequence[str] | None = None,
        usage: Usage | None = None,
        provider_cost: float | None = None,
    ) -> None:
        """Record what the response said; later calls overwrite what they give.

        Values are kept and written to the span once, in :meth:`end`.
        """
        try:
            values = self._values
            if response_model:
                self._response_model = response_model
                values[attr.GEN_AI_RESPONSE_MODEL] = str(response_model)
            if response_id:
                values[attr.GEN_AI_RESPONSE_ID] = str(response_id)
            if finish_reasons:
                values[attr.GEN_AI_RESPONSE_FINISH_REASONS] = tuple(map(str, finish_reasons))
            if usage is not None:
                self._usage = usage
            if provider_cost is not None:
                self._provider_cost = float(provider_cost)
        except Exception:
            logger.debug("otel_tokens: recording an LLM response failed", exc_info=True)

    @property
    def usage(self) -> Usage | None:
        return self._usage

    def fail(self, exc: BaseException) -> None:
        """Mark the call failed: ``error.type`` and ERROR status (the exception is not raised)."""
        try:
            self._error_type = type(exc).__qualname__
            if self.span.is_recording():
                self.span.set_attribute(attr.ERROR_TYPE, self._error_type)
                self.span.set_status(Status(StatusCode.ERROR, str(exc) or self._error_type))
        except Exception:
            logger.debug("otel_tokens: recording an LLM failure failed", exc_info=True)

    def end(self) -> None:
        """Set usage, cost and pricing ref, record metrics, end the span; idempotent."""
        if self._ended:
            return
        self._ended = True
        try:
            self._finish()
        except Exception:
            logger.debug("otel_tokens: finishing an LLM span failed", exc_info=True)
        if self._owned:
            try:
                self.span.end()
            except Exception:
                logger.debug("otel_tokens: ending an LLM span failed", exc_info=True)

    def _finish(self) -> None:
        span = self.span
        usage = self._usage
        values = self._values
        if usage is not None:
            put_usage_attributes(values, usage)
        cost_amount: float | None = None
        if self._provider_cost is not None:
            cost_amount = self._provider_cost
            values[attr.GEN_AI_USAGE_COST_AMOUNT] = cost_amount
            values[attr.GEN_AI_USAGE_COST_CURRENCY] = "USD"
            values[attr.GEN_AI_USAGE_COST_SOURCE] = attr.COST_SOURCE_PROVIDER
        elif usage is not None:  # (the book prices nothing for empty usage)
            book = price_book()
            model = self._response_model or self.request_model
            cost = book.cost(usage, model, self.provider) if book is not None and model else None
            if cost is not None:
                cost_amount = cost.amount
                values[attr.GEN_AI_USAGE_COST_AMOUNT] = cost.amount
                values[attr.GEN_AI_USAGE_COST_CURRENCY] = "USD"
                values[attr.GEN_AI_USAGE_COST_SOURCE] = attr.COST_SOURCE_LOCAL
                values[attr.OTEL_TOKENS_PRICING_REF] = cost.ref
            else:
                logger.debug("otel_tokens: no price for %s/%s", self.provider, model)
        if values and span.is_recording():
            set_valid_attributes(span, values)
        # Metric attributes: provider, operation, request model, node (+ error.type). Each
        # attribute costs on every measurement, so the response model is left to the span.
        shape = self._shape
        metrics = get_metrics()
        if shape is None or metrics.dropped:
            return
        metric_attributes = shape.metric_attributes(node_of(self._scope))
        if self._error_type:
            metric_attributes = MetricAttributes(
                {**metric_attributes.call, attr.ERROR_TYPE: self._error_type}
            )
        if self._owned:
            metrics.record(
                metric_attributes,
                input_tokens=usage.input_tokens if usage is not None else None,
                output_tokens=usage.output_tokens if usage is not None else None,
                duration_s=time.perf_counter() - self._start,
                cost_usd=cost_amount,
                context=self._context,
            )
        elif cost_amount is not None:
            metrics.record(metric_attributes, cost_usd=cost_amount, context=self._context)


class Covering:
    """While a wrapped SDK call runs: the call's span is current and ``in_call`` is set.

    ``in_call`` is the instrumentor's own flag, so nested SDK methods it also wraps add no
    second span. A plain class: cheaper per call than a generator-based context manager.
    """

    __slots__ = ("_in_call", "_span", "_tokens")

    def __init__(self, call: LLMCall, in_call: contextvars.ContextVar[bool]) -> None:
        self._span = call.span
        self._in_call = in_call

    def __enter__(self) -> None:
        self._tokens = (
            self._in_call.set(True),
            otel_context.attach(trace.set_span_in_context(self._span)),
        )

    def __exit__(self, *exc_info: object) -> None:
        in_call, attached = self._tokens
        otel_context.detach(attached)
        self._in_call.reset(in_call)


_LLM_OPERATIONS = frozenset({"chat", "text_completion", "generate_content", "embeddings"})


def foreign_llm_span(provider_hints: Sequence[str]) -> Span | None:
    """The current span if another instrumentation already opened it for this LLM call.

    Its wrapper runs outside ours: the current span is then a recording CLIENT span for an LLM
    operation of a provider matching ``provider_hints`` that has no usage yet. Usage and cost
    are added to it instead of opening a second span (which would count the call twice). An
    agent or workflow span, or one that already carries usage (an earlier call), is a parent,
    not this call.
    """
    span = trace.get_current_span()
    if not span.is_recording() or getattr(span, "kind", None) != SpanKind.CLIENT:
        return None
    attributes = getattr(span, "attributes", None) or {}
    if (
        attr.GEN_AI_USAGE_INPUT_TOKENS in attributes
        or attr.GEN_AI_USAGE_OUTPUT_TOKENS in attributes
    ):
        return None
    operation = attributes.get(attr.GEN_AI_OPERATION_NAME)
    if operation is not None and operation not in _LLM_OPERATIONS:
        return None
    provider = attributes.get(attr.GEN_AI_PROVIDER_NAME) or attributes.get(attr.OLD_GEN_AI_SYSTEM)
    if not isinstance(provider, str):
        return None
    provider = provider.lower()
    return span if any(hint in provider for hint in provider_hints) else None
