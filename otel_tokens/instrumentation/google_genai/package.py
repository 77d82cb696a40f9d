"""The google-genai SDK versions this instrumentation supports."""

from __future__ import annotations

_instruments = ("google-genai >= 1.0.0",)
