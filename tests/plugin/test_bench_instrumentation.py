"""bench/instrumentation.py runs in smoke mode and writes the numbers it prints as JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_instrumentation_benchmark_smoke_writes_its_results(tmp_path: Path) -> None:
    out = tmp_path / "instrumentation.json"
    done = subprocess.run(
        [sys.executable, str(REPO / "bench/instrumentation.py"), "--smoke", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    assert "µs/call" in done.stdout and "stamping" in done.stdout
    result = json.loads(out.read_text())
    for key in (
        "none_us_per_call",
        "otel_tokens_us_per_call",
        "wrapper_traces_us_per_call",
        "stamping_us_per_span",
        "on_start_us",
    ):
        assert isinstance(result[key], float), key
