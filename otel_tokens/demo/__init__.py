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
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from otel_tokens.demo.collector_process import DB_NAME, CollectorProcess, write_collector_config
from otel_tokens.demo.errors import DemoError
from otel_tokens.demo.fake_provider import FakeProvider
from otel_tokens.demo.instrumented_app import APP_DIR, REPO_ROOT, app_environment, run_app

__all__ = ["REPO_ROOT", "DemoError", "DemoRun", "run", "run_demo", "write_collector_config"]

DEFAULT_WORK_DIR = Path("demo-output")
STEPS = 7


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
    scenario_path = APP_DIR / "scenario.json"
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
    from otel_tokens.query import Database, QueryError
    from otel_tokens.report_html import render

    # The collector holds the file: Database reads through its query API.
    try:
        page = render(Database(db_path, collector=admin_url), None)
    except QueryError as exc:
        raise DemoError(f"html report: {exc}") from None
    out_path.write_text(page, encoding="utf-8")


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
