"""Cost of ``queries.store.append_spans`` per span, by batch size, on a large database.

The collector's writer hands ``append_spans`` batches of 512 (one request) up to ~32k spans;
every batch is one transaction: duplicate check, insert, llm_call flag, node walk, per-trace
summary. This appends a stream of new spans (traces 146 µs apart, ~50,000 spans/s, cut into
batches regardless of trace boundaries so traces straddle batches as they do in real traffic)
after the data of a copy of the view benchmark's database, on a connection set up as the
collector's exporter sets its own (threads, memory_limit, checkpoint threshold), and reports per
batch size the median milliseconds per batch and microseconds per span (wall and process
CPU), and the mean, which includes the fold of the per-trace summary every
``queries.store.FOLD_SPANS_AT`` spans.

Two span mixes: ``foreign`` (the generator's mix, where some calls carry no node of their own
and inherit one, as with a foreign instrumentation) and ``plugin`` (every call carries its own
node, as the otel_tokens plugin stamps it, so the node walk has nothing to do).

    .venv/bin/python bench/append.py                 # on the 10 M-span database of views.py
    .venv/bin/python bench/append.py --smoke         # 20 k spans, seconds
    .venv/bin/python bench/append.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate import generate, span_batch

from collector.exporters.duckdb import Config as ExporterConfig
from queries.store import append_spans, connect

#: Request-sized batches up to the journal's bulk loads: half a row group (through DuckDB's WAL)
#: and a whole one (written straight to the file).
SIZES = (512, 8192, 32768, 61440, 122880)
JOURNAL_CHUNK = 4096  # a bulk load's Arrow table holds one chunk per journaled batch
STEP_US = 146.0  # one trace of ~7.3 spans every 146 µs: ~50,000 spans/s
MIXES = ("foreign", "plugin")


def span_stream(spans: int, t0: datetime, seed: int, mix: str) -> pa.Table:
    """``spans`` new spans of whole traces starting at ``t0``, in trace order."""
    gen = duckdb.connect()
    try:
        stream = span_batch(
            gen,
            seed=seed,
            first_trace=0,
            last_trace=int(spans / 7.3) + 100,
            t0=t0,
            step_us=STEP_US,
            limit=spans,
        )
    finally:
        gen.close()
    if mix == "plugin":
        # Stamp every call with a node, as the plugin does: no call inherits one.
        calls = pc.is_valid(stream.column("operation"))
        node = pc.if_else(
            pc.and_(calls, pc.is_null(stream.column("node"))), "answer", stream.column("node")
        )
        stream = stream.set_column(stream.schema.get_field_index("node"), "node", node)
    return stream


def measure(con: duckdb.DuckDBPyConnection, size: int, batches: int, mix: str, seed: int) -> dict:
    end = con.execute("SELECT max(start_time)::VARCHAR FROM spans").fetchall()[0][0]
    t0 = datetime.fromisoformat(end) + timedelta(seconds=1)
    stream = span_stream(size * batches, t0, seed, mix)
    times = []
    cpu = []
    inserted = 0
    for b in range(batches):
        # in chunks, as a load from the journal hands it over (DuckDB scans chunks in parallel)
        batch = pa.Table.from_batches(stream.slice(b * size, size).to_batches(JOURNAL_CHUNK))
        t, c = time.perf_counter(), time.process_time()
        try:
            inserted += append_spans(con, batch)
        except duckdb.OutOfMemoryException as exc:
            return {"batch_spans": size, "batches": b, "failed": str(exc).splitlines()[0]}
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    assert inserted == stream.num_rows, "every span of the stream is new"
    median = statistics.median(times)
    return {
        "batch_spans": size,
        "batches": batches,
        "median_ms": round(median * 1000, 2),
        "min_ms": round(min(times) * 1000, 2),
        "us_per_span": round(median * 1e6 / size, 2),
        # CPU of this process (all DuckDB threads): steadier than wall time on a shared machine
        "cpu_ms": round(statistics.median(cpu) * 1000, 2),
        "cpu_us_per_span": round(statistics.median(cpu) * 1e6 / size, 2),
        # the mean includes the occasional fold of the per-trace summary (every FOLD_SPANS_AT)
        "mean_ms": round(statistics.mean(times) * 1000, 2),
        "mean_us_per_span": round(statistics.mean(times) * 1e6 / size, 2),
        "mean_spans_per_s": round(size / statistics.mean(times)),
        "spans_per_s": round(size / median),
    }


def run(db_path: Path, sizes: tuple[int, ...], spans_per_size: int, seed: int) -> dict[str, Any]:
    results: dict[str, Any] = {"db": str(db_path), "load_average": list(os.getloadavg())}
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "append.duckdb"
        shutil.copyfile(db_path, copy)
        t = time.perf_counter()
        con = connect(copy)  # applies any migration the copy lacks (not part of the timing)
        results["connect_and_migrate_s"] = round(time.perf_counter() - t, 2)
        results["stored_spans"] = con.execute("SELECT count(*) FROM spans").fetchall()[0][0]
        # As the collector's exporter configures its connection (its defaults).
        exporter = ExporterConfig()
        con.execute("SET preserve_insertion_order = false")
        con.execute(f"SET checkpoint_threshold = '{exporter.checkpoint_wal_size}B'")
        con.execute(f"SET threads = {exporter.threads}")
        con.execute("SET memory_limit = ?", [exporter.memory_limit])
        runs: dict[str, Any] = {}
        for mix in MIXES:
            for size in sizes:
                batches = max(3, spans_per_size // size)
                runs[f"{mix}_{size}"] = measure(con, size, batches, mix, seed + size)
        con.close()
    results["append"] = runs
    results["load_average_after"] = list(os.getloadavg())
    return results


def print_table(r: dict[str, Any]) -> None:
    print(f"database: {r['db']}  stored spans: {r['stored_spans']:,}")
    print(f"connect + migrate: {r['connect_and_migrate_s']} s")
    print(
        f"{'mix':<10}{'batch':>8}{'batches':>9}{'median ms':>11}{'µs/span':>10}{'spans/s':>12}"
        f"{'CPU ms':>10}{'CPU µs/span':>13}{'mean µs/span':>14}"
    )
    for key, a in r["append"].items():
        mix = key.split("_")[0]
        if "failed" in a:
            failed = f"failed after {a['batches']} batches: {a['failed']}"
            print(f"{mix:<10}{a['batch_spans']:>8}  {failed}")
            continue
        print(
            f"{mix:<10}{a['batch_spans']:>8}{a['batches']:>9}{a['median_ms']:>11.2f}"
            f"{a['us_per_span']:>10.2f}{a['spans_per_s']:>12,}{a['cpu_ms']:>10.2f}"
            f"{a['cpu_us_per_span']:>13.2f}{a['mean_us_per_span']:>14.2f}"
        )
    before, after = r["load_average"], r["load_average_after"]
    print(f"load average before {before[0]:.2f}, after {after[0]:.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="database to copy (default: views.py's 10 M-span file)")
    parser.add_argument("--spans", type=int, default=10_000_000, help="size of the default db")
    parser.add_argument("--per-size", type=int, default=200_000, help="spans appended per size")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--smoke", action="store_true", help="20 k-span database, small batches")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--json", dest="json_path", help="write the results to this JSON file")
    args = parser.parse_args(argv)
    sizes = tuple(int(s) for s in args.sizes.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        if args.smoke:
            db_path = Path(tmp) / "append-smoke.duckdb"
            generate(db_path, 20_000, seed=args.seed)
            sizes, per_size = (512, 2048), 4096
        else:
            db_path = Path(
                args.db or Path(tempfile.gettempdir()) / f"otel-tokens-bench-{args.spans}.duckdb"
            )
            if not db_path.exists():
                generate(db_path, args.spans, seed=1)  # the same file bench/views.py makes
            per_size = args.per_size
        results = run(db_path, sizes, per_size, args.seed)
    print_table(results)
    if args.json_path:
        Path(args.json_path).write_text(json.dumps({"append": results}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
