"""Tiny scripts of TCP segments for driving the core without any capture file.

    w = Wire()
    w.c.syn(); w.s.synack(); w.c.ack(); w.c.data(100); w.c.fin(); ...
    conn = w.run()

Each scripted endpoint keeps its own next sequence number and acknowledges everything the other
one has sent so far, so a script only spells out what is unusual (``seq=``, ``ack=``,
``flags=``). Time advances 1 ms per segment unless ``at=`` (seconds) says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tcptrace_sm.flows import FlowTable
from tcptrace_sm.machine import Config, Connection
from tcptrace_sm.model import ACK, FIN, PSH, RST, SYN, Segment, Side, TcpState

CLIENT = ("10.0.0.1", 40000)
SERVER = ("10.0.0.2", 80)
T0 = 1_700_000_000 * 10**9


@dataclass
class Host:
    wire: Wire
    addr: tuple[str, int]
    isn: int
    nxt: int = 0
    peer: Host | None = None

    def __post_init__(self) -> None:
        self.nxt = self.isn

    # -- segment builders --------------------------------------------------------------------

    def send(
        self,
        flags: int,
        length: int = 0,
        *,
        seq: int | None = None,
        ack: int | None = None,
        at: float | None = None,
        options: bytes = b"",
        advance: bool = True,
        win: int = 65535,
    ) -> Segment:
        assert self.peer is not None
        s = self.nxt if seq is None else seq
        a = (self.peer.nxt if ack is None else ack) if flags & ACK else (0 if ack is None else ack)
        seg = self.wire.emit(self.addr, self.peer.addr, s, a, flags, length, at, options, win)
        if advance and seq is None:
            self.nxt = (s + length + (1 if flags & (SYN | FIN) else 0)) & 0xFFFFFFFF
        return seg

    def syn(self, length: int = 0, **kw: object) -> Segment:
        return self.send(SYN, length, **kw)  # type: ignore[arg-type]

    def synack(self, **kw: object) -> Segment:
        return self.send(SYN | ACK, **kw)  # type: ignore[arg-type]

    def ack(self, **kw: object) -> Segment:
        return self.send(ACK, **kw)  # type: ignore[arg-type]

    def data(self, length: int = 100, **kw: object) -> Segment:
        return self.send(ACK | PSH, length, **kw)  # type: ignore[arg-type]

    def fin(self, length: int = 0, **kw: object) -> Segment:
        return self.send(FIN | ACK, length, **kw)  # type: ignore[arg-type]

    def rst(self, *, with_ack: bool = True, **kw: object) -> Segment:
        return self.send(RST | (ACK if with_ack else 0), advance=False, **kw)  # type: ignore[arg-type]

    def raw(self, flags: int, length: int = 0, **kw: object) -> Segment:
        return self.send(flags, length, **kw)  # type: ignore[arg-type]


@dataclass
class Wire:
    client_isn: int = 1000
    server_isn: int = 5000
    step_ns: int = 1_000_000
    segments: list[Segment] = field(default_factory=list)
    now: int = T0

    def __post_init__(self) -> None:
        self.c = Host(self, CLIENT, self.client_isn)
        self.s = Host(self, SERVER, self.server_isn)
        self.c.peer, self.s.peer = self.s, self.c

    def emit(
        self,
        src: tuple[str, int],
        dst: tuple[str, int],
        seq: int,
        ack: int,
        flags: int,
        length: int,
        at: float | None,
        options: bytes,
        win: int = 65535,
    ) -> Segment:
        self.now = T0 + round(at * 1e9) if at is not None else self.now + self.step_ns
        seg = Segment(
            len(self.segments) + 1,
            self.now,
            src[0],
            src[1],
            dst[0],
            dst[1],
            seq & 0xFFFFFFFF,
            ack & 0xFFFFFFFF,
            flags,
            win,
            length,
            options,
        )
        self.segments.append(seg)
        return seg

    def handshake(self) -> None:
        self.c.syn()
        self.s.synack()
        self.c.ack()

    def run_all(self, *, end: float | None = None, **config: float) -> list[Connection]:
        table = FlowTable(Config(**config))
        for seg in self.segments:
            table.observe(seg)
        end_ts = T0 + round(end * 1e9) if end is not None else self.now
        return table.finish(end_ts)

    def run(self, *, end: float | None = None, **config: float) -> Connection:
        conns = self.run_all(end=end, **config)
        assert len(conns) == 1, conns
        return conns[0]


def states(conn: Connection) -> tuple[TcpState, TcpState]:
    return conn.client.state, conn.server.state


def path(conn: Connection, side: Side) -> list[TcpState]:
    """The sequence of states one endpoint went through, starting with CLOSED."""
    out = [TcpState.CLOSED]
    for t in conn.transitions:
        if t.side is side:
            assert t.from_state is out[-1], (t, out)
            out.append(t.to_state)
    return out


def codes(conn: Connection) -> list[str]:
    return [a.code for a in conn.anomalies]
