"""Worker processes (service.workers): the same stored rows as in-process, counters, recovery."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from collector import config as config_module
from collector.config import ConfigError
from tests.collector.otlp_requests import json_request, protobuf_request, span_spec
from tests.support.processes import alive

PB = {"Content-Type": "application/x-protobuf"}
JS = {"Content-Type": "application/json"}

_LLM = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.usage.input_tokens": 1200,
    "gen_ai.usage.output_tokens": 300,
    "gen_ai.usage.cache_read.input_tokens": 200,
    "otel_tokens.node": "answer",
    "enduser.id": "alice",
}
_FOREIGN = {  # OpenLLMetry: normalised, and priced by gen_ai_cost
    "llm.request.type": "chat",
    "gen_ai.system": "anthropic",
    "gen_ai.request.model": "claude-sonnet-4-5",
    "gen_ai.usage.prompt_tokens": "900",  # a string: coerced, and counted as coerced
    "gen_ai.usage.completion_tokens": 100,
    "traceloop.association.properties.user_id": "bob",
}


def _worker_pids(running) -> list[int]:
    pool = running.collector.pool
    assert pool is not None and pool._executor is not None
    return sorted(pool._executor._processes)


def _stored(running) -> list[tuple]:
    return running.query(
        "SELECT span_id, name, operation, provider, request_model, input_tokens, output_tokens,"
        " cache_read_tokens, cost_usd, cost_source, node, user_id, attributes"
        " FROM spans ORDER BY span_id"
    )


def test_worker_processes_store_exactly_what_the_request_threads_store(start_collector):
    spans = [span_spec(attributes=_LLM), span_spec(attributes=_FOREIGN), span_spec()]
    bodies = [(protobuf_request(spans), PB), (json_request([span_spec(attributes=_LLM)]), JS)]
    in_process = start_collector(workers=0)
    in_workers = start_collector(workers=2)
    assert in_process.collector.pool is None
    assert len(_worker_pids(in_workers)) == 2
    for running in (in_process, in_workers):
        for body, headers in bodies:
            assert requests.post(running.http_url, data=body, headers=headers).status_code == 200
    rows = _stored(in_workers)
    assert len(rows) == 4
    assert rows == _stored(in_process)
    priced = [r for r in rows if r[8] is not None]
    assert len(priced) == 3  # both gpt-4o-mini calls and the OpenLLMetry Claude call


def test_processor_counters_of_the_workers_reach_metrics(start_collector):
    running = start_collector(workers=2)
    body = protobuf_request([span_spec(attributes=_FOREIGN) for _ in range(5)])
    for _ in range(4):  # several requests, likely spread over both workers
        assert requests.post(running.http_url, data=body, headers=PB).ok
    text = requests.get(running.admin_url + "/metrics").text
    prefix = 'otel_tokens_collector_processor_counter{pipeline="traces"'
    # 20 spans went through the processors in the workers; each had one coerced token count.
    assert f'{prefix},processor="gen_ai_normalize",counter="spans"}} 20' in text
    assert f'{prefix},processor="gen_ai_normalize",counter="coerced_values"}} 20' in text
    assert f'{prefix},processor="gen_ai_cost",counter="priced_local"}} 20' in text


def test_a_killed_worker_is_replaced_and_nothing_acknowledged_is_lost(start_collector):
    running = start_collector(workers=2)
    acked: set[str] = set()

    def send() -> int:
        batch = [span_spec(attributes=_LLM) for _ in range(20)]
        r = requests.post(running.http_url, data=protobuf_request(batch), headers=PB, timeout=60)
        if r.status_code == 200:
            acked.update(s["span_id"].hex() for s in batch)
        else:
            assert r.status_code == 503 and r.headers["Retry-After"]
        return r.status_code

    assert send() == 200
    victim = _worker_pids(running)[0]
    os.kill(victim, signal.SIGKILL)
    statuses = [send() for _ in range(6)]  # the first may find the pool broken: 503, retry
    assert statuses[-1] == 200
    assert running.collector.pool.restarts == 1
    assert victim not in _worker_pids(running)
    stored = {r[0] for r in running.query("SELECT span_id FROM spans")}
    assert acked <= stored


def test_workers_end_with_the_collector(start_collector):
    running = start_collector(workers=2)
    pids = _worker_pids(running)
    running.stop()
    deadline = time.monotonic() + 10
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(p) for p in pids)


@pytest.mark.parametrize("value", [-1, 65, "two", 1.5, True])
def test_service_workers_must_be_a_small_whole_number(value, tmp_path):
    from tests.collector.conftest import make_config

    doc = make_config(tmp_path / "x.duckdb")
    doc["service"]["workers"] = value
    with pytest.raises(ConfigError, match=r"service\.workers"):
        config_module.parse(doc)


def test_workers_that_cannot_be_restarted_are_tried_again_later(monkeypatch):
    from collector import workers
    from collector.workers import WorkerPool, WorkersUnavailable

    pool = WorkerPool([workers.StageSpec("traces", ())], 1)
    pool.start()
    try:
        body = protobuf_request([span_spec()])
        assert pool.prepare(["traces"], body, workers.PROTOBUF, 1).spans == 1
        start = pool._new_executor

        def cannot_start() -> None:  # as when the machine is out of memory
            raise OSError("cannot fork")

        monkeypatch.setattr(pool, "_new_executor", cannot_start)
        assert pool._executor is not None
        os.kill(next(iter(pool._executor._processes)), signal.SIGKILL)
        with pytest.raises(WorkersUnavailable):
            for _ in range(3):  # the death is noticed by the first request that finds it
                pool.prepare(["traces"], body, workers.PROTOBUF, 1)
                time.sleep(0.2)
        assert pool._executor is None
        with pytest.raises(WorkersUnavailable, match="no worker processes"):
            pool.prepare(["traces"], body, workers.PROTOBUF, 1)  # too soon to try again
        monkeypatch.setattr(pool, "_new_executor", start)
        monkeypatch.setattr(workers, "RETRY_START", 0.0)
        assert pool.prepare(["traces"], body, workers.PROTOBUF, 1).spans == 1
    finally:
        pool.shutdown()


def test_every_fork_server_preload_module_imports():
    # The fork server skips a preload module that fails to import without a word: a renamed
    # module would quietly cost every worker its own copy again.
    import importlib

    from collector import workers

    for name in workers.FORKSERVER_PRELOAD:
        assert importlib.import_module(name).__name__ == name


def test_the_collector_processes_allocate_arrow_buffers_with_malloc() -> None:
    # In a fresh interpreter: the pool is process-wide, and the default one (mimalloc) keeps
    # freed memory, which kept the collector over its memory target under overload.
    code = (
        "import pyarrow as pa; from collector.workers import tune_allocator; "
        "tune_allocator(); print(pa.default_memory_pool().backend_name)"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root
    )
    assert out.stdout.strip() == "system"
