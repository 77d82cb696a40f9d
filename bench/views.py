"""Time every view and the trace lookup over a generated database (SPEC §8 targets).

    .venv/bin/python bench/views.py                  # 10 M spans (generated once, then reused)
    .venv/bin/python bench/views.py --smoke          # ~20 k spans, a few seconds
    .venv/bin/python bench/views.py --json out.json  # also write the results for run_all.py

Each view is read completely (``SELECT * FROM view``, every row fetched as Arrow) on a
read-only connection; the time shown is the median of ``--repeat`` runs after one warm-up
run (the first, cold, run is shown too). The trace lookup goes through
``otel_tokens.reports`` exactly as ``otel-tokens trace <correlation id>`` does.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate import generate, span_batch

from otel_tokens.query import Database
from otel_tokens.reports import find_traces, load_trace
from queries.store import FOLD_SPANS_AT, append_spans, connect, migrate

USAGE_VIEWS = (
    "usage_by_user",
    "usage_by_node",
    "usage_by_trace",
    "usage_by_model",
    "usage_by_day",
    "usage_by_job_type",
    "usage_by_tenant",
)
OTHER_VIEWS = ("unpriced_models", "trace_nodes")
VIEW_TARGET_S = 1.0
TRACE_TARGET_S = 0.100
BYTES_PER_SPAN_TARGET = 120


def _timed(fn: Any, repeat: int) -> tuple[float, float, Any]:
    """(cold seconds, median warm seconds, last result)."""
    t = time.perf_counter()
    result = fn()
    cold = time.perf_counter() - t
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        runs.append(time.perf_counter() - t)
    return cold, statistics.median(runs), result


def _read_all(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return int(con.execute(sql).to_arrow_table().num_rows)


def run(db_path: Path, spans: int, repeat: int, seed: int) -> dict[str, Any]:
    results: dict[str, Any] = {"spans": spans, "db": str(db_path)}
    existing = 0
    if db_path.exists():
        with duckdb.connect(str(db_path), read_only=True) as con:
            row = con.execute("SELECT count(*) FROM spans").fetchone()
            existing = int(row[0]) if row else 0
    if existing != spans:
        db_path.unlink(missing_ok=True)
        t = time.perf_counter()
        generate(db_path, spans, seed=seed)
        results["generate_s"] = round(time.perf_counter() - t, 2)
        results["generate_spans_per_s"] = round(spans / results["generate_s"])
    else:
        results["generate_s"] = None  # reused an existing file
    # A file made by an older version gets the current schema (e.g. the per-trace summary
    # filled from its spans) before anything is timed.
    t = time.perf_counter()
    with duckdb.connect(str(db_path)) as con:
        results["migrated"] = migrate(con)
    results["migrate_s"] = round(time.perf_counter() - t, 2)

    results["file_bytes"] = db_path.stat().st_size
    results["bytes_per_span"] = round(results["file_bytes"] / spans, 1)

    con = duckdb.connect(str(db_path), read_only=True)
    con.execute("SET enable_progress_bar = false")
    views: dict[str, dict[str, Any]] = {}
    for view in (*USAGE_VIEWS, *OTHER_VIEWS):
        cold, warm, rows = _timed(lambda v=view: _read_all(con, f"SELECT * FROM {v}"), repeat)
        views[view] = {"rows": rows, "cold_s": round(cold, 3), "s": round(warm, 3)}
    cold, warm, calls = _timed(
        lambda: con.execute("SELECT count(*) FROM llm_calls").fetchall()[0][0], repeat
    )
    views["llm_calls (count)"] = {"rows": calls, "cold_s": round(cold, 3), "s": round(warm, 3)}
    # A request from the middle of the month: neither the first nor the last row group.
    roots = con.execute(
        "SELECT count(*) FROM spans WHERE parent_span_id IS NULL AND correlation_id IS NOT NULL"
    ).fetchall()[0][0]
    middle = con.execute(
        "SELECT correlation_id FROM spans WHERE parent_span_id IS NULL "
        "AND correlation_id IS NOT NULL LIMIT 1 OFFSET ?",
        [roots // 2],
    ).fetchall()
    con.close()
    results["views"] = views

    correlation_id = middle[0][0]
    with Database(db_path) as db:

        def lookup() -> int:
            found = find_traces(db, correlation_id)
            return sum(len(load_trace(db, *t).spans) for t in found)

        cold, warm, n = _timed(lookup, repeat)
    results["append_batch"] = measure_append(db_path)
    results["trace_lookup"] = {
        "correlation_id": correlation_id,
        "spans": n,
        "cold_s": round(cold, 4),
        "s": round(warm, 4),
    }
    return results


def measure_append(db_path: Path, batches: int = 10, size: int = 512) -> dict[str, Any]:
    """``append_spans`` of collector-sized batches (new traces at the end of the data) into a
    copy of the database: the per-batch cost the collector's exporter pays, including the
    duplicate check and the node inheritance walk."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "append.duckdb"
        shutil.copyfile(db_path, copy)
        con = connect(copy)
        end = con.execute("SELECT max(start_time)::VARCHAR FROM spans").fetchall()[0][0]
        from datetime import datetime

        t0 = datetime.fromisoformat(end)
        gen = duckdb.connect()
        times = []
        for b in range(batches):
            # ~70 traces of ~7.3 spans: about `size` spans, 1 ms apart, after the stored data
            batch = span_batch(
                gen,
                seed=987,
                first_trace=b * 70 + 1,
                last_trace=(b + 1) * 70 + 1,
                t0=t0,
                step_us=1000.0,
                limit=size,
            )
            t = time.perf_counter()
            append_spans(con, batch)
            times.append(time.perf_counter() - t)
        unfolded = _time_usage_by_trace_unfolded(con, gen, t0)
        con.close()
        gen.close()
    median = statistics.median(times)
    return {
        "batch_spans": size,
        "median_ms": round(median * 1000, 1),
        "spans_per_s": round(size / median),
        "usage_by_trace_unfolded": unfolded,
    }


def _time_usage_by_trace_unfolded(
    con: duckdb.DuckDBPyConnection, gen: duckdb.DuckDBPyConnection, t0: Any
) -> dict[str, Any]:
    """usage_by_trace when the most spans the appends leave unfolded (just under
    ``FOLD_SPANS_AT``) are waiting: the view's worst case between two folds."""
    folded = con.execute("SELECT folded_through FROM trace_usage_state").fetchall()[0][0]
    waiting = con.execute(
        "SELECT count(*) FROM spans WHERE appended_batch > ?", [folded]
    ).fetchall()[0][0]
    first = 10_000
    while waiting < FOLD_SPANS_AT - 20_000:
        batch = span_batch(
            gen,
            seed=988,
            first_trace=first,
            last_trace=first + 2_000,
            t0=t0,
            step_us=1000.0,
            limit=min(16_384, FOLD_SPANS_AT - 1 - waiting),
        )
        first += 2_000
        waiting += append_spans(con, batch)
    cold, warm, rows = _timed(lambda: _read_all(con, "SELECT * FROM usage_by_trace"), 3)
    return {"unfolded_spans": waiting, "rows": rows, "cold_s": round(cold, 3), "s": round(warm, 3)}


def print_table(r: dict[str, Any]) -> None:
    print(f"database: {r['db']}  spans: {r['spans']:,}")
    if r.get("generate_s"):
        print(f"generated in {r['generate_s']} s ({r['generate_spans_per_s']:,} spans/s)")
    print(f"connect + migrate: {r['migrate_s']} s")
    print(f"{'what':<28}{'rows':>12}{'cold s':>10}{'median s':>10}{'target':>10}  ok")
    for view, v in r["views"].items():
        target = VIEW_TARGET_S if view in USAGE_VIEWS else None
        ok = "" if target is None else ("yes" if v["s"] <= target else "NO")
        tgt = f"{target:.1f}" if target else "-"
        print(f"{view:<28}{v['rows']:>12,}{v['cold_s']:>10.3f}{v['s']:>10.3f}{tgt:>10}  {ok}")
    t = r["trace_lookup"]
    ok = "yes" if t["s"] <= TRACE_TARGET_S else "NO"
    print(
        f"{'trace <correlation id>':<28}{t['spans']:>12,}{t['cold_s']:>10.4f}{t['s']:>10.4f}"
        f"{TRACE_TARGET_S:>10.3f}  {ok}"
    )
    a = r["append_batch"]
    print(
        f"append_spans, {a['batch_spans']}-span batch: {a['median_ms']} ms median "
        f"({a['spans_per_s']:,} spans/s, one writer)"
    )
    u = a["usage_by_trace_unfolded"]
    print(
        f"usage_by_trace with {u['unfolded_spans']:,} spans not yet folded: {u['s']} s median"
        f" (cold {u['cold_s']} s)"
    )
    ok = "yes" if r["bytes_per_span"] <= BYTES_PER_SPAN_TARGET else "NO"
    print(
        f"{'bytes per span on disk':<28}{r['file_bytes']:>12,}{r['bytes_per_span']:>20.1f}"
        f"{BYTES_PER_SPAN_TARGET:>10}  {ok}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=10_000_000)
    parser.add_argument("--smoke", action="store_true", help="about 20k spans, a few seconds")
    parser.add_argument("--db", help="database file (generated when missing or of another size)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", dest="json_path", help="write the results to this JSON file")
    args = parser.parse_args(argv)
    spans = 20_000 if args.smoke else args.spans
    with tempfile.TemporaryDirectory() as tmp:
        if args.db:
            db_path = Path(args.db)
        elif args.smoke:
            db_path = Path(tmp) / "views-smoke.duckdb"
        else:
            db_path = Path(tempfile.gettempdir()) / f"otel-tokens-bench-{spans}.duckdb"
        results = run(db_path, spans, 1 if args.smoke else args.repeat, args.seed)
    print_table(results)
    if args.json_path:
        Path(args.json_path).write_text(json.dumps({"views": results}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
