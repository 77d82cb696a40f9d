"""Collector configuration: the OpenTelemetry Collector format, env substitution, precise errors."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from collector import config
from collector.config import ConfigError

ROOT = Path(__file__).resolve().parents[2]

MINIMAL = {
    "receivers": {"otlp": {"protocols": {"http": {"endpoint": "127.0.0.1:0"}}}},
    "processors": {"batch": None},
    "exporters": {"duckdb": {"path": "x.duckdb"}},
    "service": {
        "pipelines": {
            "traces": {"receivers": ["otlp"], "processors": ["batch"], "exporters": ["duckdb"]}
        }
    },
}


def _with(path: str, value: object) -> dict:
    """MINIMAL with one dotted key set to ``value``."""
    doc = copy.deepcopy(MINIMAL)
    *parents, last = path.split(".")
    node = doc
    for key in parents:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[last] = value
    return doc


def test_embedded_default_matches_the_spec():
    cfg = config.load(None)
    http = cfg.receivers["otlp"].config.protocols.http
    grpc = cfg.receivers["otlp"].config.protocols.grpc
    assert (http.endpoint, grpc.endpoint) == ("127.0.0.1:4318", "127.0.0.1:4317")
    assert http.max_request_body_size == 20 * 2**20
    assert cfg.admin.endpoint == "127.0.0.1:4320"
    assert cfg.exporters["duckdb"].config.path == "./otel-tokens.duckdb"
    assert cfg.pipelines["traces"].processors == [
        "memory_limiter",
        "gen_ai_normalize",
        "gen_ai_cost",
        "batch",
    ]


def test_shipped_otel_config_yaml_is_valid():
    cfg = config.load(ROOT / "otel-config.yaml", environ={})
    assert "traces" in cfg.pipelines


def test_minimal_config_parses_with_defaults():
    cfg = config.parse(MINIMAL)
    assert cfg.receivers["otlp"].config.protocols.grpc is None
    assert cfg.processors["batch"].config.send_batch_size == 8192
    assert cfg.admin.endpoint == "127.0.0.1:4320"


def test_env_substitution_with_and_without_default():
    doc = _with("exporters.duckdb.path", "${env:DB_PATH}")
    doc["receivers"]["otlp"]["protocols"]["http"]["endpoint"] = "127.0.0.1:${env:PORT:-4999}"
    doc["processors"]["batch"] = {"send_batch_size": "${env:SIZE}"}
    cfg = config.parse(doc, {"DB_PATH": "/data/spans.duckdb", "SIZE": "100"})
    assert cfg.exporters["duckdb"].config.path == "/data/spans.duckdb"
    assert cfg.receivers["otlp"].config.protocols.http.endpoint == "127.0.0.1:4999"
    assert cfg.processors["batch"].config.send_batch_size == 100


def test_named_components_type_slash_name():
    doc = yaml.safe_load(yaml.safe_dump(MINIMAL))
    doc["exporters"]["duckdb/archive"] = {"path": "archive.duckdb"}
    doc["service"]["pipelines"]["traces/archive"] = {
        "receivers": ["otlp"],
        "exporters": ["duckdb/archive"],
    }
    cfg = config.parse(doc)
    assert cfg.exporters["duckdb/archive"].type == "duckdb"
    assert set(cfg.pipelines) == {"traces", "traces/archive"}


def test_sizes_and_durations_accept_units():
    doc = _with("processors.batch", {"timeout": "200ms", "send_batch_max_size": "16KiB"})
    doc["receivers"]["otlp"]["protocols"]["http"]["max_request_body_size"] = "4MiB"
    cfg = config.parse(doc)
    assert cfg.processors["batch"].config.timeout == pytest.approx(0.2)
    assert cfg.processors["batch"].config.send_batch_max_size == 16384
    assert cfg.receivers["otlp"].config.protocols.http.max_request_body_size == 4 * 2**20


@pytest.mark.parametrize(
    ("path", "value", "key"),
    [
        ("processors.nope", None, "processors.nope: unknown type 'nope'"),
        ("exporters.duckdb.pth", "x", "exporters.duckdb.pth: unknown key"),
        (
            "processors.batch",
            {"send_batch_size": 0},
            "processors.batch.send_batch_size: must be > 0",
        ),
        ("processors.batch", {"send_batch_size": "lots"}, "processors.batch.send_batch_size:"),
        ("processors.batch", {"timeout": "soon"}, "processors.batch.timeout:"),
        (
            "receivers.otlp.protocols.http.endpoint",
            "nowhere",
            "receivers.otlp.protocols.http.endpoint:",
        ),
        ("receivers.otlp.protocols", {}, "receivers.otlp.protocols: enable at least one"),
        (
            "service.pipelines.traces.exporters",
            ["duckdb/x"],
            "service.pipelines.traces.exporters[0]:",
        ),
        (
            "service.pipelines.traces.receivers",
            [],
            "service.pipelines.traces.receivers: at least one",
        ),
        (
            "service.pipelines.metrics",
            {"receivers": ["otlp"]},
            "service.pipelines.metrics: only traces",
        ),
        ("exporters.parquet", {"path": "p"}, "exporters.parquet: configured but not used"),
        ("service.extensions", ["bearertokenauth"], "service.extensions[0]:"),
        (
            "extensions.bearertokenauth",
            {"token": "t"},
            "extensions.bearertokenauth: configured but not enabled",
        ),
        ("extensions.bearertokenauth", {}, "extensions.bearertokenauth.token: set exactly one"),
        ("service.admin.endpoint", "localhost", "service.admin.endpoint:"),
        ("service.bogus", 1, "service.bogus: unknown key"),
        ("pipelines", {}, "pipelines: unknown top-level key"),
        (
            "exporters.duckdb.path",
            "${env:NOT_SET_ANYWHERE}",
            "exporters.duckdb.path: environment variable",
        ),
        ("exporters.duckdb.path", "${HOME}", "exporters.duckdb.path: unsupported substitution"),
        (
            "service.pipelines.traces.processors",
            ["batch", "batch"],
            "service.pipelines.traces.processors[0]",
        ),
    ],
)
def test_errors_name_the_key(path, value, key):
    with pytest.raises(ConfigError) as err:
        config.parse(_with(path, value), environ={})
    assert str(err.value).startswith(key), str(err.value)


def test_memory_limiter_must_come_first_and_batch_last():
    doc = yaml.safe_load(yaml.safe_dump(MINIMAL))
    doc["processors"]["memory_limiter"] = None
    doc["service"]["pipelines"]["traces"]["processors"] = ["batch", "memory_limiter"]
    with pytest.raises(
        ConfigError, match=r"^service.pipelines.traces.processors: memory_limiter must"
    ):
        config.parse(doc)


def test_auth_must_name_an_enabled_extension():
    doc = _with("receivers.otlp.protocols.http.auth", {"authenticator": "bearertokenauth"})
    with pytest.raises(
        ConfigError, match=r"^receivers.otlp.protocols.http.auth.authenticator: extension"
    ):
        config.parse(doc)


def test_service_main_exits_non_zero_with_one_line_naming_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(_with("processors.batch", {"send_batch_size": -1})))
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from collector.service import main; sys.exit(main(sys.argv[1]))",
            str(bad),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "otel-tokens collector: config error: processors.batch.send_batch_size: must be > 0"
    ]


def test_missing_config_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        config.load(tmp_path / "nope.yaml")
