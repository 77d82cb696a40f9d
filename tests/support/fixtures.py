"""Pytest fixtures shared by test areas; import the ones you need into your ``conftest.py``.

from tests.support.fixtures import replay  # noqa: F401

def test_x(replay):
    server = replay("anthropic/test_sync_messages_create_basic.yaml")
    client = anthropic.Anthropic(base_url=server.url, api_key="test")
    ...
    assert server.requests[0].body["model"] == "claude-sonnet-4-20250514"
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.replay_server import ReplayFactory


@pytest.fixture
def replay() -> Iterator[ReplayFactory]:
    """Factory: ``replay(*cassettes, repeat=False) -> ReplayServer``, started; closed after."""
    factory = ReplayFactory()
    try:
        yield factory
    finally:
        factory.close()
