"""The component registry: which module implements each receiver/processor/exporter/extension type.

Every module follows team interface 3: ``TYPE``, a ``Config`` dataclass with ``validate()``,
``create_default_config()`` and ``create(config)``. Modules are imported when a config names
their type, so a missing optional component only matters to configs that use it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

KINDS = ("receivers", "processors", "exporters", "extensions")

REGISTRY: dict[str, dict[str, str]] = {
    "receivers": {"otlp": "collector.receivers.otlp"},
    "processors": {
        "memory_limiter": "collector.processors.memory_limiter",
        "gen_ai_normalize": "collector.processors.normalize",
        "gen_ai_cost": "collector.processors.cost",
        "batch": "collector.processors.batch",
    },
    "exporters": {
        "duckdb": "collector.exporters.duckdb",
        "parquet": "collector.exporters.parquet",
    },
    "extensions": {"bearertokenauth": "collector.extensions.bearertokenauth"},
}


class UnknownComponent(LookupError):
    """A config names a component type that does not exist (or cannot be imported)."""


def module_for(kind: str, type_: str) -> ModuleType:
    """The module implementing ``type_`` in section ``kind`` (e.g. "processors", "batch")."""
    path = REGISTRY.get(kind, {}).get(type_)
    if path is None:
        known = ", ".join(sorted(REGISTRY.get(kind, {})))
        raise UnknownComponent(f"unknown type {type_!r} (known {kind}: {known})")
    try:
        module = importlib.import_module(path)
    except ImportError as exc:
        raise UnknownComponent(f"type {type_!r} is not available: {exc}") from None
    if getattr(module, "TYPE", None) != type_:
        raise UnknownComponent(f"module {path} does not declare TYPE = {type_!r}")
    return module
