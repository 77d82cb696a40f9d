"""Fixtures for collector tests: a real collector in-process on free ports with a temp DuckDB."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from collector import config as config_module
from collector.service import Collector


def make_config(
    db: Path,
    *,
    processors: list[str] | None = None,
    processor_configs: dict[str, Any] | None = None,
    exporters: dict[str, Any] | None = None,
    auth_token: str | None = None,
    http: dict[str, Any] | None = None,
    grpc: dict[str, Any] | None = None,
    workers: int | None = None,
) -> dict[str, Any]:
    """A config document like otel-config.yaml, on 127.0.0.1:0 everywhere (``workers``: None
    leaves service.workers at its default)."""
    if processors is None:
        processors = ["memory_limiter", "gen_ai_normalize", "gen_ai_cost", "batch"]
    http_cfg: dict[str, Any] = {"endpoint": "127.0.0.1:0", **(http or {})}
    grpc_cfg: dict[str, Any] = {"endpoint": "127.0.0.1:0", **(grpc or {})}
    admin: dict[str, Any] = {"endpoint": "127.0.0.1:0"}
    doc: dict[str, Any] = {
        "receivers": {"otlp": {"protocols": {"http": http_cfg, "grpc": grpc_cfg}}},
        "processors": {p: (processor_configs or {}).get(p) for p in processors},
        "exporters": exporters or {"duckdb": {"path": str(db)}},
        "service": {
            "admin": admin,
            "pipelines": {
                "traces": {
                    "receivers": ["otlp"],
                    "processors": processors,
                    "exporters": list((exporters or {"duckdb": None}).keys()),
                }
            },
        },
    }
    if workers is not None:
        doc["service"]["workers"] = workers
    if auth_token is not None:
        doc["extensions"] = {"bearertokenauth": {"token": auth_token}}
        doc["service"]["extensions"] = ["bearertokenauth"]
        for proto in (http_cfg, grpc_cfg):
            proto["auth"] = {"authenticator": "bearertokenauth"}
        admin["auth"] = {"authenticator": "bearertokenauth"}
    return doc


class RunningCollector:
    def __init__(self, collector: Collector, db: Path) -> None:
        self.collector = collector
        self.db = db

    @property
    def http_url(self) -> str:
        host, port = self.collector.http_address  # type: ignore[misc]
        return f"http://{host}:{port}/v1/traces"

    @property
    def grpc_endpoint(self) -> str:
        host, port = self.collector.grpc_address  # type: ignore[misc]
        return f"{host}:{port}"

    @property
    def admin_url(self) -> str:
        host, port = self.collector.admin_address  # type: ignore[misc]
        return f"http://{host}:{port}"

    def query(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        """Read through a cursor of the collector's own connection (it holds the file)."""
        exporter = self.collector.exporters["duckdb"]
        cur: duckdb.DuckDBPyConnection = exporter.cursor()
        try:
            return cur.execute(sql, params or []).fetchall()
        finally:
            cur.close()

    def stop(self) -> None:
        self.collector.stop()


@pytest.fixture
def start_collector(tmp_path: Path) -> Iterator[Callable[..., RunningCollector]]:
    """Factory: ``start_collector(**make_config kwargs) -> RunningCollector``; stopped after."""
    started: list[RunningCollector] = []

    def start(**kwargs: Any) -> RunningCollector:
        db = tmp_path / f"spans{len(started)}.duckdb"
        doc = make_config(db, **kwargs)
        cfg = config_module.parse(yaml.safe_load(yaml.safe_dump(doc)))
        running = RunningCollector(Collector(cfg).start(), db)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


@pytest.fixture
def collector(start_collector: Callable[..., RunningCollector]) -> RunningCollector:
    return start_collector()
