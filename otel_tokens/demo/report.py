"""The demo's closing reports: by node, by user, and one trace tree, printed with the CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import IO


def _cli() -> list[str]:
    candidate = Path(sys.executable).parent / "otel-tokens"
    if candidate.exists():
        return [str(candidate)]
    found = shutil.which("otel-tokens")
    return [found] if found else [sys.executable, "-m", "otel_tokens.cli"]


def cli_output(args: list[str], db_path: Path, admin_url: str) -> str:
    """Run ``otel-tokens ARGS`` on the demo database; the collector holds it, so the CLI reads
    through the collector's query API. Returns the output; raises RuntimeError with one line."""
    # The tables are wide; use the user's terminal, or 200 columns when not on a terminal.
    width = max(shutil.get_terminal_size(fallback=(200, 40)).columns, 100)
    env = {**os.environ, "COLUMNS": str(width)}
    proc = subprocess.run(
        [*_cli(), "--db", str(db_path), "--collector", admin_url, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        raise RuntimeError(
            f"`otel-tokens {' '.join(args)}` failed (exit {proc.returncode}): "
            + (lines[-1] if lines else "no output")
        )
    return proc.stdout


def print_reports(db_path: Path, admin_url: str, correlation_id: str, out: IO[str]) -> None:
    for title, args in (
        ("otel-tokens report --by node", ["report", "--by", "node"]),
        ("otel-tokens report --by user", ["report", "--by", "user"]),
        (f"otel-tokens trace {correlation_id}", ["trace", correlation_id]),
    ):
        print(f"\n$ {title}", file=out)
        print(cli_output(args, db_path, admin_url).rstrip("\n"), file=out, flush=True)
