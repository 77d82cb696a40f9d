"""Exporter parquet: hive-partitioned by day, atomically written, readable by any engine."""

from __future__ import annotations

import duckdb
import requests

from tests.collector.otlp_requests import T0, protobuf_request, span_spec

PB = {"Content-Type": "application/x-protobuf"}
DAY = 86_400 * 10**9


def test_spans_land_in_day_partitions_next_to_duckdb(start_collector, tmp_path):
    out = tmp_path / "parquet"
    collector = start_collector(
        exporters={"duckdb": {"path": str(tmp_path / "s.duckdb")}, "parquet": {"path": str(out)}}
    )
    spans = [span_spec(start=T0 + i * DAY, end=T0 + i * DAY + 10**6) for i in range(3)] + [
        span_spec()
    ]
    assert requests.post(collector.http_url, data=protobuf_request(spans), headers=PB).ok
    days = sorted(p.name for p in out.iterdir())
    assert days == ["day=2025-11-23", "day=2025-11-24", "day=2025-11-25"]
    assert not list(out.rglob("*.tmp"))
    rows = duckdb.sql(
        "SELECT day::VARCHAR, count(*)"
        f" FROM read_parquet('{out}/*/*.parquet', hive_partitioning=true) GROUP BY ALL ORDER BY 1"
    ).fetchall()
    assert rows == [("2025-11-23", 2), ("2025-11-24", 1), ("2025-11-25", 1)]
    assert collector.query("SELECT count(*) FROM spans") == [(4,)]
