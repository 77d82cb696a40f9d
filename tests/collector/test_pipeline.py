"""The pipeline's writer: group commit, isolation of a bad request, idle checkpoints."""

from __future__ import annotations

import time
from typing import Any

import pyarrow as pa
import pytest
import requests

from collector.config import PipelineSpec
from collector.pipeline import ExportFailed, Pipeline
from collector.processors import batch
from collector.receivers import decode
from collector.rows import rows_to_table
from tests.collector.otlp_requests import protobuf_request, span_spec

PB = {"Content-Type": "application/x-protobuf"}


class PickyExporter:
    """Stores rows in memory, but fails any export that contains a span named "poison"."""

    def __init__(self) -> None:
        self.stored: list[dict[str, Any]] = []
        self.calls = 0

    def export(self, table: pa.Table) -> int:
        self.calls += 1
        rows = table.to_pylist()
        if any(r["name"] == "poison" for r in rows):
            raise ValueError("cannot store poison")
        self.stored.extend(rows)
        return len(rows)

    def on_idle(self) -> None:
        pass


def _batch(name: str, n: int = 2) -> pa.Table:
    body = protobuf_request([span_spec(name=name) for _ in range(n)])
    return rows_to_table(decode.decode_protobuf(body).rows)


def test_a_bad_request_in_a_group_commit_fails_alone():
    exporter = PickyExporter()
    queue = batch.create(batch.Config())
    pipeline = Pipeline(
        PipelineSpec("traces", [], [], []), [("batch", queue)], [("picky", exporter)]
    )
    # Queue three requests before the writer runs, so they commit as one group.
    tickets = [pipeline.submit(_batch(name), 100) for name in ("a", "poison", "b")]
    pipeline.start()
    assert pipeline.wait(tickets[0]) == 2
    with pytest.raises(ExportFailed, match="poison"):
        pipeline.wait(tickets[1])
    assert pipeline.wait(tickets[2]) == 2
    pipeline.close(10)
    assert sorted(r["name"] for r in exporter.stored) == ["a", "a", "b", "b"]
    assert exporter.calls == 4  # one failed group, then one by one


def test_duckdb_checkpoints_when_ingest_is_idle(start_collector, tmp_path):
    collector = start_collector(
        exporters={"duckdb": {"path": str(tmp_path / "c.duckdb"), "idle_checkpoint": 0.2}}
    )
    r = requests.post(collector.http_url, data=protobuf_request([span_spec()]), headers=PB)
    assert r.status_code == 200
    exporter = collector.collector.exporters["duckdb"]
    deadline = time.monotonic() + 20
    while exporter.counters()["checkpoints"] == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert exporter.counters()["checkpoints"] >= 1
    assert collector.query("SELECT count(*) FROM spans") == [(1,)]
