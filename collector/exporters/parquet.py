"""Exporter ``parquet``: span batches as hive-partitioned Parquet files any engine can read.

Layout: ``{path}/day=YYYY-MM-DD/part-<unix ns>-<random>.parquet`` (day of the span's start time,
UTC). Each file is written under a temporary name, fsynced, then renamed, so a reader never sees
half a file and a crash leaves at most a ``.tmp`` file behind. Parquet files cannot deduplicate:
a re-sent export may appear twice here (the ``duckdb`` exporter stores it once); read with
``SELECT DISTINCT ON (trace_id, span_id) *`` when that matters.
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

TYPE = "parquet"

_COMPRESSIONS = ("zstd", "snappy", "gzip", "lz4", "none")


@dataclass
class Config:
    path: str = "./otel-tokens-parquet"
    compression: str = "zstd"
    fsync: bool = True  # fsync each file and its directory before acknowledging

    def validate(self) -> None:
        if not self.path:
            raise ValueError("path: must not be empty")
        if self.compression not in _COMPRESSIONS:
            raise ValueError(f"compression: must be one of {', '.join(_COMPRESSIONS)}")


def create_default_config() -> Config:
    return Config()


class ParquetExporter:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.root = Path(config.path)
        self._files = 0
        self._spans = 0

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    def export(self, table: pa.Table) -> int:
        """Write the batch as one file per day it covers; returns how many spans were written."""
        days = pc.strftime(table.column("start_time"), format="%Y-%m-%d")
        for day in pc.unique(days).to_pylist():
            part = table.filter(pc.equal(days, day))
            self._write(day, part)
        self._spans += table.num_rows
        return table.num_rows

    def _write(self, day: str, table: pa.Table) -> None:
        folder = self.root / f"day={day}"
        folder.mkdir(parents=True, exist_ok=True)
        name = f"part-{time.time_ns()}-{secrets.token_hex(4)}.parquet"
        tmp = folder / f".{name}.tmp"
        compression = None if self.config.compression == "none" else self.config.compression
        pq.write_table(table, tmp, compression=compression)
        if self.config.fsync:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, folder / name)
        if self.config.fsync:
            dfd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        self._files += 1

    def on_idle(self) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def counters(self) -> dict[str, int]:
        return {"files_written": self._files, "spans_written": self._spans}


def create(config: Config) -> ParquetExporter:
    return ParquetExporter(config)
