"""Runs examples/agent_graph/app.py under ``opentelemetry-instrument``: zero code, env only."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from otel_tokens.demo.collector_process import CollectorProcess
from otel_tokens.demo.errors import DemoError
from otel_tokens.demo.fake_provider import FakeProvider

REPO_ROOT = Path(__file__).resolve().parents[2]
APP_DIR = REPO_ROOT / "examples" / "agent_graph"
SERVICE_NAME = "agent-graph-demo"
APP_PROGRESS = "[agent_graph] "  # prefix of the app's own progress lines, echoed by the demo


def _instrument_command() -> str:
    # The console script next to this interpreter first: the venv's, not another on PATH.
    candidate = Path(sys.executable).parent / "opentelemetry-instrument"
    found = str(candidate) if candidate.exists() else shutil.which("opentelemetry-instrument")
    if not found:
        raise DemoError(
            "opentelemetry-instrument not found (pip install opentelemetry-instrumentation)"
        )
    return found


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
    app = APP_DIR / "app.py"
    if not app.exists():
        raise DemoError(f"{app} not found (the demo runs from a source checkout)")
    cmd = [_instrument_command(), sys.executable, str(app), str(scenario_path)]
    with log_path.open("w", encoding="utf-8") as log:
        proc = subprocess.Popen(
            cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert proc.stdout is not None
        # Reading the output blocks until the app ends: a watchdog ends a hung app.
        watchdog = threading.Timer(timeout, proc.kill)
        watchdog.start()
        try:
            for line in proc.stdout:
                log.write(line)
                if line.startswith(APP_PROGRESS):  # the app's own progress lines
                    emit("      " + line[len(APP_PROGRESS) :].strip())
            status = proc.wait()
        finally:
            timed_out = not watchdog.is_alive()
            watchdog.cancel()
        if timed_out:
            raise DemoError(f"agent_graph app did not finish within {timeout:.0f} s")
    if status != 0:
        last = [ln for ln in log_path.read_text(encoding="utf-8").splitlines() if ln.strip()]
        raise DemoError(
            f"agent_graph app failed (exit {status}): {last[-1] if last else 'no output'} "
            f"(full output in {log_path})"
        )
