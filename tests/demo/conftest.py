"""Fixtures of the end-to-end tests: a real collector on free ports writing to a tmp DuckDB."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from collector import config as collector_config
from collector.service import Collector
from otel_tokens.demo import write_collector_config


@dataclass
class RunningCollector:
    """A collector started in-process from the demo's config (the embedded default, free ports)."""

    collector: Collector
    db_path: Path

    @property
    def otlp_http(self) -> str:
        host, port = self.collector.http_address  # type: ignore[misc]
        return f"http://{host}:{port}"

    @property
    def admin(self) -> str:
        host, port = self.collector.admin_address  # type: ignore[misc]
        return f"http://{host}:{port}"

    def query(self, sql: str) -> list[list[Any]]:
        request = urllib.request.Request(
            f"{self.admin}/v1/query",
            data=json.dumps({"sql": sql}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return list(json.load(response)["rows"])

    def metrics(self) -> str:
        with urllib.request.urlopen(f"{self.admin}/metrics", timeout=10) as response:
            return str(response.read().decode())

    def stop(self) -> None:
        self.collector.stop()


@pytest.fixture
def running_collector(tmp_path: Path) -> Iterator[RunningCollector]:
    config_path = write_collector_config(tmp_path)
    collector = Collector(collector_config.load(str(config_path))).start()
    running = RunningCollector(collector, tmp_path / "otel-tokens.duckdb")
    try:
        yield running
    finally:
        running.stop()
