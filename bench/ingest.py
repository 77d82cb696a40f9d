"""Collector ingest benchmark: OTLP/HTTP protobuf load against a collector subprocess on a temp DB.

Requests are encoded once (512 realistic spans: a request root, node spans, LLM calls with
gen_ai usage attributes, tools); each send patches a counter into every trace id so every span is
new, and shifts every start/end time to the moment of sending, as a live exporter's spans are
(dedupe stays on and does real work: each commit checks its keys against the stored spans whose
start times overlap the batch's). A template whose times never moved would make that check cover
the whole table on every commit, which no live traffic does. Several keep-alive client threads
send for a bounded time. Printed: accepted spans/s (acknowledged with 200), stored spans/s (rows
in the ``spans`` table afterwards, over the same time), request latency p50/p95/p99, the
collector's peak RSS, and the machine's load average (the 2 cores are shared).

``--overload`` offers twice the measured capacity open-loop (many concurrent senders): the
collector must answer 503 + Retry-After rather than grow, stay under 400 MB RSS, and every
acknowledged span must be in the database afterwards.

    .venv/bin/python bench/ingest.py                 # ~20 s throughput run
    .venv/bin/python bench/ingest.py --overload      # 2x capacity
    .venv/bin/python bench/ingest.py --smoke --json /tmp/ingest.json
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (  # noqa: E402
    ExportTraceServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue  # noqa: E402
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status  # noqa: E402

T0 = 1_763_900_000_000_000_000  # the template's time origin (ns); sends shift it to "now"
_MARK = (
    b"\xb7\x3c\x91\x5e\xa2\x0f\x66\xd4"  # first 8 bytes of every trace id: findable in the bytes
)
MODELS = [
    ("openai", "gpt-4o-mini"),
    ("anthropic", "claude-sonnet-4-5"),
    ("gcp.gemini", "gemini-2.5-flash"),
]
NODES = ["intent_classification", "retrieval", "answer", "fact_extraction"]


def _kv(key: str, value: Any) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


def build_request(spans: int, seed: int = 1) -> bytes:
    """An export of ``spans`` spans in traces of 8 (root, 2 nodes, 3 LLM calls, 2 tools)."""
    rnd = random.Random(seed)
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    for k, v in (
        ("service.name", "chat-api"),
        ("service.version", "1.4.2"),
        ("deployment.environment", "prod"),
    ):
        rs.resource.attributes.append(_kv(k, v))
    ss = rs.scope_spans.add()
    ss.scope.name = "otel_tokens"
    ss.scope.version = "0.1.0"
    t0 = T0
    n = 0
    trace_no = 0
    while n < spans:
        trace_id = _MARK + struct.pack(">I", 0) + struct.pack(">I", trace_no)
        trace_no += 1
        user = f"user-{rnd.randrange(500)}"
        corr = f"req-{rnd.getrandbits(48):012x}"
        start = t0 + trace_no * 1_000_000  # 64 traces per request start within 64 ms
        root_id = rnd.getrandbits(64).to_bytes(8, "big")
        layout: list[tuple[str, int, bytes]] = []
        layout.append(("root", Span.SPAN_KIND_SERVER, b""))
        node_ids = [rnd.getrandbits(64).to_bytes(8, "big") for _ in range(2)]
        for i in range(8):
            if n >= spans:
                break
            sp = ss.spans.add()
            sp.trace_id = trace_id
            sp.start_time_unix_nano = start + i * 1_000_000
            sp.end_time_unix_nano = sp.start_time_unix_nano + rnd.randrange(5, 2000) * 1_000_000
            sp.status.code = Status.STATUS_CODE_OK if i else Status.STATUS_CODE_UNSET
            if i == 0:
                sp.span_id = root_id
                sp.name = "POST /chat"
                sp.kind = Span.SPAN_KIND_SERVER
                for k, v in (
                    ("http.request.method", "POST"),
                    ("http.route", "/chat"),
                    ("http.response.status_code", 200),
                    ("enduser.id", user),
                    ("otel_tokens.correlation_id", corr),
                    ("otel_tokens.tenant", "acme"),
                ):
                    sp.attributes.append(_kv(k, v))
            elif i in (1, 2):
                sp.span_id = node_ids[i - 1]
                sp.parent_span_id = root_id
                node = NODES[(trace_no + i) % len(NODES)]
                sp.name = f"node {node}"
                sp.kind = Span.SPAN_KIND_INTERNAL
                for k, v in (
                    ("otel_tokens.node", node),
                    ("enduser.id", user),
                    ("otel_tokens.correlation_id", corr),
                ):
                    sp.attributes.append(_kv(k, v))
            elif i in (3, 4, 5):
                sp.span_id = rnd.getrandbits(64).to_bytes(8, "big")
                sp.parent_span_id = node_ids[i % 2]
                provider, model = MODELS[(trace_no + i) % len(MODELS)]
                sp.name = f"chat {model}"
                sp.kind = Span.SPAN_KIND_CLIENT
                inp, out = rnd.randrange(50, 4000), rnd.randrange(10, 800)
                for k, v in (
                    ("gen_ai.operation.name", "chat"),
                    ("gen_ai.provider.name", provider),
                    ("gen_ai.request.model", model),
                    ("gen_ai.response.model", model),
                    ("gen_ai.response.id", f"chatcmpl-{rnd.getrandbits(64):016x}"),
                    ("gen_ai.usage.input_tokens", inp),
                    ("gen_ai.usage.output_tokens", out),
                    ("gen_ai.usage.cache_read.input_tokens", inp // 4),
                    ("gen_ai.request.temperature", 0.2),
                    ("gen_ai.response.finish_reasons", "stop"),
                    ("server.address", "api.example.com"),
                    ("otel_tokens.node", NODES[(trace_no + i) % len(NODES)]),
                    ("enduser.id", user),
                    ("otel_tokens.correlation_id", corr),
                    ("otel_tokens.tenant", "acme"),
                ):
                    sp.attributes.append(_kv(k, v))
            else:
                sp.span_id = rnd.getrandbits(64).to_bytes(8, "big")
                sp.parent_span_id = node_ids[i % 2]
                sp.name = "execute_tool search"
                sp.kind = Span.SPAN_KIND_INTERNAL
                for k, v in (
                    ("gen_ai.operation.name", "execute_tool"),
                    ("gen_ai.tool.name", "search"),
                ):
                    sp.attributes.append(_kv(k, v))
            n += 1
    return req.SerializeToString()


# Span fields 7 and 8 (start / end time) are fixed64: tag byte, then 8 little-endian bytes.
_TIME_FIELD = re.compile(rb"[\x39\x41](.{8})", re.DOTALL)


class Template:
    """The encoded request plus where its trace ids and times are, so each send gets fresh ids
    and current timestamps cheaply."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.offsets = [m.start() + 8 for m in re.finditer(re.escape(_MARK), body)]
        self.times: list[tuple[int, int]] = []  # (offset, value) of every span start/end time
        for m in _TIME_FIELD.finditer(body):
            (value,) = struct.unpack("<Q", m.group(1))
            if T0 <= value < T0 + 10**13:
                self.times.append((m.start(1), value))

    def variant(self, counter: int, now_ns: int | None = None) -> bytes:
        buf = bytearray(self.body)
        stamp = struct.pack(">I", counter)
        for off in self.offsets:
            buf[off : off + 4] = stamp
        shift = (time.time_ns() if now_ns is None else now_ns) - T0 - 3 * 10**9
        pack_into = struct.pack_into
        for off, value in self.times:
            pack_into("<Q", buf, off, value + shift)
        return bytes(buf)


def start_collector(
    db: Path, extra_processors: bool = True, workers: int | None = None
) -> tuple[subprocess.Popen[bytes], dict[str, tuple[str, int]]]:
    cfg = db.with_suffix(".yaml")
    procs = ["memory_limiter"]
    try:
        import collector.processors.cost
        import collector.processors.normalize  # noqa: F401

        if extra_processors:
            procs += ["gen_ai_normalize", "gen_ai_cost"]
    except ImportError:
        pass
    procs.append("batch")
    cfg.write_text(
        "receivers:\n  otlp:\n    protocols:\n      http: {endpoint: '127.0.0.1:0'}\n"
        "processors:\n"
        + "".join(f"  {p}:\n" for p in procs)
        + f"exporters:\n  duckdb: {{path: '{db}'}}\n"
        "service:\n  admin: {endpoint: '127.0.0.1:0'}\n"
        + (f"  workers: {workers}\n" if workers is not None else "")
        + "  pipelines:\n    traces:\n"
        f"      receivers: [otlp]\n      processors: [{', '.join(procs)}]\n"
        "      exporters: [duckdb]\n"
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from collector.service import main; sys.exit(main(sys.argv[1]))",
            str(cfg),
        ],
        cwd=ROOT,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stderr.readline().decode()
        if not line:
            raise RuntimeError(f"collector exited early (code {proc.wait()})")
        if "collector ready" in line:
            addrs = {
                k: (v.rsplit(":", 1)[0], int(v.rsplit(":", 1)[1]))
                for k, v in re.findall(r"(\w+)=(\S+)", line)
            }
            threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()  # type: ignore[union-attr]
            return proc, addrs
    raise RuntimeError("collector did not start within 60 s")


def _tree(pid: int) -> list[int]:
    """The process and its descendants (the collector's worker processes).

    Read from each process's ``task/*/children`` rather than by scanning all of /proc: the
    sampler calls this ten times a second, on the same cores as the collector it measures.
    """
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for children in Path(f"/proc/{p}/task").glob("*/children"):
            try:
                todo.extend(int(c) for c in children.read_text().split())
            except OSError:
                continue
    return out


def _cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system) the processes have used so far."""
    total = 0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime in clock ticks
    return total / os.sysconf("SC_CLK_TCK")


def _pss_mb(pids: list[int]) -> float:
    """Proportional set size of the processes together: shared pages counted once overall."""
    kb = 0
    for p in pids:
        try:
            text = Path(f"/proc/{p}/smaps_rollup").read_text()
        except OSError:
            continue
        m = re.search(r"^Pss:\s+(\d+) kB", text, re.MULTILINE)
        kb += int(m.group(1)) if m else 0
    return kb / 1024


def _rss_kb(pid: int, field: str) -> int:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    m = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    return int(m.group(1)) if m else 0


class Load:
    """Shared counters of one load phase."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.acked: list[int] = []
        self.statuses: dict[int, int] = {}
        self.counter = 0
        self.errors = 0

    def next_counter(self) -> int:
        with self.lock:
            self.counter += 1
            return self.counter


def _send(conn: http.client.HTTPConnection, body: bytes) -> int:
    conn.request("POST", "/v1/traces", body, {"Content-Type": "application/x-protobuf"})
    resp = conn.getresponse()
    resp.read()
    if resp.getheader("Connection", "").lower() == "close":
        conn.close()
    return resp.status


def closed_loop(
    addr: tuple[str, int], tpl: Template, load: Load, clients: int, seconds: float
) -> float:
    deadline = time.monotonic() + seconds

    def client() -> None:
        conn = http.client.HTTPConnection(*addr, timeout=120)
        while time.monotonic() < deadline:
            c = load.next_counter()
            body = tpl.variant(c)
            t = time.perf_counter()
            try:
                status = _send(conn, body)
            except (OSError, http.client.HTTPException):
                load.errors += 1
                conn.close()
                conn = http.client.HTTPConnection(*addr, timeout=120)
                continue
            dt = time.perf_counter() - t
            with load.lock:
                load.statuses[status] = load.statuses.get(status, 0) + 1
                if status == 200:
                    load.latencies.append(dt)
                    load.acked.append(c)
            if status == 503:
                time.sleep(0.05)
        conn.close()

    t0 = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return time.monotonic() - t0


def open_loop(
    addr: tuple[str, int], tpl: Template, load: Load, rate: float, seconds: float, workers: int
) -> float:
    """Offer ``rate`` requests/s regardless of how fast they are answered (overload)."""
    local = threading.local()

    def one() -> None:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection(*addr, timeout=120)
        c = load.next_counter()
        body = tpl.variant(c)
        t = time.perf_counter()
        try:
            status = _send(conn, body)
        except (OSError, http.client.HTTPException):
            load.errors += 1
            conn.close()
            local.conn = None
            return
        dt = time.perf_counter() - t
        with load.lock:
            load.statuses[status] = load.statuses.get(status, 0) + 1
            if status == 200:
                load.latencies.append(dt)
                load.acked.append(c)

    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        i = 0
        while True:
            due = t0 + i / rate
            now = time.monotonic()
            if now - t0 >= seconds:
                break
            if due > now:
                time.sleep(due - now)
            pool.submit(one)
            i += 1
    return time.monotonic() - t0


def _pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] * 1000


def stored_counters(db: Path) -> tuple[int, set[int]]:
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    total = con.execute("SELECT count(*) FROM spans").fetchone()[0]  # type: ignore[index]
    rows = con.execute("SELECT DISTINCT substr(trace_id, 17, 8) FROM spans").fetchall()
    con.close()
    return int(total), {int(r[0], 16) for r in rows}


def run(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="otel-tokens-bench-"))
    db = tmp / "bench.duckdb"
    tpl = Template(build_request(args.spans_per_request))
    proc, addrs = start_collector(db, not args.no_processors, args.workers)
    addr = addrs["http"]
    load_before = os.getloadavg()
    peak_sampler_stop = threading.Event()
    peak = {"rss_kb": 0, "tree_rss_kb": 0, "tree_pss_mb": 0.0}

    def sample() -> None:
        # RSS ten times a second; PSS (smaps_rollup walks each process's page tables: ~0.13 of a
        # core at 10 Hz, on the cores being measured) once a second and whenever the tree's RSS
        # reaches a new high, which is where its PSS peaks too.
        tick = 0
        while not peak_sampler_stop.wait(0.1):
            peak["rss_kb"] = max(peak["rss_kb"], _rss_kb(proc.pid, "VmRSS"))
            pids = _tree(proc.pid)
            rss = sum(_rss_kb(p, "VmRSS") for p in pids)
            if rss > peak["tree_rss_kb"] or tick % 10 == 0:
                peak["tree_pss_mb"] = max(peak["tree_pss_mb"], _pss_mb(pids))
            peak["tree_rss_kb"] = max(peak["tree_rss_kb"], rss)
            tick += 1

    threading.Thread(target=sample, daemon=True).start()
    result: dict[str, Any] = {
        "spans_per_request": args.spans_per_request,
        "mode": "overload" if args.overload else "throughput",
        "collector_workers": "default" if args.workers is None else args.workers,
    }
    try:
        # Warm-up: imports, first checkpoint, caches.
        warm = Load()
        closed_loop(addr, tpl, warm, args.clients, 1.0 if args.smoke else 3.0)
        load = Load()
        load.counter = warm.counter
        pids = _tree(proc.pid)
        cpu_before = _cpu_seconds(pids)
        main_before = _cpu_seconds([proc.pid])
        client_before = time.process_time()
        if args.overload:
            capacity = len(warm.acked) * args.spans_per_request / (1.0 if args.smoke else 3.0)
            rate = max(1.0, 2 * capacity / args.spans_per_request)
            result["offered_requests_per_s"] = round(rate, 1)
            elapsed = open_loop(addr, tpl, load, rate, args.seconds, workers=args.overload_workers)
        else:
            elapsed = closed_loop(addr, tpl, load, args.clients, args.seconds)
        cpu_used = _cpu_seconds(pids) - cpu_before
        main_used = _cpu_seconds([proc.pid]) - main_before
        client_used = time.process_time() - client_before
        per_span = 1e6 / max(1, len(load.acked) * args.spans_per_request)
        result["collector_processes"] = len(pids)
        result["collector_cpu_us_per_span"] = round(cpu_used * per_span, 1)
        # Where it goes: the collector process (listener, queue, DuckDB writer), its workers
        # (decode, processors, Arrow), and this load generator, all on the same cores.
        result["collector_main_cpu_us_per_span"] = round(main_used * per_span, 1)
        result["workers_cpu_us_per_span"] = round((cpu_used - main_used) * per_span, 1)
        result["load_generator_cpu_us_per_span"] = round(client_used * per_span, 1)
        time.sleep(0.3)
        result["collector_peak_rss_mb_during_load"] = round(peak["rss_kb"] / 1024, 1)
        # With worker processes: every process's RSS added up (pages they share counted in
        # each), and their proportional set size (shared pages counted once): the real cost.
        result["collector_tree_peak_rss_mb"] = round(peak["tree_rss_kb"] / 1024, 1)
        result["collector_tree_peak_pss_mb"] = round(peak["tree_pss_mb"], 1)
        result["collector_vmhwm_mb"] = round(_rss_kb(proc.pid, "VmHWM") / 1024, 1)
    finally:
        peak_sampler_stop.set()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=120)
    result["collector_exit_code"] = code
    total, present = stored_counters(db)
    stored_in_load = sum(1 for c in load.acked if c in present)
    lost = [c for c in load.acked + warm.acked if c not in present]
    spans = args.spans_per_request
    result.update(
        {
            "seconds": round(elapsed, 2),
            "clients": args.clients if not args.overload else args.overload_workers,
            "requests_ok": len(load.acked),
            "status_counts": {str(k): v for k, v in sorted(load.statuses.items())},
            "client_errors": load.errors,
            "accepted_spans_per_s": round(len(load.acked) * spans / elapsed),
            "stored_spans_per_s": round(stored_in_load * spans / elapsed),
            "stored_spans_total": total,
            "latency_ms_p50": round(_pct(load.latencies, 50), 1),
            "latency_ms_p95": round(_pct(load.latencies, 95), 1),
            "latency_ms_p99": round(_pct(load.latencies, 99), 1),
            "acknowledged_but_missing_requests": len(lost),
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
            "db_bytes": db.stat().st_size,
        }
    )
    shutil.rmtree(tmp)  # the database, its config, and a journal a failed last load left
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--spans-per-request", type=int, default=512)
    ap.add_argument("--overload", action="store_true", help="offer 2x the measured capacity")
    ap.add_argument("--overload-workers", type=int, default=192)
    ap.add_argument(
        "--no-processors", action="store_true", help="without gen_ai_normalize/gen_ai_cost"
    )
    ap.add_argument(
        "--workers",
        type=int,
        default=None,
        help="the collector's service.workers (default: its own default, one per core but one)",
    )
    ap.add_argument("--smoke", action="store_true", help="tiny run (a few seconds)")
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = ap.parse_args(argv)
    if args.smoke:
        args.seconds = 2.0
        args.clients = 2
        args.spans_per_request = min(args.spans_per_request, 128)
        args.overload_workers = min(args.overload_workers, 16)
    result = run(args)
    width = max(len(k) for k in result)
    for k, v in result.items():
        print(f"{k:<{width}}  {v}")
    if args.json:
        Path(args.json).write_text(json.dumps({"ingest": result}, indent=2))
    ok = result["acknowledged_but_missing_requests"] == 0 and result["collector_exit_code"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
