"""Plain value types shared by every layer.

Nothing here does I/O or imports a third-party package. Timestamps are integer nanoseconds
since the Unix epoch; frame numbers are 1-based, as Wireshark numbers them.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

# TCP header flag bits (RFC 9293 §3.1, plus ECE/CWR from RFC 3168).
FIN = 0x01
SYN = 0x02
RST = 0x04
PSH = 0x08
ACK = 0x10
URG = 0x20
ECE = 0x40
CWR = 0x80

_FLAG_LETTERS = (
    (SYN, "S"),
    (FIN, "F"),
    (RST, "R"),
    (PSH, "P"),
    (ACK, "A"),
    (URG, "U"),
    (ECE, "E"),
    (CWR, "C"),
)


def flags_str(flags: int) -> str:
    """Compact flag letters in a fixed order, e.g. ``SA`` for SYN+ACK, ``.`` for none."""
    out = "".join(letter for bit, letter in _FLAG_LETTERS if flags & bit)
    return out or "."


class Side(enum.Enum):
    """Which endpoint of a connection: the one that opened it, or the one that answered."""

    CLIENT = "client"
    SERVER = "server"

    # Members are singletons: identity hashing is correct and much faster than Enum's
    # name-based hash, which the per-segment hot path pays on every dictionary lookup.
    __hash__ = object.__hash__

    @property
    def peer(self) -> Side:
        return Side.SERVER if self is Side.CLIENT else Side.CLIENT

    def __str__(self) -> str:
        return self.value


class TcpState(enum.Enum):
    """The eleven RFC 9293 connection states, printed with the RFC's spelling."""

    CLOSED = "CLOSED"
    LISTEN = "LISTEN"
    SYN_SENT = "SYN-SENT"
    SYN_RECEIVED = "SYN-RECEIVED"
    ESTABLISHED = "ESTABLISHED"
    FIN_WAIT_1 = "FIN-WAIT-1"
    FIN_WAIT_2 = "FIN-WAIT-2"
    CLOSE_WAIT = "CLOSE-WAIT"
    CLOSING = "CLOSING"
    LAST_ACK = "LAST-ACK"
    TIME_WAIT = "TIME-WAIT"

    __hash__ = object.__hash__  # see Side

    def __str__(self) -> str:
        return self.value

    @property
    def synchronized(self) -> bool:
        """True once the endpoint has exchanged SYNs (RFC 9293 §3.10.7.4 'synchronized states')."""
        return self not in UNSYNCHRONIZED


UNSYNCHRONIZED = frozenset({TcpState.CLOSED, TcpState.LISTEN, TcpState.SYN_SENT, TcpState.SYN_RECEIVED})

#: Order used for categorical columns and diagrams.
STATE_ORDER: tuple[TcpState, ...] = tuple(TcpState)


class TcpOptions(NamedTuple):
    """Decoded TCP options (RFC 9293 §3.2, RFC 7323, RFC 2018, RFC 7413). Absent ones are None."""

    mss: int | None = None
    wscale: int | None = None
    sack_permitted: bool = False
    sack: tuple[tuple[int, int], ...] = ()
    ts_val: int | None = None
    ts_ecr: int | None = None
    fastopen: bytes | None = None  # TFO cookie (empty bytes for a cookie request)


class Segment(NamedTuple):
    """One TCP segment as seen on the wire.

    ``length`` is the payload length computed from the IP header, so Ethernet padding and
    snaplen truncation do not change it. ``options`` holds the raw TCP option bytes (possibly
    cut short by the snaplen); :func:`tcptrace_sm.capture.parse_options` decodes them.
    ``payload`` holds the captured payload bytes (possibly fewer than ``length``), only when
    the reader was asked to keep them for the segment's ports; otherwise it is empty.
    """

    frame: int
    ts: int
    src: str
    sport: int
    dst: str
    dport: int
    seq: int
    ack: int
    flags: int
    win: int
    length: int
    options: bytes = b""
    payload: bytes = b""

    @property
    def bad_checksum(self) -> bool:
        """The TCP checksum failed (see :class:`BadChecksumSegment`)."""
        return False

    @property
    def truncated(self) -> bool:
        """The capture cut some of its payload (see :class:`TruncatedSegment`)."""
        return False


class BadChecksumSegment(Segment):
    """A segment whose TCP checksum failed (read with ``verify_checksums``): its receiver
    drops it, so it changes no endpoint's state; it is counted and reported."""

    __slots__ = ()

    @property
    def bad_checksum(self) -> bool:
        return True


class TruncatedSegment(Segment):
    """A segment whose payload the capture did not keep whole (a snaplen shorter than the
    packet): its receiver got it all, so the endpoints' states are as for any segment; only
    Zeek's view differs (Zeek cannot pass the payload on, and records a content gap, ``G``,
    once it is acknowledged)."""

    __slots__ = ()

    @property
    def truncated(self) -> bool:
        return True


class Peer(NamedTuple):
    ip: str
    port: int

    def __str__(self) -> str:
        return f"[{self.ip}]:{self.port}" if ":" in self.ip else f"{self.ip}:{self.port}"


class FlowKey(NamedTuple):
    """A direction-independent 4-tuple: the lower (ip, port) pair first."""

    a: Peer
    b: Peer

    @classmethod
    def of(cls, seg: Segment) -> FlowKey:
        s = Peer(seg.src, seg.sport)
        d = Peer(seg.dst, seg.dport)
        return cls(s, d) if (s.ip, s.port) <= (d.ip, d.port) else cls(d, s)


class Transition(NamedTuple):
    """One state change of one endpoint."""

    side: Side
    frame: int | None  # None for a timer, which no packet shows
    ts: int
    from_state: TcpState
    to_state: TcpState
    cause: str
    inferred: bool
