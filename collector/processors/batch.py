"""Processor ``batch``: coalesces admitted requests into export batches for the writer thread.

Receivers acknowledge only after the commit, so waiting for a full batch would add its timeout to
every request. With the default ``timeout: 0`` this is group commit: when the writer is free it
takes everything queued (up to ``send_batch_max_size`` spans) in one transaction, so batches grow
exactly as fast as load does. A positive ``timeout`` waits up to that long for
``send_batch_size`` spans, as the OpenTelemetry Collector's batch processor does.
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

TYPE = "batch"


class Closed(RuntimeError):
    """The queue no longer takes requests (the collector is shutting down)."""


class Item(Protocol):
    @property
    def spans(self) -> int: ...


@dataclass
class Config:
    send_batch_size: int = 8192
    send_batch_max_size: int = 32_768  # 0 = no upper bound
    timeout: float = 0.0  # seconds; 0 = group commit, no waiting

    def validate(self) -> None:
        if self.send_batch_size <= 0:
            raise ValueError("send_batch_size: must be > 0")
        if self.send_batch_max_size < 0:
            raise ValueError("send_batch_max_size: must be >= 0")
        if self.send_batch_max_size and self.send_batch_max_size < self.send_batch_size:
            raise ValueError("send_batch_max_size: must be >= send_batch_size")
        if self.timeout < 0:
            raise ValueError("timeout: must be >= 0")


def create_default_config() -> Config:
    return Config()


class Batcher:
    """A queue of whole requests; ``next_batch`` hands the writer what should commit together."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._queue: collections.deque[tuple[float, Item]] = collections.deque()
        self._cond = threading.Condition()
        self._closed = False
        self._queued_spans = 0
        self._batches = 0
        self._batched_spans = 0

    def process(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return rows  # coalescing happens in put/next_batch, around the other processors

    def put(self, item: Item) -> None:
        with self._cond:
            if self._closed:
                raise Closed("the collector is shutting down")
            self._queue.append((time.monotonic(), item))
            self._queued_spans += item.spans
            self._cond.notify()

    def next_batch(self, idle_timeout: float | None = None) -> list[Item] | None:
        """Block until a batch is ready; ``[]`` after ``idle_timeout``, ``None`` once closed."""
        cfg = self.config
        with self._cond:
            if not self._queue and not self._closed:
                self._cond.wait(idle_timeout)
            if not self._queue:
                return None if self._closed else []
            if cfg.timeout > 0:
                deadline = self._queue[0][0] + cfg.timeout
                while self._queued_spans < cfg.send_batch_size and not self._closed:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
            limit = cfg.send_batch_max_size or 1 << 62
            batch: list[Item] = []
            spans = 0
            while self._queue:
                n = self._queue[0][1].spans
                if batch and spans + n > limit:
                    break
                batch.append(self._queue.popleft()[1])
                spans += n
            self._queued_spans -= spans
            self._batches += 1
            self._batched_spans += spans
            return batch

    def close(self) -> None:
        """No more puts; ``next_batch`` drains what is queued, then returns ``None``."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def queued_spans(self) -> int:
        return self._queued_spans

    def counters(self) -> dict[str, int]:
        return {
            "batches": self._batches,
            "batched_spans": self._batched_spans,
            "queued_spans": self._queued_spans,
            "queued_requests": len(self._queue),
        }


def create(config: Config) -> Batcher:
    return Batcher(config)
