"""Span rows (dicts keyed by ``queries.schema.SPAN_COLUMNS``) → one Arrow batch for the store.

The last step of preparing a request, in the collector's worker processes or request threads:
it does not load DuckDB. The two attribute dicts become JSON text; a value of an unexpected type
in a typed column is coerced or becomes NULL rather than failing the batch.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

import orjson  # ~6x faster than the standard library's encoder for attribute dicts
import pyarrow as pa
import pyarrow.compute as pc

from collector import _fast_rows
from queries import schema

_TS_NS = pa.timestamp("ns", tz="UTC")
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))

_TIME_COLUMNS = ("start_time", "end_time", "received_at")


def _json_safe(value: Any) -> Any:
    """Make a value JSON-serialisable: non-finite floats and odd types become strings."""
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, str | int | bool):
        return value
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _dump_std(value: Any) -> str:
    """The standard library's JSON, for what orjson cannot write as we store it (rare)."""
    try:
        return _ENCODER.encode(value)
    except (TypeError, ValueError, OverflowError, RecursionError):
        return _ENCODER.encode(_json_safe(value))


def _dump(value: Any) -> str | bytes | None:
    """JSON text of an attribute dict (UTF-8 bytes from orjson, which Arrow takes as text)."""
    if value is None:
        return None
    try:
        text = orjson.dumps(value)
    except (TypeError, ValueError, OverflowError, RecursionError):
        # Non-string keys, lone surrogates, integers past 64 bits, nesting past 254 levels.
        return _dump_std(value)
    # orjson writes NaN and infinities as null, where we keep them as strings: a null in the
    # text (rare: only an empty value in an array) sends the dict down the standard path.
    return _dump_std(value) if b"null" in text else text


def _clean_text(value: Any) -> Any:
    # Strings from OTLP/JSON may carry lone surrogates, which are not valid UTF-8.
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    return value


def _coerce_one(value: Any, type_: pa.DataType) -> Any:
    """Slow path for a column a processor filled with an unexpected type: coerce or NULL."""
    if value is None:
        return None
    try:
        if pa.types.is_string(type_):
            return _clean_text(value if isinstance(value, str) else str(value))
        if pa.types.is_integer(type_):
            if isinstance(value, bool):
                return int(value)
            f = float(value)
            return int(f) if math.isfinite(f) and abs(f) < 2**63 else None
        if pa.types.is_floating(type_):
            return float(value)
        if pa.types.is_boolean(type_):
            if isinstance(value, str):
                return value.strip().lower() in ("true", "1", "yes")
            return bool(value)
        if pa.types.is_decimal(type_):
            d = Decimal(str(value))
            return d if d.is_finite() and abs(d) < Decimal(10) ** 8 else None
    except (TypeError, ValueError, ArithmeticError):
        return None
    return None


def _array(values: list[Any], type_: pa.DataType) -> pa.Array:
    try:
        if pa.types.is_decimal(type_):
            return pa.array(values, pa.float64()).cast(type_, safe=False)
        return pa.array(values, type_)
    except (pa.ArrowException, TypeError, ValueError, OverflowError, UnicodeEncodeError):
        fixed = [_coerce_one(v, type_) for v in values]
        if pa.types.is_decimal(type_):
            return pa.array(fixed, type_)
        return pa.array(fixed, type_)


_TO_STORED_TIME = {
    name: pc.CastOptions.unsafe(schema.SPANS_SCHEMA.field(name).type) for name in _TIME_COLUMNS
}


def _columns(rows: list[dict[str, Any]]) -> list[list[Any] | None]:
    """Transpose rows into one list per column (in C: ~3x faster than itemgetter + zip), None
    for a column without any value; a column a processor dropped from a row is NULL."""
    return _fast_rows.columns(rows, schema.SPAN_COLUMNS)


def rows_to_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Team interface 2 rows → an Arrow table with ``queries.schema.SPANS_SCHEMA``."""
    if not rows:
        return schema.SPANS_SCHEMA.empty_table()
    arrays: list[pa.Array] = []
    n = len(rows)
    for f, values in zip(schema.SPANS_SCHEMA, _columns(rows), strict=True):
        name = f.name
        if values is None:  # a column no span has (a quarter of them, typically)
            arrays.append(pa.nulls(n, f.type))
        elif name in _TIME_COLUMNS:
            # Nanosecond ints read as timestamps without a copy, then one cast to the stored unit
            # (options built once: two casts with safe=False cost twice as much).
            arr = _array(values, pa.int64())
            arrays.append(arr.view(_TS_NS).cast(options=_TO_STORED_TIME[name]))
        elif name == "resource_attributes":
            # One resource's dict is shared by all its spans: serialise it once per batch.
            cache: dict[int, str | bytes | None] = {}
            out = []
            for d in values:
                key = id(d)
                if key not in cache:
                    cache[key] = _dump(d)
                out.append(cache[key])
            arrays.append(_array(out, f.type))
        elif name == "attributes":
            arrays.append(_array([_dump(d) for d in values], f.type))
        else:
            arrays.append(_array(values, f.type))
    return pa.Table.from_arrays(arrays, schema=schema.SPANS_SCHEMA)
