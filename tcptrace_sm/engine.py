"""The fast engine: the observer's verdicts at numpy speed for connections on the common paths.

Theory of operation
===================

Almost every connection in a capture follows one of a few paths: a three-way handshake, data
in order (with the odd retransmission), a FIN exchange or an RST; or a SYN nobody answered; or
a SYN refused by an RST. On those paths the per-segment core (:mod:`tcptrace_sm.machine`) only
counts, remembers a few sequence numbers, and moves each endpoint through a fixed series of
states. This module does that work for whole chunks of the reader's columns at once:

1. Every segment's 4-tuple becomes a key and the key a *slot* in :class:`_Store`, a table of
   per-connection columns. A key seen for the first time gets a slot only if its first segment
   is a plain SYN; anything else (a capture picked up mid-stream, a SYN-ACK first) goes to the
   per-segment core straight away.
2. The segments of the fast connections are grouped by slot and every rule the core would
   apply is evaluated for all of them: where the C extension was built, connection by
   connection and segment by segment on a copy of the slot's row (``_fastpath.c``); else, and
   for a side whose payload the snaplen cut only in part, for the whole chunk at once in numpy
   (:meth:`Engine._fast_columns`: segmented running maxima give each side's SND.NXT, forward
   fills the last ACK and window each side advertised, first-occurrence reductions the
   handshake, FIN, FIN-ACK and RST events). A connection whose segments in the chunk all stay
   on the common paths commits the chunk to its slot. The test suite evaluates every chunk
   both ways and compares the rows field by field.
3. A connection that leaves them anywhere in the chunk (a retransmitted FIN, an ACK of data
   never seen, crossing FINs, an RST that is not exactly in sequence, a pause long enough for
   Zeek's timers, ...) is handed over: every segment of it so far — fast connections keep them
   in a compact :class:`_Journal` — goes through the core, which owns it from then on. Nothing
   unusual is decided here, and nothing has to be reconstructed: the core sees exactly the
   segments it would have seen. A connection whose journal would grow past
   :data:`JOURNAL_CAP` segments is handed over too, so memory stays bounded.
4. At the end of every chunk the rules of :mod:`tcptrace_sm.flows` retire connections that are
   over and evict the least active when the table is full, fast slots and the core's
   connections alike; their records (flows, transitions, anomalies, Zeek's summary) are built
   column-wise into a :class:`~tcptrace_sm.analysis.Block`.
5. A connection whose close is complete (both FINs acknowledged) leaves the store for a compact
   closed table as soon as it closes, and its journal goes: should anything more come on its
   4-tuple, the core's connection and Zeek's (still live for ``tcp_close_delay``) are rebuilt
   from that row (:meth:`Engine.rebuild_closed`; the test suite compares them field by field
   with the core's).
6. A connection that can only wait (reset or refused, until its 2 MSL is up; an attempt nobody
   answered, until the end or eviction) is parked once quiet for a few seconds: its row and
   journal leave the store for the parked table, and come back, exactly as they were, when
   anything needs it again (:meth:`Engine._park`).
7. The closed and the parked tables keep 25 to 40 bytes a connection in memory; the rest of
   their rows go to temporary files past a few MB (:class:`_Segmented`). Memory then follows
   the connections in progress, not the ones waiting out a TIME-WAIT or never answered.

Payload the snaplen cut is Zeek's business only (its reassembler cannot pass it on, and
records content gaps): a side whose payload is all cut counts them here, one that is partly
cut runs Zeek's own reassembler code (:class:`~tcptrace_sm.zeek.GapCounter`).

The answers are the core's, record for record and in the same order: the test suite runs both
engines over every capture it has (kernel recordings, lossy paths, Zeek's corpus, generated
and mangled traffic) and compares everything.
"""

from __future__ import annotations

import ctypes
import heapq
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from tcptrace_sm import capture
from tcptrace_sm.analysis import ANOMALY_COLUMNS, Block, Keyed, Options, Share, final_span, tap
from tcptrace_sm.anomalies import CATALOGUE
from tcptrace_sm.capture import (
    BAD_CHECKSUM,
    NAMES,
    TRUNCATED,
    Columns,
    ReadStats,
    _gather,
    make_segments,
    segments_of,
)
from tcptrace_sm.flows import FlowTable, eviction_order, flow_key
from tcptrace_sm.layout import F32 as _F32
from tcptrace_sm.layout import F64 as _F64
from tcptrace_sm.layout import FIELDS as _FIELDS
from tcptrace_sm.layout import JOURNAL_BUDGET, JOURNAL_CAP, P_DONE, P_EST, P_SYN, P_SYNACK, ZSTATE_NAMES
from tcptrace_sm.layout import LIMIT as _LIMIT
from tcptrace_sm.layout import NEVER_NS as _NEVER_NS
from tcptrace_sm.layout import ZCHARS as _ZCHARS
from tcptrace_sm.layout import ZEEK_IDLE_NS as _ZEEK_IDLE_NS
from tcptrace_sm.layout import ZEEK_TIMER_NS as _ZEEK_TIMER_NS
from tcptrace_sm.layout import ZLETTERS as _ZLETTERS
from tcptrace_sm.machine import (
    NS_PER_S,
    REUSED,
    TIME_WAIT_RECYCLED,
    Config,
    Connection,
    Dir,
    Event,
    cause_of,
    errno_for_reset,
    superseded_detail,
)
from tcptrace_sm.model import (
    ACK,
    FIN,
    PSH,
    RST,
    STATE_ORDER,
    SYN,
    URG,
    Segment,
    Side,
    TcpState,
    Transition,
)
from tcptrace_sm.zeek import ClosedSide, GapCounter, ZeekSummary

I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]

_MASK: Final = 0xFFFFFFFF
_BIG: Final = 1 << 62  # "none" for positions and ordinals
_ALL6: Final = FIN | SYN | RST | PSH | ACK | URG

_STATE_CODE = {s: i for i, s in enumerate(STATE_ORDER)}
CLOSED = _STATE_CODE[TcpState.CLOSED]
LISTEN = _STATE_CODE[TcpState.LISTEN]
SYN_SENT = _STATE_CODE[TcpState.SYN_SENT]
SYN_RCVD = _STATE_CODE[TcpState.SYN_RECEIVED]
EST = _STATE_CODE[TcpState.ESTABLISHED]
FW1 = _STATE_CODE[TcpState.FIN_WAIT_1]
FW2 = _STATE_CODE[TcpState.FIN_WAIT_2]
CW = _STATE_CODE[TcpState.CLOSE_WAIT]
LAST_ACK = _STATE_CODE[TcpState.LAST_ACK]
TW = _STATE_CODE[TcpState.TIME_WAIT]
_STATE_NAMES = np.array([s.value for s in STATE_ORDER], dtype=object)
#: what the RST's receiver saw, by its state's code (-1: no RST)
_ERRNO_OF = np.array([*(errno_for_reset(s) for s in STATE_ORDER), None], dtype=object)


_CAUSES = [
    cause_of(Dir.SEND, Event.SYN),
    cause_of(Dir.APP, Event.PASSIVE_OPEN),
    cause_of(Dir.RECV, Event.SYN),
    cause_of(Dir.RECV, Event.SYN_ACK),
    cause_of(Dir.RECV, Event.ACK_OF_SYN),
    cause_of(Dir.SEND, Event.FIN),
    cause_of(Dir.RECV, Event.FIN),
    cause_of(Dir.RECV, Event.ACK_OF_FIN),
    cause_of(Dir.SEND, Event.RST),
    cause_of(Dir.RECV, Event.RST),
    cause_of(Dir.TIMER, Event.EXPIRE),
    TIME_WAIT_RECYCLED,
    REUSED,
]
(
    _C_SYN,
    _C_PASSIVE,
    _C_RSYN,
    _C_RSYNACK,
    _C_RACKSYN,
    _C_FIN,
    _C_RFIN,
    _C_RACKFIN,
    _C_RST,
    _C_RRST,
    _C_TIMER,
    _C_RECYCLED,
    _C_REUSED,
) = range(len(_CAUSES))
_CAUSE_NAMES = np.array(_CAUSES, dtype=object)
_SIDE_NAMES = np.array(["client", "server"], dtype=object)
_RST_SIDES = np.array([None, "client", "server"], dtype=object)  # by rst_by + 1
_POW10: Final = (1, 10, 100, 1000)


# --------------------------------------------------------------------------------- the store


def _zcol(name: str) -> str:
    """Store column of a Zeek letter column name (``zcA`` -> ``c_zA``)."""
    if name in ("zS", "zH", "zr0"):
        return name
    return f"{name[1]}_z{name[2:]}"


_OPT_MAX: Final = 40  # TCP option bytes of a SYN, at most

_ZSTATE_NAMES = np.array(ZSTATE_NAMES, dtype=object)
_ZCOLS32: Final = np.array([_F32.index(_zcol(name)) for name, _l in _ZLETTERS], dtype=np.int64)


def _enlarged(a: Any, rows: int) -> Any:
    """``a`` with ``rows`` rows (along its first axis), the new ones zero. Grown in place where
    the array owns its buffer: a large buffer is then remapped by the allocator instead of
    copied, so the old and the new table never take memory at the same time (the peak of a
    growing table would be 2.25 times its size otherwise). The caller must drop every view of
    the old array."""
    if a.base is None and a.flags.owndata and a.flags.c_contiguous:
        a.resize((rows, *a.shape[1:]), refcheck=False)
        return a
    b = np.zeros((rows, *a.shape[1:]), dtype=a.dtype)
    b[: len(a)] = a
    return b


class _Store:
    """Columns of per-connection state, indexed by slot: two 2-D arrays (64- and 32-bit
    fields), one row per slot, so that opening many connections at once is two assignments;
    freed slots are reused."""

    def __init__(self, capacity: int = 1024) -> None:
        self.cap = capacity
        self._init64 = np.array([_FIELDS[k] for k in _F64], dtype=np.int64)
        self._init32 = np.array([_FIELDS[k] for k in _F32], dtype=np.int32)
        self.data64 = np.repeat(self._init64[None, :], capacity, axis=0)
        self.data32 = np.repeat(self._init32[None, :], capacity, axis=0)
        self.cols: dict[str, Any] = {}
        self._views()
        self.fam = np.zeros(capacity, dtype=np.uint8)
        self.cip = np.zeros(capacity, dtype="V16")
        self.sip = np.zeros(capacity, dtype="V16")
        self.cport = np.zeros(capacity, dtype=np.int64)
        self.sport = np.zeros(capacity, dtype=np.int64)
        self.live = np.zeros(capacity, dtype=np.bool_)
        self.gen = np.zeros(capacity, dtype=np.int64)  # bumped when a slot is freed
        # option bytes of the connection's first SYN and SYN-ACK (the core reads them)
        self.opt = np.zeros((2, capacity, _OPT_MAX), dtype=np.uint8)
        self.optlen = np.zeros((2, capacity), dtype=np.int64)
        self.hash = np.zeros(capacity, dtype=np.uint64)  # of the 4-tuple, in the key table
        self._free: list[int] = list(range(capacity - 1, -1, -1))
        self.count = 0
        self.released_rows = 0  # journal rows of released slots (the journal reads this)

    def _views(self) -> None:
        for i, k in enumerate(_F64):
            self.cols[k] = self.data64[:, i]
        for i, k in enumerate(_F32):
            self.cols[k] = self.data32[:, i]

    def alloc(self, n: int) -> I64:
        if len(self._free) < n:
            self._grow(n - len(self._free))
        take = self._free[len(self._free) - n :]
        del self._free[len(self._free) - n :]
        out = np.array(take[::-1], dtype=np.int64)
        self.data64[out] = self._init64
        self.data32[out] = self._init32
        self.live[out] = True
        self.count += n
        return out

    def set_options(self, which: int, slots: I64, cols: Columns, rows: I64) -> None:
        """Keep the option bytes of segments ``rows`` (0: the client's SYN, 1: the SYN-ACK)."""
        packed, bounds = _gather(cols.opt, cols.ooff, rows)
        lens = np.minimum(np.diff(bounds), _OPT_MAX)
        buf = np.zeros((len(rows), _OPT_MAX), dtype=np.uint8)
        if len(packed):
            rel = np.arange(len(packed)) - np.repeat(bounds[:-1], np.diff(bounds))
            keep = rel < _OPT_MAX
            buf[np.repeat(np.arange(len(rows)), np.diff(bounds))[keep], rel[keep]] = packed[keep]
        self.opt[which, slots] = buf
        self.optlen[which, slots] = lens

    def options(self, which: int, s: int) -> bytes:
        return self.opt[which, s, : self.optlen[which, s]].tobytes()

    def release(self, slots: I64) -> None:
        if not len(slots):
            return
        self.released_rows += int((self.cols["c_pk"][slots] + self.cols["s_pk"][slots]).sum())
        self.live[slots] = False
        self.gen[slots] += 1
        self._free.extend(reversed(slots.tolist()))
        self.count -= len(slots)

    def _grow(self, need: int) -> None:
        # by a quarter at a time: a table kept full by max_flows must not double past it
        old = self.cap
        new = old + max(need, old // 4)
        self.data64 = _enlarged(self.data64, new)
        self.data32 = _enlarged(self.data32, new)
        self.data64[old:] = self._init64
        self.data32[old:] = self._init32
        self._views()
        for attr in ("fam", "cip", "sip", "cport", "sport", "live", "gen", "hash"):
            setattr(self, attr, _enlarged(getattr(self, attr), new))
        opt = np.zeros((2, new, _OPT_MAX), dtype=np.uint8)
        opt[:, :old] = self.opt
        self.opt = opt
        optlen = np.zeros((2, new), dtype=np.int64)
        optlen[:, :old] = self.optlen
        self.optlen = optlen
        self._free[:0] = range(new - 1, old - 1, -1)
        self.cap = new

    def live_slots(self) -> I64:
        out: I64 = np.flatnonzero(self.live).astype(np.int64)
        return out


#: Segments replayed into the core at once when connections are handed over.
_REPLAY_ROWS: Final = 1 << 16
#: Rows per segment of the closed table (about 2.7 MB), and the bytes of full segments it keeps in
#: memory before it writes further ones to temporary files (see :class:`_Closed`).
_CLOSED_SEG: Final = 1 << 13
CLOSED_IN_MEMORY = 16 << 20
#: Temporary files a table keeps open at most (about 700 MB of closed rows); past that, rows
#: stay in memory rather than use up the process's file descriptors.
_MAX_FILES: Final = 256
#: Rows of a spilled segment read apart when this far apart, else read together with those between.
_CLOSED_RUN_GAP: Final = 256


#: A connection that is over but for its 2 MSL (reset or refused), or an attempt nobody has
#: answered, quiet this long on the capture clock and with at most :data:`_PARK_ROWS` segments
#: leaves the store for the parked table (see :meth:`Engine._park`), which keeps up to
#: PARKED_IN_MEMORY bytes of full segments (of _PARK_SEG rows, about 3 MB) in memory. One
#: second: in a capture whose TIME-WAITs never run out (a burst of seconds), the store would
#: otherwise hold every such connection of the last few seconds, at ~1.3 KB each with its
#: journal; a retransmitted SYN after that brings one back cheaply.
_PARK_AFTER_NS: Final = NS_PER_S
_PARK_ROWS: Final = 16
PARKED_IN_MEMORY = 4 << 20
_PARK_SEG: Final = 1 << 11
#: With more connections than this in the store, waiting ones are parked sooner (oldest first),
#: down to half as many.
_PARK_STORE: Final = 1 << 15

_JOURNAL_DT: Final = np.dtype(
    [("slot", "<i8"), ("gen", "<i8"), ("frame", "<i8"), ("ts", "<i8"), ("clock", "<i8"), ("src", "V16"),
     ("dst", "V16"), ("seq", "<u4"), ("ack", "<u4"), ("length", "<i4"), ("sport", "<u2"), ("dport", "<u2"),
     ("win", "<u2"), ("flags", "u1"), ("fam", "u1"), ("mark", "u1")]
)  # fmt: skip
#: What the journal keeps of a segment (48 bytes): the addresses, ports and family are the
#: connection's, in the direction ``up`` says (bit 0: from the client; bit 1: its payload was
#: cut by the snaplen).
_KEPT_DT: Final = np.dtype(
    [("slot", "<i4"), ("gen", "<u4"), ("frame", "<i8"), ("ts", "<i8"), ("clock", "<i8"), ("seq", "<u4"),
     ("ack", "<u4"), ("length", "<i4"), ("win", "<u2"), ("flags", "u1"), ("up", "u1")]
)  # fmt: skip
_KEPT_COLS: Final = ("frame", "ts", "seq", "ack", "length", "win", "flags")
#: The same in 40 bytes, for the (usual) chunks where every frame is less than 2**32 after
#: its connection's first and every capture clock less than 4.3 s ahead of its segment's time.
_NARROW_DT: Final = np.dtype(
    [("slot", "<i4"), ("gen", "<u4"), ("dframe", "<u4"), ("dclock", "<u4"), ("ts", "<i8"), ("seq", "<u4"),
     ("ack", "<u4"), ("length", "<i4"), ("win", "<u2"), ("flags", "u1"), ("up", "u1")]
)  # fmt: skip
_NARROW_COLS: Final = ("ts", "seq", "ack", "length", "win", "flags", "up", "slot", "gen")
_U32: Final = 1 << 32
#: A parked connection (see :meth:`Engine._park`): its whole row of the store, its SYN and
#: SYN-ACK options, its 4-tuple and its journal (``jn`` rows of ``j``).
_PARK_DT: Final = np.dtype(
    [("d64", "<i8", (len(_F64),)), ("d32", "<i4", (len(_F32),)), ("opt", "u1", (2, _OPT_MAX)),
     ("optlen", "<i8", (2,)), ("fam", "u1"), ("cip", "V16"), ("sip", "V16"), ("cport", "<i8"),
     ("sport", "<i8"), ("hash", "<u8"), ("jn", "<i8"), ("j", _KEPT_DT, (_PARK_ROWS,))]
)  # fmt: skip

#: Journal parts are joined up to this many rows when the journal is compacted.
_JOURNAL_PART: Final = 1 << 16
#: The journal is compacted when one row in this many is dead; so is each part.
_COMPACT_AT: Final = 2


class _Journal:
    """The segments of the fast connections so far (with the capture clock at each), so that
    one can be handed to the core exactly as the core would have seen it.

    Rows carry their slot and the slot's generation (bumped whenever a slot is freed; kept
    modulo 2**32), so rows of connections that are gone are recognised without searching.
    Option bytes are not kept: the core reads only those of a connection's first SYN and
    SYN-ACK, kept per slot.
    """

    def __init__(self, store: _Store) -> None:
        self.store = store
        self.parts: list[npt.NDArray[np.void]] = []
        self.rows = 0
        self.dead = 0  # rows of connections that are gone
        self.restored = False  # whether a part was restored (parts are then not in order)

    def append(self, cols: Columns, rows: I64, slots: I64, clock: I64) -> None:
        if not len(rows):
            return
        st = self.store
        ts, frame, clk = cols.ts[rows], cols.frame[rows], clock[rows]
        dframe = frame - st.cols["fid"][slots]
        dclock = clk - ts
        narrow = bool(((dframe >= 0) & (dframe < _U32) & (dclock >= 0) & (dclock < _U32)).all())
        j = np.empty(len(rows), dtype=_NARROW_DT if narrow else _KEPT_DT)
        j["slot"] = slots
        j["gen"] = st.gen[slots]
        if narrow:
            j["dframe"], j["dclock"] = dframe, dclock
        else:
            j["frame"], j["clock"] = frame, clk
        for name in _KEPT_COLS[1:]:
            j[name] = getattr(cols, name)[rows]
        up = (cols.sport[rows] == st.cport[slots]) & (cols.src[rows] == st.cip[slots])
        j["up"] = up | np.where((cols.mark[rows] & TRUNCATED) != 0, 2, 0)
        self.add(j)

    def add(self, part: npt.NDArray[np.void]) -> None:
        """A part made elsewhere (compiled, see ``journal_rows`` in ``_fastpath.c``): rows of
        live slots, of this generation, in capture order."""
        if len(part):
            self.parts.append(part)
            self.rows += len(part)

    def _widen(self, part: npt.NDArray[np.void]) -> npt.NDArray[np.void]:
        """A part's rows in the 48-byte form (frames and clocks in full)."""
        if part.dtype == _KEPT_DT:
            return part
        out = np.empty(len(part), dtype=_KEPT_DT)
        for name in _NARROW_COLS:
            out[name] = part[name]
        out["frame"] = self.store.cols["fid"][part["slot"]] + part["dframe"].astype(np.int64)
        out["clock"] = part["ts"] + part["dclock"].astype(np.int64)
        return out

    @property
    def dead_rows(self) -> int:
        return self.store.released_rows

    def _alive(self, part: npt.NDArray[np.void]) -> B:
        out: B = self.store.gen[part["slot"]].astype(np.uint32) == part["gen"]
        return out

    def kept(self, slots: I64) -> npt.NDArray[np.void]:
        """The journal's rows of the connections in these (live) slots, in capture order (in
        the 48-byte form)."""
        st = self.store
        mark = np.zeros(st.cap, dtype=np.bool_)
        mark[slots] = True
        kept = [self._widen(_pick(p, mark[p["slot"]] & self._alive(p))) for p in self.parts]
        k = _cat(kept, _KEPT_DT)
        if self.restored:  # restored parts (see restore) hold older segments than others
            k = _pick(k, np.argsort(k["frame"], kind="stable"))
        return k

    def restore(self, slots: I64, rows: npt.NDArray[np.void]) -> None:
        """Journal rows of connections that come back into these slots (``rows["slot"]``:
        the index in ``slots`` of each row's connection)."""
        if not len(rows):
            return
        part = rows.copy()
        s = slots[rows["slot"].astype(np.int64)]
        part["slot"] = s
        part["gen"] = self.store.gen[s]
        self.parts.append(part)
        self.rows += len(part)
        self.restored = True

    def take(self, slots: I64) -> npt.NDArray[np.void]:
        """The segments of the connections in these (live) slots, in capture order."""
        st = self.store
        k = self.kept(slots)
        j = np.empty(len(k), dtype=_JOURNAL_DT)
        s = k["slot"].astype(np.int64)
        up = (k["up"] & 1).astype(np.bool_)
        j["mark"] = np.where(k["up"] & 2, TRUNCATED, 0)  # Columns.mark: a bad checksum is never kept
        j["slot"], j["gen"], j["clock"] = s, k["gen"], k["clock"]
        for name in _KEPT_COLS:
            j[name] = k[name]
        j["fam"] = st.fam[s]
        j["src"] = np.where(up, st.cip[s], st.sip[s])
        j["dst"] = np.where(up, st.sip[s], st.cip[s])
        j["sport"] = np.where(up, st.cport[s], st.sport[s])
        j["dport"] = np.where(up, st.sport[s], st.cport[s])
        return j

    def compact(self) -> None:
        """Drop the rows of connections that are gone, once they are half the journal
        (:data:`_COMPACT_AT`).

        Part by part, so that only one part is ever copied at a time, and only the parts that
        are at least that dead: old parts die off as a whole while the newest are still alive
        (copying those would only cost time). Neighbours that became small are joined (a few
        large parts keep :meth:`take` cheap)."""
        if (self.store.released_rows - self.dead) * _COMPACT_AT < self.rows or not self.parts:
            return
        kept: list[npt.NDArray[np.void]] = []
        parts, self.parts = self.parts, []
        parts.reverse()
        left = 0  # dead rows left in parts not worth copying
        while parts:
            part = parts.pop()
            alive = self._alive(part)
            n = int(alive.sum())
            if n * _COMPACT_AT > len(part) * (_COMPACT_AT - 1):
                left += len(part) - n
            else:
                part = _pick(part, alive)  # the unfiltered part goes now
            del alive
            if kept and len(kept[-1]) + len(part) <= _JOURNAL_PART and kept[-1].dtype == part.dtype:
                kept[-1] = _cat([kept[-1], part], part.dtype)
            else:
                kept.append(part)
        self.parts = kept
        self.rows = sum(len(p) for p in kept)
        self.dead = self.store.released_rows - left


_CLOSED_I8 = ("fid", "first_ts", "last_ts", "zlast", "sa_f", "sa_t", "hs_f", "hs_t")
_CLOSED_SIDE_I8 = ("finf", "fint", "faf", "fat", "lsend", "ltx")
_CLOSED_SIDE_I4 = ("pk", "by", "fino", "fao", "nxt", "fin", "ppf", "win", "lack", "rtx", "zTn", "zWn", "zGn")
_CLOSED_I4 = ("sa_o", "hs_o", "zhist", "zstate")
_CLOSED_DT: Final = np.dtype(
    [(k, "<i8") for k in _CLOSED_I8]
    + [(f"{sd}_{k}", "<i8") for sd in "cs" for k in _CLOSED_SIDE_I8]
    + [(f"{sd}_{k}", "<i4") for sd in "cs" for k in _CLOSED_SIDE_I4]
    + [(f"{sd}_isn", "<u4") for sd in "cs"]
    + [(f"{sd}_ws", "i1") for sd in "cs"]
    + [(k, "<i4") for k in _CLOSED_I4]
    + [("fam", "u1"), ("cip", "V16"), ("sip", "V16"), ("cport", "<u2"), ("sport", "<u2")]
)
#: The store's fields a closed connection keeps.
_CLOSED_COPY: Final = tuple(
    n for n in _CLOSED_DT.names or () if n not in ("zhist", "zstate", "fam", "cip", "sip", "cport", "sport")
)
#: Fields that are the same for every closed connection (no RST, both FINs acknowledged).
_CLOSED_CONST: Final = {
    k: _FIELDS[k] for k in ("refused", "rst_o", "rst_by", "rst_f", "rst_t", "rst_xs", "rst_ys")
} | {"phase": P_EST}
#: Fields a closed connection has as another of its fields.
_CLOSED_ALIAS: Final = {"zopk": "c_pk", "zrpk": "s_pk"}


class _Fields:
    """``mapping[name]``: a column of the closed table, the constant and derived ones too (the
    table's array may be replaced, so nothing is kept)."""

    def __init__(self, owner: _Rows) -> None:
        self.owner = owner

    def __getitem__(self, name: str) -> Any:
        arr = self.owner.arr
        if name in _CLOSED_CONST:
            return np.broadcast_to(np.int64(_CLOSED_CONST[name]), (len(arr),))
        if name == "retire_at":  # both ends CLOSED, quiet for 2 MSL (see Engine._schedule)
            return _later(arr["last_ts"], self.owner.tw_ns)
        return arr[_CLOSED_ALIAS.get(name, name)]


class _Rows:
    """Rows of the closed table read into memory, indexed 0..n-1 (what records, rebuilds and key
    checks read): ``cols[name]`` and the 4-tuple's columns, as the store has them."""

    def __init__(self, arr: npt.NDArray[np.void], tw_ns: int) -> None:
        self.arr = arr
        self.tw_ns = tw_ns
        self.cols = _Fields(self)

    @property
    def fam(self) -> Any:
        return self.arr["fam"]

    @property
    def cip(self) -> Any:
        return self.arr["cip"]

    @property
    def sip(self) -> Any:
        return self.arr["sip"]

    @property
    def cport(self) -> Any:
        return self.arr["cport"]

    @property
    def sport(self) -> Any:
        return self.arr["sport"]


class _Spilled:
    """A full segment of a :class:`_Segmented` table in a temporary file of its own, unlinked
    as soon as it is made where the system allows (so nothing is left behind however the
    process ends), else deleted when closed."""

    def __init__(self, rows: npt.NDArray[np.void]) -> None:
        self.dtype = rows.dtype
        fd, path = tempfile.mkstemp(prefix="tcpsm-")
        self.fd = fd
        self.path: str | None = None
        try:
            os.unlink(path)
        except OSError:  # an open file cannot be unlinked here (Windows)
            self.path = path
        try:
            view = memoryview(rows.tobytes())
            while view:
                view = view[os.write(fd, view) :]
        except BaseException:
            self.close()
            raise

    def read(self, lo: int, hi: int) -> npt.NDArray[np.void]:
        """Rows ``lo:hi`` of the segment."""
        size = self.dtype.itemsize
        want = (hi - lo) * size
        os.lseek(self.fd, lo * size, os.SEEK_SET)
        got = b""
        while len(got) < want:
            more = os.read(self.fd, want - len(got))
            if not more:
                raise OSError(f"a temporary file of the engine's tables is short: {len(got)} of {want} bytes")
            got += more
        return np.frombuffer(got, dtype=self.dtype)

    def close(self) -> None:
        if self.fd < 0:
            return
        os.close(self.fd)
        self.fd = -1
        if self.path is not None:
            os.unlink(self.path)
            self.path = None


class _Segmented:
    """A table of fixed-size rows that come and go in about the order they came, most of it
    out of memory: rows are numbered in the order they arrive and kept in segments of
    :attr:`seg` (a few MB); once ``in_memory`` bytes of full segments are in memory, each further
    segment that fills goes to a temporary file of its own, read back (only the rows wanted)
    when they are, and deleted once its rows are all gone. In memory stay, for every row, a
    few columns the engine looks at each chunk (``meta``) and whether it is still here. Dead
    segments fall off the front, so the table is as long as the span of rows still here;
    rows that stay much longer than the rest are moved to the end (:meth:`front_to_move`).
    If a temporary file cannot be written (a full disk), the segment stays in memory.
    """

    def __init__(
        self, dtype: np.dtype[np.void], meta: dict[str, Any], in_memory: int, seg: int, key: str
    ) -> None:
        self.dtype = dtype
        self.seg = seg  # rows per segment
        # per segment, the least ``key`` its rows came with (a bound: rows only ever leave),
        # so that rows_upto looks only at segments that may hold rows that are due
        self.key = key
        self.low: list[int] = []
        self.in_memory = in_memory
        self.base = 0  # the row number of index 0 of the per-row arrays (a segment's first)
        self.next = 0  # the next row's number
        self.m: dict[str, Any] = {k: np.zeros(self.seg, dtype=dt) for k, dt in meta.items()}
        self.live = np.zeros(self.seg, dtype=np.bool_)
        # segment (row - base) // self.seg: its rows in memory, in a file, or None (all gone)
        self.segs: list[npt.NDArray[np.void] | _Spilled | None] = []
        self.count = 0
        self.spilled = 0  # segments written to files so far
        self.spill_error: str | None = None  # why a segment could not go to a file (the first)

    def meta(self, name: str, rows: I64) -> Any:
        """A per-row column of these rows."""
        return self.m[name][rows - self.base]

    def set_meta(self, name: str, rows: I64, value: Any) -> None:
        self.m[name][rows - self.base] = value

    def live_rows(self) -> I64:
        out: I64 = np.flatnonzero(self.live[: self.next - self.base]).astype(np.int64) + self.base
        return out

    def rows_upto(self, bound: int) -> I64:
        """The rows still here whose ``key`` is at most ``bound``, in row order."""
        out = []
        size = self.next - self.base
        for s, low in enumerate(self.low):
            if low <= bound and self.segs[s] is not None:
                lo, hi = s * self.seg, min((s + 1) * self.seg, size)
                hit = self.live[lo:hi] & (self.m[self.key][lo:hi] <= bound)
                out.append(np.flatnonzero(hit) + (lo + self.base))
        return np.concatenate(out).astype(np.int64) if out else np.empty(0, dtype=np.int64)

    def _grow(self, need: int) -> None:
        old = len(self.live)
        if need <= old:
            return
        new = max(need, old + old // 2)
        for name, a in [*self.m.items(), ("live", self.live)]:
            b = np.zeros(new, dtype=a.dtype)
            b[:old] = a
            if name == "live":
                self.live = b
            else:
                self.m[name] = b

    def _segments_in_memory(self) -> int:
        return sum(1 for s in self.segs[:-1] if isinstance(s, np.ndarray))

    def append(self, new: npt.NDArray[np.void], meta: dict[str, Any]) -> I64:
        """Add these rows (and their per-row columns); their row numbers."""
        n = len(new)
        first = self.next
        rows = np.arange(first, first + n, dtype=np.int64)
        self._grow(first + n - self.base)
        i = first - self.base
        for name, values in meta.items():
            self.m[name][i : i + n] = values
        self.live[i : i + n] = True
        keys = self.m[self.key]
        done = 0
        while done < n:
            at = (first + done - self.base) % self.seg
            if at == 0:
                self.segs.append(np.zeros(self.seg, dtype=self.dtype))
                self.low.append(_NEVER_NS)
            tail = self.segs[-1]
            assert isinstance(tail, np.ndarray)
            k = min(n - done, self.seg - at)
            _raw(tail)[at : at + k] = _raw(new[done : done + k])
            self.low[-1] = min(self.low[-1], int(keys[i + done : i + done + k].min()))
            done += k
            if at + k == self.seg:
                self._spill_tail()
        self.next += n
        self.count += n
        return rows

    def _spill_tail(self) -> None:
        """The tail segment just filled: to a file, if enough are in memory already (and not
        too many files are open: each holds a descriptor)."""
        if self._segments_in_memory() * self.seg * self.dtype.itemsize < self.in_memory:
            return
        if sum(1 for s in self.segs if isinstance(s, _Spilled)) >= _MAX_FILES:
            return
        tail = self.segs[-1]
        assert isinstance(tail, np.ndarray)
        try:
            self.segs[-1] = _Spilled(tail)
        except OSError as e:  # a full or read-only temporary directory: keep it in memory
            if self.spill_error is None:
                self.spill_error = e.strerror or str(e)
            return
        self.spilled += 1

    def read(self, rows: I64) -> npt.NDArray[np.void]:
        """These rows, in this order, read into memory."""
        out = np.empty(len(rows), dtype=self.dtype)
        if not len(rows):
            return out
        idx = rows - self.base
        if idx.min() < 0 or not self.live[idx].all():
            raise AssertionError("a row of a segmented table that is gone was read")
        seg = idx // self.seg
        o = np.argsort(idx, kind="stable")
        bounds = np.flatnonzero(np.diff(seg[o])) + 1
        for part in np.split(o, bounds):
            s = int(seg[part[0]])
            local = idx[part] - s * self.seg
            data = self.segs[s]
            if isinstance(data, np.ndarray):
                _raw(out)[part] = _raw(data)[local]
            elif isinstance(data, _Spilled):
                # runs of nearby rows, each read at once (rows go in about row order)
                gaps = np.flatnonzero(np.diff(local) > _CLOSED_RUN_GAP) + 1
                for run, loc in zip(np.split(part, gaps), np.split(local, gaps), strict=True):
                    lo = int(loc[0])
                    _raw(out)[run] = _raw(data.read(lo, int(loc[-1]) + 1))[loc - lo]
            else:  # pragma: no cover - live rows are in live segments
                raise AssertionError("a live row of a segmented table in a segment that is gone")
        return out

    def release(self, rows: I64) -> None:
        if not len(rows):
            return
        idx = rows - self.base
        self.live[idx] = False
        self.count -= len(rows)
        for s in np.unique(idx // self.seg).tolist():
            lo = s * self.seg
            hi = min(lo + self.seg, self.next - self.base)
            # the tail (still filling) stays; any other segment with no row left goes
            if (s < len(self.segs) - 1 or hi - lo == self.seg) and not self.live[lo:hi].any():
                data = self.segs[s]
                if isinstance(data, _Spilled):
                    data.close()
                self.segs[s] = None
        self._drop_front()

    def _drop_front(self) -> None:
        """Forget the segments at the front that are gone (the per-row arrays move down: a few
        MB, once per segment)."""
        k = 0
        while k < len(self.segs) - 1 and self.segs[k] is None:
            k += 1
        drop = k * self.seg
        size = self.next - self.base
        if not k:
            return
        for a in [*self.m.values(), self.live]:
            a[: size - drop] = a[drop:size]
            a[size - drop : size] = 0
        del self.segs[:k]
        del self.low[:k]
        self.base += drop

    def front_to_move(self) -> I64:
        """The rows still in the first segment if it is mostly empty and far from the end (a
        few rows that stay long hold up the table behind them): the caller moves them to the
        end with :meth:`read`, :meth:`release` and :meth:`append`."""
        if len(self.segs) < 4 or self.segs[0] is None:
            return np.empty(0, dtype=np.int64)
        first = self.live[: self.seg]
        if 4 * int(first.sum()) > self.seg:
            return np.empty(0, dtype=np.int64)
        out: I64 = np.flatnonzero(first).astype(np.int64) + self.base
        return out

    def close(self) -> None:
        """Delete the temporary files now."""
        for s in self.segs:
            if isinstance(s, _Spilled):
                s.close()
        self.segs = [None if isinstance(s, _Spilled) else s for s in self.segs]


class _Closed(_Segmented):
    """Connections whose close is complete, in about 330 bytes each (a slot of the store takes
    three times that): all their records need, and the one rebuild
    (:meth:`Engine.rebuild_closed`) if anything more comes on their 4-tuple.

    A connection stays here for its TIME-WAIT, so on a busy link the table holds every
    connection closed in the last ``time_wait`` seconds of capture time: hundreds of thousands.
    Beyond :data:`CLOSED_IN_MEMORY` bytes they are in temporary files (see :class:`_Segmented`);
    in memory stay 25 bytes a row: the 4-tuple's hash, the last timestamp (when it retires),
    the flow id and whether it is still here. Connections retire in about the order they
    closed, so the table holds one TIME-WAIT's worth of connections.
    """

    def __init__(self, tw_ns: int, in_memory: int | None = None) -> None:
        budget = CLOSED_IN_MEMORY if in_memory is None else in_memory
        meta = {"last_ts": np.int64, "fid": np.int64, "hash": np.uint64}
        super().__init__(_CLOSED_DT, meta, budget, _CLOSED_SEG, "last_ts")
        self.tw_ns = tw_ns

    def append(self, new: npt.NDArray[np.void], hashes: Any) -> I64:
        """Add these rows (with their 4-tuples' hashes); their row numbers."""
        return super().append(new, {"last_ts": new["last_ts"], "fid": new["fid"], "hash": hashes})

    def load(self, rows: I64) -> _Rows:
        """These rows, in this order, read into memory."""
        return _Rows(self.read(rows), self.tw_ns)


class _Gather:
    """``g[name]``: that column of the rows, gathered once (lazily) and as int64."""

    def __init__(self, cols: Any, rows: I64) -> None:
        self.cols = cols
        self.rows = rows
        self.got: dict[str, I64] = {}

    def __getitem__(self, name: str) -> I64:
        v = self.got.get(name)
        if v is None:
            v = self.got[name] = self.cols[name][self.rows].astype(np.int64)
        return v


def _raw(a: npt.NDArray[np.void]) -> npt.NDArray[np.uint8]:
    """The bytes of a contiguous array of records, a row each: numpy moves records of a
    structured type field by field, 10 to 30 times more slowly than rows of bytes."""
    out: npt.NDArray[np.uint8] = a.view(np.uint8).reshape(len(a), a.dtype.itemsize)
    return out


def _pick(a: npt.NDArray[np.void], which: Any) -> npt.NDArray[np.void]:
    """``a[which]`` (positions or a mask) for an array of records, through their bytes."""
    out: npt.NDArray[np.void] = _raw(a)[which].view(a.dtype).reshape(-1)
    return out


def _cat(parts: Sequence[npt.NDArray[np.void]], dtype: Any) -> npt.NDArray[np.void]:
    """``numpy.concatenate`` of arrays of records of one type, through their bytes."""
    if not parts:
        return np.empty(0, dtype=dtype)
    out: npt.NDArray[np.void] = np.concatenate([_raw(p) for p in parts]).view(dtype).reshape(-1)
    return out


def _closed_ref(rows: I64) -> I64:
    """The key table's values of closed rows: even, from -2 down (slots of the store are >= 0)."""
    out: I64 = -2 - 2 * rows
    return out


def _parked_ref(rows: I64) -> I64:
    """The key table's values of parked rows: odd, from -3 down."""
    out: I64 = -3 - 2 * rows
    return out


def _ref_row(values: I64) -> I64:
    """The closed or parked rows these key table values point to."""
    out: I64 = (-2 - values) >> 1
    return out


def _is_parked(values: I64) -> B:
    out: B = (values < -2) & (values != MISSING) & ((values & 1) == 1)
    return out


_REBUILD_STEP: Final = 1 << 15  # keys put back at once when the key table is rebuilt
_EMPTY: Final = np.uint64(0)  # a bucket never used
_GONE: Final = np.uint64(1)  # a bucket whose key left (probing goes on past it)
MISSING: Final = np.iinfo(np.int64).min  # the value of a key not in the table


class _KeyTable:
    """Which store slot or closed row holds each 4-tuple: an open-addressing hash table in two
    numpy arrays (a 64-bit hash and the value per bucket, linear probing, at most 2/3 full),
    worked on a whole chunk's keys at once. It keeps no keys: a hash that matches is checked
    against the 4-tuple of the row it points to, so collisions cost a probe, never a wrong
    answer. The hash is salted per table, so a capture cannot be made to collide on purpose.
    About 40 bytes a connection, where a dict of byte-string keys takes 160."""

    def __init__(self, capacity: int = 1 << 12) -> None:
        self.h = np.zeros(capacity, dtype=np.uint64)
        self.v = np.zeros(capacity, dtype=np.int64)
        self.used = 0  # buckets holding a key
        self.gone = 0  # buckets left by a key
        salt = np.frombuffer(os.urandom(24), dtype=np.uint64) | np.uint64(1)
        self.m1, self.m2, self.m3 = (np.uint64(x) for x in salt)

    def __len__(self) -> int:
        return self.used

    def hash(self, fam: npt.NDArray[np.uint8], a: Any, ap: I64, b: Any, bp: I64) -> npt.NDArray[np.uint64]:
        """The hash of 4-tuples, the same in both directions (never 0 or 1)."""
        with np.errstate(over="ignore"):
            h = self._end(_words(a), ap, fam) + self._end(_words(b), bp, fam)
            h ^= h >> np.uint64(31)
            h *= self.m1
            h ^= h >> np.uint64(29)
        h[h < 2] += np.uint64(2)
        return h

    def _end(
        self, w: npt.NDArray[np.uint64], port: I64, fam: npt.NDArray[np.uint8]
    ) -> npt.NDArray[np.uint64]:
        h = (
            (w[:, 0] * self.m1)
            ^ (w[:, 1] * self.m2)
            ^ (((port.astype(np.uint64) << np.uint64(8)) | fam) * self.m3)
        )
        h ^= h >> np.uint64(32)
        out: npt.NDArray[np.uint64] = h * self.m2
        return out

    def _home(self, h: npt.NDArray[np.uint64]) -> I64:
        out: I64 = (h & np.uint64(len(self.h) - 1)).astype(np.int64)
        return out

    def lookup(self, h: npt.NDArray[np.uint64], same: Callable[[I64, I64], B]) -> I64:
        """The value of each key (:data:`MISSING` if absent); ``same(i, values)`` says whether
        the keys ``i`` are those of the rows the values point to."""
        n = len(h)
        out = np.full(n, MISSING, dtype=np.int64)
        todo = np.arange(n, dtype=np.int64)
        b = self._home(h)
        mask = len(self.h) - 1
        while len(todo):
            th = self.h[b]
            hit = np.flatnonzero(th == h[todo])
            if len(hit):
                vals = self.v[b[hit]]
                ok = same(todo[hit], vals)
                out[todo[hit[ok]]] = vals[ok]
                found = np.zeros(len(todo), dtype=np.bool_)
                found[hit[ok]] = True
                more = ~found & (th != _EMPTY)
            else:
                more = th != _EMPTY
            todo, b = todo[more], (b[more] + 1) & mask
        return out

    def insert(self, h: npt.NDArray[np.uint64], values: I64) -> None:
        """Add keys that are not in the table (and distinct)."""
        if 3 * (self.used + self.gone + len(h)) > 2 * len(self.h):
            self._rebuild(self.used + len(h))
        todo = np.arange(len(h), dtype=np.int64)
        b = self._home(h)
        mask = len(self.h) - 1
        while len(todo):
            free = np.flatnonzero(self.h[b] <= _GONE)
            _u, first = np.unique(b[free], return_index=True)
            won = free[first]  # one key per free bucket this round
            bw = b[won]
            self.gone -= int(np.count_nonzero(self.h[bw] == _GONE))
            self.h[bw] = h[todo[won]]
            self.v[bw] = values[todo[won]]
            left = np.ones(len(todo), dtype=np.bool_)
            left[won] = False
            todo, b = todo[left], (b[left] + 1) & mask
        self.used += len(h)

    def _find(self, h: npt.NDArray[np.uint64], values: I64) -> I64:
        """The buckets of these (present) keys, known by hash and value."""
        out = np.empty(len(h), dtype=np.int64)
        todo = np.arange(len(h), dtype=np.int64)
        b = self._home(h)
        mask = len(self.h) - 1
        for _ in range(len(self.h)):
            if not len(todo):
                return out
            hit = (self.h[b] == h[todo]) & (self.v[b] == values[todo])
            out[todo[hit]] = b[hit]
            todo, b = todo[~hit], (b[~hit] + 1) & mask
        raise AssertionError("a key that should be in the table is not")

    def remove(self, h: npt.NDArray[np.uint64], values: I64) -> None:
        if len(h):
            self.h[self._find(h, values)] = _GONE
            self.used -= len(h)
            self.gone += len(h)

    def repoint(self, h: npt.NDArray[np.uint64], old: I64, new: I64) -> None:
        """The keys now live in other rows."""
        if len(h):
            self.v[self._find(h, old)] = new

    def clear(self) -> None:
        self.h[:] = _EMPTY
        self.used = self.gone = 0

    def _rebuild(self, need: int) -> None:
        keep = np.flatnonzero(self.h > _GONE)
        h, v = self.h[keep], self.v[keep]
        size = len(self.h)
        while 3 * need > 2 * size or (4 * need < size and size > 1 << 12):
            size = size * 2 if 3 * need > 2 * size else size // 2
        self.h = np.zeros(size, dtype=np.uint64)
        self.v = np.zeros(size, dtype=np.int64)
        self.used = self.gone = 0
        del keep
        for lo in range(0, len(h), _REBUILD_STEP):  # a part at a time: the probing's
            self.insert(h[lo : lo + _REBUILD_STEP], v[lo : lo + _REBUILD_STEP])  # arrays stay small


# --------------------------------------------------------------------------------- helpers


def _bad_flags(f: I64) -> B:
    """The flag combinations the core rejects (``bad_flags_code``), and FIN with RST."""
    out: B = (
        ((f & _ALL6) == _ALL6)
        | ((f & _ALL6) == 0)
        | ((f & (SYN | FIN)) == (SYN | FIN))
        | ((f & (SYN | RST)) == (SYN | RST))
        | ((f & (FIN | RST)) == (FIN | RST))
    )
    return out


def syn_options(cols: Columns, rows: I64) -> tuple[I64, B]:
    """Window scale (``-1``: none) and "carries a Fast Open cookie" of the segments ``rows``,
    read exactly as the core reads them (the first option of each kind decides; the walk ends
    at EOL or at a malformed option)."""
    n = len(rows)
    ws = np.full(n, -1, dtype=np.int64)
    if not n:
        return ws, np.zeros(0, dtype=np.bool_)
    if capture.COMPILED:  # the same walk, one segment at a time in C
        from tcptrace_sm import _scan

        flag = np.zeros(n, dtype=np.uint8)
        c = np.ascontiguousarray
        _scan.syn_options(
            c(cols.opt, dtype=np.uint8), c(cols.ooff, dtype=np.int64), c(rows, dtype=np.int64), ws, flag
        )
        return ws, flag.astype(np.bool_)
    packed, bounds = _gather(cols.opt, cols.ooff, rows)
    opt = np.append(packed.astype(np.int64), np.zeros(4, dtype=np.int64))  # reads past the end are 0
    cur = bounds[:-1].copy()
    end = bounds[1:].copy()
    alive = cur < end
    ws_done = np.zeros(n, dtype=np.bool_)
    k34 = np.zeros(n, dtype=np.bool_)
    v34 = np.zeros(n, dtype=np.bool_)
    k254 = np.zeros(n, dtype=np.bool_)
    v254 = np.zeros(n, dtype=np.bool_)
    for _ in range(41):
        idx = np.flatnonzero(alive)
        if not len(idx):
            break
        p, e = cur[idx], end[idx]
        kind = opt[p]
        nop = kind == 1
        ln = opt[p + 1]
        stop = (kind == 0) | (~nop & ((p + 1 >= e) | (ln < 2)))
        real = ~stop & ~nop
        vlen = np.maximum(np.minimum(p + ln, e) - (p + 2), 0)
        m = real & (kind == 3) & ~ws_done[idx]
        j = idx[m]
        ws_done[j] = True
        ws[j] = np.where(vlen[m] > 0, np.minimum(opt[p[m] + 2], 14), -1)
        m = real & (kind == 34) & ~k34[idx]
        j = idx[m]
        k34[j] = True
        v34[j] = vlen[m] > 0
        m = real & (kind == 254) & ~k254[idx]
        j = idx[m]
        k254[j] = True
        v254[j] = (vlen[m] > 2) & (opt[p[m] + 2] == 0xF9) & (opt[p[m] + 3] == 0x89)
        nxt = np.where(nop, p + 1, p + ln)
        cur[idx] = nxt
        alive[idx] = ~stop & (nxt < e)
    tfo: B = np.where(k34, v34, v254)
    return ws, tfo


class _Groups:
    """Segments grouped by connection (contiguous, capture order within): reductions."""

    def __init__(self, slot: I64) -> None:
        n = len(slot)
        self.n = n
        self.pos = np.arange(n, dtype=np.int64)
        first = np.ones(n, dtype=np.bool_)
        first[1:] = slot[1:] != slot[:-1]
        self.first = first
        self.starts = np.flatnonzero(first).astype(np.int64)
        self.grp = np.cumsum(first).astype(np.int64) - 1
        self.gstart = self.starts[self.grp]
        self.ends = np.append(self.starts[1:], n).astype(np.int64)

    def first_where(self, mask: B) -> I64:
        """Per group, the first position where ``mask`` holds, else BIG."""
        out: I64 = np.minimum.reduceat(np.where(mask, self.pos, _BIG), self.starts)
        return out

    def any(self, mask: B) -> B:
        out: B = np.logical_or.reduceat(mask, self.starts)
        return out

    def count(self, mask: B) -> I64:
        out: I64 = np.add.reduceat(mask.astype(np.int64), self.starts)
        return out

    def sum(self, values: I64) -> I64:
        out: I64 = np.add.reduceat(values, self.starts)
        return out

    def last_where(self, mask: B) -> I64:
        """Per position, the last position at or before it in its group where ``mask`` holds; -1."""
        v = np.maximum.accumulate(np.where(mask, self.pos, -1))
        out: I64 = np.where(v >= self.gstart, v, -1)
        return out

    def running_max(self, values: I64, init: I64) -> I64:
        """Per position: max(its group's ``init``, ``values`` up to it); negative values ignored."""
        off = self.grp << 34
        r = np.maximum.accumulate(np.where(values >= 0, values, -1) + off) - off
        out: I64 = np.maximum(r, init[self.grp])
        return out

    def before(self, values: I64, init: I64) -> I64:
        """``values`` one position later within each group; a group's first takes ``init``."""
        out = np.empty_like(values)
        out[1:] = values[:-1]
        if self.n:
            out[0] = 0
        out[self.first] = init[self.grp[self.first]]
        return out

    def cumcount(self, mask: B) -> I64:
        """Per position, how many positions up to it (included) in its group hold ``mask``."""
        c = np.cumsum(mask, dtype=np.int64)
        out: I64 = c - c[self.gstart] + mask[self.gstart]
        return out

    def at(self, values: I64, positions: I64, default: int) -> I64:
        """``values[positions]`` where a position is real (0 <= p < n), else ``default``."""
        ok = (positions >= 0) & (positions < self.n)
        out: I64 = np.where(ok, values[np.clip(positions, 0, max(self.n - 1, 0))], default)
        return out


_M1: Final = np.uint64(0x9E3779B97F4A7C15)
_M2: Final = np.uint64(0xBF58476D1CE4E5B9)
_M3: Final = np.uint64(0x94D049BB133111EB)


def _words(addr: npt.NDArray[np.void]) -> npt.NDArray[np.uint64]:
    out: npt.NDArray[np.uint64] = np.ascontiguousarray(addr).view("<u8").reshape(-1, 2)
    return out


def _end_hash(w: npt.NDArray[np.uint64], port: I64, fam: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint64]:
    with np.errstate(over="ignore"):
        h = (w[:, 0] * _M1) ^ (w[:, 1] * _M2) ^ ((port.astype(np.uint64) << np.uint64(8)) | fam) * _M3
        h ^= h >> np.uint64(29)
        out: npt.NDArray[np.uint64] = h * _M1
    return out


def _unique_first(h: npt.NDArray[np.uint64]) -> tuple[I64, I64]:
    """``numpy.unique(h, return_index=True, return_inverse=True)`` but for the values: the
    first position of each distinct value (in ascending value order) and each position's
    index among them. Compiled, a hash table's one pass and a sort of the distinct values only."""
    if not capture.COMPILED:
        _u, first, inv = np.unique(h, return_index=True, return_inverse=True)
        return first.astype(np.int64), inv.ravel().astype(np.int64)
    from tcptrace_sm import _scan

    h = np.ascontiguousarray(h, dtype=np.uint64)
    first = np.empty(len(h), dtype=np.int64)
    inv = np.empty(len(h), dtype=np.int64)
    m = _scan.group_first(h, first, inv)
    first = first[:m]
    o = np.argsort(h[first], kind="stable")
    rank = np.empty(m, dtype=np.int64)
    rank[o] = np.arange(m, dtype=np.int64)
    out: tuple[I64, I64] = (first[o], rank[inv])
    return out


def _dedupe(cols: Columns) -> tuple[I64, I64]:
    """Distinct 4-tuples (either direction) of the segments: the first position of each, and
    each position's distinct 4-tuple (like ``numpy.unique(..., return_index, return_inverse)``).
    Grouped by a 64-bit hash that is the same both ways, then checked exactly; a collision
    falls back to sorting the tuples themselves."""
    sw, dw = _words(cols.src), _words(cols.dst)
    with np.errstate(over="ignore"):
        h = _end_hash(sw, cols.sport, cols.fam) + _end_hash(dw, cols.dport, cols.fam)
    first, inv = _unique_first(h)
    r = first[inv]
    # each position against its group's first: the same 4-tuple, either way round (1-D
    # comparisons of the address words: much cheaper than .all(axis=1) on the pairs)
    s0, s1, d0, d1 = sw[:, 0], sw[:, 1], dw[:, 0], dw[:, 1]
    sp, dp = cols.sport, cols.dport
    s0r, s1r, d0r, d1r, spr, dpr = s0[r], s1[r], d0[r], d1[r], sp[r], dp[r]
    same = (s0 == s0r) & (s1 == s1r) & (d0 == d0r) & (d1 == d1r) & (sp == spr) & (dp == dpr)
    swapped = (s0 == d0r) & (s1 == d1r) & (d0 == s0r) & (d1 == s1r) & (sp == dpr) & (dp == spr)
    if not bool(((same | swapped) & (cols.fam == cols.fam[r])).all()):
        keys, _lo = Engine.keys(cols)
        _u, first, inv = np.unique(keys, return_index=True, return_inverse=True)
        inv = inv.ravel()
    return first.astype(np.int64), inv.astype(np.int64)


def _plain_syns(cols: Columns) -> B:
    """The segments that can open a connection: a SYN alone, without payload, intact."""
    out: B = (
        ((cols.flags & (SYN | ACK | RST | FIN)) == SYN)
        & (cols.length == 0)
        & ((cols.mark & BAD_CHECKSUM) == 0)
    )
    return out


def _generations(syn: B, seq: I64, distinct: tuple[I64, I64]) -> list[int]:
    """Where a chunk is cut so that no piece has a connection on a 4-tuple after another one
    (``syn``: its plain SYNs, ``seq`` its sequence numbers, ``distinct`` its 4-tuples, see
    :func:`_dedupe`): before every SYN whose 4-tuple was seen earlier in the piece, other than
    as that SYN sent again (an attempt retransmitted)."""
    first, inv = distinct
    at = np.flatnonzero(syn)
    at = at[first[inv[at]] != at]  # SYNs whose 4-tuple came earlier in the chunk
    if not len(at):
        return []
    # the previous segment of each of those SYNs' 4-tuples (only theirs are sorted)
    want = np.zeros(len(first), dtype=np.bool_)
    want[inv[at]] = True
    mine = np.flatnonzero(want[inv])
    o = mine[np.argsort(inv[mine], kind="stable")]  # capture order within each 4-tuple
    same = inv[o[1:]] == inv[o[:-1]]
    prev = np.full(len(inv), -1, dtype=np.int64)
    prev[o[1:][same]] = o[:-1][same]
    p = prev[at]
    again = syn[p] & (seq[p] == seq[at])
    cuts: list[int] = []
    start = 0
    for i, before in zip(at[~again].tolist(), p[~again].tolist(), strict=True):
        if before >= start:
            cuts.append(i)
            start = i
    return cuts


def _by_slot(slots: I64, cap: int) -> I64:
    """The stable order of positions by slot: a radix sort where slots fit in 16 bits (twenty
    times faster than the merge sort numpy uses for wider integers)."""
    key = slots.astype(np.uint16) if cap <= 1 << 16 else slots
    out: I64 = np.argsort(key, kind="stable")
    return out


def _canon(fam: Any, src: Any, dst: Any, sp: I64, dp: I64) -> tuple[npt.NDArray[np.void], B]:
    """Direction-independent 37-byte keys of 4-tuples, and "the source is the low end"."""
    n = len(fam)
    s = np.ascontiguousarray(src).view(">u8").reshape(n, 2)
    d = np.ascontiguousarray(dst).view(">u8").reshape(n, 2)
    lo = (s[:, 0] < d[:, 0]) | (
        (s[:, 0] == d[:, 0]) & ((s[:, 1] < d[:, 1]) | ((s[:, 1] == d[:, 1]) & (sp <= dp)))
    )
    rec = np.empty(n, dtype=[("fam", "u1"), ("a", "V16"), ("ap", ">u2"), ("b", "V16"), ("bp", ">u2")])
    rec["fam"] = fam
    rec["a"] = np.where(lo, src, dst)
    rec["b"] = np.where(lo, dst, src)
    rec["ap"] = np.where(lo, sp, dp)
    rec["bp"] = np.where(lo, dp, sp)
    keys: npt.NDArray[np.void] = rec.view("V37").ravel()
    return keys, lo


def _later(t: I64, delay: int) -> I64:
    """``t + delay``, saturating at "never" (a time no int64 clock reaches)."""
    out: I64 = np.where(t >= _NEVER_NS - delay, _NEVER_NS, t + delay)
    return out


def _due(at: I64, clock: I64 | int) -> B:
    """Times that have come by ``clock`` ("never" never comes)."""
    out: B = (at <= clock) & (at < _NEVER_NS)
    return out


def _closing_state(sent: B, peer_sent: B, earlier: B, acked: B) -> I64:
    """A synchronised side's state from the FINs so far (:meth:`Engine.states` and the chunk
    evaluation's RSTs read them so; ``closing_state`` in _fastpath.c is the same): whether it
    and its peer sent one, its own came first (when both did) and was acknowledged."""
    first = sent & (~peer_sent | earlier)
    out: I64 = np.select(
        [first & peer_sent, first, sent & peer_sent, peer_sent],
        [TW, np.where(acked, FW2, FW1), np.where(acked, CLOSED, LAST_ACK), CW],
        EST,
    )
    return out


def _rel(x: I64, base: I64) -> I64:
    out: I64 = (x - base) & _MASK
    return out


#: Records to hand out: the flow_ids of their connections (ascending) and the block of the
#: connections ``[lo:hi]`` of those.
_Source = tuple[I64, Callable[[int, int], Block]]


def _block_source(block: Block) -> _Source:
    return np.asarray(block.flows["flow_id"], dtype=np.int64), block.rows


def _by_span(sources: list[_Source]) -> Iterator[tuple[int, Block]]:
    """The records of the sources by final span of flow_id, in span order, each span's built
    when it is asked for."""
    sources = [s for s in sources if len(s[0])]
    if not sources:
        return
    spans_each = [final_span(f) for f, _b in sources]
    spans = np.unique(np.concatenate(spans_each))
    ends = [np.searchsorted(sp, spans, side="right").tolist() for sp in spans_each]
    at = [0] * len(sources)
    for t, span in enumerate(spans.tolist()):
        parts = []
        for i, (_f, build) in enumerate(sources):
            hi = ends[i][t]
            if hi > at[i]:
                parts.append(build(at[i], hi))
                at[i] = hi
        yield span, Block.merge(parts)


_KIND = {code: (k.severity.value, k.category.value) for code, k in CATALOGUE.items()}


# --------------------------------------------------------------------------------- the engine


class Engine:
    """Feed it the reader's columns chunk by chunk; it hands out finished connections' records."""

    def __init__(self, options: Options, *, transitions: bool = True) -> None:
        self.options = options
        self.want_transitions = transitions  # build transition records (else only count them)
        self.config: Config = options.config()
        self.tw_ns = round(self.config.time_wait * NS_PER_S)
        self.cw_ns = round(self.config.close_wait_timeout * NS_PER_S)
        self.store = _Store()
        self.keytab = _KeyTable()  # 4-tuple -> store slot (>= 0), closed or parked row (*_ref)
        self.core_keys: set[bytes] = set()  # the 4-tuples the core owns
        self.slow_keys: dict[tuple[str, int, str, int], bytes] = {}
        self.table = FlowTable(self.config, max_flows=options.max_flows)
        self.zeek: dict[int, ZeekSummary] = {}
        self.clock: int | None = None
        self.journal = _Journal(self.store)
        self.closed = _Closed(self.tw_ns)
        self.parked = _Segmented(
            _PARK_DT,
            {"hash": np.uint64, "fid": np.int64, "last_ts": np.int64, "retire_at": np.int64},
            PARKED_IN_MEMORY,
            _PARK_SEG,
            "retire_at",
        )
        self.parks = 0  # connections parked so far (one may be parked more than once)
        self._zstrings: list[str] = []  # Zeek's conn_state and history texts of closed ones
        self._zindex: dict[str, int] = {}
        self._zstate_codes: I64 | None = None  # _zcode of each of _ZSTATE_NAMES
        self.handed_over = 0  # connections the core took over from the fast path
        self._fmap_cache: I64 | None = None

    # ---- keys

    @staticmethod
    def keys(cols: Columns) -> tuple[npt.NDArray[np.void], B]:
        """Direction-independent 37-byte keys of the segments, and "the source is the low end"."""
        return _canon(cols.fam, cols.src, cols.dst, cols.sport, cols.dport)

    def _row_key(self, values: I64) -> npt.NDArray[np.void]:
        """The keys of the connections that key-table values point to."""
        st = self.store
        fam = np.empty(len(values), dtype=np.uint8)
        a = np.empty(len(values), dtype="V16")
        b = np.empty(len(values), dtype="V16")
        ap = np.empty(len(values), dtype=np.int64)
        bp = np.empty(len(values), dtype=np.int64)
        sel = values >= 0
        r = values[sel]
        fam[sel], a[sel], b[sel] = st.fam[r], st.cip[r], st.sip[r]
        ap[sel], bp[sel] = st.cport[r], st.sport[r]
        parked = _is_parked(values)
        sel = ~sel & ~parked
        if sel.any():
            got = self.closed.load(_ref_row(values[sel]))
            fam[sel], a[sel], b[sel] = got.fam, got.cip, got.sip
            ap[sel], bp[sel] = got.cport, got.sport
        if parked.any():
            par = self.parked.read(_ref_row(values[parked]))
            fam[parked], a[parked], b[parked] = par["fam"], par["cip"], par["sip"]
            ap[parked], bp[parked] = par["cport"], par["sport"]
        keys, _lo = _canon(fam, a, b, ap, bp)
        return keys

    def _unindex(self, slots: I64, closed: bool = False) -> None:
        """Take the 4-tuples of these store slots (closed rows) out of the key table, if there."""
        if closed:
            h = self.closed.meta("hash", slots)
            there = h > _GONE
            self.keytab.remove(h[there], _closed_ref(slots[there]))
            self.closed.set_meta("hash", slots, _EMPTY)
            return
        h = self.store.hash[slots]
        there = h > _GONE
        self.keytab.remove(h[there], slots[there])
        self.store.hash[slots] = _EMPTY

    # ---- one chunk

    def feed(self, cols: Columns, clock: I64 | None = None, end_clock: int | None = None) -> Block | None:
        """Observe one chunk of segments; the records of the connections that finished, in one
        block (see :meth:`feed_spans`)."""
        parts = [b for _span, b in self.feed_spans(cols, clock, end_clock)]
        return Block.merge(parts) if parts else None

    def feed_spans(
        self, cols: Columns, clock: I64 | None = None, end_clock: int | None = None
    ) -> Iterator[tuple[int, Block]]:
        """Observe one chunk of segments; the records of the connections that finished, by
        spans of flow_id (see :func:`~tcptrace_sm.analysis.final_span`), each span's built only
        when the previous one has been taken: a chunk that ends many connections at once
        (a clock that jumps past many TIME-WAITs) never holds all their records together.
        Take every span before the next call.

        ``clock`` is the capture clock at each segment and ``end_clock`` at the end of the
        chunk, when the chunk is one worker's share of a larger one (see
        :mod:`tcptrace_sm.parallel`); by default both come from the chunk itself.
        """
        n = len(cols)
        if clock is None:
            if not n:
                return
            clock0 = self.clock if self.clock is not None else int(cols.ts[0])
            clock = np.maximum.accumulate(np.maximum(cols.ts, clock0))
        if end_clock is None:
            end_clock = int(clock[-1])
        if not n:
            self.clock = end_clock
            yield from _by_span(self._sweep())
            return
        distinct = _dedupe(cols)
        syn = _plain_syns(cols)
        cuts = _generations(syn, cols.seq, distinct)
        if not cuts:
            yield from _by_span(self._feed_piece(cols, clock, end_clock, distinct, syn))
            return
        # a 4-tuple that carries a new connection after an earlier one within the chunk: the
        # chunk goes in pieces, each 4-tuple one connection at most in each (recycling is
        # judged where a piece begins, see _recycles); retirement and eviction run once, at
        # the end of the chunk, as they would for it whole, and its records come out together
        parts: list[_Source] = []
        a = 0
        for b in [*cuts, n]:
            piece = cols.take(np.arange(a, b))
            parts += self._feed_piece(piece, clock[a:b], end_clock, _dedupe(piece), syn[a:b], last=b == n)
            a = b
        yield from _by_span(parts)

    def _feed_piece(
        self,
        cols: Columns,
        clock: I64,
        end_clock: int,
        distinct: tuple[I64, I64],
        syn: B,
        *,
        last: bool = True,
    ) -> list[_Source]:
        """:meth:`feed_spans` for a piece of a chunk in which no 4-tuple carries two
        connections (``distinct``: its 4-tuples, see :func:`_dedupe`; ``syn``: its plain SYNs);
        ``last``: the piece that ends the chunk. The records of the connections it finished,
        as sources."""
        self.clock = end_clock
        st = self.store
        c = st.cols
        ts = cols.ts
        first_pos, inv = distinct
        ukeys_arr, _lo_first = self.keys(cols.take(first_pos))
        fp = first_pos
        kt = self.keytab
        uhash = kt.hash(cols.fam[fp], cols.src[fp], cols.sport[fp], cols.dst[fp], cols.dport[fp])
        val = kt.lookup(uhash, lambda i, v: self._row_key(v) == ukeys_arr[i])
        woken = np.flatnonzero(_is_parked(val))
        if len(woken):  # parked connections with more on their 4-tuples: back into the store
            val[woken] = self._unpark(_ref_row(val[woken]))
        slot_of_u = np.where(val >= 0, val, -1)
        starts_new = syn[first_pos]
        unseen = val == MISSING
        if self.core_keys and unseen.any():
            core = self.core_keys
            nu = np.flatnonzero(unseen)
            unseen[nu[[k in core for k in ukeys_arr[nu].tolist()]]] = False
        parts: list[_Source] = []
        cu = np.flatnonzero((val < -1) & (val != MISSING))
        if len(cu):
            # closed connections whose 4-tuple shows up again: retired if their time is up,
            # else something more on them (a lost ACK's FIN again, a stray RST): to the core
            cr = _ref_row(val[cu])
            up = _due(_later(self.closed.meta("last_ts", cr), self.tw_ns), clock[first_pos[cu]])
            if up.any():
                self._unindex(cr[up], closed=True)
                parts.append(_block_source(self._closed_records(cr[up], self.clock)))
                unseen[cu[up]] = True
            if (~up).any():
                cr, cu = cr[~up], cu[~up]
                new = self._recycles(cols, first_pos[cu], cr, starts_new[cu], closed=True)
                if new.any():
                    p = first_pos[cu[new]]
                    self._unindex(cr[new], closed=True)
                    recycled = (cols.frame[p], ts[p])
                    parts.append(_block_source(self._closed_records(cr[new], self.clock, recycled=recycled)))
                    unseen[cu[new]] = True
                if (~new).any():
                    self._hand_over_closed(cr[~new])
        # fast connections that are over and quiet when their 4-tuple shows up again
        known = np.flatnonzero(slot_of_u >= 0)
        if len(known):
            sl = slot_of_u[known]
            ret = self._retirable(sl, clock[first_pos[known]])
            if ret.any():
                gone = sl[ret]
                self._unindex(gone)
                parts.append(_block_source(self._records(gone, self.clock)))
                slot_of_u[known[ret]] = -1
                unseen[known[ret]] = True
            k, sl = known[~ret], sl[~ret]
            new = self._recycles(cols, first_pos[k], sl, starts_new[k], closed=False)
            if new.any():
                gone, p = sl[new], first_pos[k[new]]
                self._unindex(gone)
                recycled = (cols.frame[p], ts[p])
                parts.append(_block_source(self._records(gone, self.clock, recycled=recycled)))
                slot_of_u[k[new]] = -1
                unseen[k[new]] = True
        new_u = np.flatnonzero(unseen & starts_new)
        new_slots = st.alloc(len(new_u))
        if len(new_u):
            slot_of_u[new_u] = new_slots
            p = first_pos[new_u]
            c["fid"][new_slots] = cols.frame[p]
            c["first_ts"][new_slots] = ts[p]
            c["last_ts"][new_slots] = ts[p]
            c["first_clock"][new_slots] = clock[p]
            c["last_clock"][new_slots] = clock[p]
            c["c_isn"][new_slots] = cols.seq[p]
            st.fam[new_slots] = cols.fam[p]
            st.cip[new_slots] = cols.src[p]
            st.sip[new_slots] = cols.dst[p]
            st.cport[new_slots] = cols.sport[p]
            st.sport[new_slots] = cols.dport[p]
            st.hash[new_slots] = uhash[new_u]
            kt.insert(uhash[new_u], new_slots)
            st.set_options(0, new_slots, cols, p)
        seg_slot = slot_of_u[inv]
        fast = seg_slot >= 0
        is_new = np.zeros(st.cap, dtype=np.bool_)
        is_new[new_slots] = True
        slow = ~fast
        if fast.any() and (cols.mark & BAD_CHECKSUM).any():
            # a segment with a bad checksum is for the core to ignore (and report)
            damaged = np.unique(seg_slot[fast & ((cols.mark & BAD_CHECKSUM) != 0)])
            mark = np.zeros(st.cap + 1, dtype=np.bool_)
            mark[damaged] = True
            back = mark[np.where(fast, seg_slot, st.cap)]
            slow |= back
            fast &= ~back
            self._hand_over(damaged)
        if fast.any():
            bailed = self._fast(cols, np.flatnonzero(fast), seg_slot, is_new, clock)
            if len(bailed):
                mark = np.zeros(st.cap + 1, dtype=np.bool_)
                mark[bailed] = True
                back = mark[np.where(fast, seg_slot, st.cap)]
                slow |= back
                fast &= ~back
                self._hand_over(bailed)
        rows = np.flatnonzero(slow)
        if len(rows):
            self._slow(cols, rows, clock)
        if last:
            if self.journal.rows > JOURNAL_BUDGET:
                self._trim_journal()
            parts.extend(self._sweep())
        return parts

    # ---- the per-segment core for everything else

    def _slow(self, cols: Columns, rows: I64, clock: I64) -> None:
        keys, _lo = self.keys(cols.take(rows))
        self._observe_all(segments_of(cols, rows), clock[rows].tolist(), keys.tolist())

    def _observe_all(self, segs: list[Segment], clocks: list[int], keys: list[bytes]) -> None:
        """Segments through the core, in order (``clocks``: the capture clock at each)."""
        table = self.table
        zeek = self.zeek
        core = self.core_keys
        for seg, clk, k in zip(segs, clocks, keys, strict=True):
            conn = table.observe(seg, clk)
            if conn.packets == 1:  # created by this segment
                core.add(k)
                cc, ss = conn.client, conn.server
                self.slow_keys[flow_key(cc.ip, cc.port, ss.ip, ss.port)] = k
            summary = zeek.get(conn.flow_id)
            if summary is None:
                summary = zeek[conn.flow_id] = ZeekSummary(seg, clock=clk)
            summary.update(seg, clk)

    def _hand_over(self, slots: I64) -> None:
        """Give fast connections to the core: their journals go through it, in order, a few
        connections at a time (at most about :data:`_REPLAY_ROWS` segments, which become
        Python objects while they are replayed)."""
        if len(slots) > 1:
            c = self.store.cols
            size = np.cumsum(c["c_pk"][slots] + c["s_pk"][slots])
            cuts = np.flatnonzero(np.diff(size // _REPLAY_ROWS)) + 1
            if len(cuts):
                for group in np.split(slots, cuts):
                    self._hand_over_some(group)
                return
        self._hand_over_some(slots)

    def _hand_over_some(self, slots: I64) -> None:
        st = self.store
        fids = st.cols["fid"][slots]
        syn_opts: dict[tuple[int, int], bytes] = {}
        self._unindex(slots)
        self.core_keys.update(self._row_key(slots).tolist())
        for s, f in zip(slots.tolist(), fids.tolist(), strict=True):
            syn_opts[(f, 0)] = st.options(0, s)
            syn_opts[(f, 1)] = st.options(1, s)
        self.handed_over += len(slots)
        j = self.journal.take(slots)
        st.release(slots)
        if not len(j):
            return
        names = NAMES.of
        flags = j["flags"].astype(np.int64)
        is_syn = (flags & SYN) != 0
        src = names(j["fam"], j["src"])
        dst = names(j["fam"], j["dst"])
        client_first: dict[int, tuple[str, int]] = {}
        opts: list[bytes] = []
        row_fid = st.cols["fid"][j["slot"]]
        for f, syn_, a, ap in zip(row_fid.tolist(), is_syn.tolist(), src, j["sport"].tolist(), strict=True):
            if not syn_:
                opts.append(b"")
                continue
            who = client_first.setdefault(f, (a, ap))
            opts.append(syn_opts[(f, 0 if who == (a, ap) else 1)])
        fields = [
            j["frame"].tolist(),
            j["ts"].tolist(),
            src,
            j["sport"].tolist(),
            dst,
            j["dport"].tolist(),
            j["seq"].tolist(),
            j["ack"].tolist(),
            flags.tolist(),
            j["win"].tolist(),
            j["length"].tolist(),
            opts,
            [b""] * len(opts),  # the fast engine keeps no payload
        ]
        segs = make_segments(fields, j["mark"])
        keys = self._row_keys(j)
        self._observe_all(segs, j["clock"].tolist(), keys)

    @staticmethod
    def _row_keys(j: npt.NDArray[np.void]) -> list[bytes]:
        sp, dp = j["sport"].astype(np.int64), j["dport"].astype(np.int64)
        keys, _lo = _canon(j["fam"], j["src"], j["dst"], sp, dp)
        out: list[bytes] = keys.tolist()
        return out

    # ---- the vectorised observer

    def _fast(self, cols: Columns, rows: I64, seg_slot: I64, is_new: B, clock_all: I64) -> I64:
        """Apply one chunk's segments of the fast connections and journal those of the ones
        that stay; returns the slots to hand over. Compiled where it was built
        (``_fastpath.c``, the rules one segment at a time), else :meth:`_fast_columns`; the
        two agree slot for slot (the test suite compares them)."""
        if not capture.COMPILED:
            out = self._fast_columns(cols, rows, seg_slot, is_new, clock_all)
            if len(out):
                rows = rows[~np.isin(seg_slot[rows], out)]
            self.journal.append(cols, rows, seg_slot[rows], clock_all)
            return out
        from tcptrace_sm import _scan

        st = self.store
        order = np.ascontiguousarray(rows[_by_slot(seg_slot[rows], self.store.cap)], dtype=np.int64)
        slot = np.ascontiguousarray(seg_slot[order], dtype=np.int64)
        n = len(order)
        first = np.ones(n, dtype=np.bool_)
        first[1:] = slot[1:] != slot[:-1]
        starts = np.flatnonzero(first)
        bounds = np.append(starts, n).astype(np.int64)
        gsl = np.ascontiguousarray(slot[starts], dtype=np.int64)
        created = is_new[gsl].astype(np.uint8)
        seg64 = np.empty((9, n), dtype=np.int64)
        seg8 = np.empty((4, n), dtype=np.uint8)

        def i64(a: I64) -> I64:
            out: I64 = np.ascontiguousarray(a, dtype=np.int64)
            return out

        _scan.fast_segments(
            order,
            slot,
            i64(cols.frame),
            i64(cols.ts),
            i64(clock_all),
            i64(cols.flags),
            i64(cols.seq),
            i64(cols.ack),
            i64(cols.win),
            i64(cols.length),
            i64(cols.sport),
            _words(cols.src),
            np.ascontiguousarray(cols.mark, dtype=np.uint8),
            st.cport,
            _words(st.cip),
            TRUNCATED,
            seg64,
            seg8,
        )
        synrows = np.flatnonzero((seg64[3] & SYN) != 0)
        if len(synrows):
            ws, tfo = syn_options(cols, order[synrows])
            seg64[8, synrows] = ws
            seg8[1, synrows] = tfo
        status = np.empty(len(gsl), dtype=np.uint8)
        p1pos = np.empty(len(gsl), dtype=np.int64)
        _scan.fast_apply(
            st.data64,
            st.data64.shape[1],
            st.data32,
            st.data32.shape[1],
            self._fmap(),
            bounds,
            gsl,
            created,
            seg64,
            seg8,
            np.array(
                [
                    *(self.tw_ns, _ZEEK_TIMER_NS, JOURNAL_CAP, _LIMIT, CLOSED, SYN_SENT, EST),
                    *(_ZEEK_IDLE_NS, FW1, FW2, CW, LAST_ACK, TW, SYN_RCVD, self.cw_ns),
                ],
                dtype=np.int64,
            ),
            status,
            p1pos,
        )
        ok = status == 0
        sa = ok & (p1pos >= 0)
        if sa.any():
            st.set_options(1, gsl[sa], cols, order[p1pos[sa]])
        self._schedule(gsl[ok])
        part = np.empty(n, dtype=_NARROW_DT)
        fid_g, gen_g = st.cols["fid"][gsl], st.gen[gsl]
        got = _scan.journal_rows(order, len(cols), seg64, seg8, bounds, status, gsl, fid_g, gen_g, _U32, part)
        if got >= 0:
            self.journal.add(part[:got])
        else:  # a frame or clock too far for the narrow form
            keep = np.sort(order[np.repeat(ok, np.diff(bounds))])
            self.journal.append(cols, keep, seg_slot[keep], clock_all)
        bail: I64 = gsl[status != 0]
        return bail

    def _fmap(self) -> I64:
        """Where each field of the compiled evaluation lives in the store (see _fastpath.c)."""
        if self._fmap_cache is None:
            from tcptrace_sm import _scan

            where = {k: i for i, k in enumerate(_F64)} | {k: (1 << 32) | i for i, k in enumerate(_F32)}
            self._fmap_cache = np.array([where[k] for k in _scan.fast_fields()], dtype=np.int64)
        out: I64 = self._fmap_cache
        return out

    def _fast_columns(self, cols: Columns, rows: I64, seg_slot: I64, is_new: B, clock_all: I64) -> I64:
        """:meth:`_fast` column-wise, for whole chunks at once in numpy."""
        st = self.store
        c = st.cols
        order = rows[_by_slot(seg_slot[rows], self.store.cap)]
        slot = seg_slot[order]
        G = _Groups(slot)
        n, pos, grp, gstart = G.n, G.pos, G.grp, G.gstart
        gsl = slot[G.starts]
        frame = cols.frame[order]
        ts = cols.ts[order]
        clk = clock_all[order]
        flags = cols.flags[order]
        seq = cols.seq[order]
        ack = cols.ack[order]
        win = cols.win[order]
        length = cols.length[order]
        cl = (cols.sport[order] == st.cport[slot]) & (_words(cols.src[order]) == _words(st.cip[slot])).all(
            axis=1
        )
        sv = ~cl
        side = sv.astype(np.int64)
        created = is_new[gsl]  # the connection began in this chunk (its SYN is its first segment)
        pk_g = c["c_pk"][gsl] + c["s_pk"][gsl]
        ordn = pk_g[grp] + (pos - gstart)  # ordinal in the connection

        f_syn = (flags & SYN) != 0
        f_ack = (flags & ACK) != 0
        f_rst = (flags & RST) != 0
        f_fin = (flags & FIN) != 0
        bad = _bad_flags(flags)
        syn = f_syn & ~f_ack & ~bad
        synack = f_syn & f_ack & ~bad
        rst = f_rst & ~bad
        plain = f_ack & ~f_syn & ~f_rst & ~bad  # through the core's data path (FIN included)
        fin = plain & f_fin
        viol = bad | (~f_ack & ~f_syn & ~f_rst)

        # time must not go backwards within a connection, and no pause (on the capture clock,
        # which Zeek's timers run on) may reach Zeek's timers (but see below)
        prev_ts = G.before(ts, c["last_ts"][gsl])
        viol |= ts < prev_ts
        pause = clk - G.before(clk, c["last_clock"][gsl])

        ws_all = np.full(n, -1, dtype=np.int64)
        tfo_all = np.zeros(n, dtype=np.bool_)
        synrows = np.flatnonzero(syn | synack)
        if len(synrows):
            ws_all[synrows], tfo_all[synrows] = syn_options(cols, order[synrows])

        phase0 = c["phase"][gsl]
        ph = phase0[grp]
        c_isn = c["c_isn"][slot]

        # -- SYN sent: the client's SYN (and resends of it), then the server's first word
        p1 = np.where(phase0 == P_SYN, G.first_where(sv), -1)
        p1s = p1[grp]
        in_syn = (ph == P_SYN) & (pos < p1s)
        viol |= in_syn & ~(syn & (seq == c_isn) & (length == 0) & ~tfo_all)
        at_p1 = (ph == P_SYN) & (pos == p1s)
        isn1 = (c_isn + 1) & _MASK
        ans_synack = at_p1 & synack & (ack == isn1) & (length == 0)
        ans_refuse = at_p1 & rst & f_ack & (ack == isn1) & (length == 0)
        viol |= at_p1 & ~(ans_synack | ans_refuse)
        # a SYN-ACK after a silence longer than TIME-WAIT is taken for a new connection
        viol |= at_p1 & synack & (ts - prev_ts > self.tw_ns)
        g_synack = G.any(ans_synack)
        g_refuse = G.any(ans_refuse)
        p1c = np.clip(p1, 0, n - 1)
        # Zeek: an answer later than tcp_attempt_delay after the SYN starts a new Zeek connection
        viol |= at_p1 & (clk - c["first_clock"][slot] >= _ZEEK_TIMER_NS)
        viol |= (ph == P_SYN) & g_refuse[grp] & (pos > p1s)
        s_isn_g = np.where(g_synack, seq[p1c], c["s_isn"][gsl])
        s_isn = s_isn_g[grp]
        s_ws_g = np.where(g_synack, ws_all[p1c], c["s_ws"][gsl])
        c_ws_g = np.where(created, ws_all[G.starts], c["c_ws"][gsl])

        # -- SYN-ACK sent: the client's next segment, an ACK of it, completes the handshake
        after_sa = (ph == P_SYNACK) | ((ph == P_SYN) & g_synack[grp] & (pos > p1s))
        phs = G.first_where(after_sa & cl)
        phs = np.where((phase0 == P_SYN) & ~g_synack, _BIG, phs)
        phs = np.where(phase0 >= P_EST, -1, phs)
        phs_s = phs[grp]
        viol |= after_sa & (pos < phs_s) & sv  # the server spoke before the handshake completed
        at_hs = pos == phs_s
        # ... or the client resets there (a SYN scan), at its SND.NXT, acknowledging no more
        # than the SYN-ACK: nothing may follow
        ack1 = _rel(ack, s_isn) == 1
        hs_rst = at_hs & rst & (length == 0) & (_rel(seq, c_isn) == 1) & (~f_ack | ack1)
        viol |= at_hs & ~((plain & ~f_fin & ack1) | hs_rst)
        g_hs_rst = G.any(hs_rst)
        viol |= g_hs_rst[grp] & (pos > phs_s)
        phs = np.where(g_hs_rst, _BIG, phs)  # no handshake completes there
        phs_s = phs[grp]
        viol |= ph == P_DONE
        est = (ph == P_EST) | (after_sa & (pos >= phs_s))
        viol |= est & (f_syn | ~(plain | rst))

        # -- synchronised: sequence numbers relative to the sender's ISN, ACKs to the peer's
        base = np.where(cl, c_isn, s_isn)
        pbase = np.where(cl, s_isn, c_isn)
        sq = _rel(seq, base)
        ak = _rel(ack, pbase)
        end = sq + length
        viol |= est & ((sq >= _LIMIT) | (f_ack & (ak >= _LIMIT)))

        # FINs: the first of each side (the slot may have one already)
        fin_c0, fin_s0 = c["c_fin"][gsl], c["s_fin"][gsl]
        pfc = np.where(fin_c0 >= 0, -1, G.first_where(est & cl & fin))
        pfs = np.where(fin_s0 >= 0, -1, G.first_where(est & sv & fin))
        fin_c_g = np.where(fin_c0 >= 0, fin_c0, np.where(pfc < _BIG, G.at(end, pfc, -1), -1))
        fin_s_g = np.where(fin_s0 >= 0, fin_s0, np.where(pfs < _BIG, G.at(end, pfs, -1), -1))
        fino_c_g = np.where(
            c["c_fino"][gsl] >= 0, c["c_fino"][gsl], np.where(pfc < _BIG, G.at(ordn, pfc, -1), -1)
        )
        fino_s_g = np.where(
            c["s_fino"][gsl] >= 0, c["s_fino"][gsl], np.where(pfs < _BIG, G.at(ordn, pfs, -1), -1)
        )
        pfc_s, pfs_s = pfc[grp], pfs[grp]
        # a pause that reaches Zeek's timers while both sides are synchronised and neither
        # has closed only re-arms them, short of its inactivity timeout; one before a resend
        # of an unanswered SYN ends the Zeek connection, whose record stays the flow's
        calm = ((ph == P_EST) | (after_sa & (pos > phs_s))) & (pfc_s >= pos) & (pfs_s >= pos)
        viol |= (pause >= _ZEEK_TIMER_NS) & ~(calm & (pause < _ZEEK_IDLE_NS)) & ~in_syn
        fin_c, fin_s = fin_c_g[grp], fin_s_g[grp]
        own_fpos = np.where(cl, pfc_s, pfs_s)  # -1: before this chunk; BIG: not yet
        peer_fpos = np.where(cl, pfs_s, pfc_s)
        peer_fin = np.where(cl, fin_s, fin_c)
        after_own_fin = est & (pos > own_fpos)
        at_own_fin = est & (pos == own_fpos)
        viol |= after_own_fin & ((length > 0) | f_fin)

        # SND.NXT of each side: running max of segment ends (+1 for the FIN)
        counted = est & plain & ~after_own_fin
        cend = end + f_fin
        nxt_c = G.running_max(np.where(counted & cl, cend, -1), c["c_nxt"][gsl])
        nxt_s = G.running_max(np.where(counted & sv, cend, -1), c["s_nxt"][gsl])
        own_before = np.where(cl, G.before(nxt_c, c["c_nxt"][gsl]), G.before(nxt_s, c["s_nxt"][gsl]))
        peer_nxt = np.where(cl, nxt_s, nxt_c)
        # a hole in a stream (a segment the capture missed, or one to come out of order) runs
        # that side's payload through Zeek's reassembler (below); no ACK of unseen data
        hole = counted & (sq > own_before)
        viol |= est & f_ack & (ak > peer_nxt)
        # the FIN at or after SND.NXT, acknowledging the peer's FIN if that came first
        viol |= at_own_fin & (end < own_before)
        viol |= at_own_fin & (peer_fin >= 0) & (peer_fpos < pos) & (ak <= peer_fin)

        # FIN-ACKs: the other side's first segment acknowledging a FIN
        fao_c0, fao_s0 = c["c_fao"][gsl], c["s_fao"][gsl]
        pfa_c = np.where(
            fao_c0 >= 0, -1, G.first_where(est & sv & plain & (fin_c >= 0) & (pos > pfc_s) & (ak > fin_c))
        )
        pfa_s = np.where(
            fao_s0 >= 0, -1, G.first_where(est & cl & plain & (fin_s >= 0) & (pos > pfs_s) & (ak > fin_s))
        )
        pfa_c_s, pfa_s_s = pfa_c[grp], pfa_s[grp]
        own_fapos = np.where(cl, pfa_c_s, pfa_s_s)
        # who closed first: the smaller FIN ordinal (a FIN that exists sorts before none)
        both_fin = (fino_c_g >= 0) & (fino_s_g >= 0)
        c_first_g = (fino_c_g >= 0) & ((fino_s_g < 0) | (fino_c_g < fino_s_g))
        # the second closer is CLOSED once its FIN is acknowledged (LAST-ACK done): silence
        own_second = both_fin[grp] & np.where(cl, ~c_first_g[grp], c_first_g[grp])
        viol |= est & own_second & (pos > own_fapos)
        # once both FINs are acknowledged the close is complete: whatever either side sends
        # after that (a stray segment, a new start on the 4-tuple) is for the core to judge
        both_acked = (pfa_c_s < _BIG) & (pfa_s_s < _BIG)
        viol |= est & both_fin[grp] & both_acked & (pos > np.maximum(pfa_c_s, pfa_s_s))
        # TIME-WAIT: from the second FIN on; a segment after its timer ran out goes to the core
        tw_known = np.where(c_first_g, c["s_finf"][gsl] >= 0, c["c_finf"][gsl] >= 0)
        tw_ts_known = np.where(c_first_g, c["s_fint"][gsl], c["c_fint"][gsl])
        tw_pos_g = np.where(tw_known, -1, np.where(c_first_g, pfs, pfc))
        tw_ts_g = np.where(tw_known, tw_ts_known, G.at(ts, tw_pos_g, -1))
        tw_ts_g = np.where(both_fin, tw_ts_g, -1)
        viol |= (tw_ts_g[grp] >= 0) & (pos > tw_pos_g[grp]) & (ts - tw_ts_g[grp] >= self.tw_ns)

        # RST: exactly at SND.NXT, and nothing after it; also after FINs (each side's state
        # before it as states() reads the FINs), but not into a TIME-WAIT (RFC 1337: the core's)
        prst = G.first_where(est & rst)
        prst_s = prst[grp]
        viol |= est & (pos > prst_s)
        at_rst = est & rst & (pos == prst_s)
        viol |= at_rst & ~((sq == own_before) & (length == 0))
        rst_xs = np.full(n, EST, dtype=np.int64)
        rst_ys = rst_xs.copy()
        ri = np.flatnonzero(at_rst)
        if len(ri):
            r_cl, r_pos, r_grp = cl[ri], pos[ri], grp[ri]
            fc, fs = fino_c_g[r_grp], fino_s_g[r_grp]
            own_fino, peer_fino = np.where(r_cl, fc, fs), np.where(r_cl, fs, fc)
            own_sent, peer_sent = own_fpos[ri] < r_pos, peer_fpos[ri] < r_pos
            own_acked = own_fapos[ri] < r_pos
            peer_acked = np.where(r_cl, pfa_s_s[ri], pfa_c_s[ri]) < r_pos
            rst_xs[ri] = _closing_state(own_sent, peer_sent, own_fino < peer_fino, own_acked)
            rst_ys[ri] = _closing_state(peer_sent, own_sent, peer_fino < own_fino, peer_acked)
            viol[ri[(rst_ys[ri] == TW) | (rst_ys[ri] == CLOSED)]] = True
            # a CLOSE-WAIT it ends that lasted the close-wait timeout (since the peer's FIN or
            # the side's last send) is a stuck one: the core notes that
            sends = (counted & (length > 0) & (end > own_before)) | at_own_fin
            for w, sd, psd, peer_fpos_g in ((0, "c", "s", pfs), (1, "s", "c", pfc)):
                state_w = np.where(r_cl == (w == 0), rst_xs[ri], rst_ys[ri])
                runlast = np.maximum.accumulate(np.where(sends & (side == w), pos, -1))[ri]
                lsend = np.where(
                    runlast >= gstart[ri], ts[np.maximum(runlast, 0)], c[f"{sd}_lsend"][slot[ri]]
                )
                pf = peer_fpos_g[r_grp]
                in_chunk = (pf >= 0) & (pf < _BIG)
                fint = np.where(in_chunk, ts[np.clip(pf, 0, n - 1)], c[f"{psd}_fint"][slot[ri]])
                stuck = (state_w == CW) & (ts[ri] - np.maximum(lsend, fint) >= self.cw_ns)
                viol[ri[stuck]] = True

        # -- windows: data beyond the receiver's window is judged at its next segment
        last_c, last_s = G.last_where(cl), G.last_where(sv)
        last_ca, last_sa = G.last_where(cl & f_ack), G.last_where(sv & f_ack)
        both_ws = (c_ws_g >= 0) & (s_ws_g >= 0)
        sh_c = np.where(both_ws, c_ws_g, 0)[grp]
        sh_s = np.where(both_ws, s_ws_g, 0)[grp]
        win_c_at = np.where(last_c >= 0, G.at(win, last_c, 0), c["c_win"][slot])
        win_s_at = np.where(last_s >= 0, G.at(win, last_s, 0), c["s_win"][slot])
        lack_c_at = np.where(last_ca >= 0, G.at(ak, last_ca, 0), c["c_lack"][slot])
        lack_s_at = np.where(last_sa >= 0, G.at(ak, last_sa, 0), c["s_lack"][slot])
        y_lack = np.where(cl, lack_s_at, lack_c_at)
        y_edge = y_lack + np.where(cl, win_s_at << sh_s, win_c_at << sh_c)
        fresh = ((length > 0) | f_fin) & (cend > own_before)
        cand = est & plain & fresh & (length > 0) & (y_lack >= 0) & (end > y_edge + 1)
        judge = est & plain  # every segment through the core's data path judges the peer's
        own_win_scaled = win << np.where(cl, sh_c, sh_s)
        pend_out: dict[int, tuple[I64, I64, I64, I64]] = {}
        for x, sd in ((0, "c"), (1, "s")):
            mine = side == x
            judges = np.flatnonzero(judge & ~mine)  # the other side's
            runs = G.cumcount(judge & ~mine)  # the other side's judges up to each position
            init_end = c[f"{sd}_bend"][gsl]
            ci = np.flatnonzero(cand & mine)
            if len(ci):
                same = np.zeros(len(ci), dtype=np.bool_)
                same[1:] = (grp[ci[1:]] == grp[ci[:-1]]) & (runs[ci[1:]] == runs[ci[:-1]])
                recorded = ci[~same & ~((runs[ci] == 0) & (init_end[grp[ci]] >= 0))]
            else:
                recorded = ci
            # each recorded one is judged by the other side's next judge, if in this chunk
            k = np.searchsorted(judges, recorded, side="right")
            jpos = judges[np.minimum(k, len(judges) - 1)] if len(judges) else np.zeros(len(k), dtype=np.int64)
            judged = (k < len(judges)) & (grp[jpos] == grp[recorded]) if len(recorded) else k < 0
            jj, rr = jpos[judged], recorded[judged]
            viol[jj[end[rr] > ak[jj] + own_win_scaled[jj] + 1]] = True
            # one carried in from the last chunk is judged by the group's first judge
            pe = np.where(init_end >= 0, init_end, -1)
            pedge = c[f"{sd}_bedge"][gsl].copy()
            pf = c[f"{sd}_bf"][gsl].copy()
            pt = c[f"{sd}_bt"][gsl].copy()
            carried = np.flatnonzero(pe >= 0)
            if len(carried):
                k0 = np.searchsorted(judges, G.starts[carried], side="left")
                j0 = (
                    judges[np.minimum(k0, len(judges) - 1)]
                    if len(judges)
                    else np.zeros(len(k0), dtype=np.int64)
                )
                has = (k0 < len(judges)) & (grp[np.clip(j0, 0, n - 1)] == carried) if len(judges) else k0 < 0
                jj0 = j0[has]
                viol[jj0[pe[carried[has]] > ak[jj0] + own_win_scaled[jj0] + 1]] = True
                pe[carried[has]] = -1
            # left pending at the end of the chunk: the last recorded one of a group, unjudged
            left = recorded[~judged]
            if len(left):
                lg = grp[left]
                pe[lg] = end[left]
                pedge[lg] = y_edge[left]
                pf[lg] = frame[left]
                pt[lg] = ts[left]
            pend_out[x] = (pe, pedge, pf, pt)

        # -- Zeek: payload retransmissions (T) and zero windows (W), counted to 1000
        data = est & plain & (length > 0)
        zmax_c = G.running_max(np.where(data & cl, end, -1), c["c_zmax"][gsl])
        zmax_s = G.running_max(np.where(data & sv, end, -1), c["s_zmax"][gsl])
        zprev = np.where(cl, G.before(zmax_c, c["c_zmax"][gsl]), G.before(zmax_s, c["s_zmax"][gsl]))
        z_t = data & (end <= zprev)
        z_w = est & plain & ~f_fin & (win == 0)
        # a zero window after the peer closed (or from a side that reset) is not counted by
        # Zeek; keep such connections with the core
        viol |= z_w & ((peer_fpos < pos) | (own_fpos < pos))
        viol |= (win == 0) & ((f_syn & ~bad) | fin)
        # Zeek forgets a connection tcp_close_delay after the second FIN: later segments would
        # open a new Zeek connection; and the core retires on the capture clock, which may run
        # ahead of a segment's own time (a shorter TIME-WAIT than that delay)
        tw_clk_known = np.where(c_first_g, c["s_finclk"][gsl], c["c_finclk"][gsl])
        tw_clk_g = np.where(tw_known, tw_clk_known, G.at(clk, tw_pos_g, -1))
        quiet_for = min(_ZEEK_TIMER_NS, self.tw_ns)
        viol |= (tw_ts_g[grp] >= 0) & (pos > tw_pos_g[grp]) & (clk - tw_clk_g[grp] >= quiet_for)
        g_viol = G.any(viol)
        for mask, k in ((z_t, "T"), (z_w, "W")):
            for x, sd in ((0, "c"), (1, "s")):
                g_viol |= c[f"{sd}_z{k}n"][gsl] + G.count(mask & (side == x)) >= 10_000

        # -- Zeek: content gaps (G). A side's payload cut by the snaplen cannot be passed on,
        # so every ACK from the peer that moves past what was acknowledged of it is a gap
        # (capped at its FIN once that was sent, as Zeek caps it). A side with payload both
        # cut and whole, or with a hole in its stream, runs Zeek's reassembler itself
        # (GapCounter), segment by segment.
        cut = (cols.mark[order] & TRUNCATED) != 0
        z_gap: dict[int, tuple[I64, I64, I64, I64, B]] = {}  # side: mode, trim, reassem, ack, gaps
        z_block: dict[int, tuple[I64, I64]] = {}  # side: each group's held block (lo, hi; -1: none)
        for x, sd in ((0, "c"), (1, "s")):
            mine = side == x
            has_cut, has_whole = G.any(data & mine & cut), G.any(data & mine & ~cut)
            mode0 = c[f"{sd}_ztr"][gsl]
            mixed = (mode0 == 2) | (has_cut & (has_whole | (mode0 == 0))) | (has_whole & (mode0 == 1))
            mixed |= G.any(hole & mine)
            mode = np.where(mixed, 2, np.where(has_cut, 1, np.where(has_whole, 0, mode0)))
            t0, r0, a0 = c[f"{sd}_ztrim"][gsl], c[f"{sd}_zre"][gsl], c[f"{sd}_zack"][gsl]
            x_fin, x_fpos = (fin_c, pfc_s) if x == 0 else (fin_s, pfs_s)
            acks = est & ~mine & f_ack & ~f_rst
            capped = np.where((x_fin >= 0) & (x_fpos < pos) & (ak > x_fin), x_fin, ak)
            trim = G.running_max(np.where(acks, capped, -1), t0)
            ackmax = G.running_max(np.where(acks, ak, -1), a0)
            reassem = G.running_max(np.where(data & mine & ~cut, end, -1), r0)
            reassem = np.where(mode[grp] == 1, np.maximum(reassem, trim), reassem)
            gaps = acks & (mode[grp] == 1) & (capped > G.before(trim, t0))
            mg = np.flatnonzero(mixed & ~g_viol)
            blo, bhi = c[f"{sd}_zblo"][gsl], c[f"{sd}_zbhi"][gsl]  # copies (fancy indexing)
            if len(mg):
                nxt0 = c[f"{sd}_nxt"][gsl]
                fin0 = c[f"{sd}_fin"][gsl]
                own = at_own_fin & mine
                reset = est & ~mine & f_ack & f_rst
                for g, lo_, hi_ in zip(mg.tolist(), G.starts[mg].tolist(), G.ends[mg].tolist(), strict=True):
                    held = (int(blo[g]), int(bhi[g])) if blo[g] >= 0 else None
                    gc = GapCounter(int(t0[g]), int(r0[g]), int(a0[g]), int(nxt0[g]), held)
                    if fin0[g] >= 0:
                        gc.sent(int(nxt0[g]), int(fin0[g]))
                    for k in range(lo_, hi_):
                        if mine[k]:
                            if est[k] and plain[k]:
                                gc.sent(int(cend[k]), int(end[k]) if own[k] else None)
                                if data[k] and not cut[k]:
                                    gc.data(int(sq[k]), int(length[k]))
                        elif acks[k] or reset[k]:
                            got = gc.ack(int(ak[k]), bool(reset[k]))
                            if got > 1:
                                g_viol[g] = True  # two gaps at once: the core writes those
                            gaps[k] = got == 1
                    t_, r_, a_, block, ok = gc.state
                    g_viol[g] |= not ok
                    blo[g], bhi[g] = block if block is not None else (-1, -1)
                    last_k = hi_ - 1
                    trim[last_k], reassem[last_k], ackmax[last_k] = t_, r_, a_
            g_viol |= c[f"{sd}_zGn"][gsl] + G.count(gaps) >= 10_000
            z_gap[x] = (mode, trim, reassem, ackmax, gaps)
            z_block[x] = (blo, bhi)

        g_viol |= pk_g + (G.ends - G.starts) > JOURNAL_CAP
        bail = gsl[g_viol]
        okg = np.flatnonzero(~g_viol)
        if not len(okg):
            return bail

        # -- commit the chunk for the connections that stayed on the common paths
        gs = gsl[okg]
        last = G.ends[okg] - 1
        pk0 = {"c": c["c_pk"][gs].copy(), "s": c["s_pk"][gs].copy()}
        c["last_ts"][gs] = ts[last]
        c["last_clock"][gs] = clk[last]
        # handshake and RST events
        sa = (g_synack | g_refuse)[okg]
        c["sa_f"][gs[sa]] = frame[p1c[okg][sa]]
        c["sa_t"][gs[sa]] = ts[p1c[okg][sa]]
        c["sa_o"][gs[sa]] = ordn[p1c[okg][sa]]
        ga = g_synack[okg]
        sg = gs[ga]
        c["s_isn"][sg] = s_isn_g[okg][ga]
        c["s_ws"][sg] = s_ws_g[okg][ga]
        c["s_lsend"][sg] = ts[p1c[okg][ga]]
        st.set_options(1, sg, cols, order[p1c[okg][ga]])
        c["s_ltx"][sg] = ts[p1c[okg][ga]]
        c["phase"][sg] = P_SYNACK

        def record_rst(g: I64, p: I64, by: I64 | int, xs: I64 | int, ys: I64 | int) -> None:
            """The RST (at position p) that ends connections g: nothing may follow it."""
            c["rst_f"][g], c["rst_t"][g], c["rst_o"][g] = frame[p], ts[p], ordn[p]
            c["rst_by"][g], c["rst_xs"][g], c["rst_ys"][g] = by, xs, ys
            c["phase"][g] = P_DONE

        gr = g_refuse[okg]
        rg, rp = gs[gr], p1c[okg][gr]
        c["refused"][rg] = 1
        record_rst(rg, rp, 1, CLOSED, SYN_SENT)
        c["zr0"][rg] = ordn[rp] * 4
        hr = g_hs_rst[okg]
        rg3, rp3 = gs[hr], G.first_where(hs_rst)[okg][hr]
        record_rst(rg3, rp3, 0, EST, SYN_RCVD)
        c["c_zR"][rg3] = np.where(c["c_zR"][rg3] < 0, ordn[rp3] * 4, c["c_zR"][rg3])
        hs = (phs[okg] >= 0) & (phs[okg] < _BIG)
        hg, hp = gs[hs], phs[okg][hs]
        c["hs_f"][hg] = frame[hp]
        c["hs_t"][hg] = ts[hp]
        c["hs_o"][hg] = ordn[hp]
        c["phase"][hg] = P_EST
        cr = created[okg]
        cg = gs[cr]
        c["c_ws"][cg] = c_ws_g[okg][cr]
        c["c_lsend"][cg] = ts[G.starts[okg][cr]]
        c["zS"][cg] = 0
        c["zH"][sg] = c["sa_o"][sg] * 4
        rs = prst[okg] < _BIG
        rg2, rp2 = gs[rs], prst[okg][rs]
        record_rst(rg2, rp2, side[rp2], rst_xs[rp2], rst_ys[rp2])
        z_letters = (
            ("A", plain & ~f_fin & (length == 0)),
            ("D", plain & ~f_fin & (length > 0)),
            ("F", at_own_fin),
            ("R", at_rst),
        )
        core_rtx = est & plain & ~after_own_fin & (length > 0) & (end <= own_before)
        syn_rtx = in_syn & ~(G.first & created[grp])
        for x, sd in ((0, "c"), (1, "s")):
            m = side == x
            pe, pedge, pf, pt = pend_out[x]
            c[f"{sd}_bend"][gs] = pe[okg]
            c[f"{sd}_bedge"][gs] = pedge[okg]
            c[f"{sd}_bf"][gs] = pf[okg]
            c[f"{sd}_bt"][gs] = pt[okg]
            c[f"{sd}_pk"][gs] += G.count(m)[okg]
            c[f"{sd}_by"][gs] += G.sum(np.where(m, length, 0))[okg]
            lx = (last_c if x == 0 else last_s)[last]
            h = lx >= 0
            c[f"{sd}_win"][gs[h]] = win[lx[h]]
            la = (last_ca if x == 0 else last_sa)[last]
            h = la >= 0
            c[f"{sd}_lack"][gs[h]] = ak[la[h]]
            c[f"{sd}_nxt"][gs] = (nxt_c if x == 0 else nxt_s)[last]
            c[f"{sd}_rtx"][gs] += G.count(m & (core_rtx | syn_rtx))[okg]
            adv = G.last_where(m & ((counted & (length > 0) & (end > own_before)) | at_own_fin))[last]
            h = adv >= 0
            c[f"{sd}_lsend"][gs[h]] = ts[adv[h]]
            tx = G.last_where(m & ((in_syn & syn) | at_own_fin))[last]
            h = tx >= 0
            c[f"{sd}_ltx"][gs[h]] = ts[tx[h]]
            pf_ = (pfc if x == 0 else pfs)[okg]
            h = (pf_ >= 0) & (pf_ < _BIG)
            fg, fp = gs[h], pf_[h]
            c[f"{sd}_fin"][fg] = end[fp]
            c[f"{sd}_finf"][fg] = frame[fp]
            c[f"{sd}_fint"][fg] = ts[fp]
            c[f"{sd}_finclk"][fg] = clk[fp]
            c[f"{sd}_fino"][fg] = ordn[fp]
            peer_seen = G.cumcount(~m) - (~m)  # the peer's segments before each position
            c[f"{sd}_ppf"][fg] = pk0["s" if x == 0 else "c"][h] + peer_seen[fp]
            pa = (pfa_c if x == 0 else pfa_s)[okg]
            h = (pa >= 0) & (pa < _BIG)
            ag, ap = gs[h], pa[h]
            c[f"{sd}_faf"][ag] = frame[ap]
            c[f"{sd}_fat"][ag] = ts[ap]
            c[f"{sd}_fao"][ag] = ordn[ap]
            for letter, lm in z_letters:
                col = c[f"{sd}_z{letter}"]
                fl = G.first_where(est & m & lm)[okg]
                h = (fl < _BIG) & (col[gs] < 0)
                col[gs[h]] = ordn[fl[h]] * 4
            mode, trim, reassem, ackmax, gaps = z_gap[x]
            c[f"{sd}_ztr"][gs] = mode[okg]
            c[f"{sd}_ztrim"][gs] = trim[last]
            c[f"{sd}_zre"][gs] = reassem[last]
            c[f"{sd}_zack"][gs] = ackmax[last]
            blo, bhi = z_block[x]
            c[f"{sd}_zblo"][gs], c[f"{sd}_zbhi"][gs] = blo[okg], bhi[okg]
            # in Zeek's order within a segment: its letters, W, T, then the gap its ACK shows
            for k, mm, sub in (("W", z_w & m, 1), ("T", z_t & m, 2), ("G", gaps, 3)):
                if not mm.any():
                    continue
                total = c[f"{sd}_z{k}n"][slot] + G.cumcount(mm)
                for i, p10 in enumerate(_POW10):
                    fh = G.first_where(mm & (total == p10))[okg]
                    h = fh < _BIG
                    c[f"{sd}_z{k}{i}"][gs[h]] = ordn[fh[h]] * 4 + sub
                c[f"{sd}_z{k}n"][gs] += G.count(mm)[okg]
            c[f"{sd}_zmax"][gs] = (zmax_c if x == 0 else zmax_s)[last]
        self._schedule(gs)
        return bail

    def _schedule(self, slots: I64) -> None:
        """When these connections can retire (both ends CLOSED, quiet for 2 MSL), and when
        their journals can go (see :meth:`_compact_closed`): BIG for not (yet)."""
        c = self.store.cols
        ph = c["phase"][slots]
        both = (ph == P_EST) & (c["c_fao"][slots] >= 0) & (c["s_fao"][slots] >= 0)
        c["retire_at"][slots] = np.where(
            (ph == P_DONE) | both, _later(c["last_ts"][slots], self.tw_ns), _NEVER_NS
        )
        # (a payload block Zeek still holds keeps a connection out of the closed table,
        # which does not carry one)
        quiet = both & (c["c_bend"][slots] < 0) & (c["s_bend"][slots] < 0)
        quiet &= (c["c_zblo"][slots] < 0) & (c["s_zblo"][slots] < 0)
        second = np.maximum(c["c_finclk"][slots], c["s_finclk"][slots])
        c["compact_at"][slots] = np.where(quiet, second, _NEVER_NS)

    # ---- states, retirement, eviction

    def states(self, slots: I64, clock: int | I64 | None, src: Any = None) -> tuple[I64, I64, I64, I64]:
        """Both sides' states (a TIME-WAIT whose timer ran out by ``clock`` is CLOSED; with
        ``clock`` None it stays TIME-WAIT), and when each side entered TIME-WAIT (-1: not).
        ``src``: the store (by default) or the closed table."""
        c = (src or self.store).cols
        n = len(slots)
        ph = c["phase"][slots]
        cs = np.full(n, CLOSED, dtype=np.int64)
        ss = np.full(n, CLOSED, dtype=np.int64)
        cs = np.where(ph == P_SYN, SYN_SENT, cs)
        cs = np.where(ph == P_SYNACK, EST, cs)
        ss = np.where(ph == P_SYNACK, SYN_RCVD, ss)
        est = ph == P_EST
        cfo, sfo = c["c_fino"][slots], c["s_fino"][slots]
        c_sent, s_sent = cfo >= 0, sfo >= 0
        cs = np.where(est, _closing_state(c_sent, s_sent, cfo < sfo, c["c_fao"][slots] >= 0), cs)
        ss = np.where(est, _closing_state(s_sent, c_sent, sfo < cfo, c["s_fao"][slots] >= 0), ss)
        tw_c = np.where(est & (cs == TW), c["s_fint"][slots], -1)
        tw_s = np.where(est & (ss == TW), c["c_fint"][slots], -1)
        if clock is not None:
            clk = np.asarray(clock, dtype=np.int64)
            cs = np.where((cs == TW) & (clk - tw_c >= self.tw_ns), CLOSED, cs)
            ss = np.where((ss == TW) & (clk - tw_s >= self.tw_ns), CLOSED, ss)
        return cs, ss, tw_c, tw_s

    def _retirable(self, slots: I64, clock: I64 | int) -> B:
        """Both ends CLOSED at ``clock`` (a TIME-WAIT ran out) and quiet for 2 MSL (see
        :func:`tcptrace_sm.flows.retirable`): on the fast paths, from ``retire_at`` on."""
        out: B = _due(self.store.cols["retire_at"][slots], clock)
        return out

    def _sweep(self) -> list[_Source]:
        """Retire what is due at the clock, evict above the cap: the records, as sources (those
        of the closed table, the bulk when the clock jumps, are built lazily)."""
        clock = self.clock
        assert clock is not None
        st, ct, pt = self.store, self.closed, self.parked
        if pt.count:  # parked connections whose time is up: back, to retire with the rest
            self._unpark(pt.rows_upto(clock))
        live = st.live_slots()
        c = st.cols
        done = live[_due(c["retire_at"][live], clock)]
        self._unindex(done)
        ripe = live[_due(c["compact_at"][live], clock) & ~_due(c["retire_at"][live], clock)]
        if len(ripe):
            self._compact_closed(ripe, clock)
        cdone = ct.rows_upto(max(clock - self.tw_ns, -_NEVER_NS))  # past their TIME-WAIT
        self._unindex(cdone, closed=True)
        table = self.table
        table.clock = clock
        slow_done = table.sweep(evict=False)
        ev_store = ev_closed = np.empty(0, dtype=np.int64)
        # the cap counts connections not over yet (see tcptrace_sm.flows)
        live = st.live_slots()
        ended = st.cols["retire_at"][live] < _NEVER_NS
        over = int((~ended).sum()) + table.open_count - self.options.max_flows
        popen = np.empty(0, dtype=np.int64)
        if over + pt.count > 0:  # parked attempts count too (parked resets are over)
            popen = pt.live_rows()
            popen = popen[pt.meta("retire_at", popen) >= _NEVER_NS]
            over += len(popen)
        if over > 0:
            if len(popen):  # the first to go are among the oldest parked attempts
                o = np.lexsort((pt.meta("fid", popen), pt.meta("last_ts", popen)))[:over]
                self._unpark(popen[o])
                live = st.live_slots()
                ended = st.cols["retire_at"][live] < _NEVER_NS
            ev_store, ev_closed, victims = self._victims(over, live[ended], cdone)
            table.evict(len(victims), victims)
            slow_done.extend(table.sweep(evict=False))
            slow_done.sort(key=lambda cn: cn.flow_id)
            self._unindex(ev_store)
        parts: list[_Source] = []
        if len(done) or len(ev_store):
            parts.append(_block_source(self._records(done, clock, evicted=ev_store)))
        if len(ev_closed):
            parts.append(_block_source(self._closed_records(ev_closed[:0], clock, evicted=ev_closed)))
        if len(cdone):
            cdone = cdone[np.argsort(ct.meta("fid", cdone), kind="stable")]

            def closed_part(lo: int, hi: int, rows: I64 = cdone, clock: int = clock) -> Block:
                return self._closed_records(rows[lo:hi], clock)

            parts.append((ct.meta("fid", cdone), closed_part))
        self._park_quiet(clock)
        self.journal.compact()
        if slow_done:
            parts.append(_block_source(self._emit(slow_done)))
        return parts

    # ---- parking: connections that only wait, out of the store

    def _park_quiet(self, clock: int) -> None:
        """Park the connections that can only wait now (see :meth:`_park`), and move the few
        parked rows that hold up the front of the parked table to its end."""
        st = self.store
        c = st.cols
        live = st.live_slots()
        ph = c["phase"][live]
        last = c["last_clock"][live]
        waiting = ((ph == P_DONE) | (ph == P_SYN)) & (c["c_pk"][live] + c["s_pk"][live] <= _PARK_ROWS)
        park = waiting & (last <= clock - _PARK_AFTER_NS)
        over = len(live) - int(park.sum()) - _PARK_STORE // 2
        if len(live) > _PARK_STORE and over > 0:  # a flood of attempts: the oldest go too
            rest = np.flatnonzero(waiting & ~park)
            park[rest[np.argsort(last[rest], kind="stable")[:over]]] = True
        self._park(live[park])
        pt = self.parked
        move = pt.front_to_move()
        if len(move):
            meta = {k: pt.meta(k, move) for k in pt.m}
            rows = pt.read(move)
            pt.release(move)
            new = pt.append(rows, meta)
            self.keytab.repoint(meta["hash"], _parked_ref(move), _parked_ref(new))

    def _park(self, slots: I64) -> None:
        """Move these connections from the store, and their segments from the journal, to the
        parked table: connections reset or refused that wait out their 2 MSL, and attempts
        nobody answered, which can wait until the end of the capture. On a busy link they are
        most of the store (a SYN flood all of it); parked, 40 bytes each stay in memory (the
        rest goes to temporary files past :data:`PARKED_IN_MEMORY`, see :class:`_Segmented`).
        Whatever needs one again (more on its 4-tuple, its retirement or eviction, the end
        of the capture) brings it back first (:meth:`_unpark`), exactly as it was."""
        if not len(slots):
            return
        st = self.store
        n = len(slots)
        arr = np.zeros(n, dtype=_PARK_DT)
        arr["d64"] = st.data64[slots]
        arr["d32"] = st.data32[slots]
        arr["opt"] = st.opt[:, slots].transpose(1, 0, 2)
        arr["optlen"] = st.optlen[:, slots].T
        for name in ("fam", "cip", "sip", "cport", "sport", "hash"):
            arr[name] = getattr(st, name)[slots]
        k = self.journal.kept(slots)
        where = np.empty(st.cap, dtype=np.int64)
        where[slots] = np.arange(n)
        i = where[k["slot"].astype(np.int64)]
        o = np.argsort(i, kind="stable")  # by connection, each in capture order
        k, i = _pick(k, o), i[o]
        jn = np.bincount(i, minlength=n)
        if jn.max(initial=0) > _PARK_ROWS:
            raise AssertionError("a connection with more segments than a parked row holds")
        starts = np.cumsum(jn) - jn
        arr["jn"] = jn
        arr["j"][i, np.arange(len(i)) - starts[i]] = k
        c = st.cols
        meta = {"hash": st.hash[slots], "fid": c["fid"][slots], "last_ts": c["last_ts"][slots]}
        meta["retire_at"] = c["retire_at"][slots]
        rows = self.parked.append(arr, meta)
        self.keytab.repoint(st.hash[slots], slots, _parked_ref(rows))
        st.hash[slots] = _EMPTY
        st.release(slots)
        self.parks += n

    def _unpark(self, rows: I64) -> I64:
        """Parked connections back into the store (and their segments into the journal), as
        they were; their new slots."""
        if not len(rows):
            return np.empty(0, dtype=np.int64)
        st = self.store
        arr = self.parked.read(rows)
        self.parked.release(rows)
        slots = st.alloc(len(rows))
        st.data64[slots] = arr["d64"]
        st.data32[slots] = arr["d32"]
        st.opt[:, slots] = arr["opt"].transpose(1, 0, 2)
        st.optlen[:, slots] = arr["optlen"].T
        for name in ("fam", "cip", "sip", "cport", "sport", "hash"):
            getattr(st, name)[slots] = arr[name]
        self.keytab.repoint(arr["hash"], _parked_ref(rows), slots)
        jn = arr["jn"]
        j = arr["j"][np.arange(_PARK_ROWS) < jn[:, None]]  # by connection, in capture order
        j["slot"] = np.repeat(np.arange(len(rows)), jn)
        self.journal.restore(slots, j)
        return slots

    def _closed_records(
        self,
        rows: I64,
        clock: int,
        *,
        evicted: I64 | None = None,
        final: bool = False,
        recycled: tuple[I64, I64] | None = None,
    ) -> Block:
        """Records of closed connections retired at ``clock`` (and of ``evicted`` ones, which
        the core describes); releases their rows."""
        ct = self.closed
        parts = []
        if len(rows):
            got = ct.load(rows)
            idx = np.arange(len(rows), dtype=np.int64)
            none = np.zeros(len(rows), dtype=np.bool_)
            parts.append(self._fast_records(idx, none, clock, final, got, recycled=recycled))
        if evicted is not None and len(evicted):
            b = Block()
            for r in evicted.tolist():
                conn, z = self.rebuild_closed(r)
                conn.evict(clock)
                b.add(conn, z, self.want_transitions)
            parts.append(b)
            ct.release(evicted)
        ct.release(rows)
        return Block.merge(parts) if parts else Block()

    def _emit(self, conns: list[Connection]) -> Block:
        """Records of connections the core finished; their 4-tuples leave the index."""
        b = Block()
        table = self.table
        for conn in conns:
            b.add(conn, self.zeek.pop(conn.flow_id, None), self.want_transitions)
            cc, ss = conn.client, conn.server
            fk = flow_key(cc.ip, cc.port, ss.ip, ss.port)
            k = self.slow_keys.get(fk)
            if k is not None and not table.has(fk):
                del self.slow_keys[fk]
                self.core_keys.discard(k)
        return b

    def _compact_closed(self, slots: I64, clock: int) -> None:
        """Connections whose close is complete (FINs both ways, both acknowledged, nothing
        pending, see :meth:`_schedule`) are final but for their TIME-WAIT: they move from the
        store (and their journals go) to the compact closed table; anything more on them goes
        to the core through :meth:`rebuild_closed`."""
        if not len(slots):
            return
        st, ct = self.store, self.closed
        c = st.cols
        zstate, zhist = self._zeek_codes(slots)
        arr = np.empty(len(slots), dtype=_CLOSED_DT)
        for name in _CLOSED_COPY:
            if name in c:
                arr[name] = c[name][slots]
        arr["zlast"] = np.maximum(c["c_finclk"][slots], c["s_finclk"][slots])
        arr["zhist"] = zhist
        arr["zstate"] = zstate
        arr["fam"] = st.fam[slots]
        arr["cip"] = st.cip[slots]
        arr["sip"] = st.sip[slots]
        arr["cport"] = st.cport[slots]
        arr["sport"] = st.sport[slots]
        rows = ct.append(arr, st.hash[slots])
        self.keytab.repoint(st.hash[slots], slots, _closed_ref(rows))
        st.hash[slots] = _EMPTY
        st.release(slots)

    def _zcode(self, text: str) -> int:
        code = self._zindex.get(text)
        if code is None:
            code = self._zindex[text] = len(self._zstrings)
            self._zstrings.append(text)
        return code

    def _victims(
        self, n: int, exclude: I64, exclude_closed: I64
    ) -> tuple[I64, I64, list[tuple[Any, Connection]]]:
        """The ``n`` connections to evict (fast and the core's together; not over yet), in
        :func:`eviction_order`: unanswered attempts first, then the least recently active."""
        st = self.store
        c = st.cols
        live = np.setdiff1d(st.live_slots(), exclude)
        answered = c["s_pk"][live] > 0
        o = np.lexsort((c["fid"][live], c["last_ts"][live], answered))[:n]
        cand: list[tuple[tuple[bool, int, int], int, Any]] = [
            ((bool(answered[i]), int(c["last_ts"][live[i]]), int(c["fid"][live[i]])), 0, int(live[i]))
            for i in o.tolist()
        ]
        cand += [(eviction_order(kv[1]), 2, kv) for kv in self.table.candidates(n)]
        chosen = heapq.nsmallest(n, cand, key=lambda t: t[0])
        fs = np.array([v for _k, w, v in chosen if w == 0], dtype=np.int64)
        cs = np.empty(0, dtype=np.int64)  # closed connections are over: never evicted
        sl: list[tuple[Any, Connection]] = [v for _k, w, v in chosen if w == 2]
        return fs, cs, sl

    def finish(self, end_ts: int) -> Iterator[tuple[int, Block]]:
        """Finish every live connection at capture time ``end_ts``: the last records, by spans
        of flow_id (see :func:`~tcptrace_sm.analysis.final_span`), each span's in flow_id order."""
        st, ct = self.store, self.closed
        live = st.live_slots()
        slow = self.table.finish(end_ts)
        fids = st.cols["fid"][live]
        o = np.argsort(fids, kind="stable")
        live, fids = live[o], fids[o]
        crows = ct.live_rows()
        cfids = ct.meta("fid", crows)
        o = np.argsort(cfids, kind="stable")
        crows, cfids = crows[o], cfids[o]
        pt = self.parked
        prows = pt.live_rows()
        pfids = pt.meta("fid", prows)
        o = np.argsort(pfids, kind="stable")
        prows, pfids = prows[o], pfids[o]
        fspan, cspan, pspan = final_span(fids), final_span(cfids), final_span(pfids)
        sspan = final_span(np.array([conn.flow_id for conn in slow], dtype=np.int64))
        spans = np.unique(np.concatenate([fspan, cspan, pspan, sspan]))
        bounds = [np.searchsorted(x, spans, side="right").tolist() for x in (fspan, cspan, pspan, sspan)]
        i = k = m = j = 0
        for span, i2, k2, m2, j2 in zip(spans.tolist(), *bounds, strict=True):
            parts = []
            # parked ones come back (a span at a time) to be finished with the store's
            mine = np.concatenate([live[i:i2], self._unpark(prows[m:m2])])
            if len(mine):
                parts.append(self._fast_records(mine, np.zeros(len(mine), dtype=np.bool_), end_ts, True))
                st.release(mine)
            if k2 > k:
                parts.append(self._closed_records(crows[k:k2], end_ts, final=True))
            if j2 > j:
                parts.append(self._emit(slow[j:j2]))
            i, k, m, j = i2, k2, m2, j2
            yield span, Block.merge(parts)
        self.keytab.clear()
        self.core_keys.clear()
        self.slow_keys.clear()
        ct.close()
        pt.close()

    # ---- records of finished fast connections

    def _records(
        self,
        slots: I64,
        clock: int,
        *,
        evicted: I64 | None = None,
        final: bool = False,
        recycled: tuple[I64, I64] | None = None,
    ) -> Block:
        """Records of fast connections finished at ``clock`` (and of ``evicted`` ones); releases
        their slots. Those whose end needs the core (a CLOSE-WAIT to time, the eviction of an
        open connection) are replayed into it and finished there. ``recycled``: see
        :meth:`_fast_records` (then no slot needs the core: :meth:`_recycles` saw to it)."""
        ev = evicted if evicted is not None else np.empty(0, dtype=np.int64)
        allslots = np.concatenate([slots, ev])
        is_ev = np.concatenate([np.zeros(len(slots), dtype=np.bool_), np.ones(len(ev), dtype=np.bool_)])
        if not len(allslots):
            return Block()
        st = self.store
        c = st.cols
        if recycled is not None:
            end = recycled[1]
        else:
            end = np.maximum(clock, c["last_ts"][allslots]) if final else np.full(len(allslots), clock)
        cs, ss, _a, _b = self.states(allslots, end)
        core = (cs == CW) | (ss == CW) | (is_ev & (c["phase"][allslots] != P_SYN))
        assert recycled is None or not core.any(), "a recycled connection is over or unanswered"
        parts = []
        if (~core).any():
            parts.append(self._fast_records(allslots[~core], is_ev[~core], clock, final, recycled=recycled))
        if core.any():
            to_core = allslots[core]
            to_evict = allslots[core & is_ev]
            evict_keys = [flow_key(*k) for k in self._endpoints(to_evict)]
            st.release(allslots[~core])
            self._hand_over(to_core)
            if evict_keys:
                table = self.table
                table.clock = clock
                table.evict(len(evict_keys), [(k, table.get(k)) for k in evict_keys])
                parts.append(self._emit(table.sweep(evict=False)))
        else:
            st.release(allslots)
        return Block.merge(parts)

    def _endpoints(self, slots: I64) -> list[tuple[str, int, str, int]]:
        st = self.store
        fam = st.fam[slots]
        return list(
            zip(
                NAMES.of(fam, st.cip[slots]),
                st.cport[slots].tolist(),
                NAMES.of(fam, st.sip[slots]),
                st.sport[slots].tolist(),
                strict=True,
            )
        )

    def _trim_journal(self) -> None:
        """Hand the connections with the longest journals to the core, down to half the budget."""
        st = self.store
        c = st.cols
        live = st.live_slots()
        size = c["c_pk"][live] + c["s_pk"][live]
        o = np.argsort(-size, kind="stable")
        cum = np.cumsum(size[o])
        k = int(np.searchsorted(cum, self.journal.rows - JOURNAL_BUDGET // 2)) + 1
        self._hand_over(live[o[:k]])
        self.journal.compact()

    def _fast_records(
        self,
        slots: I64,
        evicted: B,
        clock: int,
        final: bool,
        src: Any = None,
        *,
        recycled: tuple[I64, I64] | None = None,
    ) -> Block:
        """Records of these slots (of the store, or of ``src``) at capture time ``clock``.
        ``recycled``: per slot, the frame and time of the new SYN that took over its 4-tuple
        (the connection ends there, a TIME-WAIT still running ending with it)."""
        st = src or self.store
        c = st.cols
        o = np.argsort(c["fid"][slots], kind="stable")
        slots, evicted = slots[o], evicted[o]
        n = len(slots)
        fid = c["fid"][slots]
        first_ts, last_ts = c["first_ts"][slots], c["last_ts"][slots]
        if recycled is not None:
            recycled = (recycled[0][o], recycled[1][o])
            end = recycled[1]
        else:
            end = np.maximum(clock, last_ts) if final else np.full(n, clock, dtype=np.int64)
        cs, ss, _twc, _tws = self.states(slots, end, st)
        if recycled is not None:  # what was left of them is gone (only SYN-SENT is not CLOSED)
            cs, ss = np.where(cs == TW, CLOSED, cs), np.where(ss == TW, CLOSED, ss)
            cs = np.where(cs == SYN_SENT, CLOSED, cs)
        cpk, spk = c["c_pk"][slots], c["s_pk"][slots]
        cby, sby = c["c_by"][slots], c["s_by"][slots]
        ph = c["phase"][slots]
        refused = c["refused"][slots] == 1
        rst_by = c["rst_by"][slots]
        c_fin, s_fin = c["c_fino"][slots] >= 0, c["s_fino"][slots] >= 0
        unanswered = ph == P_SYN
        close = np.select(
            [refused, rst_by >= 0, c_fin & s_fin, c_fin | s_fin, unanswered],
            ["refused", "rst", "fin", "half", "unanswered"],
            "open",
        ).astype(object)
        rst_side: list[str | None] = _RST_SIDES[rst_by + 1].tolist()
        errno: list[str | None] = _ERRNO_OF[np.where(rst_by >= 0, c["rst_ys"][slots], -1)].tolist()
        fam = st.fam[slots]
        zstate, zhist = self._zeek_columns(slots, st)
        an: dict[str, list[Any]] = {k: [] for k in ANOMALY_COLUMNS}
        anomalies = self._fast_anomalies(
            an, c, slots, evicted, clock, recycled, cs, ss, errno, end if final else None
        )
        flows = {
            "flow_id": fid.tolist(),
            "client_ip": NAMES.of(fam, st.cip[slots]),
            "client_port": st.cport[slots].tolist(),
            "server_ip": NAMES.of(fam, st.sip[slots]),
            "server_port": st.sport[slots].tolist(),
            "first_ts": first_ts.tolist(),
            "last_ts": last_ts.tolist(),
            "duration": ((last_ts - first_ts) / 1e9).tolist(),
            "packets": (cpk + spk).tolist(),
            "bytes": (cby + sby).tolist(),
            "client_packets": cpk.tolist(),
            "server_packets": spk.tolist(),
            "client_bytes": cby.tolist(),
            "server_bytes": sby.tolist(),
            "client_state": _STATE_NAMES[cs].tolist(),
            "server_state": _STATE_NAMES[ss].tolist(),
            "close": close.tolist(),
            "rst_by": rst_side,
            "errno": errno,
            "midstream": [False] * n,
            "anomalies": anomalies,
            "conn_state": zstate,
            "history": zhist,
        }
        block = Block(flows=flows, anomalies=an)
        noted: Counter[str] = Counter(an["code"])
        block.noted = noted
        block.evicted = int(evicted.sum())
        if self.want_transitions:
            self._transitions_into(block, slots, end, st, None if recycled is None else recycled[0])
        return block

    def _fast_anomalies(
        self,
        an: dict[str, list[Any]],
        c: dict[str, Any],
        slots: I64,
        evicted: B,
        clock: int,
        recycled: tuple[I64, I64] | None,
        cs: I64,
        ss: I64,
        errno: list[str | None],
        end: I64 | None = None,
    ) -> list[list[str]]:
        """The anomalies of fast connections (in ``slots``' order, each one's in time order)
        into the columns ``an``; per connection, its codes in the order the core notes them.
        The fast paths know five: an eviction, the RST that ended it, for an attempt nobody
        answered the SYN that took its 4-tuple over and the unanswered SYN itself, and at the
        ``end`` of the capture (if given) a CLOSE-WAIT that lasted the close-wait timeout."""
        n = len(slots)
        rst_by = c["rst_by"][slots]
        reset = rst_by >= 0
        unanswered = c["phase"][slots] == P_SYN
        superseded = unanswered & (recycled is not None)
        # a side still in CLOSE-WAIT at the end, silent since the peer's FIN or its last send
        waits = np.where(cs == CW, 0, np.where(ss == CW, 1, -1))
        stuck = np.zeros(n, dtype=np.bool_)
        if end is not None and (waits >= 0).any():
            sent = np.where(waits == 0, c["c_lsend"][slots], c["s_lsend"][slots])
            fin = np.where(waits == 0, c["s_fint"][slots], c["c_fint"][slots])
            since = np.maximum(sent, fin)
            stuck = (waits >= 0) & (end - since >= self.cw_ns)
        kinds = (evicted, reset, superseded, unanswered, stuck)
        combo = sum((k.astype(np.int64) << b for b, k in enumerate(kinds)), np.zeros(n, dtype=np.int64))
        codes = ("flow_evicted", "rst_terminated", "superseded", "unanswered_syn", "stuck_close_wait")
        lists = [[codes[b] for b in range(5) if m >> b & 1] for m in range(32)]
        anomalies: list[list[str]] = [[] for _ in range(n)]
        some = np.flatnonzero(combo)
        if not len(some):
            return anomalies
        for k, m in zip(some.tolist(), combo[some].tolist(), strict=True):
            anomalies[k] = list(lists[m])
        # one row per connection and kind: (connection, time, frame to order by, kind)
        cols: dict[str, list[Any]] = {k: [] for k in an}
        row_i: list[I64] = []
        row_t: list[I64] = []
        row_f: list[I64] = []
        fid = c["fid"][slots]

        def rows(i: I64, t: I64, f: I64, code: str, side: Any, frame: Any, state: Any, detail: Any) -> None:
            k = len(i)
            if not k:
                return
            sev, cat = _KIND[code]
            row_i.append(i)
            row_t.append(t)
            row_f.append(f)
            for name, v in (
                ("flow_id", fid[i].tolist()),
                ("code", [code] * k),
                ("severity", [sev] * k),
                ("category", [cat] * k),
                ("side", side if isinstance(side, list) else [side] * k),
                ("frame", frame if isinstance(frame, list) else [frame] * k),
                ("ts", t.tolist()),
                ("state", state if isinstance(state, list) else [state] * k),
                ("detail", detail if isinstance(detail, list) else [detail] * k),
            ):
                cols[name].append(v)

        i = np.flatnonzero(evicted)
        if len(i):
            quiet = ((clock - c["last_ts"][slots[i]]) / NS_PER_S).tolist()
            names_c, names_s = _STATE_NAMES[cs[i]].tolist(), _STATE_NAMES[ss[i]].tolist()
            detail = [
                f"evicted from a full connection table after {q:.3f} s of silence (client {a}, server {b})"
                for q, a, b in zip(quiet, names_c, names_s, strict=True)
            ]
            rows(i, np.full(len(i), clock, dtype=np.int64), np.zeros(len(i), dtype=np.int64),
                 "flow_evicted", None, None, None, detail)  # fmt: skip
        i = np.flatnonzero(reset)
        if len(i):
            s_ = slots[i]
            r, xs, ys = rst_by[i], c["rst_xs"][s_], c["rst_ys"][s_]
            refused = c["refused"][s_] == 1
            f = c["rst_f"][s_]
            # the detail of each distinct (refused, sender, its state, the receiver's state)
            key = (((refused.astype(np.int64) * 2 + r) << 8 | xs) << 8) | ys
            uniq, first, inv = np.unique(key, return_index=True, return_inverse=True)
            texts = []
            for u, at in zip(uniq.tolist(), first.tolist(), strict=True):
                who = ("client", "server") if (u >> 16) & 1 == 0 else ("server", "client")
                what = "connection refused" if u >> 17 else "connection reset"
                no = errno[int(i[at])]
                seen = f"; the {who[1]} saw {no}" if no else ""
                a, b = _STATE_NAMES[(u >> 8) & 255], _STATE_NAMES[u & 255]
                texts.append(f"{what}: RST from the {who[0]} ({a}) to the {who[1]} ({b}){seen}")
            detail = np.array(texts, dtype=object)[inv.ravel()].tolist()
            sender = _SIDE_NAMES[r].tolist()
            rows(
                i, c["rst_t"][s_], f, "rst_terminated", sender, f.tolist(), _STATE_NAMES[ys].tolist(), detail
            )
        if recycled is not None:
            i = np.flatnonzero(superseded)
            f = recycled[0][i]
            rows(i, recycled[1][i], f, "superseded", "client", f.tolist(), "SYN-SENT",
                 superseded_detail("client", "SYN-SENT"))  # fmt: skip
        i = np.flatnonzero(unanswered)
        if len(i):
            syns = c["c_pk"][slots[i]]
            uniq, inv = np.unique(syns, return_inverse=True)
            said = np.array([f"{k} SYN(s) and no answer" for k in uniq.tolist()], dtype=object)[inv.ravel()]
            rows(i, c["first_ts"][slots[i]], np.zeros(len(i), dtype=np.int64), "unanswered_syn", "client",
                 None, "CLOSED" if recycled is not None else "SYN-SENT", said.tolist())  # fmt: skip
        i = np.flatnonzero(stuck)
        if len(i):
            assert end is not None
            idle = ((end[i] - since[i]) / NS_PER_S).tolist()
            who = _SIDE_NAMES[waits[i]].tolist()
            said_cw = [
                f"the {w} sat in CLOSE-WAIT without sending for {q:.3f} s up to the end of the capture"
                for w, q in zip(who, idle, strict=True)
            ]
            rows(i, since[i], np.zeros(len(i), dtype=np.int64), "stuck_close_wait", who, None, "CLOSE-WAIT",
                 said_cw)  # fmt: skip
        # each connection's rows in time order (then frame, then the order above), the
        # connections in ``slots``' order
        kind = np.concatenate([np.full(len(x), k, dtype=np.int64) for k, x in enumerate(row_i)])
        o = np.lexsort((kind, np.concatenate(row_f), np.concatenate(row_t), np.concatenate(row_i)))
        for name, parts in cols.items():
            flat = np.empty(len(o), dtype=object)
            flat[:] = [v for part in parts for v in part]
            an[name].extend(flat[o].tolist())
        return anomalies

    # ---- transitions, generated from the events

    def _transition_rows(
        self, slots: I64, end: I64 | None, src: Any = None, recycled: I64 | None = None
    ) -> dict[str, npt.NDArray[Any]]:
        """Every transition of the slots as columns: row (index in ``slots``), key (the order
        the core would record them in), side, frame (-1: none), ts, from, to, cause, inferred.
        With ``end``, a TIME-WAIT whose timer ran out by then ends in the timer's transition;
        with ``recycled``, the frames of new SYNs at times ``end`` that took the 4-tuples
        over: a TIME-WAIT still running, or a SYN-SENT, ends at that SYN."""
        c = (src or self.store).cols
        n = len(slots)
        idx = np.arange(n, dtype=np.int64)
        out: dict[str, list[npt.NDArray[Any]]] = {
            k: [] for k in ("row", "key", "side", "frame", "ts", "a", "b", "cause", "inf")
        }

        def add(
            mask: B,
            key: I64 | int,
            side: I64 | int,
            frame: I64 | int,
            t: I64,
            a: I64 | int,
            b: I64 | int,
            cause: int,
            inf: bool,
        ) -> None:
            m = np.flatnonzero(mask)
            if not len(m):
                return
            k = len(m)

            def col(v: I64 | int) -> I64:
                return v[m] if isinstance(v, np.ndarray) else np.full(k, v, dtype=np.int64)

            out["row"].append(idx[m])
            out["key"].append(col(key))
            out["side"].append(col(side))
            out["frame"].append(col(frame))
            out["ts"].append(col(t))
            out["a"].append(col(a))
            out["b"].append(col(b))
            out["cause"].append(np.full(k, cause, dtype=np.int64))
            out["inf"].append(np.full(k, inf, dtype=np.bool_))

        g = _Gather(c, slots)
        fid, t0 = g["fid"], g["first_ts"]
        every = np.ones(n, dtype=np.bool_)
        add(every, 0, 0, fid, t0, CLOSED, SYN_SENT, _C_SYN, False)
        refused = g["refused"] == 1
        sa = g["sa_o"] * 4
        add(refused, sa, 0, g["rst_f"], g["rst_t"], SYN_SENT, CLOSED, _C_RRST, False)
        answered = (g["sa_o"] >= 0) & ~refused
        add(answered, sa, 1, fid, t0, CLOSED, LISTEN, _C_PASSIVE, True)
        add(answered, sa + 1, 1, fid, t0, LISTEN, SYN_RCVD, _C_RSYN, False)
        add(answered, sa + 2, 0, g["sa_f"], g["sa_t"], SYN_SENT, EST, _C_RSYNACK, False)
        add(g["hs_o"] >= 0, g["hs_o"] * 4, 1, g["hs_f"], g["hs_t"], SYN_RCVD, EST, _C_RACKSYN, False)
        reset = (g["rst_o"] >= 0) & ~refused  # (an RST may follow FINs: no TIME-WAIT is left)
        cfo, sfo = g["c_fino"], g["s_fino"]
        c_first = (cfo >= 0) & ((sfo < 0) | (cfo < sfo))
        s_first = (sfo >= 0) & ((cfo < 0) | (sfo < cfo))
        for x, xf, yf in ((0, "c", "s"), (1, "s", "c")):
            y = 1 - x
            first = c_first if x == 0 else s_first
            fo, ff, ft = g[f"{xf}_fino"], g[f"{xf}_finf"], g[f"{xf}_fint"]
            add(first, fo * 4 + 1, x, ff, ft, EST, FW1, _C_FIN, False)
            add(first, fo * 4 + 2, y, ff, ft, EST, CW, _C_RFIN, False)
            add(
                first & (g[f"{xf}_fao"] >= 0),
                g[f"{xf}_fao"] * 4,
                x,
                g[f"{xf}_faf"],
                g[f"{xf}_fat"],
                FW1,
                FW2,
                _C_RACKFIN,
                False,
            )
            yfo, yff, yft = g[f"{yf}_fino"], g[f"{yf}_finf"], g[f"{yf}_fint"]
            second = first & (yfo >= 0)
            add(second, yfo * 4 + 1, y, yff, yft, CW, LAST_ACK, _C_FIN, False)
            add(second, yfo * 4 + 2, x, yff, yft, FW2, TW, _C_RFIN, False)
            add(
                second & (g[f"{yf}_fao"] >= 0),
                g[f"{yf}_fao"] * 4,
                y,
                g[f"{yf}_faf"],
                g[f"{yf}_fat"],
                LAST_ACK,
                CLOSED,
                _C_RACKFIN,
                False,
            )
            if end is not None:
                expired = second & ~reset & (end - yft >= self.tw_ns)
                add(expired, _BIG, x, -1, yft + self.tw_ns, TW, CLOSED, _C_TIMER, True)
                if recycled is not None:
                    add(second & ~reset & ~expired, _BIG, x, recycled, end, TW, CLOSED, _C_RECYCLED, True)
        if recycled is not None and end is not None:
            add(g["phase"] == P_SYN, _BIG, 0, recycled, end, SYN_SENT, CLOSED, _C_REUSED, True)
        rb = g["rst_by"]
        add(reset, g["rst_o"] * 4, rb, g["rst_f"], g["rst_t"], g["rst_xs"], CLOSED, _C_RST, False)
        add(reset, g["rst_o"] * 4 + 1, 1 - rb, g["rst_f"], g["rst_t"], g["rst_ys"], CLOSED, _C_RRST, False)
        return {k: np.concatenate(v) if v else np.empty(0, dtype=np.int64) for k, v in out.items()}

    def _transitions_into(
        self, block: Block, slots: I64, end: I64, src: Any = None, recycled: I64 | None = None
    ) -> None:
        t = self._transition_rows(slots, end, src, recycled)
        if not len(t["row"]):
            return
        # On the fast paths a connection's transitions come in time order when put in the order
        # the core records them (segment times never go backwards there, and the TIME-WAIT
        # timer, recorded last, is after every segment): one sort on (connection, key).
        key = np.minimum(t["key"], (1 << 21) - 1)
        o = np.argsort((t["row"] << 21) | key, kind="stable")
        fid = (src or self.store).cols["fid"][slots]
        frame = t["frame"][o].astype(object)
        frame[frame == -1] = None
        tr = block.transitions
        tr["flow_id"] = fid[t["row"][o]].tolist()
        tr["side"] = _SIDE_NAMES[t["side"][o]].tolist()
        tr["frame"] = frame.tolist()
        tr["ts"] = t["ts"][o].tolist()
        tr["from_state"] = _STATE_NAMES[t["a"][o]].tolist()
        tr["to_state"] = _STATE_NAMES[t["b"][o]].tolist()
        tr["cause"] = _CAUSE_NAMES[t["cause"][o]].tolist()
        tr["inferred"] = t["inf"][o].tolist()

    # ---- Zeek's summary of fast connections

    def _zeek_columns(self, slots: I64, src: Any = None) -> tuple[list[str], list[str]]:
        """Zeek's conn_state and history of fast connections (their first Zeek connection)."""
        if isinstance(src, _Rows):
            zs = src.cols
            texts_ = np.array(self._zstrings, dtype=object)
            return texts_[zs["zstate"][slots]].tolist(), texts_[zs["zhist"][slots]].tolist()
        state, texts, inv = self._zeek_parts(slots)
        hist: list[str] = texts[inv].tolist()
        return _ZSTATE_NAMES[state].tolist(), hist

    def _zeek_codes(self, slots: I64) -> tuple[I64, I64]:
        """The same as codes of :meth:`_zcode` (each distinct text looked up once)."""
        state, texts, inv = self._zeek_parts(slots)
        hist = np.array([self._zcode(t) for t in texts.tolist()], dtype=np.int64)[inv]
        if self._zstate_codes is None:
            self._zstate_codes = np.array([self._zcode(t) for t in _ZSTATE_NAMES.tolist()], dtype=np.int64)
        return self._zstate_codes[state], hist

    def _zeek_parts(self, slots: I64) -> tuple[I64, npt.NDArray[np.object_], I64]:
        """conn_state per slot (an index into _ZSTATE_NAMES); the distinct histories and which
        one each slot has."""
        c = self.store.cols
        # each letter's ordinal x 4 (-1: none), the letters no slot has left out
        got = self.store.data32[slots][:, _ZCOLS32].astype(np.int64)
        has = got >= 0
        letters = np.flatnonzero(has.any(axis=0))
        keys = np.where(has[:, letters], got[:, letters], _BIG)
        order = np.argsort(keys, axis=1, kind="stable")
        present = np.take_along_axis(keys, order, axis=1) < _BIG
        code = np.where(present, letters[order] + 1, 0)  # 0: nothing more
        if code.shape[1] <= 10:
            sig = np.zeros(len(slots), dtype=np.int64)
            for j in range(code.shape[1]):
                sig = (sig << 6) | code[:, j]
            uniq, inv = np.unique(sig, return_inverse=True)
            rows = [
                [int((u >> (6 * (code.shape[1] - 1 - j))) & 63) for j in range(code.shape[1])]
                for u in uniq.tolist()
            ]
        else:
            uniq2, inv = np.unique(code.astype(np.uint8), axis=0, return_inverse=True)
            rows = uniq2.tolist()
        texts = np.array(["".join(_ZCHARS[k - 1] for k in row if k) for row in rows], dtype=object)
        # endpoint states: a SYN-ACK establishes both sides, a FIN closes, an RST resets
        ph = c["phase"][slots]
        refused = c["refused"][slots] == 1
        rb = c["rst_by"][slots]
        answered = c["sa_o"][slots] >= 0
        o_fin, r_fin = c["c_fino"][slots] >= 0, c["s_fino"][slots] >= 0
        # an RST after both FINs leaves Zeek's closed sides as they are (nothing follows an
        # RST on the fast paths, so the FINs came before it)
        o_reset = (rb == 0) & ~refused & ~(o_fin & r_fin)
        r_reset = ((rb == 1) & ~(o_fin & r_fin)) | refused
        state: I64 = np.select(
            [refused, ph == P_SYN, o_reset, r_reset, o_fin & r_fin, o_fin, r_fin], range(7), 7
        ).astype(np.int64)
        del answered
        return state, texts, inv.ravel().astype(np.int64)

    # ---- handing over a closed connection

    def rebuild_closed(self, r: int) -> tuple[Connection, ZeekSummary]:
        """The core's :class:`Connection` and :class:`ZeekSummary` of a closed connection (row
        ``r`` of the closed table, see :meth:`_compact_closed`), exactly as the core would hold
        them after its segments.

        Only this one situation is rebuilt: both FINs sent and acknowledged, nothing pending,
        no anomaly, one Zeek connection (rebuilt live: until ``tcp_close_delay`` after the
        second FIN, more segments still belong to it). The test suite checks the result, and
        Zeek's connection, field by field against the core fed the same segments.
        """
        ct = self.closed.load(np.array([r], dtype=np.int64))
        row = ct.arr[0]
        g = {k: int(row[k]) for k in _CLOSED_COPY}
        g |= {k: g[v] for k, v in _CLOSED_ALIAS.items()}
        cip = NAMES.of(ct.fam, ct.cip)[0]
        sip = NAMES.of(ct.fam, ct.sip)[0]
        cport, sport = int(row["cport"]), int(row["sport"])
        fid, t0 = g["fid"], g["first_ts"]
        conn = Connection(fid, (cip, cport), (sip, sport), self.config, first_frame=fid, first_ts=t0)
        one = np.zeros(1, dtype=np.int64)
        t = self._transition_rows(one, None, ct)
        o = np.argsort(t["key"], kind="stable")
        sides = (Side.CLIENT, Side.SERVER)
        conn.transitions = [
            Transition(
                sides[sd], None if f < 0 else f, ts_, STATE_ORDER[a], STATE_ORDER[b], _CAUSES[k], bool(i)
            )
            for sd, f, ts_, a, b, k, i in zip(
                *(t[name][o].tolist() for name in ("side", "frame", "ts", "a", "b", "cause", "inf")),
                strict=True,
            )
        ]
        conn.last_ts = conn.max_ts = g["last_ts"]  # a fast connection's time never goes back
        conn.packets = g["c_pk"] + g["s_pk"]
        conn.bytes = g["c_by"] + g["s_by"]
        cs, ss, _a, _b = self.states(one, None, ct)
        for ep, state, sd, pd in ((conn.client, int(cs[0]), "c", "s"), (conn.server, int(ss[0]), "s", "c")):
            ep.state = STATE_ORDER[state]
            mine = [tr for tr in conn.transitions if tr.side is ep.side]
            ep.entered_ts = mine[-1].ts
            isn = g[f"{sd}_isn"]
            ep.isn = isn
            ep.snd_nxt = (isn + g[f"{sd}_nxt"]) & _MASK
            ep.fin_seq = (isn + g[f"{sd}_fin"]) & _MASK
            ep.fin_acked = ep.fin_received = ep.sent_fin = True
            ep.peer_packets_at_fin = g[f"{sd}_ppf"]
            ep.last_send_ts = g[f"{sd}_lsend"]
            ep.last_tx = g[f"{sd}_ltx"]
            ep.win = g[f"{sd}_win"]
            ep.wscale = g[f"{sd}_ws"]
            ep.last_ack = (g[f"{pd}_isn"] + g[f"{sd}_lack"]) & _MASK
            ep.packets = g[f"{sd}_pk"]
            ep.bytes = g[f"{sd}_by"]
            ep.retransmissions = g[f"{sd}_rtx"]
        _zs, zh = self._zeek_columns(one, ct)
        zeek = ZeekSummary.closed(
            ts=t0,
            last_time=g["zlast"],
            history=zh[0],
            orig=ClosedSide(
                cip, cport, g["c_isn"], g["c_fin"], g["s_lack"], g["c_pk"], g["c_zTn"], g["c_zWn"], g["c_zGn"]
            ),
            resp=ClosedSide(
                sip, sport, g["s_isn"], g["s_fin"], g["c_lack"], g["s_pk"], g["s_zTn"], g["s_zWn"], g["s_zGn"]
            ),
        )
        return conn, zeek

    def _recycles(self, cols: Columns, pos: I64, rows: I64, plain_syn: B, *, closed: bool) -> B:
        """Which connections (closed rows, or store slots) a new one takes over: the chunk's
        first segment on the 4-tuple (at ``pos``) is a plain SYN with another ISN than its
        sender's, and the connection is over at that SYN (both ends CLOSED or in TIME-WAIT;
        always so in the closed table) or was an attempt nobody answered. As the flow table
        rules (see :mod:`tcptrace_sm.flows`), it ends at that SYN and the SYN opens a new
        connection. In the store only the client's SYN counts (the server's ISN may be unknown
        there)."""
        out = np.zeros(len(rows), dtype=np.bool_)
        cand = np.flatnonzero(plain_syn)
        if not len(cand):
            return out
        p = pos[cand]
        if closed:
            got: Any = self.closed.load(rows[cand])
            at = np.arange(len(cand))
        else:
            got, at = self.store, rows[cand]
        from_client = (
            (cols.fam[p] == got.fam[at])
            & (cols.sport[p] == got.cport[at])
            & (cols.src[p] == got.cip[at]).reshape(len(p), -1).all(axis=1)
        )
        c = got.cols
        isn = np.where(from_client, c["c_isn"][at], c["s_isn"][at])
        ok = cols.seq[p] != isn
        if not closed:
            cs, ss, _a, _b = self.states(at, cols.ts[p])
            over = ((cs == CLOSED) | (cs == TW)) & ((ss == CLOSED) | (ss == TW))
            retry = (c["phase"][at] == P_SYN) & (c["s_pk"][at] == 0)  # of an unanswered attempt
            ok &= from_client & (over | retry)
        out[cand] = ok
        return out

    def _hand_over_closed(self, rows: I64) -> None:
        """Give closed connections to the core (something more came on their 4-tuples)."""
        ct = self.closed
        self._unindex(rows, closed=True)
        keys: list[bytes] = self._row_key(_closed_ref(rows)).tolist()
        for r, key in zip(rows.tolist(), keys, strict=True):
            conn, zeek = self.rebuild_closed(r)
            self.table.adopt(conn)
            self.zeek[conn.flow_id] = zeek
            cc, ss = conn.client, conn.server
            self.core_keys.add(key)
            self.slow_keys[flow_key(cc.ip, cc.port, ss.ip, ss.port)] = key
        self.handed_over += len(rows)
        ct.release(rows)


# --------------------------------------------------------------------------------- public


#: Chunks (or final spans) between two returns of the heap's free memory to the system.
_TRIM_EVERY: Final = 8


def _heap_trimmer() -> Callable[[], object]:
    """glibc's ``malloc_trim``, where there is one: it hands the free pages inside the heap back
    to the system. Every chunk frees many temporaries between long-lived tables and records,
    pages the heap would otherwise keep; a call costs about 2 ms."""
    if sys.platform.startswith("linux"):
        try:
            fn = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):  # not glibc
            pass
        else:
            fn.argtypes = [ctypes.c_size_t]
            fn.restype = ctypes.c_int
            return lambda: fn(0)
    return lambda: None


def fast_blocks(
    paths: Sequence[str | os.PathLike[str]],
    options: Options,
    stats: ReadStats,
    progress: Callable[[ReadStats], None] | None = None,
    transitions: bool = True,
) -> Iterator[Keyed]:
    """The fast engine over the captures (the files are opened, and checked, by this call)."""
    return run(tap(options.columns(paths, stats), stats, progress), options, stats, transitions=transitions)


def run(
    batches: Iterator[Columns],
    options: Options,
    stats: ReadStats,
    share: Share | None = None,
    *,
    transitions: bool = True,
) -> Iterator[Keyed]:
    """Keyed blocks of the fast engine over these chunks: ``((0, chunk, span), block)`` as
    connections finish, then ``((1, 0, span), block)`` for those left at the end. With ``share``
    (a function from a chunk to the rows of this worker's connections), only those."""
    eng = Engine(options, transitions=transitions)
    trim = _heap_trimmer()
    for k, cols in enumerate(batches):
        if k % _TRIM_EVERY == _TRIM_EVERY - 1:
            trim()
        if share is None:
            spans = eng.feed_spans(cols)
        elif len(cols):
            clock0 = eng.clock if eng.clock is not None else int(cols.ts[0])
            clock = np.maximum.accumulate(np.maximum(cols.ts, clock0))
            rows = share(cols)
            spans = eng.feed_spans(cols.take(rows), clock[rows], int(clock[-1]))
        else:
            continue
        for span, b in spans:
            if len(b):
                yield (0, k, span), b
    end = stats.last_ts if stats.last_ts is not None else 0
    for k, (span, b) in enumerate(eng.finish(end)):
        if k % _TRIM_EVERY == _TRIM_EVERY - 1:
            trim()
        yield (1, 0, span), b
    why = eng.closed.spill_error or eng.parked.spill_error
    if why is not None:
        stats.warnings.append(
            f"could not write temporary files in {tempfile.gettempdir()} ({why}): connections in"
            " TIME-WAIT and waiting ones were kept in memory instead (set TMPDIR to a writable"
            " directory with space)"
        )


__all__ = ["Engine", "fast_blocks", "run", "syn_options"]
