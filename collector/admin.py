"""The admin listener: ``/healthz``, Prometheus ``/metrics`` and the read-only ``POST /v1/query``.

``/v1/query`` (team interface 4) lets the CLI query the database while the collector holds it:
one SELECT-type statement, run on a cursor of the collector's own connection inside a READ ONLY
transaction, with external file access disabled on that connection, a row cap and a timeout.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import logging
import math
import re
import threading
import uuid
import warnings
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import duckdb

from collector.config import AdminConfig, parse_endpoint
from otel_tokens.query import is_read_only_query

log = logging.getLogger("otel_tokens.collector.admin")

_MAX_QUERY_BODY = 1 << 20
# Table functions that read files or other databases. External access is off on the collector's
# connection anyway; refusing them up front gives a clear error instead of a permission one.
_FILE_FUNCTIONS = re.compile(
    r"\b(read_\w+|\w+_scan|glob|parquet_\w+|sniff_csv|iceberg_\w+|delta_\w+|"
    r"sqlite_\w+|postgres_\w+|mysql_\w+|httpfs\w*|load_extension|install_extension)\s*\(",
    re.IGNORECASE,
)


def is_allowed_query(sql: str) -> bool:
    """One read-only statement (the CLI's own check) that names no file-reading function."""
    return is_read_only_query(sql) and not _FILE_FUNCTIONS.search(sql)


def _json_value(v: Any) -> Any:
    if v is None or isinstance(v, bool | int | str):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else str(v)
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, dt.datetime | dt.date | dt.time):
        return v.isoformat()
    if isinstance(v, dt.timedelta):
        return str(v)
    if isinstance(v, bytes | bytearray | memoryview):
        return bytes(v).hex()
    if isinstance(v, uuid.UUID):
        return str(v)
    if isinstance(v, dict):
        return {str(k): _json_value(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_json_value(x) for x in v]
    return str(v)


class QueryError(ValueError):
    pass


def run_query(
    cursor_factory: Callable[[], duckdb.DuckDBPyConnection],
    sql: str,
    params: list[Any] | None,
    max_rows: int,
    timeout: float,
) -> dict[str, Any]:
    """Run one read-only statement; returns the interface-4 JSON document."""
    if not isinstance(sql, str) or not sql.strip():
        raise QueryError("sql: a SELECT statement is required")
    if not is_allowed_query(sql):
        raise QueryError("only a single read-only SELECT statement is allowed")
    cur = cursor_factory()
    timer = threading.Timer(timeout, cur.interrupt)
    timer.start()
    try:
        cur.execute("BEGIN TRANSACTION READ ONLY")
        try:
            cur.execute(sql, params or None)
            columns = [d[0] for d in cur.description or []]
            types = [str(d[1]) for d in cur.description or []]
            # Arrow, not fetchall(): TIMESTAMPTZ values need no pytz that way, and the row cap
            # is checked batch by batch instead of after materialising everything.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "an extra copy of the rows": fine at this size
                reader: Any = cur.to_arrow_reader(10_000)
            rows: list[tuple[Any, ...]] = []
            for batch in reader:
                if len(rows) + batch.num_rows > max_rows:
                    raise QueryError(f"more than {max_rows} rows; add a LIMIT or aggregate")
                rows.extend(zip(*(col.to_pylist() for col in batch.columns), strict=True))
        finally:
            cur.execute("ROLLBACK")
    except duckdb.InterruptException:
        raise QueryError(f"query cancelled after {timeout:g}s") from None
    except duckdb.Error as exc:
        raise QueryError(str(exc).splitlines()[0]) from None
    finally:
        timer.cancel()
        cur.close()
    return {"columns": columns, "types": types, "rows": [[_json_value(v) for v in r] for r in rows]}


def _label(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_metrics(collector: Any) -> str:
    """Prometheus text exposition of the collector's counters."""
    out: list[str] = []

    def metric(
        name: str, kind: str, help_: str, samples: list[tuple[dict[str, str], float]]
    ) -> None:
        out.append(f"# HELP {name} {help_}")
        out.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            text = ",".join(f'{k}="{_label(str(v))}"' for k, v in labels.items())
            out.append(f"{name}{{{text}}} {value:g}" if text else f"{name} {value:g}")

    counts = dict(collector.stats.counts)
    for key, help_ in (
        ("spans_received", "Spans received in OTLP exports (accepted or not)."),
        ("spans_accepted", "Spans acknowledged after a durable commit."),
        ("spans_rejected", "Spans rejected individually (partial success: bad ids, times)."),
        ("spans_refused", "Spans refused with 503 / UNAVAILABLE (memory_limiter, timeouts)."),
        ("spans_failed", "Spans whose export failed in the exporters (answered 503)."),
    ):
        metric(f"otel_tokens_collector_{key}_total", "counter", help_, [({}, counts.get(key, 0))])
    metric(
        "otel_tokens_collector_responses_total",
        "counter",
        "Responses by transport and HTTP status (gRPC mapped to HTTP).",
        [
            ({"transport": t, "code": str(c)}, n)
            for (t, c), n in sorted(collector.stats.responses.items())
        ],
    )
    queue: list[tuple[dict[str, str], float]] = []
    flight: list[tuple[dict[str, str], float]] = []
    procs: list[tuple[dict[str, str], float]] = []
    for p in collector.pipelines:
        queue.append(({"pipeline": p.name}, p.queued_spans()))
        if p.limiter is not None:
            flight.append(({"pipeline": p.name}, p.limiter.in_flight_spans))
        procs.append(
            (
                {"pipeline": p.name, "processor": "pipeline", "counter": "export_errors"},
                p.export_errors,
            )
        )
        # Row processors report through their stage (worker processes included); the memory
        # limiter and the batch queue act in the collector itself.
        by_stage = collector.processor_counters(p)
        for name, value in by_stage.pop("pipeline", {}).items():
            procs.append(({"pipeline": p.name, "processor": "pipeline", "counter": name}, value))
        for pid, proc in p.processors:
            values = by_stage.get(pid)
            if values is None:
                counters = getattr(proc, "counters", None)
                values = counters() if counters else {}
            for name, value in values.items():
                procs.append(({"pipeline": p.name, "processor": pid, "counter": name}, value))
    metric("otel_tokens_collector_queue_spans", "gauge", "Spans queued for the writer.", queue)
    metric(
        "otel_tokens_collector_in_flight_spans",
        "gauge",
        "Spans admitted, not yet committed.",
        flight,
    )
    metric(
        "otel_tokens_collector_processor_counter",
        "gauge",
        "Counters reported by processors.",
        procs,
    )
    exps: list[tuple[dict[str, str], float]] = []
    calls: list[tuple[dict[str, str], float]] = []
    tokens: list[tuple[dict[str, str], float]] = []
    cost: list[tuple[dict[str, str], float]] = []
    for eid, exp in collector.exporters.items():
        for name, value in exp.counters().items():
            exps.append(({"exporter": eid, "counter": name}, value))
        if hasattr(exp, "usage"):
            for (provider, model, node), n in sorted(exp.calls.items()):
                calls.append(({"provider": provider, "model": model, "node": node}, n))
            for (provider, model, node, kind), n in sorted(exp.usage.items()):
                labels = {"provider": provider, "model": model, "node": node, "type": kind}
                tokens.append((labels, n))
            for (provider, model, node), usd in sorted(exp.cost.items()):
                cost.append(({"provider": provider, "model": model, "node": node}, usd))
    metric(
        "otel_tokens_collector_exporter_counter", "gauge", "Counters reported by exporters.", exps
    )
    metric(
        "otel_tokens_llm_calls_total", "counter", "LLM call spans stored (new, not re-sent).", calls
    )
    metric(
        "otel_tokens_tokens_total",
        "counter",
        "Tokens of stored LLM calls; type input/output include cache/reasoning.",
        tokens,
    )
    metric("otel_tokens_cost_usd_total", "counter", "Cost in USD of stored LLM calls.", cost)
    from collector.processors.memory_limiter import rss_bytes

    metric(
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory of the collector.",
        [({}, rss_bytes())],
    )
    return "\n".join(out) + "\n"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    admin: AdminListener


class AdminListener:
    def __init__(self, config: AdminConfig, collector: Any, auth: Any) -> None:
        self.config = config
        self.collector = collector
        self.auth = auth
        host, port = parse_endpoint(config.endpoint, "service.admin.endpoint")
        self._server = _Server((host, port), _Handler)
        self._server.admin = self
        self.address: tuple[str, int] = self._server.server_address[:2]  # type: ignore[assignment]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="admin", daemon=True
        )

    def start(self) -> None:
        self._thread.start()
        log.info("admin listening on http://%s:%d", *self.address)

    def shutdown(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def query_cursor(self) -> duckdb.DuckDBPyConnection:
        for exp in self.collector.exporters.values():
            if hasattr(exp, "cursor") and getattr(exp, "connection", None) is not None:
                return exp.cursor()
        raise QueryError("no duckdb exporter is running in this collector")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    server_version = "otel-tokens-admin"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _send(
        self, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, doc: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(doc).encode(), "application/json", headers)

    def _authorized(self) -> bool:
        admin = self.server.admin
        if admin.auth is None or admin.auth.authenticate(self.headers.get("Authorization")):
            return True
        self._json(
            401, {"error": "missing or invalid bearer token"}, {"WWW-Authenticate": "Bearer"}
        )
        return False

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        admin = self.server.admin
        if path == "/healthz":
            return self._json(200, {"status": "ok"})
        if path == "/metrics":
            if not self._authorized():
                return None
            text = render_metrics(admin.collector).encode()
            return self._send(200, text, "text/plain; version=0.0.4; charset=utf-8")
        if path == "/v1/query":
            return self._json(405, {"error": "use POST"}, {"Allow": "POST"})
        return self._json(404, {"error": "not found"})

    do_HEAD = do_GET

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        if path != "/v1/query":
            return self._json(
                404 if path not in ("/healthz", "/metrics") else 405, {"error": "not found"}
            )
        if not self._authorized():
            return None
        try:
            length = int(self.headers.get("Content-Length") or "0")
        except ValueError:
            length = -1
        if length < 0 or length > _MAX_QUERY_BODY:
            self.close_connection = True
            return self._json(400, {"error": "body must be a JSON object under 1 MiB"})
        try:
            doc = json.loads(self.rfile.read(length) or b"null")
        except ValueError:
            return self._json(400, {"error": "body is not JSON"})
        if not isinstance(doc, dict):
            return self._json(400, {"error": 'body must be {"sql": "SELECT ..."}'})
        params = doc.get("params")
        if params is not None and not isinstance(params, list):
            return self._json(400, {"error": "params: must be a list"})
        admin = self.server.admin
        try:
            result = run_query(
                admin.query_cursor,
                doc.get("sql"),  # type: ignore[arg-type]
                params,
                admin.config.query_max_rows,
                admin.config.query_timeout,
            )
        except QueryError as exc:
            return self._json(400, {"error": str(exc)})
        except Exception as exc:  # never let a query take the listener down
            log.exception("query failed")
            return self._json(400, {"error": f"{type(exc).__name__}: {exc}".splitlines()[0]})
        self._json(200, result)
