"""The SpanProcessor that stamps the active user/node/ids scope onto every span at start."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from opentelemetry import baggage
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from otel_tokens import context as scopes
from otel_tokens.attributes import BAGGAGE_KEYS

logger = logging.getLogger(__name__)

_active_scope = scopes.ACTIVE_SCOPE  # the ContextVar itself: one C call per span


def set_valid_attributes(span: Any, values: Mapping[str, Any]) -> None:
    """Add already-valid attribute values (str, bool, int, float, tuples of str) to a live span.

    ``Span.set_attributes`` takes two locks and re-validates every value (~1 µs per attribute).
    A scope's values are validated once when the scope is entered, and a span inside
    ``on_start`` (or a call's span before it ends) is used by one thread only, so when the SDK's
    attribute container has no limits that could drop or truncate, its dict is updated
    directly. Anything else takes the public path.
    """
    try:
        attrs = span._attributes
        if (
            span._end_time is None
            and attrs.__class__ is BoundedAttributes
            and attrs.max_value_len is None
            and not attrs._immutable
            and (attrs.maxlen is None or len(attrs._dict) + len(values) <= attrs.maxlen)
        ):
            attrs._dict.update(values)
            return
    except AttributeError:  # not an SDK span
        pass
    span.set_attributes(values)


class StampingProcessor(SpanProcessor):
    """Copies the innermost scope's precomputed attributes onto each span in ``on_start``.

    ``on_start`` is the last moment attributes can be added (at ``on_end`` the span is frozen),
    so this works for spans of any instrumentation in the process. With propagation on, scope
    values that arrived as W3C baggage from an upstream service are stamped too (local values
    win).
    """

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        scope = _active_scope.get()
        if scopes._propagate:
            self._stamp_with_baggage(span, scope, parent_context)
        elif scope is not None:
            set_valid_attributes(span, scope.attributes)

    def _stamp_with_baggage(
        self, span: Span, scope: scopes.Scope | None, parent_context: Context | None
    ) -> None:
        try:
            entries = baggage.get_all(parent_context)
            values = {k: v for k, v in entries.items() if k in BAGGAGE_KEYS}
            if scope is not None:
                values.update(scope.attributes)
            if values:
                set_valid_attributes(span, values)
        except Exception:
            logger.debug("otel_tokens: stamping from baggage failed", exc_info=True)

    def on_end(self, span: ReadableSpan) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
