"""Plugin settings from OTEL_TOKENS_* environment variables; constructor arguments win."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Every setting the plugin reads, with what it means (docs/plugin.md lists the same).
ENV_DISABLED = "OTEL_TOKENS_DISABLED"
ENV_PROPAGATE = "OTEL_TOKENS_PROPAGATE"
ENV_PRICES = "OTEL_TOKENS_PRICES"
ENV_INSTRUMENT = "OTEL_TOKENS_INSTRUMENT"
ENV_METRICS = "OTEL_TOKENS_METRICS"
ENV_ESTIMATE = "OTEL_TOKENS_ESTIMATE"

ALL_SDKS = ("openai", "anthropic", "google_genai")
_SDK_ALIASES = {"google-genai": "google_genai", "gemini": "google_genai", "genai": "google_genai"}
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


@dataclass(frozen=True)
class Settings:
    """What the plugin does; see :func:`load_settings` for where each value comes from."""

    disabled: bool = False  # zero-code entry point does nothing
    propagate: bool = False  # W3C baggage propagation of user / node / ids
    prices: str | Mapping[str, Mapping[str, Any]] | None = None  # overrides file or mapping
    instrument: tuple[str, ...] = field(default=ALL_SDKS)  # SDKs to instrument when installed
    metrics: bool = True  # record gen_ai.client.* metrics and the cost counter
    estimate: bool = True  # estimate tokens when the API reports none


def parse_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{name}: expected true or false, got {raw!r}")


def parse_instrument(name: str, raw: str | Any) -> tuple[str, ...]:
    """``"openai,anthropic"``, ``"all"`` or ``"none"`` (also a list) -> SDK names."""
    items = raw.split(",") if isinstance(raw, str) else list(raw)
    names: list[str] = []
    for item in items:
        sdk = str(item).strip().lower()
        if not sdk:
            continue
        if sdk == "all":
            return ALL_SDKS
        if sdk == "none":
            return ()
        sdk = _SDK_ALIASES.get(sdk, sdk)
        if sdk not in ALL_SDKS:
            raise ValueError(
                f"{name}: unknown SDK {item!r}; expected some of {', '.join(ALL_SDKS)}, all, none"
            )
        if sdk not in names:
            names.append(sdk)
    return tuple(names)


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Settings from ``environ`` (default ``os.environ``); non-None ``overrides`` win.

    A bad value raises ``ValueError`` naming the setting.
    """
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for key, var in (
        ("disabled", ENV_DISABLED),
        ("propagate", ENV_PROPAGATE),
        ("metrics", ENV_METRICS),
        ("estimate", ENV_ESTIMATE),
    ):
        if env.get(var) is not None:
            values[key] = parse_bool(var, env[var])
    if env.get(ENV_PRICES):
        values["prices"] = env[ENV_PRICES]
    if env.get(ENV_INSTRUMENT) is not None:
        values["instrument"] = parse_instrument(ENV_INSTRUMENT, env[ENV_INSTRUMENT])
    for key, value in overrides.items():
        if value is None:
            continue
        if key not in Settings.__dataclass_fields__:
            raise ValueError(f"{key}: unknown setting")
        if key in ("disabled", "propagate", "metrics", "estimate"):
            if not isinstance(value, bool):
                raise ValueError(f"{key}: expected a bool, got {value!r}")
        elif key == "instrument":
            value = parse_instrument(key, value)
        elif key == "prices" and not isinstance(value, str | os.PathLike | Mapping):
            kind = type(value).__name__
            raise ValueError(f"{key}: expected a file path or a mapping, got {kind}")
        values[key] = os.fspath(value) if isinstance(value, os.PathLike) else value
    return Settings(**values)
