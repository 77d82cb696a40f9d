"""The duckdb exporter's journal: acknowledged spans are durable files first, loaded in bulk."""

from __future__ import annotations

import time
from pathlib import Path

import duckdb
import pytest
import requests

from collector import config as config_module
from collector.exporters import duckdb as duckdb_exporter
from queries import journal
from tests.collector.conftest import make_config
from tests.collector.otlp_requests import T0, protobuf_request, span_spec

PB = {"Content-Type": "application/x-protobuf"}
DAY_NS = 86_400 * 10**9


def _post(collector, spans) -> None:
    r = requests.post(collector.http_url, data=protobuf_request(spans), headers=PB)
    assert r.status_code == 200, r.text


def _journal_dir(collector) -> Path:
    return journal.directory_for(collector.collector.exporters["duckdb"].config.path)


def _wait_until(condition, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.05)


def _exporter(tmp_path: Path, **options) -> dict:
    return {"duckdb": {"path": str(tmp_path / "spans.duckdb"), **options}}


def test_an_acknowledged_span_is_journaled_and_a_query_right_after_sees_it(collector):
    spec = span_spec()
    _post(collector, [spec])
    # Not loaded yet (the default interval is seconds): the journal holds it ...
    assert sum(journal.read_segment(p).num_rows for p in journal.segments(_journal_dir(collector)))
    # ... and the admin query API loads before it reads, with no wait.
    r = requests.post(collector.admin_url + "/v1/query", json={"sql": "SELECT span_id FROM spans"})
    assert r.status_code == 200, r.text
    assert r.json()["rows"] == [[spec["span_id"].hex()]]
    assert journal.segments(_journal_dir(collector)) == []  # loaded, then deleted


def test_re_sent_spans_are_stored_once_within_a_journal_window_and_across_a_load(collector):
    llm = span_spec(
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": 100,
            "otel_tokens.node": "answer",
        }
    )
    other = span_spec()
    _post(collector, [llm, other])
    _post(collector, [llm, other])  # same journal window: both copies go to one load
    assert collector.query("SELECT count(*) FROM spans")[0][0] == 2  # loads
    _post(collector, [other, llm])  # after that load
    assert collector.query("SELECT count(*) FROM spans")[0][0] == 2
    counters = collector.collector.exporters["duckdb"].counters()
    assert counters["stored_spans"] == 2 and counters["duplicate_spans"] == 4
    text = requests.get(collector.admin_url + "/metrics").text
    labels = 'provider="openai",model="gpt-4o-mini",node="answer"'
    assert f'otel_tokens_tokens_total{{{labels},type="input"}} 100' in text
    assert f"otel_tokens_llm_calls_total{{{labels}}} 1" in text


def test_the_loader_moves_the_journal_into_duckdb_after_the_interval(start_collector, tmp_path):
    collector = start_collector(exporters=_exporter(tmp_path, bulk_load_interval="100ms"))
    _post(collector, [span_spec()])
    exporter = collector.collector.exporters["duckdb"]
    # Watch the loader only (counters() and cursor() would load themselves).
    _wait_until(lambda: exporter._loads >= 1, "the loader's load")
    assert journal.segments(_journal_dir(collector)) == []


def test_a_batch_reaching_bulk_load_spans_is_loaded_without_waiting(start_collector, tmp_path):
    collector = start_collector(
        exporters=_exporter(tmp_path, bulk_load_spans=3, bulk_load_interval="1h")
    )
    exporter = collector.collector.exporters["duckdb"]
    _post(collector, [span_spec(), span_spec()])
    _post(collector, [span_spec(), span_spec()])
    _wait_until(lambda: exporter._loads >= 1, "the bulk load")
    # The loader stores whole pieces of bulk_load_spans; the rest waits in the journal ...
    assert (exporter._stored, exporter._unloaded) == (3, 1)
    # ... and a query loads it first, like every acknowledged span.
    assert collector.query("SELECT count(*) FROM spans")[0][0] == 4


def test_a_load_smaller_than_a_row_group_is_stored_in_checkpointed_parts(
    start_collector, tmp_path, monkeypatch
):
    """Below a row group DuckDB keeps the rows in memory until a checkpoint: parts, each
    checkpointed, so that a large rest cannot run out of memory_limit."""
    monkeypatch.setattr(duckdb_exporter, "_WAL_LOAD_SPANS", 2)
    collector = start_collector(exporters=_exporter(tmp_path, bulk_load_interval="1h"))
    _post(collector, [span_spec() for _ in range(5)])
    parts = "SELECT count(DISTINCT appended_batch), count(*) FROM spans"
    assert collector.query(parts) == [(3, 5)]  # one append_spans per part of at most 2
    con = collector.collector.exporters["duckdb"].connection
    assert con.execute("SELECT wal_size FROM pragma_database_size()").fetchall() == [("0 bytes",)]


def test_a_failing_load_keeps_the_journal_and_is_retried(start_collector, tmp_path):
    collector = start_collector(exporters=_exporter(tmp_path, bulk_load_interval="100ms"))
    exporter = collector.collector.exporters["duckdb"]
    # An LLM call without a node, two days old: it waits in calls_awaiting_node until a later
    # append drops it (older than a day); that DELETE is what the conflict below hits.
    _post(
        collector,
        [
            span_spec(
                start=T0 - 2 * DAY_NS,
                end=T0 - 2 * DAY_NS + 1,
                attributes={"gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": 5},
            )
        ],
    )
    assert collector.query("SELECT count(*) FROM calls_awaiting_node")[0][0] == 1
    # A real DuckDB failure: another transaction deleted the same rows first.
    other = exporter.cursor()
    other.execute("BEGIN TRANSACTION")
    other.execute("DELETE FROM calls_awaiting_node")
    spec = span_spec()
    _post(collector, [spec])  # acknowledged: it is in the journal
    with pytest.raises(duckdb.TransactionException):
        exporter.load()
    kept = journal.segments(_journal_dir(collector))
    assert kept and spec["span_id"].hex() in {
        s for p in kept for s in journal.read_segment(p).column("span_id").to_pylist()
    }
    _wait_until(lambda: exporter._failed_loads >= 2, "the loader's retry")  # fails again
    other.execute("ROLLBACK")
    other.close()
    _wait_until(lambda: not journal.segments(_journal_dir(collector)), "a successful retry")
    found = collector.query("SELECT count(*) FROM spans WHERE span_id = ?", [spec["span_id"].hex()])
    assert found[0][0] == 1


def test_store_connect_in_the_collector_process_leaves_a_live_journal_alone(collector):
    _post(collector, [span_spec()])
    directory = _journal_dir(collector)
    before = journal.segments(directory)
    assert before
    stored: list[int] = []
    assert journal.recover(directory, lambda t: stored.append(t.num_rows)) == 0
    assert stored == [] and journal.segments(directory) == before


def test_a_clean_stop_leaves_no_journal_behind(start_collector, tmp_path):
    collector = start_collector(exporters=_exporter(tmp_path))
    _post(collector, [span_spec()])
    collector.stop()
    assert not journal.directory_for(tmp_path / "spans.duckdb").exists()
    con = duckdb.connect(str(tmp_path / "spans.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM spans").fetchall() == [(1,)]
    finally:
        con.close()


def test_with_the_journal_off_every_batch_is_committed_before_the_ack(start_collector, tmp_path):
    collector = start_collector(exporters=_exporter(tmp_path, journal=False))
    exporter = collector.collector.exporters["duckdb"]
    spec = span_spec()
    _post(collector, [spec])
    assert not journal.directory_for(tmp_path / "spans.duckdb").exists()
    # Stored before the ack: read on the exporter's connection directly, no load involved.
    con = exporter.connection.cursor()
    try:
        assert con.execute("SELECT span_id FROM spans").fetchall() == [(spec["span_id"].hex(),)]
    finally:
        con.close()
    _post(collector, [spec])
    assert exporter.counters()["stored_spans"] == 1
    assert exporter.counters()["bulk_loads"] == 0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"bulk_load_spans": 0}, "exporters.duckdb.bulk_load_spans: must be at least 1"),
        ({"bulk_load_interval": 0}, "exporters.duckdb.bulk_load_interval: must be more than 0s"),
        ({"journal": "yes"}, "exporters.duckdb.journal: must be true or false"),
    ],
)
def test_journal_options_are_validated_naming_the_key(tmp_path, options, message):
    doc = make_config(tmp_path / "x.duckdb", exporters=_exporter(tmp_path, **options))
    with pytest.raises(config_module.ConfigError) as err:
        config_module.parse(doc)
    assert message in str(err.value)
