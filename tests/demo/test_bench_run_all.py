"""bench/run_all.py collates the scripts' JSON into RESULTS.md, each figure beside its target."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _collate(results_dir: Path, output: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "bench/run_all.py",
            "--collect-only",
            str(results_dir),
            "--output",
            str(output),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _row(markdown: str, what: str) -> str:
    return next(line for line in markdown.splitlines() if line.startswith(f"| {what}"))


def test_figures_are_compared_with_their_targets(tmp_path: Path) -> None:
    (tmp_path / "instrumentation.json").write_text(
        json.dumps(
            {
                "none_us_per_call": 400.0,
                "otel_tokens_us_per_call": 442.5,
                "otel_tokens_overhead_us_per_call": 42.5,
                "otel_tokens_inside_us_per_call": 42.5,
                "otel_tokens_over_sdk_span_only": 1.25,
                "openai_v2_overhead_us_per_call": 205.0,
                "openai_v2_over_sdk_span_only": 2.5,
                "stamping_us_per_span": 2.7,
            }
        )
    )
    (tmp_path / "ingest.json").write_text(json.dumps({"ingest": {"accepted_spans_per_s": 61234}}))
    overload = {"collector_tree_peak_pss_mb": 512.0, "acknowledged_but_missing_requests": 0}
    (tmp_path / "ingest_overload.json").write_text(json.dumps({"ingest": overload}))
    out = tmp_path / "RESULTS.md"
    proc = _collate(tmp_path, out)
    text = out.read_text()
    assert "42.5 µs | **met**" in _row(text, "plugin overhead per LLM call")
    assert "2.7 µs | **missed**" in _row(text, "stamping overhead")
    assert "61,234 spans/s | **met**" in _row(text, "collector ingest")
    assert "512 MB | **missed**" in _row(text, "collector memory")
    assert "**met**" in _row(text, "nothing acknowledged lost")
    # views.json is absent: its targets are reported, not dropped, and the run says it failed.
    assert "not measured" in _row(text, "`trace` lookup by correlation id")
    assert "3 met, 2 missed, 3 not measured." in text
    assert "| `openai_v2_overhead_us_per_call` | 205 |" in text  # every figure is listed
    assert "| 2.5 / 1.25 | **2.00×** |" in text  # openai-v2 / ours, each over its SDK span alone
    assert proc.returncode == 1 and "views: missing" in proc.stderr


def test_a_json_without_the_expected_figure_names_what_was_looked_for(tmp_path: Path) -> None:
    (tmp_path / "views.json").write_text(json.dumps({"views": {"bytes_per_span": 90}}))
    out = tmp_path / "RESULTS.md"
    _collate(tmp_path, out)
    row = _row(out.read_text(), "`trace` lookup by correlation id")
    assert "figure not in JSON (looked for `views.trace_lookup.s`)" in row


def test_every_usage_view_gets_its_own_row_and_seconds_become_milliseconds(tmp_path: Path) -> None:
    views = {
        "views": {
            "usage_by_user": {"rows": 2000, "s": 0.41},
            "usage_by_node": {"rows": 9, "s": 1.3},
            "llm_calls": {"rows": 10, "s": 2.5},  # not a usage_by_* view: no target
        },
        "trace_lookup": {"s": 0.0123},
        "bytes_per_span": 95.2,
        "spans": 10_000_000,
    }
    (tmp_path / "views.json").write_text(json.dumps({"views": views}))
    out = tmp_path / "RESULTS.md"
    _collate(tmp_path, out)
    text = out.read_text()
    assert "0.41 s over 10,000,000 spans | **met**" in _row(
        text, "usage_by_* view, read completely (median): usage_by_user"
    )
    assert "1.3 s over 10,000,000 spans | **missed**" in _row(
        text, "usage_by_* view, read completely (median): usage_by_node"
    )
    assert "llm_calls (median)" not in text
    assert "12.3 ms over 10,000,000 spans | **met**" in _row(
        text, "`trace` lookup by correlation id"
    )
    assert "95.2 bytes | **met**" in _row(text, "DuckDB bytes per span")


def test_unreadable_json_is_reported_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "ingest.json").write_text("{not json")
    (tmp_path / "views.json").write_text("[1, 2]")
    out = tmp_path / "RESULTS.md"
    proc = _collate(tmp_path, out)
    text = out.read_text()
    assert "unreadable JSON" in text and "JSON is not an object" in text
    assert "Traceback" not in proc.stderr


def test_results_name_the_machine_and_versions(tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    _collate(tmp_path, out)
    text = out.read_text()
    assert "cores" in text and "RAM" in text and "load average" in text
    assert "duckdb " in text and "genai-prices 0.2.3" in text


def test_ratios_are_computed_from_the_figures(tmp_path: Path) -> None:
    (tmp_path / "pricing.json").write_text(
        json.dumps({"raw_lookup_us": 90.0, "cached_lookup_us": 1.5})
    )
    out = tmp_path / "RESULTS.md"
    _collate(tmp_path, out)
    assert "| 90 / 1.5 | **60.0×** |" in out.read_text()
