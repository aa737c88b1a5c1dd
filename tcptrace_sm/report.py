"""Renderers: terminal tables, CSV, JSON and JSON Lines, from plain records.

Records carry timestamps as integer nanoseconds; every renderer writes them as epoch seconds
(exact decimal strings with nine digits in CSV and tables, numbers in JSON).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import IO, Any

TS_KEYS = frozenset({"first_ts", "last_ts", "ts"})


def ts_text(ns: int | None) -> str:
    """Exact epoch seconds, e.g. ``1700000000.000123456``."""
    if ns is None:
        return ""
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    return f"{sign}{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"


def ts_number(ns: int | None) -> float | None:
    return None if ns is None else ns / 1e9


def ts_human(ns: int | None) -> str:
    """``2026-11-24 11:21:31.123456`` (UTC), for terminal tables."""
    if ns is None:
        return ""
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _cell(key: str, value: Any) -> str:
    if value is None:
        return ""
    if key in TS_KEYS:
        return ts_text(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6f}".rstrip("0").rstrip(".") if value else "0"
    if isinstance(value, (list, tuple)):
        return ";".join(str(v) for v in value)
    return str(value)


def _jsonable(record: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (ts_number(v) if k in TS_KEYS else v) for k, v in record.items()}


def write_csv(out: IO[str], records: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> None:
    w = csv.writer(out, lineterminator="\n")
    w.writerow(columns)
    for r in records:
        w.writerow([_cell(c, r.get(c)) for c in columns])


def _ts_cells(values: list[Any]) -> list[str]:
    from tcptrace_sm import capture  # loaded by then: the records came from it

    if capture.COMPILED:
        from tcptrace_sm import _scan

        try:
            return _scan.ts_cells(values)
        except (TypeError, OverflowError):  # not all plain ints: the Python way below
            pass
    return [
        "" if v is None else (f"{v // 1_000_000_000}.{v % 1_000_000_000:09d}" if v >= 0 else ts_text(v))
        for v in values
    ]


def _float_cells(values: list[Any]) -> list[str]:
    return [f"{v:.6f}".rstrip("0").rstrip(".") if type(v) is float and v else _cell("", v) for v in values]


def _column_cells(key: str, values: list[Any]) -> list[str]:
    """The CSV cells of one column, formatted as :func:`_cell` would, a column at a time."""
    if key in TS_KEYS:
        return _ts_cells(values)
    if not values:
        return []
    from tcptrace_sm import capture  # loaded by then: the records came from it

    if capture.COMPILED:
        from tcptrace_sm import _scan

        return _scan.cells(values, partial(_cell, key))
    kinds = set(map(type, values))
    if kinds == _INT:
        return list(map(str, values))
    if kinds == _BOOL:
        return ["true" if v else "false" for v in values]
    if kinds == _LIST:
        return [";".join(map(str, v)) if v else "" for v in values]
    if kinds <= _TEXT:
        return ["" if v is None else v for v in values]
    if any(issubclass(k, float) for k in kinds):
        return _float_cells(values)
    return [_cell(key, v) for v in values]


_INT, _BOOL, _LIST, _TEXT = {int}, {bool}, {list}, {str, type(None)}


class CsvWriter:
    """CSV of columnar record blocks (``{column: [values]}``): the header once, then rows."""

    def __init__(self, out: IO[str] | None, columns: Sequence[str], *, header: bool = True) -> None:
        self.columns = tuple(columns)
        self.out = out
        if header and out is not None:
            out.write(",".join(self.columns) + "\n")

    def lines(self, cols: Mapping[str, list[Any]]) -> list[str]:
        """The rows of a block as CSV lines (without line ends)."""
        if not cols or not cols[self.columns[0]]:
            return []
        cells = [_column_cells(c, cols[c]) for c in self.columns]
        rows = zip(*cells, strict=True)
        # most blocks hold no cell that needs quoting: then plain joins are exact CSV
        if not any(_needs_quotes(col) for col in cells):
            return list(map(",".join, rows))
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="")
        out = []
        for row in rows:
            w.writerow(row)
            out.append(buf.getvalue())
            buf.seek(0)
            buf.truncate()
        return out

    def write(self, cols: Mapping[str, list[Any]]) -> None:
        lines = self.lines(cols)
        if lines and self.out is not None:
            self.out.write("\n".join(lines))
            self.out.write("\n")


def _needs_quotes(cells: list[str]) -> bool:
    text = "".join(cells)
    return "," in text or '"' in text or "\n" in text or "\r" in text


class JsonlWriter:
    """JSON Lines of columnar record blocks."""

    def __init__(self, out: IO[str] | None, columns: Sequence[str], *, header: bool = True) -> None:
        self.columns = tuple(columns)
        self.out = out

    def lines(self, cols: Mapping[str, list[Any]]) -> list[str]:
        columns = self.columns
        dumps = json.dumps
        return [
            dumps(_jsonable(dict(zip(columns, row, strict=True))), separators=(",", ":"))
            for row in zip(*(cols[c] for c in columns), strict=True)
        ]

    def write(self, cols: Mapping[str, list[Any]]) -> None:
        lines = self.lines(cols)
        if lines and self.out is not None:
            self.out.write("\n".join(lines))
            self.out.write("\n")


def write_jsonl(out: IO[str], records: Iterable[Mapping[str, Any]]) -> None:
    for r in records:
        out.write(json.dumps(_jsonable(r), separators=(",", ":")))
        out.write("\n")


def write_json(out: IO[str], document: Mapping[str, Any]) -> None:
    """One JSON object; lists of records inside it get their timestamps converted."""
    doc: dict[str, Any] = {}
    for key, value in document.items():
        if isinstance(value, list) and value and isinstance(value[0], Mapping):
            doc[key] = [_jsonable(r) for r in value]
        elif isinstance(value, Mapping):
            doc[key] = _jsonable(value)
        else:
            doc[key] = value
    json.dump(doc, out, indent=2)
    out.write("\n")


def render_table(
    records: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    *,
    headers: Mapping[str, str] | None = None,
    max_width: int = 60,
) -> str:
    """A plain aligned text table (no dependency; safe to pipe)."""
    headers = headers or {}
    head = [headers.get(c, c) for c in columns]
    rows = []
    for r in records:
        row = []
        for c in columns:
            v = r.get(c)
            text = ts_human(v) if c in TS_KEYS else _cell(c, v)
            if len(text) > max_width:
                text = text[: max_width - 1] + "…"
            row.append(text)
        rows.append(row)
    widths = [max([len(h)] + [len(row[i]) for row in rows]) for i, h in enumerate(head)]
    buf = io.StringIO()
    buf.write("  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip() + "\n")
    buf.write("  ".join("-" * w for w in widths) + "\n")
    for row in rows:
        buf.write("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() + "\n")
    return buf.getvalue()


def summary_lines(summary: Mapping[str, Any]) -> list[str]:
    """A few human lines describing an analysis (for stderr)."""
    lines = []
    skipped = {reason: n for reason, n in (summary.get("skipped") or {}).items() if n}
    skipped_txt = ""
    if skipped:
        skipped_txt = "; skipped " + ", ".join(
            f"{n} {reason.replace('_', ' ')}" for reason, n in skipped.items()
        )
    tunnels = {kind: n for kind, n in (summary.get("decapsulated") or {}).items() if n}
    if tunnels:
        skipped_txt = (
            "; decapsulated " + ", ".join(f"{n} {kind}" for kind, n in tunnels.items()) + skipped_txt
        )
    lines.append(f"{summary['packets']} packets, {summary['segments']} TCP segments{skipped_txt}")
    if "connections" not in summary:
        return lines
    close = summary.get("close") or {}
    by = ", ".join(f"{k} {v}" for k, v in close.items())
    n = summary["connections"]
    lines.append(f"{n} connection{'' if n == 1 else 's'}" + (f" ({by})" if by else ""))
    anomalies = summary.get("anomalies") or {}
    if anomalies:
        lines.append("anomalies: " + ", ".join(f"{k} {v}" for k, v in anomalies.items()))
    else:
        lines.append("anomalies: none")
    return lines
