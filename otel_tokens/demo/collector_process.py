"""The demo's collector: a config with free ports, and the collector as a child process."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from otel_tokens.demo.errors import DemoError

DB_NAME = "otel-tokens.duckdb"


def write_collector_config(work_dir: Path) -> Path:
    """The embedded default config, with free ports on 127.0.0.1 and the database in work_dir."""
    from collector.config import DEFAULT_CONFIG_PATH

    cfg = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"))
    protocols = cfg["receivers"]["otlp"]["protocols"]
    protocols["grpc"]["endpoint"] = "127.0.0.1:0"
    protocols["http"]["endpoint"] = "127.0.0.1:0"
    cfg["exporters"]["duckdb"]["path"] = str((work_dir / DB_NAME).resolve())
    cfg["service"].setdefault("admin", {})["endpoint"] = "127.0.0.1:0"
    path = work_dir / "otel-config.yaml"
    header = "# Written by `otel-tokens demo`: the embedded default with free ports.\n"
    path.write_text(header + yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path


class CollectorProcess:
    """The collector as a child process, its stderr teed to a log file and parsed for ports."""

    def __init__(self, config_path: Path, log_path: Path) -> None:
        self.config_path = config_path
        self.log_path = log_path
        self.addresses: dict[str, str] = {}
        self._ready = threading.Event()
        self._proc: subprocess.Popen[str] | None = None
        self._last_line = ""

    def start(self, timeout: float = 30.0) -> None:
        cmd = [sys.executable, "-m", "collector.service", str(self.config_path)]
        self._proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        threading.Thread(target=self._read_stderr, daemon=True).start()
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.05):
            if self._proc.poll() is not None:
                self._wait_reader()
                raise DemoError(
                    f"collector exited with status {self._proc.returncode}: {self._last_line}"
                )
            if time.monotonic() > deadline:
                self.kill()
                raise DemoError(f"collector not ready after {timeout:.0f} s (see {self.log_path})")
        self._wait_healthy(deadline)

    def _read_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        with self.log_path.open("w", encoding="utf-8") as log:
            for line in self._proc.stderr:
                log.write(line)
                log.flush()
                if line.strip():
                    self._last_line = line.strip()
                if line.startswith("otel-tokens collector ready"):
                    for part in line.split()[3:]:
                        key, _, value = part.partition("=")
                        self.addresses[key] = value
                    self._ready.set()

    def _wait_reader(self) -> None:
        time.sleep(0.1)  # let the reader thread take the last lines (one clear error)

    def _wait_healthy(self, deadline: float) -> None:
        if "admin" not in self.addresses or "http" not in self.addresses:
            raise DemoError(f"collector did not report its addresses: {self.addresses}")
        url = f"http://{self.addresses['admin']}/healthz"
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise DemoError(f"collector {url} not healthy (see {self.log_path})")
            time.sleep(0.1)

    @property
    def admin_url(self) -> str:
        return f"http://{self.addresses['admin']}"

    @property
    def otlp_http_url(self) -> str:
        return f"http://{self.addresses['http']}"

    def query(self, sql: str) -> tuple[list[str], list[list[Any]]]:
        """Run a read-only statement through the admin query API (team interface 4)."""
        request = urllib.request.Request(
            f"{self.admin_url}/v1/query",
            data=json.dumps({"sql": sql}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                body = json.load(response)
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:200]
            raise DemoError(f"collector query failed ({exc.code}): {detail}") from None
        return body["columns"], body["rows"]

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM: the collector drains, commits, closes DuckDB and exits 0."""
        if self._proc is None or self._proc.poll() is not None:
            return self._proc.returncode if self._proc else 0
        self._proc.send_signal(signal.SIGTERM)
        try:
            return self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise DemoError(f"collector did not stop within {timeout:.0f} s of SIGTERM") from None

    def kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(10)
