"""Nothing acknowledged is ever lost: kill -9 during load, SIGTERM drains and exits 0."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest
import requests

from tests.collector.otlp_requests import protobuf_request, span_spec
from tests.support.processes import alive, descendants

ROOT = Path(__file__).resolve().parents[2]
PB = {"Content-Type": "application/x-protobuf"}


def _spawn(tmp_path: Path, db: Path) -> tuple[subprocess.Popen[bytes], str]:
    cfg = tmp_path / "collector.yaml"
    cfg.write_text(
        "receivers:\n  otlp:\n    protocols:\n      http: {endpoint: '127.0.0.1:0'}\n"
        "processors:\n  memory_limiter:\n  batch:\n"
        f"exporters:\n  duckdb: {{path: '{db}'}}\n"
        "service:\n  admin: {endpoint: ''}\n  workers: 2\n  pipelines:\n    traces:\n"
        "      receivers: [otlp]\n      processors: [memory_limiter, batch]\n"
        "      exporters: [duckdb]\n"
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from collector.service import main; sys.exit(main(sys.argv[1]))",
            str(cfg),
        ],
        cwd=ROOT,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stderr.readline().decode()
        if not line:
            raise AssertionError(f"collector exited with {proc.wait()}")
        m = re.search(r"http=(\S+)", line)
        if "collector ready" in line and m:
            threading.Thread(target=proc.stderr.read, daemon=True).start()
            return proc, f"http://{m.group(1)}/v1/traces"
    proc.kill()
    raise AssertionError("collector did not start")


class Senders:
    """Client threads sending unique spans until told to stop; remember what was acknowledged."""

    def __init__(self, url: str, threads: int = 3, spans: int = 40) -> None:
        self.url = url
        self.acked: set[str] = set()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(spans,)) for _ in range(threads)]
        for t in self.threads:
            t.start()

    def _run(self, spans: int) -> None:
        session = requests.Session()
        while not self.stop.is_set():
            batch = [span_spec() for _ in range(spans)]
            try:
                r = session.post(self.url, data=protobuf_request(batch), headers=PB, timeout=30)
            except requests.RequestException:
                continue
            if r.status_code == 200:
                with self.lock:
                    self.acked.update(s["span_id"].hex() for s in batch)

    def wait_for(self, n: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while len(self.acked) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.acked) >= n, f"only {len(self.acked)} spans acknowledged"

    def finish(self) -> set[str]:
        self.stop.set()
        for t in self.threads:
            t.join(60)
        return set(self.acked)


def _stored(db: Path) -> set[str]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {r[0] for r in con.execute("SELECT span_id FROM spans").fetchall()}
    finally:
        con.close()


@pytest.mark.slow
def test_kill_9_during_load_loses_no_acknowledged_span(tmp_path):
    db = tmp_path / "spans.duckdb"
    proc, url = _spawn(tmp_path, db)
    senders = Senders(url)
    senders.wait_for(2000)
    helpers = descendants(proc.pid)  # the fork server and the worker processes
    assert len(helpers) >= 3
    os.kill(proc.pid, signal.SIGKILL)  # mid-load: requests are in flight right now
    proc.wait(30)
    acked = senders.finish()
    deadline = time.monotonic() + 10
    while [p for p in helpers if alive(p)] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [p for p in helpers if alive(p)], "worker processes outlived the collector"
    # Restart on the same file: DuckDB replays its write-ahead log and the exporter loads what
    # the journal held (acknowledged, not loaded yet); then stop cleanly.
    proc2, _ = _spawn(tmp_path, db)
    proc2.send_signal(signal.SIGTERM)
    assert proc2.wait(60) == 0
    missing = acked - _stored(db)
    assert not missing, f"{len(missing)} acknowledged spans lost"


@pytest.mark.slow
def test_sigterm_drains_commits_everything_and_exits_0(tmp_path):
    db = tmp_path / "spans.duckdb"
    proc, url = _spawn(tmp_path, db)
    senders = Senders(url)
    senders.wait_for(1000)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0
    acked = senders.finish()
    stored = _stored(db)
    assert acked <= stored
    assert not (db.parent / (db.name + ".wal")).exists()  # checkpointed on the way out
    assert not (db.parent / (db.name + ".journal")).exists()  # every journaled span loaded
