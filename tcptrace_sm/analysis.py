"""The library entry point: ``analyze(paths, **options) -> Analysis``.

It glues the capture reader to an engine and turns finished connections into records. Records
travel in :class:`Block` s — columns of plain JSON-friendly values (timestamps as integer
nanoseconds), one block per batch of connections that finished together, in ``flow_id`` order
within the block. The same blocks feed the streaming writers of the CLI (constant memory) and
:class:`Analysis`, which keeps them for notebooks (pandas DataFrames) and the other commands.

Engines (``engine=``):

* ``"fast"`` (the default, :mod:`tcptrace_sm.engine`): the reader's columns go through a
  vectorised observer for the connections that follow the common paths, and through the
  per-segment core for everything else;
* ``"reference"``: every segment through the per-segment core (:mod:`tcptrace_sm.machine`).

Both give the same records in the same order; the test suite checks it.

The settings (:class:`Options`), the record columns and the summary (:class:`Summary`,
:func:`summarize`) are defined in :mod:`tcptrace_sm.common` (numpy-free, for the command's
start-up) and re-exported here.
"""

from __future__ import annotations

import html
import os
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from itertools import pairwise
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from tcptrace_sm.anomalies import CATALOGUE, CODES, Category, Severity
from tcptrace_sm.capture import read_segments, segments_of
from tcptrace_sm.common import (
    ANOMALY_COLUMNS,
    CLOSE_KINDS,
    ENGINES,
    FLOW_COLUMNS,
    TRANSITION_COLUMNS,
    CaptureError,
    Options,
    ReadStats,
    Summary,
    summarize,
)
from tcptrace_sm.flows import MAX_FLOWS, FlowTable
from tcptrace_sm.machine import Connection
from tcptrace_sm.model import STATE_ORDER, flags_str
from tcptrace_sm.zeek import CONN_STATES, ZeekSummary

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ANOMALY_COLUMNS",
    "CLOSE_KINDS",
    "ENGINES",
    "FLOW_COLUMNS",
    "TRANSITION_COLUMNS",
    "Analysis",
    "Block",
    "CaptureError",
    "Options",
    "Summary",
    "analyze",
    "blocks",
    "summarize",
    "trace_flow",
]

#: Columns holding integer-nanosecond timestamps (seconds in CSV/JSON, datetimes in pandas).
TS_COLUMNS = frozenset({"first_ts", "last_ts", "ts"})
#: The record sets by name (the ``Block`` attribute of each) and their columns.
RECORD_COLUMNS: dict[str, tuple[str, ...]] = {
    "flows": FLOW_COLUMNS,
    "anomalies": ANOMALY_COLUMNS,
    "transitions": TRANSITION_COLUMNS,
}
#: Connections still open at the end of the capture are handed out in blocks by spans of
#: 2**FINAL_SPAN_BITS frame numbers of their flow_id (a block of at most that many).
FINAL_SPAN_BITS = 14

#: A block with its place in the output: ``(0, chunk, span)`` for connections that finished
#: while that chunk was read, ``(1, 0, span)`` for those finished at the end (spans of flow_id,
#: see :func:`final_span`). The places are the same however the connections are shared out,
#: so that shares merge into exactly the single-process output.
Keyed = tuple[tuple[int, int, int], "Block"]
#: Which rows of a chunk belong to one worker's share.
Share = Callable[[Any], Any]


def final_span(flow_ids: Any) -> Any:
    """The output span of connections finished at the end of the capture."""
    return flow_ids >> FINAL_SPAN_BITS


Columnar = dict[str, list[Any]]


def _empty(columns: Sequence[str]) -> Columnar:
    return {c: [] for c in columns}


@dataclass
class Block:
    """Records of connections that finished together: flows in ``flow_id`` order, each flow's
    anomalies and transitions in the same flow order (each flow's own in time order)."""

    flows: Columnar = field(default_factory=lambda: _empty(FLOW_COLUMNS))
    anomalies: Columnar = field(default_factory=lambda: _empty(ANOMALY_COLUMNS))
    transitions: Columnar = field(default_factory=lambda: _empty(TRANSITION_COLUMNS))
    noted: Counter[str] = field(default_factory=Counter)  # anomalies found, listed or not
    anomalies_not_listed: int = 0  # beyond the per-connection cap of each code
    transitions_not_listed: int = 0  # beyond the per-connection cap
    evicted: int = 0

    def __len__(self) -> int:
        return len(self.flows["flow_id"])

    def extend(self, other: Block) -> None:
        for mine, theirs in (
            (self.flows, other.flows),
            (self.anomalies, other.anomalies),
            (self.transitions, other.transitions),
        ):
            for c, values in theirs.items():
                mine[c].extend(values)
        self.noted.update(other.noted)
        self.anomalies_not_listed += other.anomalies_not_listed
        self.transitions_not_listed += other.transitions_not_listed
        self.evicted += other.evicted

    def sort(self) -> None:
        """Put the flows in ``flow_id`` order (stably, for anomalies and transitions)."""
        for cols in (self.flows, self.anomalies, self.transitions):
            ids = cols["flow_id"]
            if all(a <= b for a, b in pairwise(ids)):
                continue
            order = sorted(range(len(ids)), key=ids.__getitem__)
            pick = itemgetter(*order)
            for c, values in cols.items():
                cols[c] = list(pick(values))  # unsorted: at least two rows

    def rows(self, lo: int, hi: int) -> Block:
        """The connections ``[lo:hi]`` with their anomalies and transitions (the counts go with
        the piece that starts at 0, so that the pieces of a block add up to it)."""
        ids = self.flows["flow_id"]
        if lo == 0 and hi >= len(ids):
            return self
        first, last = ids[lo], ids[hi - 1]
        out = Block()
        out.flows = {c: v[lo:hi] for c, v in self.flows.items()}
        for name in ("anomalies", "transitions"):
            cols = getattr(self, name)
            fids = cols["flow_id"]
            a, b = bisect_left(fids, first), bisect_right(fids, last)
            setattr(out, name, {c: v[a:b] for c, v in cols.items()})
        if lo == 0:
            out.noted = self.noted
            out.anomalies_not_listed = self.anomalies_not_listed
            out.transitions_not_listed = self.transitions_not_listed
            out.evicted = self.evicted
        return out

    @staticmethod
    def merge(parts: Sequence[Block]) -> Block:
        """One block of several (flows put back in ``flow_id`` order)."""
        if len(parts) == 1:
            return parts[0]
        out = Block()
        for p in parts:
            out.extend(p)
        out.sort()
        return out

    def add(self, conn: Connection, zeek: ZeekSummary | None = None, transitions: bool = True) -> None:
        """Append one finished connection's records (flows must come in ``flow_id`` order);
        its transitions only if ``transitions``."""
        self.noted.update(conn.noted)
        self.anomalies_not_listed += sum(conn.noted.values()) - len(conn.anomalies)
        self.transitions_not_listed += conn.dropped_transitions
        c, s = conn.client, conn.server
        seen: dict[str, None] = {}
        for a in conn.anomalies:
            seen.setdefault(a.code, None)
            if a.code == "flow_evicted":
                self.evicted += 1
        row = (
            conn.flow_id,
            c.ip,
            c.port,
            s.ip,
            s.port,
            conn.min_ts,
            conn.max_ts,
            (conn.max_ts - conn.min_ts) / 1e9,
            conn.packets,
            conn.bytes,
            c.packets,
            s.packets,
            c.bytes,
            s.bytes,
            c.state.value,
            s.state.value,
            conn.close,
            conn.rst_by.value if conn.rst_by else None,
            conn.errno,
            conn.midstream,
            list(seen),
            zeek.conn_state if zeek else None,
            zeek.history if zeek else None,
        )
        for col, v in zip(FLOW_COLUMNS, row, strict=True):
            self.flows[col].append(v)
        an = self.anomalies
        for a in sorted(
            conn.anomalies, key=lambda a: (a.ts if a.ts is not None else conn.last_ts, a.frame or 0)
        ):
            kind = CATALOGUE[a.code]
            an["flow_id"].append(conn.flow_id)
            an["code"].append(a.code)
            an["severity"].append(kind.severity.value)
            an["category"].append(kind.category.value)
            an["side"].append(a.side.value if a.side else None)
            an["frame"].append(a.frame)
            an["ts"].append(a.ts)
            an["state"].append(a.state.value if a.state else None)
            an["detail"].append(a.detail)
        if not transitions:
            return
        tr = self.transitions
        # in the order the observer concluded them: time order when timestamps only move
        # forward, and each side's always chain (a capture whose time jumps back stays readable)
        for t in conn.transitions:
            tr["flow_id"].append(conn.flow_id)
            tr["side"].append(t.side.value)
            tr["frame"].append(t.frame)
            tr["ts"].append(t.ts)
            tr["from_state"].append(t.from_state.value)
            tr["to_state"].append(t.to_state.value)
            tr["cause"].append(t.cause)
            tr["inferred"].append(t.inferred)


def _records(cols: Columnar, columns: Sequence[str]) -> list[dict[str, Any]]:
    return [dict(zip(columns, row, strict=True)) for row in zip(*(cols[c] for c in columns), strict=True)]


def flow_record(conn: Connection, zeek: ZeekSummary | None = None) -> dict[str, Any]:
    """The flow record of one finished connection."""
    b = Block()
    b.add(conn, zeek)
    return _records(b.flows, FLOW_COLUMNS)[0]


def anomaly_records(conn: Connection) -> list[dict[str, Any]]:
    """The anomaly records of one finished connection, in time order."""
    b = Block()
    b.add(conn)
    return _records(b.anomalies, ANOMALY_COLUMNS)


def transition_records(conn: Connection) -> list[dict[str, Any]]:
    """The transition records of one finished connection, in time order."""
    b = Block()
    b.add(conn)
    return _records(b.transitions, TRANSITION_COLUMNS)


@dataclass
class Analysis:
    """The result of :func:`analyze`: records, DataFrames and a summary."""

    options: Options
    stats: ReadStats
    block: Block = field(default_factory=Block)
    engine: str = "fast"

    @property
    def warnings(self) -> list[str]:
        return list(self.stats.warnings)

    @property
    def anomaly_counts(self) -> Counter[str]:
        """Every anomaly found per code, listed or not."""
        return self.block.noted

    @cached_property
    def flow_records(self) -> list[dict[str, Any]]:
        """One dict per connection (see FLOW_COLUMNS), in ``flow_id`` order."""
        return _records(self.block.flows, FLOW_COLUMNS)

    @cached_property
    def anomaly_records(self) -> list[dict[str, Any]]:
        return _records(self.block.anomalies, ANOMALY_COLUMNS)

    @cached_property
    def transition_records(self) -> list[dict[str, Any]]:
        return _records(self.block.transitions, TRANSITION_COLUMNS)

    @cached_property
    def summary(self) -> dict[str, Any]:
        return summarize(self.stats, self.options, Summary.of(self.block))

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
        return _frame(self.block.flows, FLOW_COLUMNS)

    @cached_property
    def anomalies(self) -> pd.DataFrame:
        """One row per finding."""
        return _frame(self.block.anomalies, ANOMALY_COLUMNS)

    @cached_property
    def transitions(self) -> pd.DataFrame:
        """One row per state change of one endpoint."""
        return _frame(self.block.transitions, TRANSITION_COLUMNS)


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


def _frame(cols: Columnar, columns: Sequence[str]) -> pd.DataFrame:
    import pandas as pd

    df = pd.DataFrame({c: cols[c] for c in columns}, columns=list(columns))
    for col in columns:
        if col in TS_COLUMNS:
            df[col] = pd.to_datetime(df[col].astype("Int64"), unit="ns", utc=True)
        elif col in _CATEGORIES:
            df[col] = pd.Categorical(df[col], categories=_CATEGORIES[col])
        elif col in ("frame",):
            df[col] = df[col].astype("Int64")
    return df


def _paths(paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[str | os.PathLike[str]]:
    if isinstance(paths, (str, os.PathLike)):
        return [paths]
    return list(paths)


def reference_blocks(
    paths: Sequence[str | os.PathLike[str]],
    options: Options,
    stats: ReadStats,
    progress: Callable[[ReadStats], None] | None = None,
    transitions: bool = True,
) -> Iterator[Keyed]:
    """Every segment through the per-segment core: the plain path the fast engine must match."""
    batches = tap(options.columns(paths, stats), stats, progress)
    return reference_share(batches, options, stats, None, transitions)


def tap(
    batches: Iterator[Any], stats: ReadStats, progress: Callable[[ReadStats], None] | None
) -> Iterator[Any]:
    """The chunks, calling ``progress`` after each one is read (and once at the end)."""
    if progress is None:
        return batches
    return _tapped(batches, stats, progress)


def _tapped(batches: Iterator[Any], stats: ReadStats, progress: Callable[[ReadStats], None]) -> Iterator[Any]:
    for b in batches:
        progress(stats)
        yield b
    progress(stats)


def reference_share(
    batches: Iterator[Any],
    options: Options,
    stats: ReadStats,
    share: Share | None = None,
    transitions: bool = True,
) -> Iterator[Keyed]:
    """The reference path over chunks of columns; with ``share``, over one worker's share of
    the connections (the capture clock still comes from every segment)."""
    import numpy as np

    table = FlowTable(options.config(), max_flows=options.max_flows)
    zeek: dict[int, ZeekSummary] = {}

    def block(conns: list[Connection]) -> Block:
        b = Block()
        for conn in conns:
            b.add(conn, zeek.pop(conn.flow_id, None), transitions)
        return b

    for k, cols in enumerate(batches):
        observe = table.observe
        pairs: Iterable[tuple[Any, int | None]]
        if share is not None and len(cols):
            clock0 = table.clock if table.clock is not None else int(cols.ts[0])
            clocks = np.maximum.accumulate(np.maximum(cols.ts, clock0))
            rows = share(cols)
            pairs = zip(segments_of(cols, rows), clocks[rows].tolist(), strict=True)
            end_clock: int | None = int(clocks[-1])
        else:
            pairs = ((seg, None) for seg in segments_of(cols))
            end_clock = None
        for seg, clk in pairs:
            conn = observe(seg, clk)
            clock = table.clock
            summary = zeek.get(conn.flow_id)
            if summary is None:
                summary = zeek[conn.flow_id] = ZeekSummary(seg, clock=clock)
            summary.update(seg, clock)
        if end_clock is not None:
            table.clock = end_clock
        for span, conns in _by_span(table.sweep()):
            yield (0, k, span), block(conns)
    end = stats.last_ts if stats.last_ts is not None else 0
    for span, conns in _by_span(table.finish(end)):
        yield (1, 0, span), block(conns)


def _by_span(conns: list[Connection]) -> Iterator[tuple[int, list[Connection]]]:
    """Connections (in flow_id order) by final span of flow_id."""
    spans = [final_span(c.flow_id) for c in conns]
    lo = 0
    for hi in range(1, len(conns) + 1):
        if hi == len(conns) or spans[hi] != spans[lo]:
            yield spans[lo], conns[lo:hi]
            lo = hi


def blocks(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    options: Options | None = None,
    *,
    stats: ReadStats | None = None,
    engine: str = "fast",
    jobs: int = 1,
    client: Any = None,
    progress: Callable[[ReadStats], None] | None = None,
    transitions: bool = True,
) -> Iterator[Block]:
    """The records of an analysis as they become final, block by block (constant memory).

    ``jobs`` worker processes share the connections out (see :mod:`tcptrace_sm.parallel`);
    ``client`` (a ``dask.distributed.Client``) shares them out over a Dask cluster instead.
    ``progress`` is called with the reader's statistics after every chunk; without
    ``transitions`` the blocks hold no transition records (less work when only flows or
    anomalies are wanted). Opening problems raise :class:`CaptureError` from this call, before
    any block.
    """
    options = options or Options()
    stats = stats if stats is not None else ReadStats(files=[])
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs!r}")
    plist = _paths(paths)
    if client is not None:
        from tcptrace_sm.parallel import dask_blocks

        return dask_blocks(plist, options, stats, client, engine=engine, transitions=transitions)
    if jobs > 1 and "-" not in [os.fspath(p) for p in plist]:
        from tcptrace_sm.parallel import parallel_blocks

        return parallel_blocks(
            plist, options, stats, jobs, engine=engine, progress=progress, transitions=transitions
        )
    keyed: Iterator[Keyed]
    if engine == "reference":
        keyed = reference_blocks(plist, options, stats, progress, transitions)
    else:
        from tcptrace_sm.engine import fast_blocks

        keyed = fast_blocks(plist, options, stats, progress, transitions)
    return (b for _key, b in keyed)


def analyze(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    time_wait: float = 60.0,
    close_wait_timeout: float = 1.0,
    verify_checksums: bool = False,
    max_flows: int = MAX_FLOWS,
    engine: str = "fast",
    jobs: int = 1,
    client: Any = None,
    decapsulate: bool = True,
) -> Analysis:
    """Analyse one capture file or several (merged in time order); ``"-"`` reads stdin.

    ``jobs`` worker processes (or the workers of ``client``, a ``dask.distributed.Client``)
    share the connections out; the result is the same as with one process, unless the
    connection table overflows (each worker then has ``max_flows / jobs``).

    Raises :class:`CaptureError` (a ``ValueError``) when an input is not a usable capture. A
    capture cut mid-record is analysed up to the cut; the warning is in ``Analysis.warnings``.
    """
    options = Options(
        time_wait=time_wait,
        close_wait_timeout=close_wait_timeout,
        verify_checksums=verify_checksums,
        max_flows=max_flows,
        decapsulate=decapsulate,
    )
    stats = ReadStats(files=[])
    result = Block()
    for b in blocks(paths, options, stats=stats, engine=engine, jobs=jobs, client=client):
        result.extend(b)
    result.sort()
    return Analysis(options, stats, result, engine)


def trace_flow(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    flow_id: int,
    *,
    time_wait: float = 60.0,
    close_wait_timeout: float = 1.0,
    verify_checksums: bool = False,
    decapsulate: bool = True,
) -> list[dict[str, Any]]:
    """Every segment of one connection, with both endpoints' states right after it.

    Sequence and acknowledgment numbers are relative to each side's first sequence number
    (its ISN when the SYN was captured), as Wireshark shows them. ``anomalies`` lists the codes
    found at that segment. Raises ``LookupError`` if the capture has no such flow.
    """
    options = Options(
        time_wait=time_wait,
        close_wait_timeout=close_wait_timeout,
        verify_checksums=verify_checksums,
        decapsulate=decapsulate,
    )
    table = FlowTable(options.config())
    stats = ReadStats(files=[])
    rows: list[dict[str, Any]] = []
    base: dict[str, int] = {}
    seen = 0
    conn: Connection | None = None
    for seg in read_segments(
        _paths(paths), verify_checksums=verify_checksums, stats=stats, decapsulate=decapsulate
    ):
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
