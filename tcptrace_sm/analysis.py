"""The library entry point: ``analyze(paths, **options) -> Analysis``.

It glues the capture reader to the flow table and turns the finished connections into plain
records (dicts of JSON-friendly values, timestamps as integer nanoseconds). The same records feed
the CLI's renderers and, lazily, the pandas DataFrames that notebooks use.
"""

from __future__ import annotations

import html
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from tcptrace_sm.anomalies import CATALOGUE, CODES, Category, Severity
from tcptrace_sm.capture import CaptureError, ReadStats, read_segments
from tcptrace_sm.flows import FlowTable
from tcptrace_sm.machine import Config, Connection
from tcptrace_sm.model import STATE_ORDER, flags_str
from tcptrace_sm.zeek import CONN_STATES, ZeekSummary

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FLOW_COLUMNS", "Analysis", "CaptureError", "Options", "analyze", "trace_flow"]

#: Column order of the flow records (CSV columns; a change here is a breaking change).
FLOW_COLUMNS: tuple[str, ...] = (
    "flow_id",
    "client_ip",
    "client_port",
    "server_ip",
    "server_port",
    "first_ts",
    "last_ts",
    "duration",
    "packets",
    "bytes",
    "client_packets",
    "server_packets",
    "client_bytes",
    "server_bytes",
    "client_state",
    "server_state",
    "close",
    "rst_by",
    "errno",
    "midstream",
    "anomalies",
    "conn_state",
    "history",
)
ANOMALY_COLUMNS: tuple[str, ...] = (
    "flow_id",
    "code",
    "severity",
    "category",
    "side",
    "frame",
    "ts",
    "state",
    "detail",
)
TRANSITION_COLUMNS: tuple[str, ...] = (
    "flow_id",
    "side",
    "frame",
    "ts",
    "from_state",
    "to_state",
    "cause",
    "inferred",
)
#: Columns holding integer-nanosecond timestamps (seconds in CSV/JSON, datetimes in pandas).
TS_COLUMNS = frozenset({"first_ts", "last_ts", "ts"})
CLOSE_KINDS: tuple[str, ...] = ("fin", "half", "rst", "refused", "unanswered", "open")


@dataclass(frozen=True)
class Options:
    """Every analysis setting; each is also a keyword of :func:`analyze` and a CLI option."""

    time_wait: float = 60.0
    close_wait_timeout: float = 1.0
    verify_checksums: bool = False

    def config(self) -> Config:
        return Config(time_wait=self.time_wait, close_wait_timeout=self.close_wait_timeout)


def flow_record(conn: Connection, zeek: ZeekSummary | None = None) -> dict[str, Any]:
    c, s = conn.client, conn.server
    seen: dict[str, None] = {}
    for a in conn.anomalies:
        seen.setdefault(a.code, None)
    return {
        "flow_id": conn.flow_id,
        "client_ip": c.ip,
        "client_port": c.port,
        "server_ip": s.ip,
        "server_port": s.port,
        "first_ts": conn.first_ts,
        "last_ts": conn.last_ts,
        "duration": (conn.last_ts - conn.first_ts) / 1e9,
        "packets": conn.packets,
        "bytes": conn.bytes,
        "client_packets": c.packets,
        "server_packets": s.packets,
        "client_bytes": c.bytes,
        "server_bytes": s.bytes,
        "client_state": c.state.value,
        "server_state": s.state.value,
        "close": conn.close,
        "rst_by": conn.rst_by.value if conn.rst_by else None,
        "errno": conn.errno,
        "midstream": conn.midstream,
        "anomalies": list(seen),
        "conn_state": zeek.conn_state if zeek else None,
        "history": zeek.history if zeek else None,
    }


def anomaly_records(conn: Connection) -> list[dict[str, Any]]:
    out = []
    for a in sorted(conn.anomalies, key=lambda a: (a.ts if a.ts is not None else conn.last_ts, a.frame or 0)):
        kind = CATALOGUE[a.code]
        out.append(
            {
                "flow_id": conn.flow_id,
                "code": a.code,
                "severity": kind.severity.value,
                "category": kind.category.value,
                "side": a.side.value if a.side else None,
                "frame": a.frame,
                "ts": a.ts,
                "state": a.state.value if a.state else None,
                "detail": a.detail,
            }
        )
    return out


def transition_records(conn: Connection) -> list[dict[str, Any]]:
    return [
        {
            "flow_id": conn.flow_id,
            "side": t.side.value,
            "frame": t.frame,
            "ts": t.ts,
            "from_state": t.from_state.value,
            "to_state": t.to_state.value,
            "cause": t.cause,
            "inferred": t.inferred,
        }
        for t in sorted(conn.transitions, key=lambda t: t.ts)
    ]


@dataclass
class Analysis:
    """The result of :func:`analyze`: records, DataFrames and a summary."""

    options: Options
    stats: ReadStats
    flow_records: list[dict[str, Any]] = field(default_factory=list)
    anomaly_records: list[dict[str, Any]] = field(default_factory=list)
    transition_records: list[dict[str, Any]] = field(default_factory=list)
    anomaly_counts: Counter[str] = field(default_factory=Counter)  # all found, listed or not
    anomalies_not_listed: int = 0  # beyond the per-connection cap of each code
    transitions_not_listed: int = 0  # beyond the per-connection cap

    def add(self, conn: Connection, zeek: ZeekSummary | None = None) -> None:
        self.anomaly_counts.update(conn.noted)
        self.anomalies_not_listed += sum(conn.noted.values()) - len(conn.anomalies)
        self.transitions_not_listed += conn.dropped_transitions
        self.flow_records.append(flow_record(conn, zeek))
        self.anomaly_records.extend(anomaly_records(conn))
        self.transition_records.extend(transition_records(conn))

    @property
    def warnings(self) -> list[str]:
        return list(self.stats.warnings)

    @cached_property
    def summary(self) -> dict[str, Any]:
        st = self.stats
        close = Counter(f["close"] for f in self.flow_records)
        codes = self.anomaly_counts
        severities = Counter(a["severity"] for a in self.anomaly_records)
        categories = Counter(a["category"] for a in self.anomaly_records)
        return {
            "files": list(st.files),
            "packets": st.packets,
            "segments": st.segments,
            "skipped": {reason: n for reason, n in sorted(st.skipped.items()) if n},
            "truncated": st.truncated,
            "warnings": list(st.warnings),
            "first_ts": st.first_ts,
            "last_ts": st.last_ts,
            "connections": len(self.flow_records),
            "close": {k: close[k] for k in CLOSE_KINDS if close[k]},
            "anomalies": {code: codes[code] for code in CODES if codes[code]},
            "anomalies_not_listed": self.anomalies_not_listed,
            "transitions_not_listed": self.transitions_not_listed,
            "severities": {s.value: severities[s.value] for s in Severity if severities[s.value]},
            "categories": {c.value: categories[c.value] for c in Category if categories[c.value]},
            "options": asdict(self.options),
        }

    def _repr_html_(self) -> str:
        """Rich display in notebooks: summary, the observed state machine, the first flows."""
        from tcptrace_sm.html import state_diagram_svg
        from tcptrace_sm.report import summary_lines

        lines = "<br>".join(html.escape(line) for line in summary_lines(self.summary))
        head = self.flows.head(20).to_html(index=False, border=0)
        svg = state_diagram_svg(self.transition_records, self.anomaly_records)
        return f"<div><p>{lines}</p>{svg}<p>First flows:</p>{head}</div>"

    # -- pandas ------------------------------------------------------------------------------

    @cached_property
    def flows(self) -> pd.DataFrame:
        """One row per connection (see FLOW_COLUMNS)."""
        return _frame(self.flow_records, FLOW_COLUMNS)

    @cached_property
    def anomalies(self) -> pd.DataFrame:
        """One row per finding."""
        return _frame(self.anomaly_records, ANOMALY_COLUMNS)

    @cached_property
    def transitions(self) -> pd.DataFrame:
        """One row per state change of one endpoint."""
        return _frame(self.transition_records, TRANSITION_COLUMNS)


_STATE_NAMES = [s.value for s in STATE_ORDER]
_CATEGORIES: dict[str, list[str]] = {
    "client_state": _STATE_NAMES,
    "server_state": _STATE_NAMES,
    "from_state": _STATE_NAMES,
    "to_state": _STATE_NAMES,
    "state": _STATE_NAMES,
    "side": ["client", "server"],
    "rst_by": ["client", "server"],
    "close": list(CLOSE_KINDS),
    "conn_state": list(CONN_STATES),
    "code": list(CODES),
    "severity": [s.value for s in Severity],
    "category": [c.value for c in Category],
}


def _frame(records: list[dict[str, Any]], columns: Sequence[str]) -> pd.DataFrame:
    import pandas as pd

    df = pd.DataFrame.from_records(records, columns=list(columns))
    for col in columns:
        if col in TS_COLUMNS:
            df[col] = pd.to_datetime(df[col].astype("Int64"), unit="ns", utc=True)
        elif col in _CATEGORIES:
            df[col] = pd.Categorical(df[col], categories=_CATEGORIES[col])
        elif col in ("frame",):
            df[col] = df[col].astype("Int64")
    return df


def analyze(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    time_wait: float = 60.0,
    close_wait_timeout: float = 1.0,
    verify_checksums: bool = False,
) -> Analysis:
    """Analyse one capture file or several (merged in time order); ``"-"`` reads stdin.

    Raises :class:`CaptureError` (a ``ValueError``) when an input is not a usable capture. A
    capture cut mid-record is analysed up to the cut; the warning is in ``Analysis.warnings``.
    """
    options = Options(
        time_wait=time_wait, close_wait_timeout=close_wait_timeout, verify_checksums=verify_checksums
    )
    config = options.config()
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    stats = ReadStats(files=[])
    table = FlowTable(config)
    observe = table.observe
    zeek: dict[int, ZeekSummary] = {}
    for seg in read_segments(list(paths), verify_checksums=verify_checksums, stats=stats):
        conn = observe(seg)
        summary = zeek.get(conn.flow_id)
        if summary is None:
            summary = zeek[conn.flow_id] = ZeekSummary(seg)
        summary.update(seg)
    result = Analysis(options, stats)
    end = stats.last_ts if stats.last_ts is not None else 0
    for conn in table.finish(end):
        result.add(conn, zeek.pop(conn.flow_id, None))
    return result


def trace_flow(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    flow_id: int,
    *,
    time_wait: float = 60.0,
    close_wait_timeout: float = 1.0,
    verify_checksums: bool = False,
) -> list[dict[str, Any]]:
    """Every segment of one connection, with both endpoints' states right after it.

    Sequence and acknowledgment numbers are relative to each side's first sequence number
    (its ISN when the SYN was captured), as Wireshark shows them. ``anomalies`` lists the codes
    found at that segment. Raises ``LookupError`` if the capture has no such flow.
    """
    options = Options(
        time_wait=time_wait, close_wait_timeout=close_wait_timeout, verify_checksums=verify_checksums
    )
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    table = FlowTable(options.config())
    stats = ReadStats(files=[])
    rows: list[dict[str, Any]] = []
    base: dict[str, int] = {}
    seen = 0
    conn: Connection | None = None
    for seg in read_segments(list(paths), verify_checksums=verify_checksums, stats=stats):
        c = table.observe(seg)
        if c.flow_id != flow_id:
            continue
        conn = c
        side = "client" if seg.sport == c.client.port and seg.src == c.client.ip else "server"
        peer = "server" if side == "client" else "client"
        base.setdefault(side, seg.seq)
        new = c.anomalies[seen:]
        seen = len(c.anomalies)
        rows.append(
            {
                "frame": seg.frame,
                "ts": seg.ts,
                "side": side,
                "flags": flags_str(seg.flags),
                "seq": (seg.seq - base[side]) & 0xFFFFFFFF,
                "ack": (seg.ack - base[peer]) & 0xFFFFFFFF if peer in base else seg.ack,
                "len": seg.length,
                "anomalies": [a.code for a in new],
            }
        )
    if conn is not None:
        # States come from the final transition log, so conclusions drawn from later segments
        # (a FIN that arrived later than assumed, an answer that was lost) show where they belong.
        conn.finish(stats.last_ts if stats.last_ts is not None else conn.last_ts)
        for side in ("client", "server"):
            moves = sorted((t for t in conn.transitions if t.side.value == side), key=lambda t: t.ts)
            for r in rows:
                state = "CLOSED"
                for t in moves:
                    if (t.frame is not None and t.frame <= r["frame"]) or (
                        t.frame is None and t.ts <= r["ts"]
                    ):
                        state = t.to_state.value
                r[f"{side}_state"] = state
    if not rows:
        raise LookupError(f"no flow {flow_id} in the capture")
    return rows
