"""The examples that need the plugin (configure(), the zero-code entry point) work end to end."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.demo.conftest import RunningCollector
from tests.demo.test_examples import EXAMPLES, ROOT


def test_manual_setup_example_exports_its_call_with_user_and_node(
    running_collector: RunningCollector,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OPENAI_"))}
    env["PYTHONPATH"] = str(ROOT)  # the checkout's packages even if the venv's install is stale
    subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "manual_setup.py"),
            "--fake",
            "--collector",
            running_collector.otlp_http,
            "--correlation-id",
            "manual-test-0001",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    rows = running_collector.query(
        "SELECT user_id, tenant, node, input_tokens > 0, output_tokens > 0 FROM spans "
        "WHERE correlation_id = 'manual-test-0001' AND operation = 'chat'"
    )
    assert rows == [["frank@example.test", "umbrella", "draft_reply", True, True]]


def test_zero_code_example_runs_under_opentelemetry_instrument(
    running_collector: RunningCollector,
) -> None:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OPENAI_", "ANTHROPIC_"))
    }
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = running_collector.otlp_http
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run(
        ["bash", str(EXAMPLES / "zero_code" / "run.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = running_collector.query(
        "SELECT node, provider, input_tokens > 0 FROM spans "
        "WHERE correlation_id = 'zero-code-0001' AND operation IS NOT NULL ORDER BY start_time"
    )
    assert rows == [["summarise_ticket", "anthropic", True], ["suggest_reply", "openai", True]]
