"""CPU overhead of the plugin per LLM call and of stamping per non-LLM span (SPEC §8).

A stdlib fake OpenAI server runs in a separate process on 127.0.0.1 (its CPU is not counted)
and answers every chat completion with one canned non-streaming response with usage. The real
``openai`` client calls it from this process. Four figures, all thread CPU time
(``time.thread_time``):

1. End to end: blocks of ``--calls`` calls without instrumentation, with ours (traces only, the
   default when no metrics exporter is set) and with ours + SDK metrics; every round runs each
   mode once in a rotated order, and each instrumented block is compared with the
   un-instrumented block of the same round. Reported: median and quartiles of those per-round
   differences, plus a noise floor (the un-instrumented code measured as a second mode). The
   SDK call alone costs ~1.5 ms of CPU, so a few % of machine noise is ±50 µs here.
2. Inside the call: the same real calls, with our wrapper's own CPU read from inside (clock
   read before and after the SDK method it wraps), minus the same reading around a
   pass-through wrapper. Cold caches, GC and all, but without the SDK's noise. Two floors are
   read the same way: "SDK span alone" (a wrapper that only starts a CLIENT span with the
   three semconv creation attributes, current during the call, on a provider with the same
   span processors as the instrumented case: SimpleSpanProcessor to a no-op exporter, plus
   our stamping processor for ours) and "bare SDK span" (no attributes, no stamping: the
   least any instrumentation that makes a span per call can cost).
3. Breakdown, without HTTP: the wrapper around a function returning the parsed response, and
   each part of it alone (SDK span start+end, stamping, context attach/detach, reading the
   response, pricing, metric records, wrapt dispatch), so a note can say where the µs go.
4. Peers: the official ``opentelemetry-instrumentation-openai-v2`` runs the same end-to-end
   protocol against the same server in its own venv (``bench/peers/openai-v2.txt``; openai-v2
   cannot load beside openai 3.x), created with pip on first use (``--peers off`` to skip).

Spans go through a SimpleSpanProcessor to a no-op exporter; the global TracerProvider is an
SDK one, so the ``node`` span around the calls records like in an application (and metric
exemplars are offered under the SDK's default trace-based filter).

    .venv/bin/python bench/instrumentation.py [--calls 200] [--rounds 15] [--smoke]
        [--peers auto|off] [--json PATH]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

TARGET_CALL_US = 60.0
TARGET_SPAN_US = 2.0
PEERS = {"openai-v2": BENCH / "peers" / "openai-v2.txt"}

CANNED = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "This is a test.", "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 12,
            "completion_tokens": 5,
            "total_tokens": 17,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        },
        "service_tier": "default",
        "system_fingerprint": "fp_bench",
    }
).encode()
MESSAGES: Any = [{"role": "user", "content": "Say this is a test"}]

clock = time.thread_time


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, delayed ACKs stall each call ~40 ms.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(CANNED)))
        self.end_headers()
        self.wfile.write(CANNED)


def serve() -> None:
    """Child process: serve on a free port, print it, run until stdin closes."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    print(httpd.server_address[1], flush=True)
    import threading

    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    sys.stdin.read()


def start_server() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    return proc, f"http://127.0.0.1:{port}/v1"


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def fresh_providers() -> tuple[Any, Any]:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

    class NoOpExporter(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(NoOpExporter()))
    return tracer_provider, MeterProvider(metric_readers=[InMemoryMetricReader()])


def use_sdk_globally() -> None:
    """An SDK global TracerProvider, as in an application: ``node`` spans record."""
    from opentelemetry import trace

    trace.set_tracer_provider(fresh_providers()[0])


def cpu_per_call_us(call: Callable[[], Any], n: int) -> float:
    start = clock()
    for _ in range(n):
        call()
    return (clock() - start) / n * 1e6


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median and quartiles (the middle half of the rounds lies between p25 and p75)."""
    ordered = sorted(values)
    if len(ordered) < 2:
        return {"median": ordered[0], "p25": ordered[0], "p75": ordered[0]}
    q1, _, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    return {"median": statistics.median(ordered), "p25": q1, "p75": q3}


class Mode:
    """One way of running the client: set up before a block, torn down after.

    ``inside_us`` is set by modes that read the CPU of their wrapper from inside the call.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.error: str | None = None
        self.inside_s = 0.0

    def setup(self) -> None:
        pass

    def teardown(self) -> None:
        pass


class Ours(Mode):
    def __init__(self, name: str, with_metrics: bool) -> None:
        super().__init__(name)
        self.with_metrics = with_metrics

    def setup(self) -> None:
        from otel_tokens import metrics
        from otel_tokens.auto import add_stamping_processor
        from otel_tokens.instrumentation.openai import OpenAIInstrumentor

        tracer_provider, meter_provider = fresh_providers()
        add_stamping_processor(tracer_provider)
        # Without an SDK MeterProvider (the default when no metrics exporter is configured)
        # the instruments are the API's no-op ones.
        metrics.use_meter_provider(meter_provider if self.with_metrics else None)
        self.instrumentor = OpenAIInstrumentor()
        self.instrumentor.instrument(tracer_provider=tracer_provider)

    def teardown(self) -> None:
        from otel_tokens import metrics

        self.instrumentor.uninstrument()
        metrics.use_meter_provider(None)


def _pass_through(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    return wrapped(*args, **kwargs)


def _span_only(tracer: Any, with_attributes: bool = True) -> Callable[..., Any]:
    """The least any span-making wrapper does: an SDK CLIENT span, current during the call.

    ``with_attributes``: started with the three attributes semconv wants a sampler to see (as
    ours and openai-v2 do); without them, the bare minimum an instrumentation can pay.
    """
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.trace import SpanKind

    attributes = (
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
        }
        if with_attributes
        else None
    )

    def span_only(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        span = tracer.start_span("chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes=attributes)
        token = otel_context.attach(trace.set_span_in_context(span))
        try:
            return wrapped(*args, **kwargs)
        finally:
            otel_context.detach(token)
            span.end()

    return span_only


class TimedInside(Mode):
    """A wrapper whose own CPU is read from inside the call.

    ``instrumented``: the mode of an instrumentation (ours, openai-v2); the wrapper it installs
    on ``Completions.create`` is timed. Without it, ``span`` times a wrapper that only opens an
    SDK span with the three creation attributes (the floor for a GenAI instrumentation that
    makes spans), ``bare`` the same span without attributes and always on a provider without
    the stamping processor (the least any span costs), and ``pass`` a pass-through (the
    calibration). ``stamping``: the span wrappers' provider also has our stamping processor,
    so the floor has exactly the processors of the instrumented case it is compared with
    (SimpleSpanProcessor to a no-op exporter, plus stamping for ours). The clock is read when
    the wrapper is entered and left, and around the SDK method it calls; ``inside_s``
    accumulates the wrapper's time minus the SDK's.
    """

    def __init__(
        self,
        name: str,
        wrapper: str = "",
        instrumented: Mode | None = None,
        stamping: bool = False,
    ) -> None:
        super().__init__(name)
        self.wrapper = wrapper
        self.instrumented = instrumented
        self.stamping = stamping

    def setup(self) -> None:
        import wrapt
        from openai.resources.chat.completions.completions import Completions

        wrapper, original = self.wrappers()
        self.replaced = Completions.__dict__["create"]
        self.cls: Any = Completions
        Completions.create = wrapt.FunctionWrapper(original, self.measured(wrapper))  # type: ignore[method-assign]

    def wrappers(self) -> tuple[Callable[..., Any], Any]:
        """The wrapper to measure and the SDK method it wraps."""
        from openai.resources.chat.completions.completions import Completions

        if self.instrumented is not None:
            self.instrumented.setup()
            installed = Completions.__dict__["create"]
            wrapper, original = installed._self_wrapper, installed.__wrapped__
        else:
            provider = fresh_providers()[0]
            if self.stamping and self.wrapper == "span":
                from otel_tokens.auto import add_stamping_processor

                add_stamping_processor(provider)
            tracer = provider.get_tracer("bench")
            wrapper = (
                _span_only(tracer, with_attributes=self.wrapper == "span")
                if self.wrapper in ("span", "bare")
                else _pass_through
            )
            original = Completions.__dict__["create"]
        return wrapper, original

    def measured(self, wrapper: Callable[..., Any]) -> Callable[..., Any]:
        """``wrapper``, its own CPU time (the SDK method's subtracted) added to ``inside_s``."""
        mode = self

        def timed(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            entered = clock()
            sdk = 0.0

            def sdk_method(*a: Any, **k: Any) -> Any:
                nonlocal sdk
                start = clock()
                try:
                    return wrapped(*a, **k)
                finally:
                    sdk += clock() - start

            try:
                return wrapper(sdk_method, instance, args, kwargs)
            finally:
                mode.inside_s += clock() - entered - sdk

        return timed

    def teardown(self) -> None:
        self.cls.create = self.replaced
        if self.instrumented is not None:
            self.instrumented.teardown()


class Counted(TimedInside):
    """A wrapper whose own machine instructions callgrind counts (``--instructions``).

    Counting is off outside the wrapper: the process runs under ``valgrind --tool=callgrind
    --collect-atstart=no --toggle-collect=starmap_next --toggle-collect=dropwhile_next``, the
    wrapper is called from inside ``itertools.starmap`` (counting on) and the SDK method it
    wraps from inside ``itertools.dropwhile`` (counting off again), two C functions nothing
    else on this path calls. Unlike CPU time, the count does not move with machine load.
    """

    counting = False  # the warm-up calls go around the counted path

    def measured(self, wrapper: Callable[..., Any]) -> Callable[..., Any]:
        import itertools

        def counted(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            if not Counted.counting:
                return wrapper(wrapped, instance, args, kwargs)
            result: list[Any] = []

            def sdk_call(_: object) -> bool:
                result.append(wrapped(*call[0], **call[1]))
                return False

            call: list[Any] = []

            def sdk_method(*a: Any, **k: Any) -> Any:
                call[:] = [a, k]
                next(itertools.dropwhile(sdk_call, (0,)))
                return result.pop()

            return next(itertools.starmap(wrapper, ((sdk_method, instance, args, kwargs),)))

        return counted


class OfficialV2(Mode):
    """``opentelemetry-instrumentation-openai-v2`` (only in its own venv, see PEERS)."""

    def __init__(self, name: str, with_metrics: bool) -> None:
        super().__init__(name)
        self.with_metrics = with_metrics

    def setup(self) -> None:
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
        from opentelemetry.metrics import NoOpMeterProvider

        tracer_provider, meter_provider = fresh_providers()
        self.instrumentor = OpenAIInstrumentor()
        self.instrumentor.instrument(
            tracer_provider=tracer_provider,
            meter_provider=meter_provider if self.with_metrics else NoOpMeterProvider(),
        )

    def teardown(self) -> None:
        self.instrumentor.uninstrument()


def run_rounds(url: str, modes: list[Mode], calls: int, rounds: int) -> dict[str, Any]:
    """Interleaved blocks: every round runs every mode once, in an order rotated per round."""
    import openai

    client = openai.OpenAI(base_url=url, api_key="bench", max_retries=0)

    def one_call() -> Any:
        return client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    for mode in modes:  # warm up: imports, connection pool, price cache
        try:
            mode.setup()
            cpu_per_call_us(one_call, max(5, calls // 10))
            mode.teardown()
        except Exception as exc:
            mode.error = f"{type(exc).__name__}: {exc}"
    live = [m for m in modes if m.error is None]
    per_call: dict[str, list[float]] = {m.name: [] for m in live}
    inside: dict[str, list[float]] = {m.name: [] for m in live if isinstance(m, TimedInside)}
    for r in range(rounds):
        for mode in live[r % len(live) :] + live[: r % len(live)]:
            mode.setup()
            mode.inside_s = 0.0
            gc.collect()  # every block starts from the same collector state
            try:
                per_call[mode.name].append(cpu_per_call_us(one_call, calls))
            finally:
                mode.teardown()
            if mode.name in inside:
                inside[mode.name].append(mode.inside_s / calls * 1e6)
    return {
        "per_call": per_call,
        "inside": inside,
        "errors": {m.name: m.error for m in modes if m.error is not None},
    }


def paired_overhead(per_call: dict[str, list[float]], name: str, base: str) -> dict[str, float]:
    """Spread of (mode - base) over rounds, each round compared with itself."""
    return spread([a - b for a, b in zip(per_call[name], per_call[base], strict=True)])


def timed_modes(name: str, instrumented: Mode, stamping: bool) -> list[Mode]:
    """Calibration, the SDK-span floors and ``instrumented``, each read from inside the call.

    ``stamping``: ``instrumented`` runs with our stamping processor, so the floor does too.
    """
    return [
        TimedInside("timed pass-through", "pass"),
        TimedInside("timed SDK span only", "span", stamping=stamping),
        TimedInside("timed bare SDK span", "bare"),
        TimedInside(f"timed {name}", instrumented=instrumented),
    ]


def read_inside(inside: dict[str, list[float]], name: str) -> dict[str, dict[str, float]]:
    """In-call CPU of ``name`` and of the SDK span alone (minus the calibration), and their
    per-round ratio: both slow down together when the machine is busy, so the ratio moves less.
    """
    calibration = inside["timed pass-through"]
    ours, span = inside[f"timed {name}"], inside["timed SDK span only"]
    bare = inside["timed bare SDK span"]
    return {
        "inside": spread([a - c for a, c in zip(ours, calibration, strict=True)]),
        "inside_span_only": spread([s - c for s, c in zip(span, calibration, strict=True)]),
        "inside_bare_span": spread([b - c for b, c in zip(bare, calibration, strict=True)]),
        "inside_above_span_only": spread([a - s for a, s in zip(ours, span, strict=True)]),
        "inside_over_span_only": spread(
            [(a - c) / (s - c) for a, s, c in zip(ours, span, calibration, strict=True)]
        ),
    }


def bench_calls(url: str, calls: int, rounds: int) -> dict[str, Any]:
    import otel_tokens

    modes = [
        Mode("none"),
        Mode("none (again)"),  # the noise floor: same code, measured as a separate mode
        Ours("otel_tokens", with_metrics=False),
        Ours("otel_tokens+metrics", with_metrics=True),
        *timed_modes("otel_tokens", Ours("otel_tokens", with_metrics=False), stamping=True),
    ]
    with otel_tokens.usage_context(user_id="bench-user", correlation_id="bench"):
        with otel_tokens.node("bench_node"):
            run = run_rounds(url, modes, calls, rounds)
    per_call = run["per_call"]
    inside = run["inside"]

    return {
        "none": spread(per_call["none"]),
        "noise_floor": paired_overhead(per_call, "none (again)", "none"),
        "otel_tokens": paired_overhead(per_call, "otel_tokens", "none"),
        "otel_tokens+metrics": paired_overhead(per_call, "otel_tokens+metrics", "none"),
        **read_inside(inside, "otel_tokens"),
        "per_call": per_call,
        "errors": run["errors"],
    }


def peer_worker(name: str, url: str, calls: int, rounds: int) -> dict[str, Any]:
    """In the peer's venv: the same end-to-end protocol, un-instrumented vs the peer."""
    import openai
    from opentelemetry import trace

    modes = [
        Mode("none"),
        Mode("none (again)"),
        OfficialV2(name, with_metrics=False),
        OfficialV2(f"{name}+metrics", with_metrics=True),
        *timed_modes(name, OfficialV2(name, with_metrics=False), stamping=False),
    ]
    # A recording parent span, as the ``node`` span is for ours.
    with trace.get_tracer("bench").start_as_current_span("bench_node"):
        run = run_rounds(url, modes, calls, rounds)
    if run["errors"]:
        return {"errors": run["errors"]}
    per_call = run["per_call"]
    return {
        "openai_version": openai.__version__,
        "none": spread(per_call["none"]),
        "noise_floor": paired_overhead(per_call, "none (again)", "none"),
        "overhead": paired_overhead(per_call, name, "none"),
        "overhead_metrics": paired_overhead(per_call, f"{name}+metrics", "none"),
        **read_inside(run["inside"], name),
        "per_call": per_call,
        "load_average": load_average(),
    }


def counted_mode(name: str) -> Counted:
    """A mode of ``--instructions``: ``pass``, ``bare``, ``span`` or an instrumentation.

    The floors of ours have our stamping processor, like ours (see TimedInside); a peer's
    (``peer:...``, run in the peer's venv) have not.
    """
    peer = name.startswith("peer:")
    kind = name.removeprefix("peer:")
    if kind in ("pass", "bare", "span"):
        return Counted(name, kind, stamping=not peer)
    if peer:
        return Counted(name, instrumented=OfficialV2(kind, with_metrics=False))
    return Counted(name, instrumented=Ours(kind, with_metrics=kind.endswith("+metrics")))


def count_worker(name: str, url: str, calls: int) -> None:
    """Under callgrind: warm up ``name`` uncounted, then make ``calls`` counted calls."""
    import contextlib

    import openai
    from opentelemetry import trace

    mode = counted_mode(name)
    client = openai.OpenAI(base_url=url, api_key="bench", max_retries=0)
    if name.startswith("peer:"):  # a recording parent span, as in peer_worker
        scope: Any = trace.get_tracer("bench").start_as_current_span("bench_node")
    else:
        import otel_tokens

        scope = contextlib.ExitStack()
        scope.enter_context(otel_tokens.usage_context(user_id="bench-user", correlation_id="b"))
        scope.enter_context(otel_tokens.node("bench_node"))
    mode.setup()
    with scope:
        for _ in range(max(10, calls // 5)):
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        gc.collect()
        Counted.counting = True
        for _ in range(calls):
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        Counted.counting = False
    mode.teardown()


COUNTED = ("pass", "bare", "span", "otel_tokens", "otel_tokens+metrics")
COUNTED_PEER = ("peer:pass", "peer:bare", "peer:span", "peer:openai-v2")


def bench_instructions(url: str, calls: int) -> dict[str, Any]:
    """Instructions executed inside the call per mode (pass-through subtracted), by callgrind.

    Each mode runs in its own process under valgrind (about a minute each: imports are slow
    there); the peer's modes in the peer's venv when it exists.
    """
    import re
    import shutil
    import tempfile

    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return {"errors": {"instructions": "valgrind not found"}}
    peer, _ = peer_python("openai-v2", install=False)
    runs = [(sys.executable, m) for m in COUNTED]
    runs += [(str(peer), m) for m in COUNTED_PEER] if peer is not None else []
    per_call: dict[str, float] = {}
    errors: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for python, name in runs:
            done = subprocess.run(
                [
                    valgrind, "--tool=callgrind", "--collect-atstart=no",
                    "--toggle-collect=starmap_next", "--toggle-collect=dropwhile_next",
                    f"--callgrind-out-file={tmp}/callgrind.out", python, __file__,
                    "--count-worker", name, "--url", url, "--calls", str(calls),
                ],
                capture_output=True, text=True, timeout=1800,
            )  # fmt: skip
            found = re.search(r"Collected : ([\d,]+)", done.stderr)
            if done.returncode != 0 or found is None:
                errors[name] = (done.stderr.strip().splitlines() or ["no output"])[-1]
                continue
            per_call[name] = int(found.group(1).replace(",", "")) / calls
    out: dict[str, Any] = {"per_call_raw": per_call, "errors": errors}
    for prefix in ("", "peer:"):
        base = per_call.get(f"{prefix}pass")
        if base is None:
            continue
        for name, value in per_call.items():
            if name.startswith(prefix) and (prefix or not name.startswith("peer:")):
                out[name] = value - base
    return out


def peer_python(name: str, install: bool) -> tuple[Path | None, str | None]:
    """The peer venv's python, created with pip from the pinned requirements on first use."""
    venv = BENCH / "peers" / f".venv-{name}"
    python = venv / "bin" / "python"
    if python.exists():
        return python, None
    if not install:
        return None, f"no venv at {venv} (run without --peers off to create it)"
    print(f"creating {venv} from {PEERS[name].name} (pip, once) ...", flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "-r", str(PEERS[name])],
            check=True,
            capture_output=True,
            text=True,
            timeout=900,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        detail = getattr(exc, "stderr", None) or str(exc)
        return None, f"could not create {venv}: {detail.strip().splitlines()[-1]}"
    return python, None


def bench_peer(name: str, url: str, calls: int, rounds: int, install: bool) -> dict[str, Any]:
    python, problem = peer_python(name, install)
    if python is None:
        return {"errors": {name: problem}}
    worker = ["--peer-worker", name, "--url", url, "--calls", str(calls), "--rounds", str(rounds)]
    done = subprocess.run(
        [str(python), __file__, *worker],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if done.returncode != 0:
        return {"errors": {name: done.stderr.strip().splitlines()[-1:]}}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def python_opcodes(call: Callable[[], Any], n: int = 50) -> dict[str, float]:
    """Bytecode instructions executed per call, ours vs OpenTelemetry's (API and SDK).

    Unlike CPU time this does not move with machine load, so before/after comparisons of our
    own Python work hold on a busy machine (C code, e.g. dict operations, is not counted).
    """
    counts = {"ours": 0, "opentelemetry": 0, "other": 0}
    owners: dict[str, str] = {}

    def trace_opcodes(frame: Any, event: str, arg: Any) -> Any:
        frame.f_trace_opcodes = True
        if event == "opcode":
            filename = frame.f_code.co_filename
            owner = owners.get(filename)
            if owner is None:
                owner = owners[filename] = (
                    "ours"
                    if "/otel_tokens/" in filename
                    else "opentelemetry"
                    if "/opentelemetry/" in filename
                    else "other"
                )
            counts[owner] += 1
        return trace_opcodes

    call()
    sys.settrace(trace_opcodes)
    try:
        for _ in range(n):
            call()
    finally:
        sys.settrace(None)
    return {owner: count / n for owner, count in counts.items()}


def bench_breakdown(calls: int, rounds: int) -> dict[str, float]:
    """µs per call of the whole wrapper (no HTTP) and of each of its parts alone."""
    import openai
    from openai.types.chat import ChatCompletion
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.trace import SpanKind

    import otel_tokens
    from otel_tokens import metrics
    from otel_tokens.auto import add_stamping_processor
    from otel_tokens.instrumentation.genai_span import LLMCall, price_book
    from otel_tokens.instrumentation.openai import patch
    from otel_tokens.processor import StampingProcessor
    from otel_tokens.usage import Usage

    response = ChatCompletion.model_validate(json.loads(CANNED))
    resource = openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="bench").chat.completions
    kwargs = {"model": "gpt-4o-mini", "messages": MESSAGES}

    def sdk_method(*args: Any, **kwargs: Any) -> Any:
        return response

    def median_us(call: Callable[[], Any], n: int = calls) -> float:
        cpu_per_call_us(call, max(10, n // 5))
        return statistics.median(cpu_per_call_us(call, n) for _ in range(rounds))

    tracer_provider, meter_provider = fresh_providers()
    add_stamping_processor(tracer_provider)
    tracer = tracer_provider.get_tracer("bench")
    plain_provider, _ = fresh_providers()
    plain_tracer = plain_provider.get_tracer("bench")
    traced = patch.create(tracer, "chat")
    start_attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
    }
    idle = LLMCall(trace.NoOpTracer(), provider="openai", operation="chat", request_model="m")
    usage = Usage(input_tokens=12, output_tokens=5, cache_read_tokens=0, reasoning_tokens=0)
    book = price_book()
    assert book is not None and book.cost(usage, "gpt-4o-mini-2024-07-18", "openai")
    sdk_metrics = metrics.use_meter_provider(meter_provider)
    metric_attributes = metrics.MetricAttributes(
        {
            "gen_ai.provider.name": "openai",
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o-mini",
            "otel_tokens.node": "n",
        }
    )
    probe = plain_tracer.start_span("probe")
    stamper = StampingProcessor()

    def attach_detach() -> None:
        otel_context.detach(otel_context.attach(trace.set_span_in_context(probe)))

    wrapped_bare = __import__("wrapt").FunctionWrapper(sdk_method, _pass_through)
    out: dict[str, float] = {}
    with otel_tokens.usage_context(user_id="u", correlation_id="c"), otel_tokens.node("n"):
        bare = median_us(lambda: sdk_method(**kwargs))
        metrics.use_meter_provider(None)
        out["wrapper_traces_us_per_call"] = (
            median_us(lambda: traced(sdk_method, resource, (), kwargs)) - bare
        )
        metrics.use_meter_provider(meter_provider)
        out["wrapper_traces+metrics_us_per_call"] = (
            median_us(lambda: traced(sdk_method, resource, (), kwargs)) - bare
        )
        metrics.use_meter_provider(None)
        out["part_sdk_span_us"] = median_us(
            lambda: plain_tracer.start_span(
                "chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes=start_attributes
            ).end()
        )
        out["part_stamping_us"] = median_us(lambda: stamper.on_start(probe))
        out["part_context_us"] = median_us(attach_detach)
        out["part_read_response_us"] = median_us(
            lambda: patch.record_response(idle, "chat", response, kwargs)
        )
        out["part_pricing_us"] = median_us(
            lambda: book.cost(usage, "gpt-4o-mini-2024-07-18", "openai")
        )
        out["part_metrics_us"] = median_us(
            lambda: sdk_metrics.record(
                metric_attributes, input_tokens=12, output_tokens=5, duration_s=0.5, cost_usd=1e-5
            )
        )
        out["part_wrapt_us"] = median_us(lambda: wrapped_bare(**kwargs)) - bare
        opcodes = python_opcodes(lambda: traced(sdk_method, resource, (), kwargs))
        out["opcodes_ours"] = opcodes["ours"]
        out["opcodes_opentelemetry"] = opcodes["opentelemetry"]
    parts = ("sdk_span", "stamping", "context", "read_response", "pricing", "wrapt")
    out["part_rest_us"] = out["wrapper_traces_us_per_call"] - sum(
        out[f"part_{p}_us"] for p in parts
    )
    return out


def bench_stamping(spans: int, rounds: int) -> dict[str, float]:
    """Per non-LLM span: start+end with the stamping processor on vs off, inside a scope."""
    import otel_tokens
    from otel_tokens.processor import StampingProcessor

    off_provider, _ = fresh_providers()
    on_provider, _ = fresh_providers()
    on_provider.add_span_processor(StampingProcessor())
    off_tracer = off_provider.get_tracer("bench")
    on_tracer = on_provider.get_tracer("bench")
    processor = StampingProcessor()
    off, on, direct = [], [], []
    # Many short blocks, alternating: a busy neighbour only ever adds CPU time, so the least
    # disturbed block of each kind (the minimum) is compared; the paired median is reported too.
    blocks, per_block = rounds * 10, max(100, spans // 10)
    with otel_tokens.usage_context(user_id="u", correlation_id="c", tenant="t"):
        with otel_tokens.node("n"):
            probe = on_tracer.start_span("probe")
            for _ in range(blocks):
                off.append(cpu_per_call_us(lambda: off_tracer.start_span("s").end(), per_block))
                on.append(cpu_per_call_us(lambda: on_tracer.start_span("s").end(), per_block))
                direct.append(cpu_per_call_us(lambda: processor.on_start(probe), per_block))
    return {
        "span_off_us": min(off),
        "span_on_us": min(on),
        "stamping_us_per_span": min(on) - min(off),
        "stamping_paired_median_us": statistics.median(b - a for a, b in zip(off, on, strict=True)),
        "on_start_us": min(direct),
    }


def _row(label: str, s: dict[str, float], call: dict[str, float] | None = None) -> str:
    # The share of the un-instrumented call moves less with machine load than µs do.
    share = f"{s['median'] / call['median']:>8.1%}" if call else ""
    return f"{label:<38}{s['median']:>9.1f}{s['p25']:>9.1f}{s['p75']:>9.1f}{share}"


def _print_inside(name: str, figures: dict[str, Any]) -> None:
    none = figures["none"]
    print(_row(f"  {name}, read inside the call", figures["inside"], none))
    print(_row("  SDK span alone, read inside the call", figures["inside_span_only"], none))
    print(_row("  bare SDK span (no attributes)", figures["inside_bare_span"], none))
    print(_row(f"  {name} above the SDK span alone", figures["inside_above_span_only"], none))
    ratio = figures["inside_over_span_only"]
    print(
        f"  {name} / SDK span alone, per round: {ratio['median']:.2f} "
        f"(p25 {ratio['p25']:.2f}, p75 {ratio['p75']:.2f})"
    )


def report(calls: dict[str, Any], peers: dict[str, Any], parts: dict[str, float]) -> None:
    none = calls["none"]
    print(
        f"{'CPU µs per call (per-round pairs)':<38}{'median':>9}{'p25':>9}{'p75':>9}{'of call':>8}"
    )
    print(_row("un-instrumented call", none))
    print(_row("  noise floor (same code again)", calls["noise_floor"], none))
    print(_row("  otel_tokens overhead", calls["otel_tokens"], none))
    print(_row("  otel_tokens+metrics overhead", calls["otel_tokens+metrics"], none))
    _print_inside("otel_tokens", calls)
    for name, peer in peers.items():
        if "errors" in peer:
            print(f"{name:<38}unavailable: {peer['errors']}")
            continue
        print(_row(f"{name}: un-instrumented (openai {peer['openai_version']})", peer["none"]))
        print(_row("  noise floor (same code again)", peer["noise_floor"], peer["none"]))
        print(_row(f"  {name} overhead", peer["overhead"], peer["none"]))
        print(_row(f"  {name}+metrics overhead", peer["overhead_metrics"], peer["none"]))
        _print_inside(name, peer)
    for name, error in calls["errors"].items():
        print(f"{name:<34}unavailable: {error}")
    print(
        "wrapper without HTTP: "
        f"{parts['wrapper_traces_us_per_call']:.1f} µs traces only, "
        f"{parts['wrapper_traces+metrics_us_per_call']:.1f} µs with SDK metrics; parts alone:"
    )
    print(
        "  ".join(
            f"{key.removeprefix('part_').removesuffix('_us')} {value:.1f}"
            for key, value in parts.items()
            if key.startswith("part_")
        )
    )
    print(
        "Python bytecode instructions per call (traces only, load-independent): "
        f"otel_tokens {parts['opcodes_ours']:.0f}, "
        f"OpenTelemetry API+SDK {parts['opcodes_opentelemetry']:.0f}"
    )


def report_instructions(counts: dict[str, Any]) -> None:
    print("instructions per call inside the call (callgrind; pass-through subtracted):")
    for prefix, name in (("", "otel_tokens"), ("peer:", "openai-v2")):
        span = counts.get(f"{prefix}span")
        if span is None:
            continue
        bare = counts.get(f"{prefix}bare", float("nan"))
        line = [f"  {prefix or 'ours: '}bare SDK span {bare:,.0f}"]
        line.append(f"SDK span alone {span:,.0f}")
        for mode in (name, f"{name}+metrics"):
            if f"{prefix}{mode}" in counts:
                value = counts[f"{prefix}{mode}"]
                line.append(f"{mode} {value:,.0f} ({value / span:.2f}x span alone)")
        print(", ".join(line))
    for name, error in counts["errors"].items():
        print(f"  {name}: unavailable: {error}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200, help="calls per block")
    parser.add_argument("--rounds", type=int, default=15, help="blocks per mode")
    parser.add_argument("--spans", type=int, default=50000, help="spans per stamping round")
    parser.add_argument("--peers", choices=("auto", "off"), default="auto")
    parser.add_argument("--smoke", action="store_true", help="tiny run, a few seconds")
    parser.add_argument("--json", type=Path, help="write results as a JSON object here")
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="also count instructions inside the call with callgrind (valgrind; ~10 min)",
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--count-worker", help=argparse.SUPPRESS)
    parser.add_argument("--peer-worker", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve()
        return 0
    use_sdk_globally()
    if args.count_worker:
        count_worker(args.count_worker, args.url, args.calls)
        return 0
    if args.peer_worker:
        print(json.dumps(peer_worker(args.peer_worker, args.url, args.calls, args.rounds)))
        return 0
    if args.smoke:
        args.calls, args.rounds, args.spans, args.peers = 30, 3, 2000, "off"
    load_before = load_average()
    print(f"load average {load_before}; {args.rounds} rounds x {args.calls} calls per mode")
    proc, url = start_server()
    try:
        calls = bench_calls(url, args.calls, args.rounds)
        peers = {
            name: bench_peer(name, url, args.calls, args.rounds, install=True)
            for name in PEERS
            if args.peers == "auto"
        }
        counts = bench_instructions(url, min(args.calls, 100)) if args.instructions else {}
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=10)
    stamping = bench_stamping(args.spans, args.rounds)
    parts = bench_breakdown(args.calls * 10, max(3, args.rounds // 3))
    report(calls, peers, parts)
    if counts:
        report_instructions(counts)
    ours = calls["otel_tokens"]["median"]
    inside = calls["inside"]["median"]
    # The end-to-end median alone can land under the target by noise (see the noise floor);
    # the target counts as met only when the in-call reading agrees.
    meets_call_target = ours <= TARGET_CALL_US and inside <= TARGET_CALL_US
    print(
        f"otel_tokens overhead {ours:.1f} µs/call end to end, {inside:.1f} µs read inside the "
        f"call (target ≤ {TARGET_CALL_US:.0f}: {'met' if meets_call_target else 'missed'})"
    )
    print(
        f"stamping: {stamping['stamping_us_per_span']:.2f} µs/span "
        f"(span start+end {stamping['span_off_us']:.2f} -> {stamping['span_on_us']:.2f} µs; "
        f"on_start alone {stamping['on_start_us']:.2f} µs; least disturbed of many blocks; "
        f"paired median {stamping['stamping_paired_median_us']:.2f} µs; "
        f"target ≤ {TARGET_SPAN_US:.0f})"
    )
    load_after = load_average()
    print(f"load average {load_after}")
    v2 = peers.get("openai-v2", {})
    result = {
        "calls_per_round": args.calls,
        "rounds": args.rounds,
        "load_average_before": load_before,
        "load_average_after": load_after,
        "none_us_per_call": calls["none"]["median"],
        "noise_floor_us_per_call": calls["noise_floor"]["median"],
        "otel_tokens_us_per_call": calls["none"]["median"] + ours,
        "otel_tokens_overhead_us_per_call": ours,
        "otel_tokens_overhead": calls["otel_tokens"],
        "otel_tokens_metrics_overhead_us_per_call": calls["otel_tokens+metrics"]["median"],
        "otel_tokens_metrics_overhead": calls["otel_tokens+metrics"],
        "otel_tokens_inside_us_per_call": calls["inside"]["median"],
        "otel_tokens_inside": calls["inside"],
        "otel_tokens_inside_share_of_call": calls["inside"]["median"] / calls["none"]["median"],
        "sdk_span_only_inside_us_per_call": calls["inside_span_only"]["median"],
        "sdk_bare_span_inside_us_per_call": calls["inside_bare_span"]["median"],
        "otel_tokens_above_sdk_span_only_us_per_call": calls["inside_above_span_only"]["median"],
        "otel_tokens_over_sdk_span_only": calls["inside_over_span_only"]["median"],
        **parts,
        "openai_v2_overhead_us_per_call": v2.get("overhead", {}).get("median"),
        "openai_v2_inside_us_per_call": v2.get("inside", {}).get("median"),
        "openai_v2_over_sdk_span_only": v2.get("inside_over_span_only", {}).get("median"),
        "peers": peers,
        "unavailable": calls["errors"],
        **stamping,
        "target_call_us": TARGET_CALL_US,
        "target_span_us": TARGET_SPAN_US,
        "meets_call_target": meets_call_target,
        "meets_span_target": stamping["stamping_us_per_span"] <= TARGET_SPAN_US,
        "per_call": calls["per_call"],
        **({"instructions": counts} if counts else {}),
    }
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
