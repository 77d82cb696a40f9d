"""A small, known dataset of span rows (three traces) whose every roll-up is worked out by hand.

Trace A (interactive request, user u1, tenant acme, correlation id req-1, two days ago):
    a0 SERVER "POST /chat"
      a1 node plan
        a2 INTERNAL "step" (no node)
          a3 chat gpt-4o-mini      no own node -> inherits "plan" from its grandparent
        a4 chat gpt-4o-mini      own node "answer" (the innermost node wins)
        a5 chat my-llama-70b     no own node -> "plan"; no price -> cost NULL
Trace B (background job ingest_emails, user u1, tenant acme, correlation id job-1, yesterday):
    b0 CONSUMER "job ingest_emails"
      b1 node extract
        b2 chat claude-sonnet-4  own node "extract", cost from the provider
Trace C (interactive, user u2, tenant globex, 40 days ago):
    c0 SERVER "POST /complete"
      c1 chat gpt-4o-mini      no node anywhere above -> node NULL
      c2 invoke_agent with 999 tokens: an agent span, not a call (would double count)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa

from queries.store import spans_table

NOW = datetime.now(UTC).replace(microsecond=0)
DAY_A = NOW - timedelta(days=2)
DAY_B = NOW - timedelta(days=1)
DAY_C = NOW - timedelta(days=40)

TRACE_A = "a" * 32
TRACE_B = "b" * 32
TRACE_C = "c" * 32


def _span(
    trace: str,
    span: str,
    parent: str | None,
    name: str,
    start: datetime,
    *,
    kind: str = "INTERNAL",
    **columns: Any,
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "trace_id": trace,
        "span_id": span.ljust(16, "0"),
        "parent_span_id": parent.ljust(16, "0") if parent else None,
        "name": name,
        "kind": kind,
        "service_name": "chat-api",
        "start_time": start,
        "end_time": start + timedelta(milliseconds=500),
        "duration_ms": 500.0,
        "status_code": "UNSET",
    }
    row.update(columns)
    return row


def _call(model: str, provider: str, inp: int, out: int, cost: str | None, **kw: Any) -> dict:
    return {
        "operation": "chat",
        "provider": provider,
        "request_model": model,
        "response_model": model,
        "input_tokens": inp,
        "output_tokens": out,
        "cost_usd": Decimal(cost) if cost is not None else None,
        "cost_source": kw.pop("cost_source", "local" if cost is not None else None),
        **kw,
    }


def _user(user: str, tenant: str, corr: str | None, job: str | None = None) -> dict:
    return {"user_id": user, "tenant": tenant, "correlation_id": corr, "job_type": job}


A = _user("u1", "acme", "req-1")
B = _user("u1", "acme", "job-1", "ingest_emails")
C = _user("u2", "globex", "req-3")
t = timedelta(seconds=1)

ROWS: list[dict[str, Any]] = [
    _span(TRACE_A, "a0", None, "POST /chat", DAY_A, kind="SERVER", **A),
    _span(TRACE_A, "a1", "a0", "node plan", DAY_A + t, node="plan", **A),
    _span(TRACE_A, "a2", "a1", "step", DAY_A + 2 * t, **A),
    _span(
        TRACE_A,
        "a3",
        "a2",
        "chat gpt-4o-mini",
        DAY_A + 3 * t,
        kind="CLIENT",
        **A,
        **_call("gpt-4o-mini", "openai", 100, 50, "0.0001", cache_read_tokens=20),
    ),
    _span(
        TRACE_A,
        "a4",
        "a1",
        "chat gpt-4o-mini",
        DAY_A + 4 * t,
        kind="CLIENT",
        node="answer",
        **A,
        **_call("gpt-4o-mini", "openai", 200, 100, "0.25", reasoning_tokens=40),
    ),
    _span(
        TRACE_A,
        "a5",
        "a1",
        "chat my-llama-70b",
        DAY_A + 5 * t,
        kind="CLIENT",
        **A,
        **_call("my-llama-70b", "vllm", 300, 30, None),
    ),
    _span(TRACE_B, "b0", None, "job ingest_emails", DAY_B, kind="CONSUMER", **B),
    _span(TRACE_B, "b1", "b0", "node extract", DAY_B + t, node="extract", **B),
    _span(
        TRACE_B,
        "b2",
        "b1",
        "chat claude",
        DAY_B + 2 * t,
        kind="CLIENT",
        node="extract",
        **B,
        **_call(
            "claude-sonnet-4-20250514",
            "anthropic",
            1000,
            500,
            "1.50",
            cache_creation_tokens=100,
            cost_source="provider",
        ),
    ),
    _span(TRACE_C, "c0", None, "POST /complete", DAY_C, kind="SERVER", **C),
    _span(
        TRACE_C,
        "c1",
        "c0",
        "chat gpt-4o-mini",
        DAY_C + t,
        kind="CLIENT",
        **C,
        **_call("gpt-4o-mini", "openai", 10, 5, "0.01"),
    ),
    _span(
        TRACE_C,
        "c2",
        "c0",
        "invoke_agent helper",
        DAY_C + 2 * t,
        **C,
        operation="invoke_agent",
        input_tokens=999,
        output_tokens=999,
    ),
]


def table(rows: list[dict[str, Any]] | None = None) -> pa.Table:
    """The rows as a ``spans`` batch (columns not given are NULL)."""
    rows = ROWS if rows is None else rows
    keys: set[str] = set()
    for r in rows:
        keys.update(r)
    return spans_table({k: [r.get(k) for r in rows] for k in sorted(keys)})


def span_id(short: str) -> str:
    return short.ljust(16, "0")
