"""Running a benchmark script of bench/ in its --smoke size, as the smoke tests do."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def run_smoke(script: str, tmp_path: Path, timeout: float = 300) -> tuple[dict[str, Any], str]:
    """Run ``bench/<script> --smoke --json``; returns (the JSON it wrote, what it printed).

    Fails the test, with the script's output, if it exits non-zero.
    """
    out = tmp_path / f"{Path(script).stem}.json"
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / script), "--smoke", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(out.read_text()), done.stdout
