"""bench/instrumentation.py runs in smoke mode and writes the numbers it prints as JSON."""

from __future__ import annotations

from pathlib import Path

from tests.support.bench import run_smoke


def test_instrumentation_benchmark_smoke_writes_its_results(tmp_path: Path) -> None:
    result, printed = run_smoke("instrumentation.py", tmp_path)
    assert "µs/call" in printed and "stamping" in printed
    for key in (
        "none_us_per_call",
        "otel_tokens_us_per_call",
        "wrapper_traces_us_per_call",
        "stamping_us_per_span",
        "on_start_us",
    ):
        assert isinstance(result[key], float), key
