"""The flow table: which connection a segment belongs to, who is the client, and when a
connection leaves the table.

Roles: the client is the endpoint that sent the first SYN. With no SYN seen, the sender of a
SYN-ACK is the server. With neither, the connection was picked up mid-stream: the endpoint on
the lower (well-known) port is taken as the server and the connection is marked ``midstream``.

Identity: ``flow_id`` is the frame number of the connection's first segment, so it is unique
in a capture, stable however the work is split (``--jobs``, a cluster), and takes a user
straight to the packet (``frame.number == flow_id`` in Wireshark).

4-tuple reuse: a SYN (or, in a capture of one direction, a SYN-ACK) with a new ISN on a
4-tuple whose connection has ended (closed, reset, in TIME-WAIT, or never answered) starts a
new connection; the old one is finished at that instant (a TIME-WAIT endpoint is recycled, as
Linux does).

Leaving the table (the rules that keep memory bounded, applied identically by every engine):

* *Retired*: a connection whose endpoints are both CLOSED (a TIME-WAIT counts once its timer
  ran out) and that has been silent for ``time_wait`` seconds (2·MSL) is over: no segment of
  it can still be in the network, so a later segment on its 4-tuple starts a new connection.
* *Evicted*: when more than ``max_flows`` connections are not over yet (connections whose ends
  are both CLOSED or in TIME-WAIT do not count: they take little room and leave within 2·MSL),
  the least recently active of them are closed out as they stand (connection attempts nobody
  answered go first, like conntrack's early drop), each with a ``flow_evicted`` artifact.

Time is the *capture clock*: the largest timestamp seen so far, so segments whose timestamps go
backwards (badly merged captures) cannot make a decision depend on the order of evaluation.
Finished connections are handed out by :meth:`FlowTable.sweep` in ``flow_id`` order.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator

from tcptrace_sm.machine import Config, Connection, Endpoint
from tcptrace_sm.model import ACK, RST, SYN, Segment, TcpState

_Key = tuple[str, int, str, int]

_ENDED = frozenset({TcpState.CLOSED, TcpState.TIME_WAIT})
#: ``max_flows`` default: connections not yet over kept before the least active are evicted.
MAX_FLOWS = 250_000


def flow_key(src: str, sport: int, dst: str, dport: int) -> _Key:
    """The direction-independent key of a 4-tuple."""
    return (src, sport, dst, dport) if (src, sport) <= (dst, dport) else (dst, dport, src, sport)


def _ended(conn: Connection, sender: Endpoint, now: int) -> bool:
    """True when a new SYN from ``sender`` on this 4-tuple must be a new connection.

    It is when the old connection is over (both ends closed or in TIME-WAIT, or reset), when
    the sender itself had closed its side (it sent a FIN: its socket is gone or going), when
    the old one was picked up mid-stream (nothing to hold it to), when it is the client's
    retry of an attempt nobody answered, or when the 4-tuple has been quiet for longer than
    TIME-WAIT lasts (any socket that remembered it would be gone).
    """
    c, s = conn.client, conn.server
    if c.state in _ENDED and s.state in _ENDED:
        return True
    if conn.rst_by is not None or sender.sent_fin or (sender.isn is not None and sender.state in _ENDED):
        return True
    if conn.midstream and sender.isn is None:
        return True
    if now - conn.last_ts > conn.config.time_wait * 1e9:
        return True
    # the client tries again after an attempt that was never answered
    return sender is c and c.state is TcpState.SYN_SENT and s.packets == 0


def over(conn: Connection, clock: int) -> bool:
    """Both endpoints CLOSED at capture time ``clock`` (a TIME-WAIT whose timer ran out counts)."""
    tw = conn.tw_ns
    for ep in (conn.client, conn.server):
        st = ep.state
        if st is TcpState.TIME_WAIT:
            if clock - ep.entered_ts < tw:
                return False
        elif st is not TcpState.CLOSED:
            return False
    return True


def retirable(conn: Connection, clock: int) -> bool:
    """Over, and silent for 2·MSL: the 4-tuple is free for a new connection."""
    return clock - conn.last_ts >= conn.tw_ns and over(conn, clock)


def eviction_order(conn: Connection) -> tuple[bool, int, int]:
    """Sort key of eviction: unanswered attempts first, then the least recently active."""
    return (conn.server.packets > 0 or conn.midstream, conn.last_ts, conn.flow_id)


class FlowTable:
    """Routes segments to :class:`Connection` objects and hands out the finished ones."""

    def __init__(self, config: Config | None = None, *, max_flows: int = MAX_FLOWS) -> None:
        self.config = config or Config()
        self.max_flows = max_flows
        self.clock: int | None = None
        self._live: dict[_Key, Connection] = {}
        self._done: list[Connection] = []
        # connections whose endpoints both reached CLOSED or TIME-WAIT: retirement candidates
        self._closing: dict[_Key, Connection] = {}
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._live)

    @property
    def open_count(self) -> int:
        """Live connections that are not over (both ends CLOSED or in TIME-WAIT): the ones
        ``max_flows`` counts."""
        return len(self._live) - len(self._closing)

    def observe(self, seg: Segment, clock: int | None = None) -> Connection:
        """Hand one segment to its connection, creating the connection if needed.

        ``clock`` is the capture clock at this segment (by default the table keeps it).
        """
        if clock is None:
            clock = seg.ts if self.clock is None or seg.ts > self.clock else self.clock
        self.clock = clock
        src, sport, dst, dport = seg.src, seg.sport, seg.dst, seg.dport
        key: _Key = (src, sport, dst, dport) if (src, sport) <= (dst, dport) else (dst, dport, src, sport)
        conn = self._live.get(key)
        if conn is not None:
            if key in self._closing and retirable(conn, clock):
                self._retire(key, conn, clock)
                conn = None
            elif seg.flags & (SYN | RST) == SYN and not seg.bad_checksum:  # a SYN or SYN-ACK
                sender = conn.client if (src == conn.client.ip and sport == conn.client.port) else conn.server
                if sender.isn != seg.seq and _ended(conn, sender, seg.ts):
                    conn.supersede(seg.frame, seg.ts)
                    self._drop(key)
                    self._done.append(conn)
                    conn = None
        if conn is None:
            conn = self.open(seg)
            self._live[key] = conn
        conn.observe(seg)
        if conn.client.state in _ENDED and conn.server.state in _ENDED:
            self._closing[key] = conn
        elif key in self._closing:  # it was not over after all (a reset taken back)
            del self._closing[key]
        return conn

    def open(self, seg: Segment) -> Connection:
        """A new connection whose first segment is ``seg`` (roles decided here)."""
        a, b = (seg.src, seg.sport), (seg.dst, seg.dport)
        flags = seg.flags
        midstream = False
        if flags & (SYN | RST) == SYN:
            client, server = (b, a) if flags & ACK else (a, b)
        else:
            midstream = True
            # the lower (well-known) port serves; on a tie the destination does
            client, server = (b, a) if seg.sport < seg.dport else (a, b)
        return Connection(
            seg.frame,
            client,
            server,
            self.config,
            midstream=midstream,
            first_frame=seg.frame,
            first_ts=seg.ts,
        )

    def adopt(self, conn: Connection) -> None:
        """Take over a live connection built elsewhere (a faster engine handing one over)."""
        c, s = conn.client, conn.server
        key = flow_key(c.ip, c.port, s.ip, s.port)
        self._live[key] = conn
        if c.state in _ENDED and s.state in _ENDED:
            self._closing[key] = conn

    def _drop(self, key: _Key) -> None:
        del self._live[key]
        self._closing.pop(key, None)

    def _retire(self, key: _Key, conn: Connection, clock: int) -> None:
        conn.finish(clock)
        self._drop(key)
        self._done.append(conn)

    def has(self, key: _Key) -> bool:
        return key in self._live

    def get(self, key: _Key) -> Connection:
        return self._live[key]

    def sweep(self, *, evict: bool = True) -> list[Connection]:
        """Retire what is over at the current clock (and, with ``evict``, evict beyond
        ``max_flows``); every connection finished since the last sweep, in ``flow_id`` order."""
        clock = self.clock
        if clock is not None:
            for key, conn in list(self._closing.items()):
                if retirable(conn, clock):
                    self._retire(key, conn, clock)
            if evict and self.open_count > self.max_flows:
                self.evict(self.open_count - self.max_flows)
        done, self._done = self._done, []
        done.sort(key=lambda c: c.flow_id)
        return done

    def candidates(self, n: int) -> list[tuple[_Key, Connection]]:
        """The ``n`` connections not over yet that come first in :func:`eviction_order`."""
        closing = self._closing
        candidates = ((k, c) for k, c in self._live.items() if k not in closing)
        return heapq.nsmallest(n, candidates, key=lambda kv: eviction_order(kv[1]))

    def evict(self, n: int, victims: list[tuple[_Key, Connection]] | None = None) -> None:
        """Close out the ``n`` connections that come first in :func:`eviction_order` (or the
        ``victims`` given), at the current clock."""
        assert self.clock is not None
        clock = self.clock
        for key, conn in victims if victims is not None else self.candidates(n):
            conn.evict(clock)
            self._drop(key)
            self._done.append(conn)
            self.evicted += 1

    def finish(self, end_ts: int) -> list[Connection]:
        """Finish every live connection at capture time ``end_ts``; all not yet handed out, by flow_id."""
        for conn in self._live.values():
            conn.finish(end_ts)
        done = self._done + list(self._live.values())
        self._live.clear()
        self._closing.clear()
        self._done = []
        done.sort(key=lambda c: c.flow_id)
        return done

    def connections(self) -> Iterator[Connection]:
        """Connections seen so far, finished or not (for inspection)."""
        yield from self._done
        yield from self._live.values()
