"""`otel-tokens demo`: the whole product end to end on a local fake provider (offline)."""

from __future__ import annotations
