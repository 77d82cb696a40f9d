"""The ``otel-tokens`` command line: reports, traces, SQL, prices, the collector and the demo.

Thin on purpose: it parses options, calls ``otel_tokens.reports`` / ``query`` / ``pricing``,
and prints. Every user error is one line on stderr and a non-zero exit code.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, NoReturn

import click

from otel_tokens.query import COLLECTOR_ENV, DB_ENV, Database, QueryError
from otel_tokens.reports import GROUPINGS, Filters, parse_since, parse_time

FORMATS = ("table", "json", "csv", "markdown")
_MONEY_COLUMNS = {"cost_usd", "interactive_cost_usd", "background_cost_usd"}


def fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


class Context:
    def __init__(self, db_path: str | None, collector: str | None) -> None:
        self.db_path = db_path
        self.collector = collector
        self._db: Database | None = None

    @property
    def db(self) -> Database:
        if self._db is None:
            self._db = Database(self.db_path, self.collector)
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()  # a read-only handle would keep a collector from starting
            self._db = None


pass_ctx = click.make_pass_decorator(Context)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    "db_path",
    envvar=DB_ENV,
    default=None,
    help=f"DuckDB file (default: ${DB_ENV}, then ./otel-tokens.duckdb).",
)
@click.option(
    "--collector",
    envvar=COLLECTOR_ENV,
    default=None,
    help="Collector admin URL used while it holds the file (default http://127.0.0.1:4320).",
)
@click.version_option(package_name="otel-tokens")
@click.pass_context
def main(ctx: click.Context, db_path: str | None, collector: str | None) -> None:
    """LLM token usage and cost per user, node and request, from OpenTelemetry spans."""
    ctx.obj = Context(db_path, collector)
    ctx.call_on_close(ctx.obj.close)


# --- output ----------------------------------------------------------------------------------
def _cell(value: Any, column: str = "") -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return f"{value:.6f}" if column in _MONEY_COLUMNS else str(value)
    if isinstance(value, float):
        return f"{value:.4g}" if column.startswith("share") else f"{value:.6g}"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    return str(value)


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def render(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str, title: str = "") -> str:
    """Rows as text in ``fmt`` (table, json, csv, markdown)."""
    if fmt == "json":
        docs = [{c: _json_value(v) for c, v in zip(columns, row, strict=True)} for row in rows]
        return json.dumps(docs, indent=2) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        # Full precision for machines: exact decimals, ISO times.
        writer.writerows([["" if v is None else _json_value(v) for v in r] for r in rows])
        return out.getvalue()
    if fmt == "markdown":
        lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        for row in rows:
            cells = [_cell(v, c).replace("|", "\\|") for c, v in zip(columns, row, strict=True)]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title or None)
    for column in columns:
        numeric = any(isinstance(r[columns.index(column)], int | float | Decimal) for r in rows)
        table.add_column(column, justify="right" if numeric else "left")
    for row in rows:
        table.add_row(*(_cell(v, c) for c, v in zip(columns, row, strict=True)))
    buffer = io.StringIO()
    # A terminal's own width; a pipe or file gets wide lines rather than wrapped cells.
    width = int(os.environ.get("COLUMNS", "0") or 0) or (None if sys.stdout.isatty() else 200)
    Console(file=buffer, width=width, force_terminal=False).print(table)
    return buffer.getvalue()


def emit(text: str, output: str | None) -> None:
    if output:
        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as exc:
            fail(f"--output: cannot write {output}: {exc.strerror or exc}")
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text, nl=False)


def run(action: Callable[[], Any]) -> Any:
    """Run ``action``; turn our errors into one line and exit code 1."""
    try:
        return action()
    except QueryError as exc:
        fail(str(exc))


# --- report ----------------------------------------------------------------------------------
@main.command()
@click.option("--since", help="Only calls since: a duration (30d, 12h, 90m, 2w) or ISO date.")
@click.option("--from", "from_", help="Only calls at or after this ISO date/time (UTC if naive).")
@click.option("--to", help="Only calls before this ISO date/time (UTC if naive).")
@click.option("--user", help="Only this user id.")
@click.option("--tenant", help="Only this tenant.")
@click.option("--node", help="Only this node (own or inherited from an ancestor span).")
@click.option(
    "--by",
    type=click.Choice(list(GROUPINGS)),
    default="user",
    show_default=True,
    help="Group rows by.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice([*FORMATS, "html"]),
    default="table",
    show_default=True,
    help="Output format; html writes a self-contained page with charts.",
)
@click.option("--output", "-o", help="Write to this file instead of stdout.")
@pass_ctx
def report(
    ctx: Context,
    since: str | None,
    from_: str | None,
    to: str | None,
    user: str | None,
    tenant: str | None,
    node: str | None,
    by: str,
    fmt: str,
    output: str | None,
) -> None:
    """Tokens and cost of LLM calls, grouped by user, node, model, day and more."""
    if since and from_:
        fail("use either --since or --from, not both")

    def build() -> Filters:
        start = (
            parse_since(since) if since else parse_time(from_, option="--from") if from_ else None
        )
        end = parse_time(to, option="--to") if to else None
        if start and end and start >= end:
            raise QueryError("--to must be later than the start of the period")
        return Filters(start=start, end=end, user=user, tenant=tenant, node=node)

    filters = run(build)
    if fmt == "html":
        try:
            from otel_tokens import report_html
        except ImportError:
            fail("the HTML report is not available in this installation (otel_tokens.report_html)")
        emit(run(lambda: report_html.render(ctx.db, filters)), output)
        return
    from otel_tokens.reports import usage_report

    columns, rows = run(lambda: usage_report(ctx.db, by, filters))
    emit(render(columns, rows, fmt, title=f"LLM usage by {by}"), output)


# --- trace -----------------------------------------------------------------------------------
def _tree_order(columns: list[str], spans: list[tuple]) -> list[tuple[int, tuple]]:
    """Spans depth-first under their parents (orphans of missing parents at the top level)."""
    sid, pid = columns.index("span_id"), columns.index("parent_span_id")
    ids = {s[sid] for s in spans}
    children: dict[str | None, list[tuple]] = {}
    for s in spans:
        parent = s[pid] if s[pid] in ids else None
        children.setdefault(parent, []).append(s)
    ordered: list[tuple[int, tuple]] = []
    seen: set[str] = set()
    stack = [(0, s) for s in reversed(children.get(None, []))]
    while stack:
        depth, s = stack.pop()
        if s[sid] in seen:  # a corrupt parent cycle
            continue
        seen.add(s[sid])
        ordered.append((depth, s))
        stack.extend((depth + 1, c) for c in reversed(children.get(s[sid], [])))
    ordered.extend((0, s) for s in spans if s[sid] not in seen)
    return ordered


@main.command()
@click.argument("ident", metavar="ID")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="Output format.",
)
@pass_ctx
def trace(ctx: Context, ident: str, fmt: str) -> None:
    """The span tree of one request, by trace id or correlation id, with node totals."""
    from otel_tokens.reports import find_traces, load_trace

    found = run(lambda: find_traces(ctx.db, ident))
    if not found:
        fail(f"no trace or correlation id matches {ident}")
    views = []
    for trace_id, first, last in found:
        views.append(run(functools.partial(load_trace, ctx.db, trace_id, first, last)))
    if fmt == "json":
        docs = []
        for v in views:
            docs.append(
                {
                    "trace_id": v.trace_id,
                    "correlation_id": v.correlation_id,
                    "spans": json.loads(render(v.span_columns, v.spans, "json")),
                    "nodes": json.loads(render(v.node_columns, v.nodes, "json")),
                }
            )
        click.echo(json.dumps(docs, indent=2))
        return
    shown = ["name", "kind", "node", "model", "input_tokens", "output_tokens", "cost_usd"]
    for v in views:
        idx = [v.span_columns.index(c) for c in shown]
        inh = v.span_columns.index("node_inherited")
        dur = v.span_columns.index("duration_ms")
        status = v.span_columns.index("status_code")
        rows = []
        for depth, s in _tree_order(v.span_columns, v.spans):
            cells = [s[i] for i in idx]
            cells[0] = "  " * depth + str(cells[0] or "")
            if s[inh] and cells[2]:
                cells[2] = f"{cells[2]} ^"  # inherited from an ancestor span
            rows.append((*cells, s[dur], s[status] if s[status] == "ERROR" else None))
        columns = [*shown, "duration_ms", "error"]
        header = f"trace {v.trace_id}" + (
            f"  correlation id {v.correlation_id}" if v.correlation_id else ""
        )
        if fmt == "table":
            click.echo(header)
            click.echo(render(columns, rows, "table"), nl=False)
            click.echo("^ = node inherited from an ancestor span")
            click.echo(render(v.node_columns, v.nodes, "table", title="per node"), nl=False)
        else:
            click.echo(header if fmt == "csv" else f"### {header}\n")
            click.echo(render(columns, rows, fmt))
            click.echo(render(v.node_columns, v.nodes, fmt))


# --- sql -------------------------------------------------------------------------------------
@main.command()
@click.argument("query", metavar='"SELECT ..."')
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="Output format.",
)
@click.option("--output", "-o", help="Write to this file instead of stdout.")
@pass_ctx
def sql(ctx: Context, query: str, fmt: str, output: str | None) -> None:
    """Run one read-only query (SELECT, WITH, FROM, SHOW, DESCRIBE) on the database."""
    columns, rows = run(lambda: ctx.db.query(query))
    emit(render(columns, rows, fmt), output)


# --- prices ----------------------------------------------------------------------------------
def _price_book(prices: str | None) -> Any:
    from otel_tokens import pricing

    path = prices or os.environ.get(pricing.PRICES_ENV)
    if not path:
        return pricing.PriceBook()
    try:
        return pricing.PriceBook(pricing.load_overrides(path))
    except FileNotFoundError:
        fail(f"price overrides file {path} does not exist")
    except (ValueError, OSError) as exc:
        fail(f"price overrides {path}: {str(exc).splitlines()[0] if str(exc) else exc}")
    except Exception as exc:  # YAML syntax errors and the like
        fail(f"price overrides {path}: {str(exc).splitlines()[0]}")


_PRICES_OPTION = click.option(
    "--prices",
    envvar="OTEL_TOKENS_PRICES",
    help="Price overrides file (YAML/JSON; default $OTEL_TOKENS_PRICES).",
)


class _PricesGroup(click.Group):
    """``prices MODEL`` and ``prices check`` share a name: a first argument that is not a
    subcommand is the model to describe."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            return "show", self.commands["show"], args
        return super().resolve_command(ctx, args)


@main.group(cls=_PricesGroup, invoke_without_command=True)
@_PRICES_OPTION
@click.pass_context
def prices(click_ctx: click.Context, prices: str | None) -> None:
    """The price used for a model (prices MODEL), or check prices (prices check)."""
    click_ctx.meta["prices"] = prices
    if click_ctx.invoked_subcommand is None:
        _show_seen_models(click_ctx.find_object(Context), prices)


def _price_row(info: Any) -> tuple:
    return (
        info.model,
        info.matched_model,
        info.provider,
        info.source,
        info.input,
        info.output,
        info.cache_read,
        info.cache_write,
        info.ref,
    )


_PRICE_COLUMNS = [
    "model",
    "matched",
    "provider",
    "source",
    "input_per_mtok",
    "output_per_mtok",
    "cache_read_per_mtok",
    "cache_write_per_mtok",
    "ref",
]


def _show_seen_models(ctx: Context | None, prices: str | None) -> None:
    from otel_tokens.reports import seen_models

    assert ctx is not None
    book = _price_book(prices)
    rows = []
    for provider, model, calls in run(lambda: seen_models(ctx.db)):
        info = book.describe(model, provider) if model else None
        rows.append(
            (*_price_row(info), calls)
            if info
            else (model, None, provider, "no price", None, None, None, None, None, calls)
        )
    if not rows:
        click.echo("no LLM calls in the database yet; try: otel-tokens prices MODEL")
        return
    click.echo(render([*_PRICE_COLUMNS, "calls"], rows, "table", title="models seen"), nl=False)


@prices.command("show", hidden=True)
@click.argument("model")
@click.option("--provider", help="Provider (gen_ai.provider.name), when the model is ambiguous.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", help="Output format.")
@click.pass_context
def prices_show(click_ctx: click.Context, model: str, provider: str | None, fmt: str) -> None:
    """The price that would be used for MODEL and where it comes from."""
    book = _price_book(click_ctx.meta.get("prices"))
    info = book.describe(model, provider)
    if info is None:
        fail(f"no price known for {model}; add an override (see docs/cli.md, prices)")
    if fmt == "json":
        click.echo(json.dumps(info.as_dict(), indent=2, default=str))
        return
    click.echo(render(_PRICE_COLUMNS, [_price_row(info)], fmt), nl=False)


@prices.command("check")
@click.pass_context
def prices_check(click_ctx: click.Context) -> None:
    """Check the overrides file and list models in the database that have no price."""
    from otel_tokens.reports import seen_models

    prices_path = click_ctx.meta.get("prices")
    book = _price_book(prices_path)  # a bad overrides file fails here, in one line
    if prices_path:
        click.echo(f"ok: price overrides {prices_path} are valid")
    ctx = click_ctx.find_object(Context)
    assert ctx is not None
    problems = 0
    for provider, model, calls in run(lambda: seen_models(ctx.db)):
        if not model:
            click.echo(f"problem: {calls} calls from provider {provider} name no model")
            problems += 1
        elif book.describe(model, provider) is None:
            click.echo(f"problem: no price for {provider}/{model} ({calls} calls seen)")
            problems += 1
    if problems:
        fail(f"{problems} model(s) without a price: add overrides, then run otel-tokens reprice")
    click.echo("ok: every model seen in the database has a price")


# --- reprice ---------------------------------------------------------------------------------
@main.command()
@click.option("--since", help="Only calls since: a duration (30d, 12h) or ISO date.")
@_PRICES_OPTION
@pass_ctx
def reprice(ctx: Context, since: str | None, prices: str | None) -> None:
    """Recompute local costs (not provider-reported ones) with the current prices."""
    from otel_tokens.reprice import reprice as run_reprice

    start = run(lambda: parse_since(since)) if since else None
    book = _price_book(prices)
    con = run(ctx.db.connect_writable)
    try:
        result = run_reprice(con, book, start)
    finally:
        con.close()
    click.echo(
        f"repriced {result.examined} calls: {result.changed} changed, "
        f"{result.unpriced} still without a price"
    )


# --- processes -------------------------------------------------------------------------------
@main.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="Collector config (OpenTelemetry Collector format); default: the embedded one.",
)
def collector(config_path: str | None) -> None:
    """Run the collector: OTLP in, DuckDB out, admin API (until SIGTERM/SIGINT)."""
    try:
        from collector import service
    except ImportError as exc:
        fail(f"the collector is not available in this installation: {exc}")
    sys.exit(service.main(config_path))


@main.command()
def demo() -> None:
    """End-to-end demo on a local fake provider: no network, no API keys."""
    try:
        from otel_tokens import demo as demo_module
    except ImportError as exc:
        fail(f"the demo is not available in this installation: {exc}")
    sys.exit(demo_module.run())


if __name__ == "__main__":
    main()
