"""Recompute locally computed costs with the current price catalogue and overrides.

Rows whose cost came from the provider (``cost_source = 'provider'``) are left alone; rows
priced locally, or not priced at all, are priced again. Work goes in Arrow batches: read a
chunk of calls, price each distinct (provider, model, day, token counts) once, write the chunk
back with one ``UPDATE ... FROM`` joined on the span key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import duckdb
import pyarrow as pa

from otel_tokens.attributes import COST_SOURCE_LOCAL
from otel_tokens.pricing import PriceBook
from otel_tokens.usage import Usage
from queries.store import record_cost_changes

_BATCH = 200_000

_SELECT = """
SELECT trace_id, span_id, start_time, provider, coalesce(response_model, request_model) AS model,
       input_tokens, output_tokens, cache_read_tokens, cache_creation_tokens, reasoning_tokens,
       usage_estimated, cost_usd, pricing_ref
FROM spans
WHERE is_llm_call(operation, input_tokens, output_tokens)
  AND coalesce(cost_source, 'local') = 'local'
  AND start_time >= CAST($since AS TIMESTAMPTZ)
ORDER BY start_time, trace_id, span_id
"""

_UPDATE = """
UPDATE spans AS s
SET cost_usd = n.cost_usd, pricing_ref = n.pricing_ref,
    cost_source = CASE WHEN n.cost_usd IS NULL THEN NULL ELSE $local END
FROM _repriced AS n
WHERE s.start_time BETWEEN CAST($lo AS TIMESTAMPTZ) AND CAST($hi AS TIMESTAMPTZ)
  AND s.trace_id = n.trace_id AND s.span_id = n.span_id
"""

_REPRICED = pa.schema(
    [
        ("trace_id", pa.string()),
        ("span_id", pa.string()),
        ("cost_usd", pa.decimal128(18, 10)),
        ("pricing_ref", pa.string()),
    ]
)


@dataclass
class RepriceResult:
    examined: int = 0
    changed: int = 0
    unpriced: int = 0


def reprice(
    con: duckdb.DuckDBPyConnection, book: PriceBook, since: datetime | None = None
) -> RepriceResult:
    """Reprice the local/unpriced LLM calls starting at or after ``since`` (all when None)."""
    result = RepriceResult()
    since_text = since.isoformat() if since else "-infinity"
    reader: Any = con.sql(_SELECT, params={"since": since_text}).to_arrow_reader(_BATCH)
    # Read everything to price first: DuckDB would not let us update while streaming a result.
    batches = list(reader)
    for batch in batches:
        if batch.num_rows == 0:
            continue
        cols = batch.to_pydict()
        costs: list[Decimal | None] = []
        refs: list[str | None] = []
        keep: list[int] = []
        cache: dict[tuple, tuple[Decimal | None, str | None]] = {}
        for i in range(batch.num_rows):
            start = cols["start_time"][i]
            usage = Usage(
                cols["input_tokens"][i],
                cols["output_tokens"][i],
                cols["cache_read_tokens"][i],
                cols["cache_creation_tokens"][i],
                cols["reasoning_tokens"][i],
                bool(cols["usage_estimated"][i]),
            )
            key = (cols["provider"][i], cols["model"][i], start.date(), usage)
            priced = cache.get(key)
            if priced is None:
                cost = book.cost(usage, cols["model"][i], cols["provider"][i], start)
                priced = (
                    (Decimal(repr(cost.amount)).quantize(Decimal("1e-10")), cost.ref)
                    if cost
                    else (None, None)
                )
                cache[key] = priced
            result.examined += 1
            if priced[0] is None:
                result.unpriced += 1
            if priced != (cols["cost_usd"][i], cols["pricing_ref"][i]):
                keep.append(i)
                costs.append(priced[0])
                refs.append(priced[1])
        if not keep:
            continue
        changed = pa.Table.from_arrays(
            [
                pa.array([cols["trace_id"][i] for i in keep], pa.string()),
                pa.array([cols["span_id"][i] for i in keep], pa.string()),
                pa.array(costs, pa.decimal128(18, 10)),
                pa.array(refs, pa.string()),
            ],
            schema=_REPRICED,
        )
        starts = [cols["start_time"][i] for i in keep]
        con.register("_repriced", changed)
        try:
            con.execute("BEGIN TRANSACTION")
            lo, hi = min(starts).isoformat(), max(starts).isoformat()
            # usage_by_trace's per-trace summary follows the new costs (same transaction).
            record_cost_changes(con, "_repriced", lo, hi)
            con.execute(_UPDATE, {"lo": lo, "hi": hi, "local": COST_SOURCE_LOCAL})
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        finally:
            con.unregister("_repriced")
        result.changed += len(keep)
    return result
