"""bench/prepare.py runs the worker path in its --smoke size and accounts for every stage."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STAGES = ("decode", "normalize", "cost", "arrow", "ipc")


def test_prepare_benchmark_smoke(tmp_path: Path) -> None:
    out = tmp_path / "prepare.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "prepare.py"), "--smoke", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(out.read_text())["prepare"]
    assert result["spans_per_request"] == 512
    stages = [result[f"{stage}_us_per_span"] for stage in STAGES]
    assert all(value > 0 for value in stages)
    assert result["total_us_per_span"] == pytest.approx(sum(stages), abs=0.01)
    for stage in STAGES:
        assert stage in proc.stdout
