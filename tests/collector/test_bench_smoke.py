"""bench/ingest.py runs end to end in its --smoke size and loses nothing it had acknowledged."""

from __future__ import annotations

import pytest

from tests.support.bench import run_smoke


@pytest.mark.slow
def test_ingest_benchmark_smoke(tmp_path):
    result = run_smoke("ingest.py", tmp_path)[0]["ingest"]
    assert result["requests_ok"] > 0
    assert result["acknowledged_but_missing_requests"] == 0
    assert result["collector_exit_code"] == 0
    assert result["stored_spans_per_s"] == result["accepted_spans_per_s"]
