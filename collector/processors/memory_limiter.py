"""Processor ``memory_limiter``: admission control that answers 503 instead of letting memory grow.

It bounds the spans (and request bytes) admitted but not yet committed, and refuses new work
while the process RSS is above ``limit_mib``. Refused requests get HTTP 503 + ``Retry-After``
(gRPC ``UNAVAILABLE`` + ``RetryInfo``), which OTLP exporters retry with back-off.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Any

TYPE = "memory_limiter"

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass
class Config:
    limit_spans: int = 32_768  # spans admitted but not yet committed
    limit_request_mib: int = 128  # decompressed request bytes admitted but not yet committed
    limit_mib: int = 300  # process RSS above which new requests are refused (0 = no RSS check)
    retry_after: float = 1.0  # seconds, sent as Retry-After / RetryInfo

    def validate(self) -> None:
        if self.limit_spans <= 0:
            raise ValueError("limit_spans: must be > 0")
        if self.limit_request_mib <= 0:
            raise ValueError("limit_request_mib: must be > 0")
        if self.limit_mib < 0:
            raise ValueError("limit_mib: must be >= 0 (0 disables the RSS check)")
        if self.retry_after <= 0:
            raise ValueError("retry_after: must be > 0")


def create_default_config() -> Config:
    return Config()


def rss_bytes() -> int:
    """Resident set size of this process (Linux /proc; 0 where unavailable)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


class MemoryLimiter:
    """Counts what is in flight; ``try_acquire`` says no rather than queueing without bound."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.retry_after = config.retry_after
        self._lock = threading.Lock()
        self._spans = 0
        self._bytes = 0
        self._limit_bytes = config.limit_request_mib * 2**20
        self._limit_rss = config.limit_mib * 2**20
        self._refused_requests = 0
        self._refused_spans = 0
        self._peak_spans = 0
        self._rss_checked = 0.0
        self._rss_was_over = False

    def over_limit(self) -> bool:
        """Cheap check before decoding a request: is there no room at all right now?"""
        with self._lock:
            busy = self._spans > 0
            full = self._spans >= self.config.limit_spans or self._bytes >= self._limit_bytes
        return busy and (full or self._rss_over())

    def _rss_over(self) -> bool:
        # Reading /proc costs ~30 µs on this class of machine; a 100 ms old value is fresh enough.
        if not self._limit_rss:
            return False
        now = time.monotonic()
        if now - self._rss_checked > 0.1:
            self._rss_checked = now
            self._rss_was_over = rss_bytes() > self._limit_rss
        return self._rss_was_over

    def try_acquire(self, spans: int, nbytes: int) -> bool:
        # With nothing in flight, one request is always admitted (even an oversized one), so a
        # single large export can make progress and a high RSS left over from a peak never
        # turns into refusing forever.
        rss_over = self._rss_over()
        with self._lock:
            if self._spans > 0 and (
                rss_over
                or self._spans + spans > self.config.limit_spans
                or self._bytes + nbytes > self._limit_bytes
            ):
                self._refused_requests += 1
                self._refused_spans += spans
                return False
            self._spans += spans
            self._bytes += nbytes
            self._peak_spans = max(self._peak_spans, self._spans)
            return True

    def refuse(self, spans: int = 0) -> None:
        """Count a request refused before it was decoded."""
        with self._lock:
            self._refused_requests += 1
            self._refused_spans += spans

    def release(self, spans: int, nbytes: int) -> None:
        with self._lock:
            self._spans -= spans
            self._bytes -= nbytes

    @property
    def in_flight_spans(self) -> int:
        return self._spans

    def process(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return rows  # admission happens before processing, in the pipeline

    def counters(self) -> dict[str, int]:
        with self._lock:
            return {
                "refused_requests": self._refused_requests,
                "refused_spans": self._refused_spans,
                "in_flight_spans": self._spans,
                "in_flight_bytes": self._bytes,
                "peak_in_flight_spans": self._peak_spans,
                "rss_bytes": rss_bytes(),
            }


def create(config: Config) -> MemoryLimiter:
    return MemoryLimiter(config)
