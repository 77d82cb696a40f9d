"""The Anthropic SDK versions this instrumentation supports."""

from __future__ import annotations

_instruments = ("anthropic >= 0.40.0",)
