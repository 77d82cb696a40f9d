"""The CLI documentation covers every command, and the view benchmark runs end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click

from otel_tokens.cli import main
from tests.support.bench import run_smoke

REPO = Path(__file__).resolve().parents[2]


def _commands(group: click.Group, prefix: str = "otel-tokens") -> list[str]:
    names = []
    for name, command in group.commands.items():
        if command.hidden:
            continue
        names.append(f"{prefix} {name}")
        if isinstance(command, click.Group):
            names.extend(_commands(command, f"{prefix} {name}"))
    return names


def test_every_cli_command_and_option_is_documented():
    doc = (REPO / "docs" / "cli.md").read_text()
    missing = [name for name in _commands(main) if f"`{name}" not in doc]
    assert not missing, f"undocumented commands: {missing}"
    for name, command in main.commands.items():
        for param in command.params:
            for opt in getattr(param, "opts", []):
                if opt.startswith("--") and opt != "--help":
                    assert opt in doc, f"otel-tokens {name} {opt} is undocumented"


def test_every_view_is_documented():
    doc = (REPO / "docs" / "views.md").read_text()
    for sql in sorted((REPO / "queries").glob("0*.sql")):
        name = sql.stem.split("_", 1)[1]
        assert name in doc, f"{sql.name} is undocumented in docs/views.md"


def test_view_benchmark_smoke(tmp_path):
    db = tmp_path / "bench.duckdb"
    generated = subprocess.run(
        [sys.executable, "bench/generate.py", "--spans", "5000", "--db", str(db), "--seed", "3"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert generated.returncode == 0, generated.stderr
    assert "wrote 5,000 spans" in generated.stdout
    results, printed = run_smoke("views.py", tmp_path)
    doc = results["views"]
    assert doc["spans"] == 20_000
    assert doc["views"]["usage_by_node"]["rows"] >= 5  # the generator's nodes (+ NULL)
    assert doc["trace_lookup"]["spans"] > 1
    assert doc["bytes_per_span"] > 0
    assert "usage_by_user" in printed


def test_append_benchmark_smoke(tmp_path):
    results, printed = run_smoke("append.py", tmp_path)
    doc = results["append"]
    assert doc["stored_spans"] == 20_000
    runs = doc["append"]
    assert {"foreign_512", "plugin_512", "foreign_2048", "plugin_2048"} <= set(runs)
    assert all(r["us_per_span"] > 0 and r["batches"] >= 3 for r in runs.values())
    assert "µs/span" in printed
