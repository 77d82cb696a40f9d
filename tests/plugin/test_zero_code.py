"""Zero-code: `opentelemetry-instrument python app.py` stamps and instruments (entry point)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from otel_tokens import attributes as attr

REPO = Path(__file__).resolve().parents[2]


def console_spans(stdout: str) -> list[dict[str, Any]]:
    """The JSON objects ConsoleSpanExporter printed, one after another."""
    decoder = json.JSONDecoder()
    spans, i = [], 0
    while True:
        i = stdout.find("{", i)
        if i < 0:
            return spans
        obj, i = decoder.raw_decode(stdout, i)
        spans.append(obj)


def test_opentelemetry_instrument_adds_processor_and_instruments_openai() -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_SERVICE_NAME": "zero-code-app",
        "OTEL_TOKENS_INSTRUMENT": "openai",
    }
    instrument = Path(sys.executable).with_name("opentelemetry-instrument")
    done = subprocess.run(
        [str(instrument), sys.executable, str(REPO / "tests/plugin/zero_code_app.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    spans = console_spans(done.stdout)
    (llm,) = [s for s in spans if s["kind"] == "SpanKind.CLIENT"]
    attrs = llm["attributes"]
    assert attrs[attr.GEN_AI_USAGE_INPUT_TOKENS] == 12
    assert attrs[attr.GEN_AI_USAGE_COST_AMOUNT] > 0
    assert attrs[attr.ENDUSER_ID] == "zero-user"
    assert attrs[attr.OTEL_TOKENS_NODE] == "zero_node"
    assert attrs[attr.OTEL_TOKENS_CORRELATION_ID] == "req-0"
    assert llm["resource"]["attributes"]["service.name"] == "zero-code-app"
    assert any(s["name"] == "node zero_node" for s in spans)
