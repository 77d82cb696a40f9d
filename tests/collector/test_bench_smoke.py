"""bench/ingest.py runs end to end in its --smoke size and loses nothing it had acknowledged."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_ingest_benchmark_smoke(tmp_path):
    out = tmp_path / "ingest.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "ingest.py"), "--smoke", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(out.read_text())["ingest"]
    assert result["requests_ok"] > 0
    assert result["acknowledged_but_missing_requests"] == 0
    assert result["collector_exit_code"] == 0
    assert result["stored_spans_per_s"] == result["accepted_spans_per_s"]
