"""otel-config.yaml (OpenTelemetry Collector format) → validated components, or one precise error.

Everything is checked before anything starts: unknown keys and types, bad values, pipelines naming
components that are not configured, components configured but used nowhere. Each error is a
``ConfigError`` whose message starts with the dotted key it is about, e.g.
``processors.batch.send_batch_size: must be > 0``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from collector import components

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent / "default-config.yaml"
DEFAULT_ADMIN_ENDPOINT = "127.0.0.1:4320"

_TOP_LEVEL = ("receivers", "processors", "exporters", "extensions", "service")
_ENV = re.compile(r"\$\$|\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{([^}]*)\}")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    None: 1,
    "b": 1,
    "kb": 10**3,
    "kib": 2**10,
    "mb": 10**6,
    "mib": 2**20,
    "gb": 10**9,
    "gib": 2**30,
}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ns|us|µs|ms|s|m|h)?\s*$")
_DURATION_UNITS = {
    None: 1.0,
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


class ConfigError(ValueError):
    """The configuration is invalid; the message names the key."""


@dataclass
class AuthConfig:
    """``auth:`` block of a listener: which authenticator extension protects it."""

    authenticator: str = ""

    def validate(self) -> None:
        if not self.authenticator:
            raise ValueError("authenticator: must name an extension, e.g. bearertokenauth")


@dataclass
class AdminConfig:
    """``service.admin``: the admin listener (/healthz, /metrics, /v1/query)."""

    endpoint: str = DEFAULT_ADMIN_ENDPOINT  # "" disables the listener
    auth: AuthConfig | None = None
    query_timeout: float = 30.0  # seconds a /v1/query statement may run
    query_max_rows: int = 100_000

    def validate(self) -> None:
        if self.endpoint:
            parse_endpoint(self.endpoint, "endpoint")
        if self.query_timeout <= 0:
            raise ValueError("query_timeout: must be > 0")
        if self.query_max_rows <= 0:
            raise ValueError("query_max_rows: must be > 0")


@dataclass
class ComponentSpec:
    """One configured component: its section, id (``type[/name]``), module and config."""

    kind: str
    id: str
    type: str
    module: types.ModuleType
    config: Any


@dataclass
class PipelineSpec:
    name: str
    receivers: list[str]
    processors: list[str]
    exporters: list[str]


@dataclass
class CollectorConfig:
    receivers: dict[str, ComponentSpec] = field(default_factory=dict)
    processors: dict[str, ComponentSpec] = field(default_factory=dict)
    exporters: dict[str, ComponentSpec] = field(default_factory=dict)
    extensions: dict[str, ComponentSpec] = field(default_factory=dict)
    service_extensions: list[str] = field(default_factory=list)
    pipelines: dict[str, PipelineSpec] = field(default_factory=dict)
    admin: AdminConfig = field(default_factory=AdminConfig)
    log_level: str = "info"
    workers: int | None = None  # service.workers; None = collector.workers.default_workers()
    source: str = "<default>"


# --- values -----------------------------------------------------------------------------------


def parse_endpoint(endpoint: str, key: str) -> tuple[str, int]:
    """``host:port`` → (host, port); port 0 picks a free port (tests)."""
    host, sep, port = str(endpoint).rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{key}: must be host:port, got {endpoint!r}")
    return host.strip("[]"), int(port)


def parse_size(value: Any) -> int:
    """Bytes from an int or a string such as ``20MiB``."""
    if isinstance(value, bool):
        raise ValueError("must be a size in bytes")
    if isinstance(value, int):
        return value
    m = _SIZE.match(str(value))
    if not m:
        raise ValueError(f"must be a size such as 20MiB, got {value!r}")
    unit = m.group(2).lower() if m.group(2) else None
    return int(float(m.group(1)) * _SIZE_UNITS[unit])


def parse_duration(value: Any) -> float:
    """Seconds from a number or a string such as ``200ms`` / ``5s``."""
    if isinstance(value, bool):
        raise ValueError("must be a duration")
    if isinstance(value, int | float):
        return float(value)
    m = _DURATION.match(str(value))
    if not m:
        raise ValueError(f"must be a duration such as 200ms or 5s, got {value!r}")
    return float(m.group(1)) * _DURATION_UNITS[m.group(2)]


def substitute_env(value: Any, path: str, environ: typing.Mapping[str, str]) -> Any:
    """Replace ``${env:VAR}`` / ``${env:VAR:-default}`` in every string of a parsed document."""
    if isinstance(value, dict):
        return {k: substitute_env(v, _join(path, str(k)), environ) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute_env(v, f"{path}[{i}]", environ) for i, v in enumerate(value)]
    if not isinstance(value, str) or "$" not in value:
        return value

    def repl(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        if m.group(3) is not None:
            raise ConfigError(
                f"{path}: unsupported substitution ${{{m.group(3)}}}; use ${{env:VAR}}"
            )
        name, default = m.group(1), m.group(2)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        raise ConfigError(f"{path}: environment variable {name} is not set (and no :-default)")

    replaced = _ENV.sub(repl, value)
    if replaced != value and _ENV.fullmatch(value):
        # A whole-value substitution is typed like YAML would type it: "4318" → 4318.
        try:
            loaded = yaml.safe_load(replaced)
        except yaml.YAMLError:
            return replaced
        if isinstance(loaded, int | float | bool) or loaded is None:
            return loaded
    return replaced


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _strip_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0], True
    return tp, False


def _coerce(value: Any, tp: Any, key: str, fname: str) -> Any:
    inner, optional = _strip_optional(tp)
    if value is None:
        if dataclasses.is_dataclass(inner) and isinstance(inner, type):
            return apply_mapping(inner(), {}, key)
        if optional:
            return None
        raise ConfigError(f"{key}: must not be empty")
    if dataclasses.is_dataclass(inner) and isinstance(inner, type):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: must be a mapping")
        return apply_mapping(inner(), value, key)
    origin = typing.get_origin(inner)
    try:
        if inner is bool:
            if isinstance(value, bool):
                return value
            raise ValueError(f"must be true or false, got {value!r}")
        if inner is int:
            return parse_size(value) if isinstance(value, str) else _int(value)
        if inner is float:
            return parse_duration(value) if isinstance(value, str) else _float(value)
        if inner is str:
            if isinstance(value, str | int | float) and not isinstance(value, bool):
                return str(value)
            raise ValueError(f"must be a string, got {value!r}")
        if origin is list or inner is list:
            (item_tp,) = typing.get_args(inner) or (Any,)
            if not isinstance(value, list):
                raise ValueError("must be a list")
            return [_coerce(v, item_tp, f"{key}[{i}]", fname) for i, v in enumerate(value)]
        if origin is dict or inner is dict or origin is typing.Mapping:
            if not isinstance(value, dict):
                raise ValueError("must be a mapping")
            return value
    except ValueError as exc:
        raise ConfigError(f"{key}: {exc}") from None
    return value


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise ValueError(f"must be an integer, got {value!r}")
    return int(value)


def _float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"must be a number, got {value!r}")
    return float(value)


def apply_mapping(config: Any, data: dict[str, Any], path: str) -> Any:
    """Set the fields of dataclass instance ``config`` from ``data``; unknown keys are errors."""
    hints = _hints(type(config))
    names = {f.name for f in dataclasses.fields(config)}
    for key, value in data.items():
        if key not in names:
            known = ", ".join(sorted(names)) or "none"
            raise ConfigError(f"{_join(path, str(key))}: unknown key (known keys: {known})")
        setattr(config, key, _coerce(value, hints[key], _join(path, key), key))
    return config


def _validate(config: Any, path: str) -> None:
    """Run ``validate()`` of a config and its nested dataclasses; errors get the key prefixed."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            _validate(value, _join(path, f.name))
    validate = getattr(config, "validate", None)
    if validate is None:
        return
    try:
        validate()
    except ValueError as exc:
        raise ConfigError(f"{_join(path, str(exc))}" if path else str(exc)) from None


def _authenticators(config: Any, path: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    if isinstance(config, AuthConfig):
        return [(_join(path, "authenticator"), config.authenticator)]
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        for f in dataclasses.fields(config):
            found += _authenticators(getattr(config, f.name), _join(path, f.name))
    return found


# --- documents --------------------------------------------------------------------------------


def load(
    path: str | Path | None = None, environ: typing.Mapping[str, str] | None = None
) -> CollectorConfig:
    """Read and validate a config file (``None`` = the embedded default)."""
    source = Path(path) if path is not None else DEFAULT_CONFIG_PATH
    try:
        text = source.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config {source}: {exc.strerror or exc}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None
    cfg = parse(doc, os.environ if environ is None else environ)
    cfg.source = str(source) if path is not None else "<embedded default>"
    return cfg


def parse(doc: Any, environ: typing.Mapping[str, str] | None = None) -> CollectorConfig:
    """Validate a parsed YAML document into a ``CollectorConfig``."""
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise ConfigError("config: the top level must be a mapping")
    doc = substitute_env(doc, "", os.environ if environ is None else environ)
    for key in doc:
        if key not in _TOP_LEVEL:
            raise ConfigError(f"{key}: unknown top-level key (known: {', '.join(_TOP_LEVEL)})")
    cfg = CollectorConfig()
    for kind in components.KINDS:
        section = doc.get(kind) or {}
        if not isinstance(section, dict):
            raise ConfigError(f"{kind}: must be a mapping of component ids")
        target: dict[str, ComponentSpec] = getattr(cfg, kind)
        for cid, body in section.items():
            target[str(cid)] = _component(kind, str(cid), body)
    _service(cfg, doc.get("service"))
    return cfg


def _component(kind: str, cid: str, body: Any) -> ComponentSpec:
    path = f"{kind}.{cid}"
    type_, sep, name = cid.partition("/")
    if not type_ or (sep and not name):
        raise ConfigError(f"{path}: component id must be type[/name]")
    try:
        module = components.module_for(kind, type_)
    except components.UnknownComponent as exc:
        raise ConfigError(f"{path}: {exc}") from None
    if body is not None and not isinstance(body, dict):
        raise ConfigError(f"{path}: must be a mapping")
    config = apply_mapping(module.create_default_config(), body or {}, path)
    _validate(config, path)
    return ComponentSpec(kind, cid, type_, module, config)


def _service(cfg: CollectorConfig, service: Any) -> None:
    if not isinstance(service, dict):
        raise ConfigError("service: required, with service.pipelines.traces")
    for key in service:
        if key not in ("extensions", "pipelines", "admin", "telemetry", "workers"):
            raise ConfigError(
                f"service.{key}: unknown key"
                " (known keys: admin, extensions, pipelines, telemetry, workers)"
            )
    exts = service.get("extensions") or []
    if not isinstance(exts, list):
        raise ConfigError("service.extensions: must be a list of extension ids")
    for i, ext in enumerate(exts):
        if ext not in cfg.extensions:
            raise ConfigError(f"service.extensions[{i}]: extension {ext!r} is not configured")
    cfg.service_extensions = [str(e) for e in exts]

    admin = service.get("admin")
    if admin is not None and not isinstance(admin, dict):
        raise ConfigError("service.admin: must be a mapping")
    cfg.admin = apply_mapping(AdminConfig(), admin or {}, "service.admin")
    _validate(cfg.admin, "service.admin")

    telemetry = service.get("telemetry") or {}
    level = ((telemetry.get("logs") or {}) if isinstance(telemetry, dict) else {}).get(
        "level", "info"
    )
    if str(level).lower() not in ("debug", "info", "warn", "warning", "error"):
        raise ConfigError("service.telemetry.logs.level: must be debug, info, warn or error")
    cfg.log_level = str(level).lower()

    workers = service.get("workers")
    if workers is not None:
        if type(workers) is not int or not 0 <= workers <= 64:
            raise ConfigError(
                "service.workers: must be a whole number from 0 (decode in the request threads)"
                " to 64"
            )
        cfg.workers = workers

    pipelines = service.get("pipelines")
    if not isinstance(pipelines, dict) or not pipelines:
        raise ConfigError("service.pipelines: required, with a traces pipeline")
    used: dict[str, set[str]] = {k: set() for k in ("receivers", "processors", "exporters")}
    for pname, body in pipelines.items():
        path = f"service.pipelines.{pname}"
        signal, _, _name = str(pname).partition("/")
        if signal != "traces":
            raise ConfigError(f"{path}: only traces pipelines are supported")
        if not isinstance(body, dict):
            raise ConfigError(f"{path}: must be a mapping with receivers, processors, exporters")
        for key in body:
            if key not in ("receivers", "processors", "exporters"):
                raise ConfigError(f"{path}.{key}: unknown key")
        lists: dict[str, list[str]] = {}
        for kind in ("receivers", "processors", "exporters"):
            ids = body.get(kind) or []
            if not isinstance(ids, list):
                raise ConfigError(f"{path}.{kind}: must be a list of component ids")
            if kind != "processors" and not ids:
                raise ConfigError(f"{path}.{kind}: at least one is required")
            configured: dict[str, ComponentSpec] = getattr(cfg, kind)
            for i, cid in enumerate(ids):
                if cid not in configured:
                    raise ConfigError(f"{path}.{kind}[{i}]: {kind[:-1]} {cid!r} is not configured")
                if ids.count(cid) > 1:
                    raise ConfigError(f"{path}.{kind}[{i}]: {cid!r} is listed twice")
            used[kind].update(ids)
            lists[kind] = [str(x) for x in ids]
        procs = lists["processors"]
        types_ = [cfg.processors[p].type for p in procs]
        if "memory_limiter" in types_[1:]:
            raise ConfigError(f"{path}.processors: memory_limiter must come first")
        if "batch" in types_[:-1]:
            raise ConfigError(f"{path}.processors: batch must come last")
        cfg.pipelines[str(pname)] = PipelineSpec(
            str(pname), lists["receivers"], procs, lists["exporters"]
        )
    for kind, ids in used.items():
        for cid in getattr(cfg, kind):
            if cid not in ids:
                raise ConfigError(f"{kind}.{cid}: configured but not used in any pipeline")
    for cid in cfg.extensions:
        if cid not in cfg.service_extensions:
            raise ConfigError(f"extensions.{cid}: configured but not enabled in service.extensions")

    listeners = [(f"receivers.{c.id}", c.config) for c in cfg.receivers.values()]
    listeners.append(("service.admin", cfg.admin))
    for prefix, conf in listeners:
        for key, ext in _authenticators(conf, prefix):
            if ext not in cfg.service_extensions:
                raise ConfigError(f"{key}: extension {ext!r} is not configured and enabled")
