"""One self-contained HTML report of an analysis: nothing is loaded from the network.

Pictures are inline SVG drawn here (no JavaScript library): the observed state machine laid
out like RFC 9293's Figure 5, the number of endpoints in each state over time (a CLOSE-WAIT
build-up shows at a glance), and time-in-state distributions. Tables sort when a header is
clicked (a few lines of inline JavaScript).
"""

from __future__ import annotations

import html
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tcptrace_sm.diagram import observed_edges
from tcptrace_sm.model import TcpState
from tcptrace_sm.report import summary_lines, ts_human

MAX_TABLE_ROWS = 5000

# RFC 9293 Figure 5, roughly: opening at the top, closing below, TIME-WAIT at the bottom.
_POS: dict[str, tuple[int, int]] = {
    "CLOSED": (450, 40),
    "LISTEN": (450, 130),
    "SYN-RECEIVED": (190, 220),
    "SYN-SENT": (710, 220),
    "ESTABLISHED": (450, 310),
    "FIN-WAIT-1": (190, 400),
    "CLOSE-WAIT": (710, 400),
    "CLOSING": (450, 470),
    "FIN-WAIT-2": (190, 540),
    "LAST-ACK": (710, 540),
    "TIME-WAIT": (450, 620),
}
_BOX_W, _BOX_H = 132, 34

_COLORS: dict[str, str] = {
    "LISTEN": "#8d6e63",
    "SYN-SENT": "#5c6bc0",
    "SYN-RECEIVED": "#26a69a",
    "ESTABLISHED": "#43a047",
    "FIN-WAIT-1": "#fb8c00",
    "FIN-WAIT-2": "#f4511e",
    "CLOSE-WAIT": "#e53935",
    "CLOSING": "#8e24aa",
    "LAST-ACK": "#6d4c41",
    "TIME-WAIT": "#1e88e5",
}

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0;
  color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:18px 28px}header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;color:#c9d1e0}main{padding:18px 28px;max-width:1400px}
section{background:#fff;border:1px solid #e1e5ec;border-radius:8px;padding:16px 20px;margin:0 0 18px}
h2{font-size:16px;margin:0 0 10px}.cards{display:flex;flex-wrap:wrap;gap:10px}
.card{border:1px solid #e1e5ec;border-radius:6px;padding:8px 12px;min-width:120px}
.card b{display:block;font-size:20px}.card span{color:#5b6474;font-size:12px}
table{border-collapse:collapse;width:100%;font-size:12.5px}
th,td{padding:4px 8px;border-bottom:1px solid #eef0f4;text-align:left;white-space:nowrap}
th{cursor:pointer;background:#f0f2f6;position:sticky;top:0}th:hover{background:#e3e7ee}
td.num{text-align:right;font-variant-numeric:tabular-nums}.scroll{max-height:520px;overflow:auto}
.sev-error{color:#b71c1c;font-weight:600}.sev-warning{color:#e65100}.sev-info{color:#455a64}
svg text{font-family:system-ui,Helvetica,Arial,sans-serif}.note{color:#5b6474;font-size:12px}
"""

_JS = """
document.querySelectorAll('table.sortable').forEach(function (table) {
  table.querySelectorAll('th').forEach(function (th, col) {
    th.addEventListener('click', function () {
      var body = table.tBodies[0], rows = Array.from(body.rows);
      var asc = th.dataset.dir !== 'asc'; th.dataset.dir = asc ? 'asc' : 'desc';
      rows.sort(function (a, b) {
        var x = a.cells[col].dataset.v || a.cells[col].textContent;
        var y = b.cells[col].dataset.v || b.cells[col].textContent;
        var nx = parseFloat(x), ny = parseFloat(y);
        var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
        return asc ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
document.body.dataset.ready = '1';
"""


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


# --- the state machine picture -----------------------------------------------------------------


def _border_point(cx: float, cy: float, tx: float, ty: float) -> tuple[float, float]:
    """Where the line from a box's centre towards (tx, ty) leaves the box."""
    dx, dy = tx - cx, ty - cy
    if dx == 0 and dy == 0:
        return cx, cy
    scale = min(
        (_BOX_W / 2) / abs(dx) if dx else math.inf,
        (_BOX_H / 2) / abs(dy) if dy else math.inf,
    )
    return cx + dx * scale, cy + dy * scale


def state_diagram_svg(
    transitions: Iterable[Mapping[str, Any]], anomalies: Iterable[Mapping[str, Any]] = ()
) -> str:
    """The observed state machine as inline SVG: edge width and label follow the counts."""
    edges = observed_edges(transitions)
    totals: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    causes: dict[tuple[str, str], list[str]] = defaultdict(list)
    for (frm, to, cause), per_side in edges.items():
        totals[frm, to].update(per_side)
        causes[frm, to].append(f"{cause}: " + ", ".join(f"{s} {n}" for s, n in sorted(per_side.items())))
    violations: Counter[str] = Counter()
    for a in anomalies:
        if a.get("category") == "violation":
            violations[str(a.get("state") or "CLOSED")] += 1
    used = {s for pair in totals for s in pair} | set(violations)
    biggest = max((sum(c.values()) for c in totals.values()), default=1)
    out = [
        '<svg class="states" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 900 660" '
        'width="900" height="660" role="img" aria-label="observed TCP state machine">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="#475569"/></marker></defs>',
    ]
    for (frm, to), per_side in totals.items():
        if frm not in _POS or to not in _POS:
            continue
        (x1, y1), (x2, y2) = _POS[frm], _POS[to]
        sx, sy = _border_point(x1, y1, x2, y2)
        ex, ey = _border_point(x2, y2, x1, y1)
        # bend edges so that A→B and B→A do not overlap
        mx, my = (sx + ex) / 2, (sy + ey) / 2
        length = math.hypot(ex - sx, ey - sy) or 1
        bend = 22 if (to, frm) in totals else 10
        cx, cy = mx - (ey - sy) / length * bend, my + (ex - sx) / length * bend
        n = sum(per_side.values())
        width = 1.2 + 3.5 * n / biggest
        title = _e("; ".join(causes[frm, to]))
        out.append(
            f'<path class="edge" d="M{sx:.1f},{sy:.1f} Q{cx:.1f},{cy:.1f} {ex:.1f},{ey:.1f}" '
            f'fill="none" stroke="#475569" stroke-width="{width:.1f}" marker-end="url(#arrow)">'
            f"<title>{title}</title></path>"
        )
        out.append(
            f'<text x="{cx:.1f}" y="{cy:.1f}" font-size="11" fill="#1d2330" text-anchor="middle">'
            f"{n}<title>{title}</title></text>"
        )
    for state in TcpState:
        name = state.value
        x, y = _POS[name]
        active = name in used
        fill = _COLORS.get(name, "#90a4ae") if active else "#eceff1"
        color = "#fff" if active else "#90a4ae"
        out.append(
            f'<g class="state{" active" if active else ""}" data-state="{name}">'
            f'<rect x="{x - _BOX_W / 2}" y="{y - _BOX_H / 2}" width="{_BOX_W}" height="{_BOX_H}" rx="8" '
            f'fill="{fill}" stroke="#37474f" stroke-width="{1 if active else 0.5}"/>'
            f'<text x="{x}" y="{y + 4}" font-size="12.5" font-weight="600" fill="{color}" '
            f'text-anchor="middle">{name}</text></g>'
        )
        if violations[name]:
            out.append(
                f'<g class="violation"><rect x="{x + _BOX_W / 2 - 6}" y="{y - _BOX_H / 2 - 12}" width="74" '
                f'height="20" rx="4" fill="#fde2e1" stroke="#c62828" stroke-dasharray="4 3"/>'
                f'<text x="{x + _BOX_W / 2 + 31}" y="{y - _BOX_H / 2 + 2}" font-size="11" fill="#8e0000" '
                f'text-anchor="middle">⚠ {violations[name]} violation{"s" if violations[name] > 1 else ""}'
                "</text></g>"
            )
    out.append("</svg>")
    return "".join(out)


# --- states over time and time in state ----------------------------------------------------------


def state_counts_over_time(
    transitions: Sequence[Mapping[str, Any]], start: int, end: int, points: int = 240
) -> tuple[list[int], dict[str, list[int]]]:
    """How many endpoints were in each (non-CLOSED) state at ``points`` instants."""
    events = sorted((int(t["ts"]), str(t["from_state"]), str(t["to_state"])) for t in transitions)
    if end <= start:
        end = start + 1
    times = [start + (end - start) * i // (points - 1) for i in range(points)]
    current: Counter[str] = Counter()
    series: dict[str, list[int]] = {s.value: [] for s in TcpState if s is not TcpState.CLOSED}
    i = 0
    for t in times:
        while i < len(events) and events[i][0] <= t:
            _ts, frm, to = events[i]
            current[frm] -= 1
            current[to] += 1
            i += 1
        for name, values in series.items():
            values.append(max(current[name], 0))
    return times, {k: v for k, v in series.items() if any(v)}


def states_over_time_svg(transitions: Sequence[Mapping[str, Any]], start: int, end: int) -> str:
    times, series = state_counts_over_time(transitions, start, end)
    width, height, left, bottom = 900, 300, 50, 30
    plot_w, plot_h = width - left - 150, height - bottom - 20
    top = max((max(v) for v in series.values()), default=1) or 1
    out = [
        f'<svg class="over-time" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="endpoints in each state over time">',
        f'<line x1="{left}" y1="{20 + plot_h}" x2="{left + plot_w}" y2="{20 + plot_h}" stroke="#90a4ae"/>',
        f'<line x1="{left}" y1="20" x2="{left}" y2="{20 + plot_h}" stroke="#90a4ae"/>',
        f'<text x="{left - 6}" y="24" font-size="11" text-anchor="end">{top}</text>',
        f'<text x="{left - 6}" y="{20 + plot_h}" font-size="11" text-anchor="end">0</text>',
        f'<text x="{left}" y="{height - 8}" font-size="11">{_e(ts_human(times[0]))}</text>',
        f'<text x="{left + plot_w}" y="{height - 8}" font-size="11" text-anchor="end">'
        f"{_e(ts_human(times[-1]))}</text>",
    ]
    span = len(times) - 1 or 1
    for k, (name, values) in enumerate(series.items()):
        pts = " ".join(
            f"{left + plot_w * i / span:.1f},{20 + plot_h - plot_h * v / top:.1f}"
            for i, v in enumerate(values)
        )
        color = _COLORS.get(name, "#607d8b")
        out.append(
            f'<polyline class="series" data-state="{name}" points="{pts}" fill="none" stroke="{color}" '
            f'stroke-width="2"><title>{name}</title></polyline>'
        )
        y = 30 + k * 18
        out.append(
            f'<rect x="{left + plot_w + 16}" y="{y - 9}" width="12" height="12" fill="{color}"/>'
            f'<text x="{left + plot_w + 34}" y="{y + 1}" font-size="12">{name} (max {max(values)})</text>'
        )
    out.append("</svg>")
    return "".join(out)


def time_in_state(transitions: Sequence[Mapping[str, Any]], end: int) -> dict[str, list[float]]:
    """Seconds each endpoint spent in each state (the last one counted up to ``end``)."""
    by_endpoint: dict[tuple[object, str], list[tuple[int, str, str]]] = defaultdict(list)
    for t in transitions:
        by_endpoint[t["flow_id"], str(t["side"])].append(
            (int(t["ts"]), str(t["from_state"]), str(t["to_state"]))
        )
    spent: dict[str, list[float]] = defaultdict(list)
    for moves in by_endpoint.values():
        moves.sort()
        for (ts, _frm, to), nxt in zip(moves, [*moves[1:], None], strict=True):
            if to == "CLOSED":
                continue
            until = nxt[0] if nxt is not None else end
            spent[to].append(max(until - ts, 0) / 1e9)
    return dict(spent)


def _quantile(values: list[float], q: float) -> float:
    values = sorted(values)
    if not values:
        return 0.0
    pos = (len(values) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return values[lo] + (values[hi] - values[lo]) * (pos - lo)


def time_in_state_table(spent: Mapping[str, list[float]]) -> str:
    longest = max((max(v) for v in spent.values() if v), default=1.0) or 1.0
    rows = []
    for state in TcpState:
        values = spent.get(state.value)
        if not values:
            continue
        med, p90, mx = _quantile(values, 0.5), _quantile(values, 0.9), max(values)
        color = _COLORS.get(state.value, "#607d8b")
        bar = (
            '<svg width="220" height="14">'
            f'<rect width="{220 * mx / longest:.1f}" height="14" fill="#cfd8dc"/>'
            f'<rect width="{220 * p90 / longest:.1f}" height="14" fill="#90a4ae"/>'
            f'<rect width="{220 * med / longest:.1f}" height="14" fill="{color}"/>'
            "</svg>"
        )
        rows.append(
            f"<tr><td>{state.value}</td><td class=num>{len(values)}</td><td class=num>{med:.3f}</td>"
            f"<td class=num>{p90:.3f}</td><td class=num>{mx:.3f}</td><td>{bar}</td></tr>"
        )
    return (
        '<table class="sortable time-in-state"><thead><tr><th>state</th><th>endpoints</th><th>median s</th>'
        "<th>p90 s</th><th>max s</th><th>median / p90 / max</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )


# --- tables and the page ---------------------------------------------------------------------------


def _table(records: Sequence[Mapping[str, Any]], columns: Sequence[str], css: str) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = []
    for r in records[:MAX_TABLE_ROWS]:
        cells = []
        for c in columns:
            v = r.get(c)
            if c in ("first_ts", "last_ts", "ts"):
                cells.append(f'<td data-v="{_e(v)}">{_e(ts_human(v))}</td>')
            elif isinstance(v, (list, tuple)):
                cells.append(f"<td>{_e(' '.join(map(str, v)))}</td>")
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                cells.append(f"<td class=num>{_e(v)}</td>")
            elif c == "severity":
                cells.append(f'<td class="sev-{_e(v)}">{_e(v)}</td>')
            else:
                cells.append(f"<td>{_e(v)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    more = ""
    if len(records) > MAX_TABLE_ROWS:
        more = f'<p class="note">First {MAX_TABLE_ROWS} of {len(records)} rows; export CSV for all.</p>'
    return (
        f'<div class="scroll"><table class="sortable {css}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>{more}"
    )


def _cards(summary: Mapping[str, Any]) -> str:
    items = [("packets", summary["packets"]), ("TCP segments", summary["segments"])]
    items.append(("connections", summary["connections"]))
    items += [(f"close: {k}", v) for k, v in summary.get("close", {}).items()]
    items += [(f"{k}", v) for k, v in summary.get("severities", {}).items()]
    return (
        '<div class="cards">'
        + "".join(f'<div class="card"><b>{_e(v)}</b><span>{_e(k)}</span></div>' for k, v in items)
        + "</div>"
    )


def render_report(
    summary: Mapping[str, Any],
    flows: Sequence[Mapping[str, Any]],
    anomalies: Sequence[Mapping[str, Any]],
    transitions: Sequence[Mapping[str, Any]],
    flow_columns: Sequence[str],
    anomaly_columns: Sequence[str],
    *,
    title: str = "tcpsm report",
) -> str:
    """The whole report page as one string."""
    start = summary.get("first_ts") or 0
    end = summary.get("last_ts") or start
    files = ", ".join(summary.get("files", [])) or "capture"
    lines = "<br>".join(_e(line) for line in summary_lines(summary))
    warnings = "".join(f'<p class="note">⚠ {_e(w)}</p>' for w in summary.get("warnings", []))
    diagram = state_diagram_svg(transitions, anomalies)
    over_time = states_over_time_svg(transitions, start, end)
    in_state = time_in_state_table(time_in_state(transitions, end))
    flow_table = _table(flows, flow_columns, "flows")
    anomaly_table = _table(anomalies, anomaly_columns, "anomalies")
    span = f"{_e(ts_human(start))} → {_e(ts_human(end))} UTC"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>{_e(title)} — {_e(files)}</title><style>{_CSS}</style></head>
<body><header><h1>{_e(title)}</h1><p>{_e(files)} · {span}</p></header>
<main>
<section id="summary"><h2>Summary</h2>{_cards(summary)}<p class="note">{lines}</p>{warnings}</section>
<section id="diagram"><h2>State machine as observed</h2>
<p class="note">Every edge the connections took, its width and label by how often; hover for causes and
roles. Violations are marked on the state where they happened.</p>
{diagram}</section>
<section id="over-time"><h2>Endpoints in each state over time</h2>{over_time}</section>
<section id="time-in-state"><h2>Time in state</h2>
<p class="note">Seconds per endpoint visit; a state still held when the capture ends counts up to the end.</p>
{in_state}</section>
<section id="connections"><h2>Connections ({len(flows)})</h2>{flow_table}</section>
<section id="anomalies"><h2>Anomalies ({len(anomalies)})</h2>{anomaly_table}</section>
</main><script>{_JS}</script></body></html>
"""
