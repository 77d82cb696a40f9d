"""CPU overhead of the plugin per LLM call and of stamping per non-LLM span (SPEC §8).

A stdlib fake OpenAI server runs in a separate process on 127.0.0.1 (so its CPU time is not
counted) and answers every chat completion with one canned non-streaming response with usage.
The real ``openai`` client calls it in this process, with no instrumentation, with ours, and
with the official ``opentelemetry-instrumentation-openai-v2`` when it can be imported; rounds
are interleaved and CPU time (``time.process_time``) per call is the median over rounds.
Each instrumented mode gets a fresh TracerProvider whose spans go to a no-op exporter through
a SimpleSpanProcessor, and an SDK MeterProvider with an in-memory reader.

    .venv/bin/python bench/instrumentation.py [--calls 500] [--rounds 7] [--smoke] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TARGET_CALL_US = 60.0
TARGET_SPAN_US = 2.0

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


def cpu_per_call_us(call: Callable[[], Any], n: int) -> float:
    start = time.process_time()
    for _ in range(n):
        call()
    return (time.process_time() - start) / n * 1e6


class Mode:
    """One way of running the client: set up before a round, torn down after."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.error: str | None = None

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


class OfficialV2(Mode):
    def setup(self) -> None:
        import httpx2

        # openai 3.x renamed httpx to httpx2; openai-v2 still imports httpx.
        sys.modules.setdefault("httpx", httpx2)
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

        tracer_provider, meter_provider = fresh_providers()
        self.instrumentor = OpenAIInstrumentor()
        self.instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)

    def teardown(self) -> None:
        self.instrumentor.uninstrument()


def bench_calls(url: str, calls: int, rounds: int) -> dict[str, Any]:
    import openai

    import otel_tokens

    client = openai.OpenAI(base_url=url, api_key="bench", max_retries=0)
    messages = [{"role": "user", "content": "Say this is a test"}]

    def one_call() -> Any:
        return client.chat.completions.create(model="gpt-4o-mini", messages=messages)

    modes = [
        Mode("none"),
        Mode("none (again)"),  # the noise floor: same code, measured as a separate mode
        Ours("otel_tokens", with_metrics=False),
        Ours("otel_tokens+metrics", with_metrics=True),
        OfficialV2("openai-v2"),
    ]
    for mode in modes:  # warm up: imports, connection pool, price cache
        try:
            mode.setup()
            cpu_per_call_us(one_call, max(5, calls // 10))
            mode.teardown()
        except Exception as exc:
            mode.error = f"{type(exc).__name__}: {exc}"
    results: dict[str, list[float]] = {m.name: [] for m in modes if m.error is None}
    with otel_tokens.usage_context(user_id="bench-user", correlation_id="bench"):
        with otel_tokens.node("bench_node"):
            for r in range(rounds):
                # Rotate the order every round so no mode always runs first or last.
                for mode in modes[r % len(modes) :] + modes[: r % len(modes)]:
                    if mode.error is not None:
                        continue
                    mode.setup()
                    try:
                        results[mode.name].append(cpu_per_call_us(one_call, calls))
                    finally:
                        mode.teardown()
    return {
        "medians": {name: statistics.median(v) for name, v in results.items()},
        "rounds": results,
        "errors": {m.name: m.error for m in modes if m.error is not None},
    }


def bench_wrapper_alone(calls: int, rounds: int) -> dict[str, float]:
    """Our wrapper around a function that returns the canned, already-parsed response.

    No HTTP and no SDK request building: only the CPU our instrumentation adds to a call, so
    the number is not drowned in the noise of a ~ms HTTP round trip.
    """
    import openai
    from openai.types.chat import ChatCompletion

    import otel_tokens
    from otel_tokens import metrics
    from otel_tokens.auto import add_stamping_processor
    from otel_tokens.instrumentation.openai import patch

    response = ChatCompletion.model_validate(json.loads(CANNED))
    resource = openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="bench").chat.completions
    messages = [{"role": "user", "content": "Say this is a test"}]

    def sdk_method(*args: Any, **kwargs: Any) -> Any:
        return response

    out: dict[str, float] = {}
    for label, with_metrics in (("traces", False), ("traces+metrics", True)):
        tracer_provider, meter_provider = fresh_providers()
        add_stamping_processor(tracer_provider)
        metrics.use_meter_provider(meter_provider if with_metrics else None)
        traced = patch.create(tracer_provider.get_tracer("bench"), "chat")

        def call(traced: Any = traced) -> Any:
            return traced(sdk_method, resource, (), {"model": "gpt-4o-mini", "messages": messages})

        def bare() -> Any:
            return sdk_method(model="gpt-4o-mini", messages=messages)

        with otel_tokens.usage_context(user_id="u", correlation_id="c"), otel_tokens.node("n"):
            cpu_per_call_us(call, max(10, calls // 5))
            wrapped = [cpu_per_call_us(call, calls) for _ in range(rounds)]
            plain = [cpu_per_call_us(bare, calls) for _ in range(rounds)]
        out[f"wrapper_{label}_us_per_call"] = statistics.median(wrapped) - statistics.median(plain)
    metrics.use_meter_provider(None)
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
    with otel_tokens.usage_context(user_id="u", correlation_id="c", tenant="t"):
        with otel_tokens.node("n"):
            probe = on_tracer.start_span("probe")
            for _ in range(rounds):
                off.append(cpu_per_call_us(lambda: off_tracer.start_span("s").end(), spans))
                on.append(cpu_per_call_us(lambda: on_tracer.start_span("s").end(), spans))
                direct.append(cpu_per_call_us(lambda: processor.on_start(probe), spans))
    return {
        "span_off_us": statistics.median(off),
        "span_on_us": statistics.median(on),
        "stamping_us_per_span": statistics.median(on) - statistics.median(off),
        "on_start_us": statistics.median(direct),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500, help="calls per round and mode")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--spans", type=int, default=50000, help="spans per stamping round")
    parser.add_argument("--smoke", action="store_true", help="tiny run, a few seconds")
    parser.add_argument("--json", type=Path, help="write results as a JSON object here")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve()
        return 0
    if args.smoke:
        args.calls, args.rounds, args.spans = 30, 3, 2000
    proc, url = start_server()
    try:
        calls = bench_calls(url, args.calls, args.rounds)
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=10)
    stamping = bench_stamping(args.spans, args.rounds)
    wrapper = bench_wrapper_alone(args.calls * 5, args.rounds)
    medians = calls["medians"]
    none = medians["none"]
    rows = [("no instrumentation", none, 0.0)]
    for name in ("none (again)", "otel_tokens", "otel_tokens+metrics", "openai-v2"):
        if name in medians:
            rows.append((name, medians[name], medians[name] - none))
    print(f"CPU per non-streaming chat call, median of {args.rounds} rounds x {args.calls}:")
    print(f"{'mode':<22}{'µs/call':>10}{'overhead µs':>13}{'ratio':>8}")
    for name, value, overhead in rows:
        print(f"{name:<22}{value:>10.1f}{overhead:>13.1f}{value / none:>8.2f}")
    for name, error in calls["errors"].items():
        print(f"{name:<22}unavailable: {error}")
    ours = medians["otel_tokens"] - none
    print(f"otel_tokens overhead {ours:.1f} µs/call end to end (target ≤ {TARGET_CALL_US:.0f})")
    print(
        "otel_tokens wrapper alone (no HTTP): "
        f"{wrapper['wrapper_traces_us_per_call']:.1f} µs/call traces only, "
        f"{wrapper['wrapper_traces+metrics_us_per_call']:.1f} µs/call with SDK metrics"
    )
    print(
        f"stamping: {stamping['stamping_us_per_span']:.2f} µs/span "
        f"(span start+end {stamping['span_off_us']:.2f} -> {stamping['span_on_us']:.2f} µs; "
        f"on_start alone {stamping['on_start_us']:.2f} µs; target ≤ {TARGET_SPAN_US:.0f})"
    )
    result = {
        "calls_per_round": args.calls,
        "rounds": args.rounds,
        "none_us_per_call": none,
        "noise_floor_us_per_call": medians["none (again)"] - none,
        "otel_tokens_us_per_call": medians["otel_tokens"],
        "otel_tokens_overhead_us_per_call": ours,
        "otel_tokens_metrics_us_per_call": medians.get("otel_tokens+metrics"),
        "otel_tokens_metrics_overhead_us_per_call": medians["otel_tokens+metrics"] - none,
        **wrapper,
        "openai_v2_us_per_call": medians.get("openai-v2"),
        "openai_v2_overhead_us_per_call": (
            medians["openai-v2"] - none if "openai-v2" in medians else None
        ),
        "unavailable": calls["errors"],
        **stamping,
        "target_call_us": TARGET_CALL_US,
        "target_span_us": TARGET_SPAN_US,
        "meets_call_target": ours <= TARGET_CALL_US,
        "meets_span_target": stamping["stamping_us_per_span"] <= TARGET_SPAN_US,
    }
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
