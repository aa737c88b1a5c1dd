"""The flow table: which connection a segment belongs to, and who is the client.

Roles: the client is the endpoint that sent the first SYN. With no SYN seen, the sender of a
SYN-ACK is the server. With neither, the connection was picked up mid-stream: the endpoint on
the lower (well-known) port is taken as the server and the connection is marked ``midstream``.

4-tuple reuse: a SYN (or, in a capture of one direction, a SYN-ACK) with a new ISN on a
4-tuple whose connection has ended (closed, reset,
in TIME-WAIT, or never answered) starts a new connection with its own ``flow_id``; the old
one is finished at that instant (a TIME-WAIT endpoint is recycled, as Linux does).

Connections are handed out in ``flow_id`` order of their first segment; finished ones leave the
table as soon as they can no longer receive segments, so memory follows the number of *live*
connections, not the length of the capture.
"""

from __future__ import annotations

from collections.abc import Iterator

from tcptrace_sm.machine import Config, Connection, Endpoint
from tcptrace_sm.model import ACK, RST, SYN, Segment, TcpState

_Key = tuple[str, int, str, int]

_ENDED = frozenset({TcpState.CLOSED, TcpState.TIME_WAIT})


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


class FlowTable:
    """Routes segments to :class:`Connection` objects and finishes them at the end."""

    def __init__(self, config: Config | None = None) -> None:
        self.config = config or Config()
        self._live: dict[_Key, Connection] = {}
        self._next_id = 1
        self._done: list[Connection] = []

    def __len__(self) -> int:
        return len(self._live)

    def observe(self, seg: Segment) -> Connection:
        """Hand one segment to its connection, creating the connection if needed."""
        src, sport, dst, dport = seg.src, seg.sport, seg.dst, seg.dport
        key: _Key = (src, sport, dst, dport) if (src, sport) <= (dst, dport) else (dst, dport, src, sport)
        conn = self._live.get(key)
        flags = seg.flags
        if conn is not None and flags & (SYN | RST) == SYN:  # a SYN, or a SYN-ACK (one direction seen)
            sender = (
                conn.client if (seg.src == conn.client.ip and seg.sport == conn.client.port) else conn.server
            )
            if sender.isn != seg.seq and _ended(conn, sender, seg.ts):
                conn.supersede(seg.frame, seg.ts)
                self._done.append(conn)
                conn = None
        if conn is None:
            conn = self._open(seg)
            self._live[key] = conn
        conn.observe(seg)
        return conn

    def _open(self, seg: Segment) -> Connection:
        a, b = (seg.src, seg.sport), (seg.dst, seg.dport)
        flags = seg.flags
        midstream = False
        if flags & (SYN | RST) == SYN:
            client, server = (b, a) if flags & ACK else (a, b)
        else:
            midstream = True
            # the lower (well-known) port serves; on a tie the destination does
            client, server = (b, a) if seg.sport < seg.dport else (a, b)
        conn = Connection(
            self._next_id,
            client,
            server,
            self.config,
            midstream=midstream,
            first_frame=seg.frame,
            first_ts=seg.ts,
        )
        self._next_id += 1
        return conn

    def finish(self, end_ts: int) -> list[Connection]:
        """Finish every live connection at capture time ``end_ts``; all connections by flow_id."""
        for conn in self._live.values():
            conn.finish(end_ts)
        done = self._done + list(self._live.values())
        self._live.clear()
        self._done = []
        done.sort(key=lambda c: c.flow_id)
        return done

    def connections(self) -> Iterator[Connection]:
        """Connections seen so far, finished or not (for inspection)."""
        yield from self._done
        yield from self._live.values()
