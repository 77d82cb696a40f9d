"""Span rows → Arrow: the attribute JSON is the same whichever encoder wrote it."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector import rows
from collector.rows import rows_to_table
from queries.schema import SPAN_COLUMNS


def _row(attributes: Any, resource: Any = None) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(SPAN_COLUMNS)
    row.update(
        trace_id="0af7651916cd43dd8448eb211c80319c",
        span_id="b7ad6b7169203331",
        name="chat",
        kind="CLIENT",
        start_time=1_767_225_600_000_000_000,
        attributes=attributes,
        resource_attributes=resource if resource is not None else {"service.name": "svc"},
    )
    return row


def _stored(attributes: Any) -> Any:
    text = rows_to_table([_row(attributes)]).column("attributes")[0].as_py()
    return None if text is None else json.loads(text)


@pytest.fixture(params=["orjson", "standard"])
def encoder(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test with orjson and with the standard library's encoder (its fallback)."""
    if request.param == "standard":
        monkeypatch.setattr(rows, "_dump", rows._dump_std)
    return str(request.param)


def test_plain_attributes_come_back_as_they_went_in(encoder: str) -> None:
    attrs = {
        "s": "héllo ✓",
        "i": -(2**63),
        "u": 2**64 - 1,
        "f": 0.2,
        "tiny": 1e-05,
        "huge": 1e300,
        "b": True,
        "l": [1, "a", 2.5, False],
        "m": {"k": {"deep": [1]}},
    }
    assert _stored(attrs) == attrs


def test_values_json_cannot_hold_become_text_not_null_or_an_error(encoder: str) -> None:
    attrs = {"nan": float("nan"), "inf": float("inf"), "neg": [float("-inf")], "ok": 1}
    assert _stored(attrs) == {"nan": "nan", "inf": "inf", "neg": ["-inf"], "ok": 1}


def test_odd_keys_big_ints_and_empty_array_values_are_kept(encoder: str) -> None:
    assert _stored({"big": 2**70, "l": [None, 1]}) == {"big": 2**70, "l": [None, 1]}
    assert _stored({1: "one"}) == {"1": "one"}
    assert _stored({"s": "\ud800x"})["s"].endswith("x")  # lone surrogate: replaced, kept
    assert _stored(None) is None


def test_a_shared_resource_dict_is_written_once_per_distinct_dict(encoder: str) -> None:
    shared = {"service.name": "a", "n": 1}
    other = {"service.name": "b"}
    table = rows_to_table([_row({}, shared), _row({}, other), _row({}, shared)])
    got = [json.loads(t) for t in table.column("resource_attributes").to_pylist()]
    assert got == [shared, other, shared]


_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(), _values, max_size=6))
def test_both_encoders_store_the_same_json_values(attrs: dict[str, Any]) -> None:
    fast = rows._dump(attrs)
    standard = rows._dump_std(attrs)
    assert fast is not None and standard is not None
    got_fast, got_standard = _loads(fast), _loads(standard)
    assert _same(got_fast, got_standard)


def _loads(text: str | bytes) -> Any:
    raw = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
    return json.loads(raw.decode("utf-8", "surrogatepass"))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def test_columns_a_row_lacks_and_columns_no_row_has_are_null() -> None:
    full = _row({"a": 1})
    full["node"] = "plan"
    short = _row({"b": 2})
    del short["name"], short["node"]  # a processor dropped them
    table = rows_to_table([full, short])
    assert table.column("name").to_pylist() == ["chat", None]
    assert table.column("node").to_pylist() == ["plan", None]
    assert table.column("user_id").null_count == 2  # no row has one
    assert table.schema == rows.schema.SPANS_SCHEMA


def test_the_transposition_keeps_each_value_in_its_row_and_column() -> None:
    data = [{"a": 1, "b": "x"}, {"b": None}, {"a": 3, "c": [1]}]
    assert rows._fast_rows.columns(data, ("a", "b", "c", "d")) == [
        [1, None, 3],
        ["x", None, None],
        [None, None, [1]],
        None,
    ]
    with pytest.raises(TypeError):
        rows._fast_rows.columns([{"a": 1}, ("not", "a", "dict")], ("a",))  # type: ignore[list-item]
