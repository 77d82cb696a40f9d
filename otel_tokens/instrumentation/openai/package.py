"""The openai versions this instrumentor supports."""

from __future__ import annotations

_instruments = ("openai >= 1.26.0",)
