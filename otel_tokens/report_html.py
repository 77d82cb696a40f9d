"""The HTML report: one self-contained page with inline SVG charts of cost by day, user and node.

``otel-tokens report --format html --output r.html`` calls :func:`render`. The page has no
external assets and no JavaScript: charts are SVG drawn here, tooltips are SVG ``<title>``
elements, and every value taken from the data is HTML-escaped (user ids and node names are
whatever the instrumented application sent).

The numbers come from the ``llm_calls`` view (node resolution, model and ``total_tokens`` are
defined there once), aggregated here because the report's filters (period, user, tenant, node)
apply to calls before they are summed.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from otel_tokens.reports import Filters, parse_since, parse_time

PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#e15759",
    "#76b7b2",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
)
OTHER_COLOR = "#bab0ac"
MAX_SERIES = 8  # models drawn separately in the daily chart; the rest are stacked as "other"
TOP_N = 10


class Database(Protocol):
    """What the report needs from ``otel_tokens.query.Database`` (local file or collector API)."""

    def query(self, sql: str, params: list[Any] | None = None) -> tuple[list[str], list[tuple]]: ...


def normalise_filters(filters: Any, *, now: datetime | None = None) -> Filters:
    """The CLI's ``Filters``, or a mapping with since/from/to/user/tenant/node, or None.

    Durations and dates are parsed by ``otel_tokens.reports`` (the CLI's own parsers), so
    ``{"since": "7d"}`` here means exactly what ``--since 7d`` means there.
    """
    if filters is None:
        return Filters()
    if isinstance(filters, Filters):
        return filters
    if not isinstance(filters, Mapping):
        raise TypeError(
            f"filters: expected Filters, a mapping or None, got {type(filters).__name__}"
        )

    def when(value: Any, option: str) -> datetime | None:
        if value is None or isinstance(value, datetime):
            return value
        if option == "--since":
            return parse_since(str(value), now=now)
        return parse_time(str(value), option=option)

    start = filters.get("start")
    if start is None and filters.get("since") is not None:
        start = when(filters["since"], "--since")
    elif start is None:
        start = when(filters.get("from"), "--from")
    return Filters(
        start=when(start, "--from"),
        end=when(filters.get("end", filters.get("to")), "--to"),
        user=filters.get("user"),
        tenant=filters.get("tenant"),
        node=filters.get("node"),
    )


def describe(f: Filters) -> str:
    parts = []
    if f.start or f.end:
        lo = f.start.strftime("%Y-%m-%d %H:%M") if f.start else "…"
        hi = f.end.strftime("%Y-%m-%d %H:%M") if f.end else "now"
        parts.append(f"{lo} → {hi} UTC")
    for label, value in (("user", f.user), ("tenant", f.tenant), ("node", f.node)):
        if value is not None:
            parts.append(f"{label} = {value}")
    return ", ".join(parts) or "all data"


def _num(value: Any) -> float | None:
    """Query values arrive as numbers locally and as JSON strings through the collector API."""
    if value is None:
        return None
    if isinstance(value, (int, float, Decimal)):
        return float(value)
    return float(str(value))


def _rows(db: Database, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    columns, rows = db.query(sql, list(params))
    return [dict(zip(columns, row, strict=False)) for row in rows]


@dataclass(frozen=True, slots=True)
class ReportData:
    """Everything the page shows, already aggregated."""

    totals: dict[str, Any]
    daily: list[dict[str, Any]]  # day, model, cost_usd, total_tokens
    users: list[dict[str, Any]]
    nodes: list[dict[str, Any]]
    unpriced: list[dict[str, Any]]


def load(db: Database, filters: Filters) -> ReportData:
    where, params = filters.where()  # the CLI's filter clause, as query parameters
    totals = _rows(
        db,
        f"""SELECT count(*) AS calls, CAST(coalesce(sum(total_tokens), 0) AS BIGINT) AS tokens,
               sum(cost_usd) AS cost_usd, count(*) FILTER (WHERE cost_usd IS NULL) AS unpriced,
               count(DISTINCT user_id) AS users, count(DISTINCT trace_id) AS traces,
               strftime(timezone('UTC', min(start_time)), '%Y-%m-%d') AS first_seen,
               strftime(timezone('UTC', max(start_time)), '%Y-%m-%d') AS last_seen
            FROM llm_calls {where}""",
        params,
    )[0]
    daily = _rows(
        db,
        f"""SELECT CAST(day AS VARCHAR) AS day, coalesce(model, '(unknown)') AS model,
               sum(cost_usd) AS cost_usd, CAST(sum(total_tokens) AS BIGINT) AS total_tokens
            FROM llm_calls {where} GROUP BY ALL ORDER BY day, model""",
        params,
    )
    group = """count(*) AS calls, CAST(sum(total_tokens) AS BIGINT) AS total_tokens,
               sum(cost_usd) AS cost_usd, count(*) FILTER (WHERE cost_usd IS NULL) AS unpriced"""
    users = _rows(
        db,
        f"""SELECT user_id AS name, {group} FROM llm_calls {where} GROUP BY ALL
            ORDER BY coalesce(sum(cost_usd), 0) DESC, sum(total_tokens) DESC, name
            LIMIT {TOP_N}""",
        params,
    )
    nodes = _rows(
        db,
        f"""SELECT node AS name, {group} FROM llm_calls {where} GROUP BY ALL
            ORDER BY coalesce(sum(cost_usd), 0) DESC, sum(total_tokens) DESC, name
            LIMIT {TOP_N}""",
        params,
    )
    unpriced_where = f"{where} AND cost_usd IS NULL" if where else " WHERE cost_usd IS NULL"
    unpriced = _rows(
        db,
        f"""SELECT provider, model, count(*) AS calls,
               CAST(sum(total_tokens) AS BIGINT) AS total_tokens
            FROM llm_calls {unpriced_where} GROUP BY ALL ORDER BY total_tokens DESC, model""",
        params,
    )
    return ReportData(totals, daily, users, nodes, unpriced)


# --- formatting -------------------------------------------------------------------------------
def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def fmt_usd(value: float | None) -> str:
    if value is None:
        return "—"
    if value == 0:
        return "$0"
    if abs(value) < 0.01:
        return f"${value:.6f}"
    return f"${value:,.2f}"


def _axis_usd(value: float) -> str:
    """Axis labels: as few digits as tell the ticks apart ($0.0025, not $0.002500)."""
    if value <= 0:
        return "$0"
    decimals = max(2, 2 - _floor_log10(value))
    return f"${value:,.{decimals}f}".rstrip("0").rstrip(".") if value < 1 else fmt_usd(value)


def fmt_int(value: Any) -> str:
    number = _num(value)
    return "—" if number is None else f"{int(number):,}"


def _day(value: Any) -> str:
    return str(value)[:10]


def _nice_max(value: float) -> float:
    """A round axis maximum ≥ value (1, 2, 2.5 or 5 times a power of ten)."""
    if value <= 0:
        return 1.0
    exponent = 10 ** _floor_log10(value)
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * exponent:
            return step * exponent
    return 10 * exponent


def _floor_log10(value: float) -> int:
    n = 0
    while value >= 10:
        value /= 10
        n += 1
    while value < 1:
        value *= 10
        n -= 1
    return n


# --- charts -------------------------------------------------------------------------------------
def daily_cost_chart(daily: Sequence[Mapping[str, Any]]) -> str:
    """Stacked bars: cost per UTC day, one colour per model (top models by cost, rest "other")."""
    costs: dict[str, dict[str, float]] = {}
    by_model: dict[str, float] = {}
    for row in daily:
        cost = _num(row.get("cost_usd"))
        if cost is None:
            continue
        day, model = _day(row["day"]), str(row["model"])
        costs.setdefault(day, {})[model] = costs.get(day, {}).get(model, 0.0) + cost
        by_model[model] = by_model.get(model, 0.0) + cost
    if not costs or sum(by_model.values()) <= 0:
        return '<p class="empty">No priced calls in this period.</p>'
    ranked = sorted(by_model, key=lambda m: (-by_model[m], m))
    series = ranked[:MAX_SERIES]
    has_other = len(ranked) > MAX_SERIES
    colors = {model: PALETTE[i % len(PALETTE)] for i, model in enumerate(series)}
    first = date.fromisoformat(min(costs))
    last = date.fromisoformat(max(costs))
    days = [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]

    width, height = 760, 300
    left, right, top, bottom = 70, 10, 10, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    day_totals = [sum(costs.get(d, {}).values()) for d in days]
    y_max = _nice_max(max(day_totals))
    slot = plot_w / len(days)
    bar_w = max(1.0, min(48.0, slot * 0.7))
    parts = [
        f'<svg class="chart" id="cost-by-day" role="img" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
        "<title>Cost per day by model (USD)</title>",
    ]
    for i in range(5):  # horizontal grid and y labels
        value = y_max * i / 4
        y = top + plot_h - plot_h * i / 4
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" class="axis" text-anchor="end">'
            f"{_e(_axis_usd(value))}</text>"
        )
    label_every = max(1, round(len(days) / 12))
    for i, day in enumerate(days):
        x = left + slot * i + (slot - bar_w) / 2
        y = top + plot_h
        stack = [(m, costs.get(day, {}).get(m, 0.0)) for m in series]
        if has_other:
            other = sum(v for m, v in costs.get(day, {}).items() if m not in colors)
            stack.append(("other", other))
        for model, cost in stack:
            if cost <= 0:
                continue
            h = plot_h * cost / y_max
            y -= h
            color = colors.get(model, OTHER_COLOR)
            parts.append(
                f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" '
                f'height="{max(h, 0.5):.1f}" fill="{color}">'
                f"<title>{_e(day)} · {_e(model)}: {_e(fmt_usd(cost))}</title></rect>"
            )
        if i % label_every == 0:
            parts.append(
                f'<text x="{left + slot * i + slot / 2:.1f}" y="{height - bottom + 16}" '
                f'class="axis" text-anchor="middle">{_e(day[5:])}</text>'
            )
    parts.append("</svg>")
    legend = [
        f'<li><span class="swatch" style="background:{colors[m]}"></span>{_e(m)}</li>'
        for m in series
    ]
    if has_other:
        legend.append(
            f'<li><span class="swatch" style="background:{OTHER_COLOR}"></span>other</li>'
        )
    return "".join(parts) + '<ul class="legend">' + "".join(legend) + "</ul>"


def bar_list_chart(chart_id: str, rows: Sequence[Mapping[str, Any]], empty_label: str) -> str:
    """Horizontal bars of cost per name (tokens when nothing is priced), largest first."""
    if not rows:
        return '<p class="empty">No calls in this period.</p>'
    priced = any((_num(r.get("cost_usd")) or 0) > 0 for r in rows)
    key = "cost_usd" if priced else "total_tokens"
    values = [(_num(r.get(key)) or 0.0) for r in rows]
    top = max(values) or 1.0
    label_w, bar_max, row_h = 220, 430, 26
    width, height = label_w + bar_max + 110, row_h * len(rows) + 8
    parts = [
        f'<svg class="chart" id="{_e(chart_id)}" role="img" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{'Cost' if priced else 'Tokens'} by {_e(chart_id.split('-')[-1])}</title>",
    ]
    for i, (row, value) in enumerate(zip(rows, values, strict=True)):
        name = row.get("name")
        label = empty_label if name is None else str(name)
        shown = label if len(label) <= 30 else label[:29] + "…"
        y = 4 + i * row_h
        w = bar_max * value / top
        if not priced:
            figure = f"{fmt_int(value)} tok"
        elif row.get("cost_usd") is None:
            figure = "unpriced"  # no price known: not $0
        else:
            figure = fmt_usd(value)
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 16}" class="label" text-anchor="end">'
            f"<title>{_e(label)}</title>{_e(shown)}</text>"
            f'<rect class="bar" x="{label_w}" y="{y + 3}" width="{max(w, 1):.1f}" '
            f'height="{row_h - 8}" '
            f'fill="{PALETTE[0]}"><title>{_e(label)}: {_e(figure)}</title></rect>'
            f'<text x="{label_w + w + 6:.1f}" y="{y + 16}" class="value">{_e(figure)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], numeric_from: int = 1) -> str:
    head = "".join(
        f"<th{' class=num' if i >= numeric_from else ''}>{_e(h)}</th>"
        for i, h in enumerate(headers)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f"<td{' class=num' if i >= numeric_from else ''}>{_e(cell)}</td>"
            for i, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _ranking_table(rows: Sequence[Mapping[str, Any]], label: str, empty_label: str) -> str:
    return _table(
        [label, "calls", "tokens", "cost", "unpriced calls"],
        [
            [
                empty_label if r.get("name") is None else str(r["name"]),
                fmt_int(r.get("calls")),
                fmt_int(r.get("total_tokens")),
                fmt_usd(_num(r.get("cost_usd"))),
                fmt_int(r.get("unpriced")),
            ]
            for r in rows
        ],
    )


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:960px;
color:#222;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd}
.meta{color:#666;margin:0 0 16px}.cards{display:flex;gap:12px;flex-wrap:wrap}
.card{border:1px solid #ddd;border-radius:6px;padding:8px 14px;min-width:120px}
.card b{display:block;font-size:20px}.card span{color:#666;font-size:12px}
svg.chart{max-width:100%;height:auto;display:block}
.grid{stroke:#e5e5e5}.axis,.value{font-size:11px;fill:#555}.label{font-size:12px;fill:#222}
.legend{list-style:none;padding:0;display:flex;gap:14px;flex-wrap:wrap;font-size:12px}
.swatch{display:inline-block;width:10px;height:10px;margin-right:5px;border-radius:2px}
table{border-collapse:collapse;margin-top:8px;font-size:13px}
th,td{padding:3px 10px;border-bottom:1px solid #eee;text-align:left}.num{text-align:right}
.empty{color:#666;font-style:italic}.warn{color:#8a5300}
"""


def render_data(data: ReportData, filters: Filters, *, generated_at: datetime) -> str:
    t = data.totals
    cost = _num(t.get("cost_usd"))
    cards = [
        ("total cost", fmt_usd(cost)),
        ("LLM calls", fmt_int(t.get("calls"))),
        ("tokens", fmt_int(t.get("tokens"))),
        ("users", fmt_int(t.get("users"))),
        ("traces", fmt_int(t.get("traces"))),
        ("unpriced calls", fmt_int(t.get("unpriced"))),
    ]
    cards_html = "".join(
        f"<div class=card><b>{_e(v)}</b><span>{_e(k)}</span></div>" for k, v in cards
    )
    period = (
        f"{_day(t['first_seen'])} → {_day(t['last_seen'])}" if t.get("first_seen") else "no calls"
    )
    if data.unpriced:
        unpriced_html = (
            '<p class="warn">These calls carry no cost (no price is known), so every cost above '
            "leaves them out. Add a price override and run <code>otel-tokens reprice</code>.</p>"
            + _table(
                ["provider", "model", "calls", "tokens"],
                [
                    [
                        str(r.get("provider") or "—"),
                        str(r.get("model") or "—"),
                        fmt_int(r.get("calls")),
                        fmt_int(r.get("total_tokens")),
                    ]
                    for r in data.unpriced
                ],
                numeric_from=2,
            )
        )
    else:
        unpriced_html = '<p class="empty">Every call has a price.</p>'
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>otel-tokens report</title><style>{_CSS}</style></head>
<body>
<h1>LLM token usage and cost</h1>
<p class="meta">Filters: {_e(describe(filters))} · calls seen {_e(period)} ·
generated {_e(generated_at.strftime("%Y-%m-%d %H:%M UTC"))} by otel-tokens</p>
<div class="cards">{cards_html}</div>
<h2 id="daily">Cost per day by model</h2>
{daily_cost_chart(data.daily)}
<h2 id="users">Top users</h2>
{bar_list_chart("top-users", data.users, "(no user)")}
{_ranking_table(data.users, "user", "(no user)")}
<h2 id="nodes">Top nodes</h2>
{bar_list_chart("top-nodes", data.nodes, "(no node)")}
{_ranking_table(data.nodes, "node", "(no node)")}
<h2 id="unpriced">Unpriced models</h2>
{unpriced_html}
</body></html>
"""


def render(db: Database, filters: Any = None, *, now: datetime | None = None) -> str:
    """The report page for the calls matching ``filters`` (see :func:`normalise_filters`)."""
    now = now or datetime.now(UTC)
    normalised = normalise_filters(filters, now=now)
    return render_data(load(db, normalised), normalised, generated_at=now)
