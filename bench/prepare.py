"""CPU per span of the collector's worker path, stage by stage, in this one process.

A collector worker turns each OTLP request body into an Arrow IPC stream: decode (protobuf →
rows), ``gen_ai_normalize``, ``gen_ai_cost``, rows → Arrow table, IPC bytes, and the pickled
result the process pool sends back. This runs that same path (``collector.workers`` with the
default config's processors) over the 512-span request of ``bench/ingest.py`` (``build_request``:
traces of a request root, 2 node spans, 3 LLM calls, 2 tools) many times, and prints the process
CPU microseconds per span of each stage and in total: the median over rounds, and the range.
No sockets, no DuckDB, no other process: the figures are the worker's own work, without the
noise of the load generator and writer sharing the 2 cores (the garbage collector is set up as
in a worker). Every round decodes the same body: the price caches stay warm, as they do in a
worker after its first requests.

    .venv/bin/python bench/prepare.py                 # 3 rounds x 2000 requests, ~1 min
    .venv/bin/python bench/prepare.py --smoke         # seconds
    .venv/bin/python bench/prepare.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ingest import build_request  # noqa: E402

from collector.processors import cost, normalize  # noqa: E402
from collector.receivers import decode  # noqa: E402
from collector.rows import rows_to_table  # noqa: E402
from collector.workers import Stage, ipc_bytes, tune_gc  # noqa: E402

STAGES = ("decode", "normalize", "cost", "arrow", "ipc")


def default_stage() -> Stage:
    """The default config's pipeline as a worker builds it: gen_ai_normalize, then gen_ai_cost."""
    return Stage(
        "traces",
        [
            ("gen_ai_normalize", normalize.create(normalize.create_default_config())),
            ("gen_ai_cost", cost.create(cost.create_default_config())),
        ],
    )


def one_round(body: bytes, requests: int, stage: Stage) -> dict[str, float]:
    """Process CPU seconds per stage over ``requests`` requests (the stages run in order)."""
    clock = time.process_time
    spent = dict.fromkeys(STAGES, 0.0)
    (_, normalizer), (_, pricer) = stage.processors
    for _ in range(requests):
        t0 = clock()
        rows = decode.decode_protobuf(body, 1).rows
        t1 = clock()
        rows = normalizer.process(rows)
        t2 = clock()
        rows = pricer.process(rows)
        t3 = clock()
        table = rows_to_table(rows)
        t4 = clock()
        # The pool pickles the worker's answer (the IPC bytes) to send it back.
        pickle.dumps(([ipc_bytes(table)], len(rows), 0, "", 0, {}), pickle.HIGHEST_PROTOCOL)
        t5 = clock()
        spent["decode"] += t1 - t0
        spent["normalize"] += t2 - t1
        spent["cost"] += t3 - t2
        spent["arrow"] += t4 - t3
        spent["ipc"] += t5 - t4
    return spent


def run(requests: int, rounds: int, spans: int) -> dict[str, Any]:
    body = build_request(spans)
    stage = default_stage()
    # Warm up: the first requests fill the price caches and import lazily loaded modules.
    one_round(body, max(1, min(50, requests // 10)), stage)
    tune_gc()  # the garbage collector's settings of a worker process
    per_round: list[dict[str, float]] = []
    for _ in range(rounds):
        spent = one_round(body, requests, stage)
        us = {k: v * 1e6 / (requests * spans) for k, v in spent.items()}
        us["total"] = sum(us.values())
        per_round.append(us)
    result: dict[str, Any] = {
        "spans_per_request": spans,
        "requests_per_round": requests,
        "rounds": rounds,
        "body_bytes": len(body),
        "load_average": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    for key in (*STAGES, "total"):
        values = [r[key] for r in per_round]
        result[f"{key}_us_per_span"] = round(statistics.median(values), 3)
        result[f"{key}_us_per_span_range"] = [round(min(values), 3), round(max(values), 3)]
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=2000, help="requests per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--spans-per-request", type=int, default=512)
    ap.add_argument("--smoke", action="store_true", help="a few requests: checks, not numbers")
    ap.add_argument("--json", type=Path, help="write the figures here as JSON")
    args = ap.parse_args(argv)
    if args.smoke:
        args.requests, args.rounds = 20, 1
    result = run(args.requests, args.rounds, args.spans_per_request)
    print(
        f"worker path, {result['spans_per_request']} spans/request, "
        f"{result['rounds']} x {result['requests_per_round']} requests "
        f"(load average {result['load_average']}); process CPU µs per span, median [range]:"
    )
    for key in (*STAGES, "total"):
        lo, hi = result[f"{key}_us_per_span_range"]
        print(f"  {key:<10} {result[f'{key}_us_per_span']:7.2f}  [{lo:.2f} .. {hi:.2f}]")
    if args.json:
        args.json.write_text(json.dumps({"prepare": result}, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
