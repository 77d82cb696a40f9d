"""bench/prepare.py runs the worker path in its --smoke size and accounts for every stage."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.bench import run_smoke

STAGES = ("decode", "normalize", "cost", "arrow", "ipc")


def test_prepare_benchmark_smoke(tmp_path: Path) -> None:
    results, printed = run_smoke("prepare.py", tmp_path)
    result = results["prepare"]
    assert result["spans_per_request"] == 512
    stages = [result[f"{stage}_us_per_span"] for stage in STAGES]
    assert all(value > 0 for value in stages)
    assert result["total_us_per_span"] == pytest.approx(sum(stages), abs=0.01)
    for stage in STAGES:
        assert stage in printed
