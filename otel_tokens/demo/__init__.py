"""`otel-tokens demo`: the whole product end to end on a local fake provider (offline).

Steps, one progress line each: write a collector config (the embedded default with free ports
and the database in the work dir), start the collector as a subprocess and wait for
``/healthz``, start the fake provider, run ``examples/agent_graph/app.py`` under
``opentelemetry-instrument`` (zero code) exporting OTLP/HTTP to the collector, print the
reports by node and by user and one trace tree, stop the collector with SIGTERM (it drains
and commits) and leave the DuckDB file with the commands to explore it.

Any failing step ends the demo with one line naming the step and exit status 1.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml

from otel_tokens.demo.fake_provider import FakeProvider

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_WORK_DIR = Path("demo-output")
SERVICE_NAME = "agent-graph-demo"
DB_NAME = "otel-tokens.duckdb"
STEPS = 7
APP_PROGRESS = "[agent_graph] "


class DemoError(RuntimeError):
    """A step failed; the message is the one line shown to the user."""


@dataclass
class DemoRun:
    """What a finished demo leaves behind (used by tests and for the closing summary)."""

    work_dir: Path
    db_path: Path
    ledger_path: Path
    scenario: dict[str, Any]
    collector_admin: str = ""
    problem: str = ""  # set when the run completed but recorded less than the provider served
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)


def _app_dir() -> Path:
    return REPO_ROOT / "examples" / "agent_graph"


def _instrument_command() -> str:
    # The console script next to this interpreter first: the venv's, not another on PATH.
    candidate = Path(sys.executable).parent / "opentelemetry-instrument"
    found = str(candidate) if candidate.exists() else shutil.which("opentelemetry-instrument")
    if not found:
        raise DemoError(
            "opentelemetry-instrument not found (pip install opentelemetry-instrumentation)"
        )
    return found


def write_collector_config(work_dir: Path) -> Path:
    """The embedded default config, with free ports on 127.0.0.1 and the database in work_dir."""
    from collector.config import DEFAULT_CONFIG_PATH

    cfg = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"))
    protocols = cfg["receivers"]["otlp"]["protocols"]
    protocols["grpc"]["endpoint"] = "127.0.0.1:0"
    protocols["http"]["endpoint"] = "127.0.0.1:0"
    cfg["exporters"]["duckdb"]["path"] = str((work_dir / DB_NAME).resolve())
    cfg["service"].setdefault("admin", {})["endpoint"] = "127.0.0.1:0"
    path = work_dir / "otel-config.yaml"
    header = "# Written by `otel-tokens demo`: the embedded default with free ports.\n"
    path.write_text(header + yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path


class CollectorProcess:
    """The collector as a child process, its stderr teed to a log file and parsed for ports."""

    def __init__(self, config_path: Path, log_path: Path) -> None:
        self.config_path = config_path
        self.log_path = log_path
        self.addresses: dict[str, str] = {}
        self._ready = threading.Event()
        self._proc: subprocess.Popen[str] | None = None
        self._last_line = ""

    def start(self, timeout: float = 30.0) -> None:
        cmd = [sys.executable, "-m", "collector.service", str(self.config_path)]
        self._proc = subprocess.Popen(
            cmd,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        threading.Thread(target=self._read_stderr, daemon=True).start()
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.05):
            if self._proc.poll() is not None:
                self._wait_reader()
                raise DemoError(
                    f"collector exited with status {self._proc.returncode}: {self._last_line}"
                )
            if time.monotonic() > deadline:
                self.kill()
                raise DemoError(f"collector not ready after {timeout:.0f} s (see {self.log_path})")
        self._wait_healthy(deadline)

    def _read_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        with self.log_path.open("w", encoding="utf-8") as log:
            for line in self._proc.stderr:
                log.write(line)
                log.flush()
                if line.strip():
                    self._last_line = line.strip()
                if line.startswith("otel-tokens collector ready"):
                    for part in line.split()[3:]:
                        key, _, value = part.partition("=")
                        self.addresses[key] = value
                    self._ready.set()

    def _wait_reader(self) -> None:
        time.sleep(0.1)  # let the reader thread take the last lines (one clear error)

    def _wait_healthy(self, deadline: float) -> None:
        if "admin" not in self.addresses or "http" not in self.addresses:
            raise DemoError(f"collector did not report its addresses: {self.addresses}")
        url = f"http://{self.addresses['admin']}/healthz"
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise DemoError(f"collector {url} not healthy (see {self.log_path})")
            time.sleep(0.1)

    @property
    def admin_url(self) -> str:
        return f"http://{self.addresses['admin']}"

    @property
    def otlp_http_url(self) -> str:
        return f"http://{self.addresses['http']}"

    def query(self, sql: str) -> tuple[list[str], list[list[Any]]]:
        """Run a read-only statement through the admin query API (team interface 4)."""
        request = urllib.request.Request(
            f"{self.admin_url}/v1/query",
            data=json.dumps({"sql": sql}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                body = json.load(response)
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:200]
            raise DemoError(f"collector query failed ({exc.code}): {detail}") from None
        return body["columns"], body["rows"]

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM: the collector drains, commits, closes DuckDB and exits 0."""
        if self._proc is None or self._proc.poll() is not None:
            return self._proc.returncode if self._proc else 0
        self._proc.send_signal(signal.SIGTERM)
        try:
            return self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise DemoError(f"collector did not stop within {timeout:.0f} s of SIGTERM") from None

    def kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(10)


def app_environment(collector: CollectorProcess, fake: FakeProvider) -> dict[str, str]:
    """Everything the zero-code app needs, as environment variables only."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OTEL_", "OPENAI_", "ANTHROPIC_", "GOOGLE_", "GEMINI_"))
    }
    env.update(fake.sdk_environment())
    env.update(
        {
            "OTEL_SERVICE_NAME": SERVICE_NAME,
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=demo",
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.otlp_http_url,
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            # The official openai-v2 instrumentation is installed too (for the benchmarks);
            # two instrumentations of one call would store two spans for it.
            "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "openai",
            "PYTHONUNBUFFERED": "1",
            # The checkout's packages first: a stale editable install must not shadow them.
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p
            ),
        }
    )
    return env


def run_app(
    env: dict[str, str],
    scenario_path: Path,
    log_path: Path,
    emit: Callable[[str], None],
    timeout: float = 90.0,
) -> None:
    app = _app_dir() / "app.py"
    if not app.exists():
        raise DemoError(f"{app} not found (the demo runs from a source checkout)")
    cmd = [_instrument_command(), sys.executable, str(app), str(scenario_path)]
    with log_path.open("w", encoding="utf-8") as log:
        proc = subprocess.Popen(
            cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                log.write(line)
                if line.startswith(APP_PROGRESS):  # the app's own progress lines
                    emit("      " + line[len(APP_PROGRESS) :].strip())
            status = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise DemoError(f"agent_graph app did not finish within {timeout:.0f} s") from None
    if status != 0:
        last = [ln for ln in log_path.read_text(encoding="utf-8").splitlines() if ln.strip()]
        raise DemoError(
            f"agent_graph app failed (exit {status}): {last[-1] if last else 'no output'} "
            f"(full output in {log_path})"
        )


def _print_reports(
    db_path: Path, collector: CollectorProcess, correlation_id: str, out: IO[str]
) -> None:
    from otel_tokens.demo.report import print_reports

    try:
        print_reports(db_path, collector.admin_url, correlation_id, out)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        raise DemoError(str(exc)) from None


def run_demo(work_dir: Path, out: IO[str]) -> DemoRun:
    """The demo's steps; raises DemoError with a one-line message when one fails."""
    started = time.perf_counter()

    def emit(line: str) -> None:
        print(line, file=out, flush=True)

    work_dir.mkdir(parents=True, exist_ok=True)
    db_path = work_dir / DB_NAME
    for stale in (db_path, work_dir / (DB_NAME + ".wal"), work_dir / "provider-ledger.jsonl"):
        stale.unlink(missing_ok=True)  # a fresh demo each run: totals must not add up across runs
    scenario_path = _app_dir() / "scenario.json"
    scenario = json.loads(scenario_path.read_text(encoding="utf-8"))
    result = DemoRun(work_dir, db_path, work_dir / "provider-ledger.jsonl", scenario)

    config_path = write_collector_config(work_dir)
    collector = CollectorProcess(config_path, work_dir / "collector.log")
    fake = FakeProvider(ledger_path=result.ledger_path)
    try:
        t = time.perf_counter()
        collector.start()
        result.collector_admin = collector.admin_url
        result.timings["collector_start"] = time.perf_counter() - t
        emit(
            f"[1/{STEPS}] collector     OTLP/HTTP {collector.addresses['http']}, "
            f"gRPC {collector.addresses.get('grpc', '-')}, admin {collector.addresses['admin']}, "
            f"database {db_path}"
        )
        fake.start()
        emit(
            f"[2/{STEPS}] fake provider OpenAI, Anthropic and Gemini APIs on {fake.url} "
            "(offline, no keys)"
        )
        users = {r["user"] for r in scenario["requests"]}
        tenants = {r["tenant"] for r in scenario["requests"]}
        emit(
            f"[3/{STEPS}] agent_graph   {len(scenario['requests'])} requests from "
            f"{len(users)} users in {len(tenants)} tenants + "
            f"{len(scenario['ingest_jobs'])} ingest_emails jobs, under opentelemetry-instrument"
        )
        t = time.perf_counter()
        run_app(app_environment(collector, fake), scenario_path, work_dir / "app.log", emit)
        result.timings["app"] = time.perf_counter() - t
        fake.stop()
        _, rows = collector.query(
            "SELECT count(*), count(*) FILTER (WHERE operation IS NOT NULL) FROM spans"
        )
        spans, calls = rows[0]
        if not calls:
            raise DemoError(
                "the collector stored no LLM call spans: the app exported nothing "
                f"(see {work_dir / 'app.log'} and {collector.log_path})"
            )
        emit(
            f"[4/{STEPS}] stored        {spans} spans, {calls} LLM calls "
            f"({len(fake.ledger)} answered by the provider) in {result.timings['app']:.1f} s"
        )
        # Every call the provider answered must have become a stored span: a gap is a bug
        # (an SDK not instrumented, a span lost). Show the reports anyway, then fail.
        if calls != len(fake.ledger):
            missing = _unrecorded(collector, fake)
            emit(f"      WARNING: {missing}")
            result.problem = missing
        example = scenario["requests"][0]["correlation_id"]
        emit(f"[5/{STEPS}] reports       through the collector's query API ({collector.admin_url})")
        _print_reports(db_path, collector, example, out)
        html_path = work_dir / "report.html"
        _write_html(db_path, collector.admin_url, html_path)
        emit(f"[6/{STEPS}] html report   {html_path}")
        status = collector.stop()
        if status != 0:
            raise DemoError(
                f"collector exited with status {status} after SIGTERM (see {collector.log_path})"
            )
        emit(f"[7/{STEPS}] collector     stopped (SIGTERM: drained and committed)")
    finally:
        fake.stop()
        collector.kill()
    result.seconds = time.perf_counter() - started
    _print_next_steps(result, example, out)
    if result.problem:
        raise DemoError(result.problem)
    return result


def _unrecorded(collector: CollectorProcess, fake: FakeProvider) -> str:
    """Which kinds of provider calls have fewer stored spans than answered requests."""
    _, rows = collector.query(
        "SELECT provider, request_model, count(*) FROM spans "
        "WHERE operation IS NOT NULL GROUP BY ALL"
    )
    stored = {(str(p), str(m)): int(n) for p, m, n in rows}
    served: dict[tuple[str, str], int] = {}
    for entry in fake.ledger:
        key = (entry.provider, entry.model)
        served[key] = served.get(key, 0) + 1
    gaps = [
        f"{model} ({provider}): {n - stored.get((provider, model), 0)} of {n}"
        for (provider, model), n in sorted(served.items())
        if stored.get((provider, model), 0) < n
    ]
    return (
        "calls answered by the provider but not recorded: "
        + (", ".join(gaps) if gaps else "counts differ")
        + " (see app.log)"
    )


def _write_html(db_path: Path, admin_url: str, out_path: Path) -> None:
    from otel_tokens.query import Database
    from otel_tokens.report_html import render

    # The collector holds the file: Database reads through its query API.
    out_path.write_text(render(Database(db_path, collector=admin_url), None), encoding="utf-8")


def _print_next_steps(result: DemoRun, correlation_id: str, out: IO[str]) -> None:
    db = result.db_path
    print(
        f"\nDone in {result.seconds:.1f} s. The data stays in {db}; explore it with:\n"
        f"  otel-tokens --db {db} report --by tenant\n"
        f"  otel-tokens --db {db} trace {correlation_id}\n"
        f'  otel-tokens --db {db} sql "SELECT * FROM usage_by_job_type"\n'
        f"  otel-tokens --db {db} report --format html --output report.html\n"
        f'  duckdb -readonly {db} "SELECT * FROM usage_by_node"\n'
        f"  open {result.work_dir / 'report.html'}",
        file=out,
        flush=True,
    )


def run(work_dir: str | Path | None = None, out: IO[str] | None = None) -> int:
    """Entry point of ``otel-tokens demo`` (team interface 5); returns the exit status."""
    stream = out or sys.stdout
    try:
        run_demo(Path(work_dir) if work_dir else DEFAULT_WORK_DIR, stream)
    except DemoError as exc:
        print(f"otel-tokens demo: {exc}", file=sys.stderr, flush=True)
        return 1
    except OSError as exc:  # the work dir is not writable, a file is in the way, ...
        print(f"otel-tokens demo: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print("otel-tokens demo: interrupted", file=sys.stderr)
        return 130
    return 0
