"""Run every benchmark under bench/ and write bench/RESULTS.md, each figure beside its target.

    .venv/bin/python bench/run_all.py          # full run (minutes): bench/RESULTS.md
    .venv/bin/python bench/run_all.py --smoke  # seconds per script: bench/data/RESULTS.smoke.md
    .venv/bin/python bench/run_all.py --collect-only DIR --output FILE  # re-collate saved JSON

Each script runs as a subprocess with ``--json PATH`` (and ``--smoke`` in smoke mode) and
writes one JSON object. This file only orchestrates and collates: the measurements themselves
live in the scripts. A script that is missing or fails is reported as such, never skipped
silently, and its targets show "not measured".
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
DATA = BENCH / "data"  # gitignored: generated databases, per-script JSON, smoke results


@dataclass(frozen=True)
class Step:
    """One benchmark script and how to call it in full and smoke mode."""

    name: str
    script: str  # path relative to the repository root
    args: tuple[str, ...] = ()
    smoke_args: tuple[str, ...] = ()
    optional: bool = False  # its absence is noted but is not a failure of the run


@dataclass(frozen=True)
class Target:
    """A SPEC §8 row: which figure of which step's JSON is compared with which limit."""

    what: str
    step: str
    keys: tuple[str, ...]  # dotted paths into the step's JSON; the first present one is used
    op: str  # "<=" or ">="
    limit: float
    unit: str
    scale: float = 1.0  # the JSON figure times this is in ``unit`` (e.g. 1000 for s -> ms)
    context: str = ""  # a figure of the same JSON that qualifies the row, e.g. the span count

    @property
    def text(self) -> str:
        sign = "≤" if self.op == "<=" else "≥"
        return f"{sign} {_fmt(self.limit)} {self.unit}"

    def met(self, value: float) -> bool:
        return value <= self.limit if self.op == "<=" else value >= self.limit


STEPS: tuple[Step, ...] = (
    # The openai client alone costs ~2-3 ms of CPU per call: 200 calls x 9 interleaved rounds
    # per mode keeps this step to a few minutes. The first full run also creates the openai-v2
    # peer venv with pip (bench/peers/openai-v2.txt, about a minute).
    Step("instrumentation", "bench/instrumentation.py", args=("--calls", "200", "--rounds", "9")),
    Step("ingest", "bench/ingest.py"),
    Step("ingest_overload", "bench/ingest.py", args=("--overload",), smoke_args=("--overload",)),
    # views.py generates its 10 M-span database once (in the temp dir) and reuses it after.
    Step("views", "bench/views.py"),
    # append_spans per span by batch size on a copy of views.py's database (run after it).
    Step("append", "bench/append.py"),
    Step("pricing", "bench/pricing.py", optional=True),
    # The worker path's CPU per span by stage, in one process (~1 min): what ingest's workers do.
    Step("prepare", "bench/prepare.py"),
)

TARGETS: tuple[Target, ...] = (
    Target(
        # Read inside each real call (the wrapper's own CPU, the wrapped SDK call subtracted):
        # the end-to-end difference has a noise floor of ±200 µs here (bench/instrumentation.py).
        "plugin overhead per LLM call (CPU) over an un-instrumented call",
        "instrumentation",
        ("otel_tokens_inside_us_per_call",),
        "<=",
        60,
        "µs",
    ),
    Target(
        "stamping overhead per non-LLM span",
        "instrumentation",
        ("stamping_us_per_span",),
        "<=",
        2,
        "µs",
    ),
    Target(
        "collector ingest, OTLP/HTTP protobuf, 512 spans/request, dedupe on",
        "ingest",
        ("ingest.accepted_spans_per_s",),
        ">=",
        50_000,
        "spans/s",
    ),
    Target(
        # With worker processes, the memory of the whole process tree: the sum of proportional
        # set sizes (pages the processes share counted once). The sum of RSS, which counts the
        # shared libraries once per process, is printed beside it.
        "collector memory under 2× overload (answering 503), all its processes (PSS)",
        "ingest_overload",
        ("ingest.collector_tree_peak_pss_mb",),
        "<=",
        400,
        "MB",
    ),
    Target(
        "nothing acknowledged lost under overload",
        "ingest_overload",
        ("ingest.acknowledged_but_missing_requests",),
        "<=",
        0,
        "requests",
    ),
    Target(
        "usage_by_* view, read completely (median)",
        "views",
        ("views.views.usage_by_*.s",),
        "<=",
        1,
        "s",
        context="views.spans",
    ),
    Target(
        "`trace` lookup by correlation id (median)",
        "views",
        ("views.trace_lookup.s",),
        "<=",
        100,
        "ms",
        scale=1000,
        context="views.spans",
    ),
    Target(
        "DuckDB bytes per span on disk",
        "views",
        ("views.bytes_per_span",),
        "<=",
        120,
        "bytes",
    ),
)


@dataclass(frozen=True)
class Ratio:
    """A comparison worth reading at a glance: numerator / denominator of one step's figures."""

    what: str
    step: str
    numerator: str
    denominator: str


RATIOS: tuple[Ratio, ...] = (
    Ratio(
        "CPU per call: with otel-tokens / un-instrumented (same local server, same run)",
        "instrumentation",
        "otel_tokens_us_per_call",
        "none_us_per_call",
    ),
    Ratio(
        "in-call CPU over an SDK span alone (each in its own venv): openai-v2 / otel-tokens",
        "instrumentation",
        "openai_v2_over_sdk_span_only",
        "otel_tokens_over_sdk_span_only",
    ),
    Ratio(
        "price lookup: raw genai-prices / cached PriceBook (SPEC §4: µs, not ~90 µs)",
        "pricing",
        "raw_lookup_us",
        "cached_lookup_us",
    ),
)


@dataclass
class StepResult:
    """What happened when a step ran (or why it did not)."""

    step: Step
    command: list[str] = field(default_factory=list)
    status: str = "not run"  # ok | failed (exit N) | missing | timed out
    seconds: float = 0.0
    data: dict[str, Any] = field(default_factory=dict)
    output_tail: str = ""


# --- running ---------------------------------------------------------------------------------
def run_step(step: Step, *, smoke: bool, out_dir: Path, timeout: float) -> StepResult:
    result = StepResult(step)
    script = ROOT / step.script
    if not script.exists():
        result.status = "missing"
        return result
    json_path = out_dir / f"{step.name}.json"
    json_path.unlink(missing_ok=True)
    args = step.smoke_args if smoke else step.args
    cmd = [
        sys.executable,
        step.script,
        *args,
        *(["--smoke"] if smoke else []),
        "--json",
        str(json_path),
    ]
    result.command = cmd
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        result.seconds = time.perf_counter() - started
        result.status = f"timed out after {timeout:.0f} s"
        result.output_tail = _tail(_text(exc.stdout) + _text(exc.stderr))
        return result
    result.seconds = time.perf_counter() - started
    result.output_tail = _tail(proc.stdout + ("\n" + proc.stderr if proc.stderr.strip() else ""))
    if proc.returncode != 0:
        result.status = f"failed (exit {proc.returncode})"
    elif not json_path.exists():
        result.status = "failed (no JSON written)"
    else:
        result.status = "ok"
    if json_path.exists():
        result.data = load_json(json_path)
    return result


def _text(value: str | bytes | None) -> str:
    if value is None:
        return ""
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def load_json(path: Path) -> dict[str, Any]:
    """A step's JSON object; anything else is reported as an error value, not a crash."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return {"error": f"unreadable JSON ({exc})"}
    return data if isinstance(data, dict) else {"error": "JSON is not an object"}


# --- collating -------------------------------------------------------------------------------
def lookup(data: Mapping[str, Any], path: str) -> list[tuple[str, Any]]:
    """Values at a dotted path; a ``*`` segment matches any key (fnmatch), so one path can
    name a figure of every view. Returns (concrete path, value) pairs, in JSON order."""
    found: list[tuple[str, Any]] = [("", data)]
    for part in path.split("."):
        step: list[tuple[str, Any]] = []
        for prefix, node in found:
            if not isinstance(node, Mapping):
                continue
            keys = [k for k in node if fnmatch.fnmatchcase(str(k), part)] if "*" in part else [part]
            for key in keys:
                if key in node:
                    step.append((f"{prefix}.{key}" if prefix else str(key), node[key]))
        found = step
    return found


def figures(data: Mapping[str, Any], keys: tuple[str, ...]) -> list[tuple[str, float]]:
    """The numbers found under the first of ``keys`` that holds any, with their paths."""
    for key in keys:
        numbers = [
            (path, float(value))
            for path, value in lookup(data, key)
            if isinstance(value, (int, float))
        ]
        if numbers:
            return numbers
    return []


def figure(data: Mapping[str, Any], keys: tuple[str, ...]) -> tuple[str, float] | None:
    found = figures(data, keys)
    return found[0] if found else None


def flatten(data: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every leaf of a JSON value as (dotted path, value); lists of scalars stay one value."""
    if isinstance(data, Mapping):
        for key, value in data.items():
            yield from flatten(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(data, list) and any(isinstance(v, (Mapping, list)) for v in data):
        for i, value in enumerate(data):
            yield from flatten(value, f"{prefix}[{i}]")
    else:
        yield prefix, data


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value == int(value):
            return f"{int(value):,}"
        if abs(value) >= 100:
            return f"{value:,.1f}"
        return f"{value:.3g}"
    if isinstance(value, list):
        return ", ".join(_fmt(v) for v in value)
    return str(value).replace("|", "\\|").replace("\n", " ")


def machine() -> dict[str, str]:
    info = {
        "cores": str(os.cpu_count()),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["ram"] = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    info.setdefault("cpu", platform.processor() or "unknown")
    return info


def load_average() -> str:
    try:
        return " / ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


VERSIONED = (
    "otel-tokens",
    "duckdb",
    "pyarrow",
    "opentelemetry-sdk",
    "opentelemetry-exporter-otlp-proto-http",
    "opentelemetry-instrumentation-openai-v2",
    "genai-prices",
    "openai",
    "anthropic",
    "google-genai",
    "grpcio",
    "uvicorn",
)


def versions() -> dict[str, str]:
    found = {}
    for name in VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def git_revision() -> str:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return rev + (" (with uncommitted changes)" if dirty else "")


def render(
    results: list[StepResult],
    *,
    smoke: bool,
    env: Mapping[str, Any],
    started_at: datetime,
) -> str:
    by_name = {r.step.name: r for r in results}
    lines = [
        "# Benchmark results",
        "",
        "Generated by `bench/run_all.py`; do not edit by hand. Targets are SPEC §8.",
        "",
    ]
    if smoke:
        lines += [
            "> **Smoke run** (`--smoke`): tiny inputs that check the scripts work. The numbers",
            "> below say nothing about performance; run `make bench` for real figures.",
            "",
        ]
    lines += [
        f"- run: {started_at.strftime('%Y-%m-%d %H:%M UTC')}, revision {env.get('revision')}",
        f"- machine: {env['machine'].get('cores')} cores, {env['machine'].get('ram', '?')} RAM, "
        f"{env['machine'].get('cpu')}",
        f"- {env['machine'].get('platform')}, Python {env['machine'].get('python')}",
        f"- load average (1/5/15 min): before {env.get('load_before')}, "
        f"after {env.get('load_after')}",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items()),
        "",
        "## Targets",
        "",
        "| what | target | measured | result | source |",
        "|---|---|---|---|---|",
    ]
    met = missed = unmeasured = 0
    for t in TARGETS:
        r = by_name.get(t.step)
        found = figures(r.data, t.keys) if r else []
        if not found:
            why = (
                "script missing" if r and r.status == "missing" else (r.status if r else "not run")
            )
            if r and r.status == "ok":
                why = "figure not in JSON (looked for " + ", ".join(f"`{k}`" for k in t.keys) + ")"
            lines.append(f"| {t.what} | {t.text} | — | not measured | {t.step}: {why} |")
            unmeasured += 1
            continue
        qualifier = figure(r.data, (t.context,)) if r and t.context else None
        over = f" over {_fmt(qualifier[1])} {qualifier[0].rsplit('.', 1)[-1]}" if qualifier else ""
        for key, raw in found:  # a wildcard key gives one row per match (e.g. per view)
            value = raw * t.scale
            ok = t.met(value)
            met, missed = met + ok, missed + (not ok)
            verdict = "**met**" if ok else "**missed**"
            what = t.what if len(found) == 1 else f"{t.what}: {_varying_part(key, t.keys)}"
            lines.append(
                f"| {what} | {t.text} | {_fmt(value)} {t.unit}{over} | {verdict} "
                f"| `{t.step}.json` `{key}` |"
            )
    lines += ["", f"{met} met, {missed} missed, {unmeasured} not measured.", ""]

    ratio_lines = []
    for ratio in RATIOS:
        r = by_name.get(ratio.step)
        top = figure(r.data, (ratio.numerator,)) if r else None
        bottom = figure(r.data, (ratio.denominator,)) if r else None
        if top and bottom and bottom[1]:
            ratio_lines.append(
                f"| {ratio.what} | {_fmt(top[1])} / {_fmt(bottom[1])} | "
                f"**{_ratio(top[1] / bottom[1])}×** |"
            )
    if ratio_lines:
        lines += ["## Ratios", "", "| comparison | figures | ratio |", "|---|---|---|"]
        lines += [*ratio_lines, ""]

    lines += ["## Scripts", ""]
    for r in results:
        lines += [f"### {r.step.name}", ""]
        if r.status == "missing":
            note = " (optional)" if r.step.optional else ""
            lines += [f"`{r.step.script}` does not exist yet{note}: nothing measured.", ""]
            continue
        if r.command:
            lines += ["```sh", shlex.join(_relative(r.command)), "```", ""]
        lines += [f"status: {r.status}, wall time {r.seconds:.1f} s", ""]
        leaves = [(k, v) for k, v in flatten(r.data) if k]
        if leaves:
            lines += ["| figure | value |", "|---|---|"]
            lines += [f"| `{k}` | {_fmt(v)} |" for k, v in leaves]
            lines.append("")
        if r.output_tail and r.status != "ok":
            lines += ["<details><summary>output (last lines)</summary>", "", "```"]
            lines += [r.output_tail, "```", "", "</details>", ""]
    return "\n".join(lines).rstrip() + "\n"


def _ratio(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def _varying_part(path: str, patterns: tuple[str, ...]) -> str:
    """The part of ``path`` a wildcard matched (the view name in ``views.*.s``)."""
    for pattern in patterns:
        parts, concrete = pattern.split("."), path.split(".")
        if len(parts) == len(concrete):
            return ".".join(c for p, c in zip(parts, concrete, strict=True) if "*" in p)
    return path


def _relative(cmd: list[str]) -> list[str]:
    """Commands as a reader would type them in the repository root."""
    out = []
    for part in cmd:
        if part == sys.executable:
            part = ".venv/bin/python"
        elif part.startswith(str(ROOT) + os.sep):
            part = os.path.relpath(part, ROOT)
        out.append(part)
    return out


def collect_dir(directory: Path) -> list[StepResult]:
    """Results from a directory of saved ``<step>.json`` files (no script is run)."""
    results = []
    for step in STEPS:
        path = directory / f"{step.name}.json"
        result = StepResult(step)
        if path.exists():
            result.status, result.data = "ok", load_json(path)
        else:
            result.status = "missing"
        results.append(result)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--smoke", action="store_true", help="tiny inputs: checks, not numbers")
    parser.add_argument("--output", help="where to write the Markdown (default per mode)")
    parser.add_argument("--only", action="append", help="run only this step (repeatable)")
    parser.add_argument("--timeout", type=float, default=None, help="seconds per script")
    parser.add_argument(
        "--collect-only", metavar="DIR", help="collate <step>.json files in DIR, run nothing"
    )
    args = parser.parse_args(argv)
    started_at = datetime.now(UTC)
    default_output = DATA / "RESULTS.smoke.md" if args.smoke else BENCH / "RESULTS.md"
    output = Path(args.output) if args.output else default_output
    timeout = args.timeout or (120.0 if args.smoke else 3600.0)
    env: dict[str, Any] = {
        "machine": machine(),
        "versions": versions(),
        "revision": git_revision(),
        "load_before": load_average(),
    }
    if args.collect_only:
        results = collect_dir(Path(args.collect_only))
    else:
        out_dir = DATA / ("smoke" if args.smoke else "full")
        out_dir.mkdir(parents=True, exist_ok=True)
        results = []
        for step in STEPS:
            if args.only and step.name not in args.only:
                continue
            print(f"[bench] {step.name}: {step.script} ...", flush=True)
            result = run_step(step, smoke=args.smoke, out_dir=out_dir, timeout=timeout)
            print(f"[bench] {step.name}: {result.status} ({result.seconds:.1f} s)", flush=True)
            results.append(result)
    env["load_after"] = load_average()
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render(results, smoke=args.smoke, env=env, started_at=started_at), "utf-8")
    print(f"[bench] wrote {os.path.relpath(output, Path.cwd())}")
    failed = [r for r in results if r.status not in ("ok", "missing")]
    missing = [r for r in results if r.status == "missing" and not r.step.optional]
    for r in failed + missing:
        print(f"[bench] {r.step.name}: {r.status}", file=sys.stderr)
    return 1 if failed or missing else 0


if __name__ == "__main__":
    raise SystemExit(main())
