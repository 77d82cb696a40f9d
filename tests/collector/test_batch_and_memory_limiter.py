"""The batch queue (group commit) and the memory limiter's admission rules."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import pytest

from collector.processors import batch, memory_limiter


@dataclass
class Item:
    spans: int = 0


def _items(*sizes: int) -> list[Item]:
    return [Item(n) for n in sizes]


def test_group_commit_takes_everything_queued_up_to_the_max_size():
    b = batch.create(batch.Config(send_batch_size=10, send_batch_max_size=10, timeout=0))
    for item in _items(4, 4, 4, 30):
        b.put(item)
    assert [i.spans for i in b.next_batch(0)] == [4, 4]
    assert [i.spans for i in b.next_batch(0)] == [4]
    assert [i.spans for i in b.next_batch(0)] == [30]  # a big request still goes, alone
    assert b.next_batch(0) == []


def test_positive_timeout_waits_for_a_full_batch_until_the_deadline():
    b = batch.create(batch.Config(send_batch_size=8, send_batch_max_size=0, timeout=5))
    b.put(_items(4)[0])
    threading.Timer(0.05, lambda: b.put(_items(4)[0])).start()
    assert sum(i.spans for i in b.next_batch(1)) == 8


def test_closed_queue_drains_then_ends_and_refuses_new_items():
    b = batch.create(batch.Config())
    b.put(_items(3)[0])
    b.close()
    with pytest.raises(batch.Closed):
        b.put(_items(1)[0])
    assert len(b.next_batch(0)) == 1
    assert b.next_batch(0) is None


def test_memory_limiter_refuses_past_the_span_limit_but_always_admits_into_an_empty_pipeline():
    m = memory_limiter.create(memory_limiter.Config(limit_spans=100, limit_mib=0))
    assert m.try_acquire(500, 10)  # nothing in flight: even an oversized request goes
    assert not m.try_acquire(1, 10)
    m.release(500, 10)
    assert m.try_acquire(60, 10)
    assert not m.try_acquire(50, 10)
    assert m.over_limit() is False
    assert m.try_acquire(40, 10)
    assert m.over_limit() is True
    assert m.counters()["refused_requests"] == 2


def test_memory_limiter_refuses_on_request_bytes_too():
    m = memory_limiter.create(memory_limiter.Config(limit_request_mib=1, limit_mib=0))
    assert m.try_acquire(1, 800_000)
    assert not m.try_acquire(1, 800_000)


@pytest.mark.parametrize(
    ("config", "key"),
    [
        (batch.Config(send_batch_size=0), "send_batch_size"),
        (batch.Config(send_batch_size=10, send_batch_max_size=5), "send_batch_max_size"),
        (batch.Config(timeout=-1), "timeout"),
        (memory_limiter.Config(limit_spans=0), "limit_spans"),
        (memory_limiter.Config(retry_after=0), "retry_after"),
    ],
)
def test_bad_values_name_their_key(config, key):
    with pytest.raises(ValueError, match=f"^{key}: "):
        config.validate()
