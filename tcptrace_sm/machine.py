"""The sans-I/O core: both endpoints' RFC 9293 states, driven by captured segments.

Theory of operation
===================

A capture shows segments passing one point on the wire. For every segment the observer knows
who *sent* it; it assumes the other endpoint *received* it at the moment it was captured, unless
later evidence says otherwise. Each segment therefore becomes up to two kinds of events: a
``SEND`` event for its sender and a ``RECV`` event for its receiver. One rulebook serves both
endpoints: :data:`TRANSITIONS` maps ``(state, direction, event)`` to the next state, and a key
that is missing from it *is* the illegality check — the caller turns it into an anomaly.

A receiver reacts to the parts of a segment in the RFC's order (RFC 9293 §3.10.7.4): first the
acknowledgment (which may complete the handshake or acknowledge our FIN), then the FIN. So a
FIN that also acknowledges our own FIN takes FIN-WAIT-1 to FIN-WAIT-2 and then on to TIME-WAIT
in the same frame, exactly as Linux does.

Things the wire never shows are inferred and marked ``inferred=True``:

* LISTEN: a server that answers a SYN with a SYN-ACK was listening; one that answers with an
  RST was not (the connection was refused) and stays CLOSED.
* Segments the capture missed: an endpoint that behaves as if it had received a segment (a
  client acknowledging a SYN-ACK that is not in the capture) is moved to the state that segment
  would have produced, and a ``segment_not_captured`` artifact is recorded.
* Crossing FINs: a FIN whose ACK does not cover the peer's FIN was sent before the peer's FIN
  arrived, so its sender went ESTABLISHED → FIN-WAIT-1 → CLOSING, not CLOSE-WAIT → LAST-ACK.
* Timers: TIME-WAIT becomes CLOSED after ``time_wait`` seconds of *capture* time.

The core never raises on bad traffic: a segment that breaks the rules becomes an
:class:`~tcptrace_sm.anomalies.Anomaly` and observation goes on. It reads no clock and does no
I/O: time is the segments' capture timestamps and the final :meth:`Connection.finish` call.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from tcptrace_sm.anomalies import CATALOGUE, Anomaly
from tcptrace_sm.model import ACK, FIN, PSH, RST, SYN, URG, Segment, Side, TcpState, Transition

NS_PER_S: Final = 1_000_000_000
#: Per connection, only this many anomalies of one code are kept (the rest are counted), and
#: only this many transitions are recorded: a flood of bad segments must not exhaust memory.
MAX_NOTES_PER_CODE: Final = 50
MAX_TRANSITIONS: Final = 2000
#: The cause of a TIME-WAIT that a new connection on its 4-tuple ended early.
TIME_WAIT_RECYCLED: Final = "TIME-WAIT ended by a new SYN on the 4-tuple"
#: The cause of any other state a new connection on its 4-tuple ended.
REUSED: Final = "4-tuple reused by a new connection"
_MASK: Final = 0xFFFFFFFF
_HALF: Final = 0x80000000


# --- sequence-number arithmetic (RFC 9293 §3.4: all comparisons are modulo 2**32) -----------


def seq_add(a: int, n: int) -> int:
    return (a + n) & _MASK


def seq_lt(a: int, b: int) -> bool:
    """``a`` comes before ``b`` in sequence space."""
    return a != b and ((b - a) & _MASK) < _HALF


def seq_le(a: int, b: int) -> bool:
    return a == b or ((b - a) & _MASK) < _HALF


def seq_gt(a: int, b: int) -> bool:
    return seq_lt(b, a)


def seq_ge(a: int, b: int) -> bool:
    return seq_le(b, a)


# --- the rulebook ----------------------------------------------------------------------------


class Dir(enum.Enum):
    SEND = "sent"
    RECV = "received"
    APP = "application"
    TIMER = "timer"

    __hash__ = object.__hash__  # identity hashing: see model.Side


class Event(enum.Enum):
    SYN = "SYN"
    SYN_ACK = "SYN-ACK"
    ACK_OF_SYN = "ACK of SYN"
    FIN = "FIN"
    ACK_OF_FIN = "ACK of FIN"
    RST = "RST"
    PASSIVE_OPEN = "passive open"
    EXPIRE = "2MSL timeout"

    __hash__ = object.__hash__  # identity hashing: see model.Side


S = TcpState
_SEND, _RECV = Dir.SEND, Dir.RECV

#: ``(state, direction, event) -> next state``. A missing key means the event is illegal in
#: that state (or, for RECV, that the receiver ignores it); see :meth:`Connection._apply`.
TRANSITIONS: Final[dict[tuple[TcpState, Dir, Event], TcpState]] = {
    # opening (RFC 9293 §3.5, Figure 5)
    (S.CLOSED, Dir.APP, Event.PASSIVE_OPEN): S.LISTEN,
    (S.CLOSED, _SEND, Event.SYN): S.SYN_SENT,
    (S.LISTEN, _RECV, Event.SYN): S.SYN_RECEIVED,
    (S.SYN_SENT, _RECV, Event.SYN): S.SYN_RECEIVED,  # simultaneous open
    (S.SYN_SENT, _RECV, Event.SYN_ACK): S.ESTABLISHED,
    (S.SYN_RECEIVED, _SEND, Event.SYN_ACK): S.SYN_RECEIVED,
    (S.SYN_RECEIVED, _RECV, Event.SYN_ACK): S.ESTABLISHED,  # simultaneous open
    (S.SYN_RECEIVED, _RECV, Event.ACK_OF_SYN): S.ESTABLISHED,
    # closing (RFC 9293 §3.6)
    (S.SYN_RECEIVED, _SEND, Event.FIN): S.FIN_WAIT_1,
    (S.SYN_RECEIVED, _RECV, Event.FIN): S.CLOSE_WAIT,
    (S.ESTABLISHED, _SEND, Event.FIN): S.FIN_WAIT_1,
    (S.ESTABLISHED, _RECV, Event.FIN): S.CLOSE_WAIT,
    (S.FIN_WAIT_1, _RECV, Event.ACK_OF_FIN): S.FIN_WAIT_2,
    (S.FIN_WAIT_1, _RECV, Event.FIN): S.CLOSING,
    (S.FIN_WAIT_2, _RECV, Event.FIN): S.TIME_WAIT,
    (S.CLOSING, _RECV, Event.ACK_OF_FIN): S.TIME_WAIT,
    (S.CLOSE_WAIT, _SEND, Event.FIN): S.LAST_ACK,
    (S.LAST_ACK, _RECV, Event.ACK_OF_FIN): S.CLOSED,
    (S.TIME_WAIT, Dir.TIMER, Event.EXPIRE): S.CLOSED,
    # reset (RFC 9293 §3.5.2): the sender aborts; an accepted RST closes the receiver
    **{(st, _SEND, Event.RST): S.CLOSED for st in TcpState if st not in (S.CLOSED, S.LISTEN)},
    **{(st, _RECV, Event.RST): S.CLOSED for st in TcpState if st not in (S.CLOSED, S.LISTEN)},
}


def _cause_text(direction: Dir, event: Event) -> str:
    if direction is Dir.TIMER:
        return "timer"
    if direction is Dir.APP:
        return event.value
    return f"{direction.value} {event.value}"


_CAUSES: Final = {(d, e): _cause_text(d, e) for d in Dir for e in Event}


def cause_of(direction: Dir, event: Event) -> str:
    """Human-readable cause of a transition, e.g. ``sent SYN`` or ``received ACK of FIN``."""
    return _CAUSES[direction, event]


_RECV_FIN: Final = cause_of(Dir.RECV, Event.FIN)
_RECV_ACK_OF_FIN: Final = cause_of(Dir.RECV, Event.ACK_OF_FIN)
#: cause text -> (direction, event), to replay transitions that were taken back
_EVENT_OF_CAUSE: Final = {cause_of(d, e): (d, e) for (_s, d, e) in TRANSITIONS}


def superseded_detail(side: object, state: object) -> str:
    """The detail of a ``superseded`` note: what the side was when its 4-tuple was reused."""
    return f"the 4-tuple was reused while the {side} was {state}"


#: The error an application sees when its socket receives an RST, as Linux ``tcp_reset()``.
def errno_for_reset(state: TcpState) -> str | None:
    if state is S.SYN_SENT:
        return "ECONNREFUSED"
    if state is S.CLOSE_WAIT:
        return "EPIPE"
    if state in (S.CLOSED, S.LISTEN, S.TIME_WAIT):
        return None
    return "ECONNRESET"


_BAD_FLAGS: Final = {SYN | FIN: "flags_syn_fin", SYN | RST: "flags_syn_rst"}
_ALL_FLAGS: Final = FIN | SYN | RST | PSH | ACK | URG


def bad_flags_code(flags: int) -> str | None:
    """The anomaly code of an invalid flag combination, or None if the combination is legal."""
    if flags & _ALL_FLAGS == _ALL_FLAGS:
        return "flags_all"
    if flags & (SYN | FIN | RST | ACK | PSH | URG) == 0:
        return "flags_null"
    for mask, code in _BAD_FLAGS.items():
        if flags & mask == mask:
            return code
    return None


# --- configuration and per-endpoint bookkeeping -----------------------------------------------


@dataclass(frozen=True)
class Config:
    """Analysis settings that change the observer's verdicts (all times in seconds)."""

    time_wait: float = 60.0
    close_wait_timeout: float = 1.0

    def __post_init__(self) -> None:
        if not self.time_wait >= 0:
            raise ValueError(f"time_wait must be >= 0 seconds, got {self.time_wait!r}")
        if not self.close_wait_timeout >= 0:
            raise ValueError(f"close_wait_timeout must be >= 0 seconds, got {self.close_wait_timeout!r}")


class Endpoint:
    """What the observer knows about one end of a connection (cf. Zeek's TCP_Endpoint)."""

    __slots__ = (
        "ack_ahead",
        "awaiting",
        "beyond",
        "bytes",
        "entered_ts",
        "fin_acked",
        "fin_received",
        "fin_seq",
        "held",
        "ip",
        "isn",
        "last_ack",
        "last_send_ts",
        "last_tx",
        "packets",
        "peer_packets_at_fin",
        "pending_syn",
        "port",
        "retransmissions",
        "rst_doubt",
        "rto",
        "sent_fin",
        "sent_rst",
        "side",
        "snd_nxt",
        "state",
        "tfo",
        "win",
        "wscale",
    )

    def __init__(self, side: Side, ip: str, port: int) -> None:
        self.side = side
        self.ip = ip
        self.port = port
        self.state = S.CLOSED
        self.entered_ts = 0
        self.isn: int | None = None
        self.snd_nxt: int | None = None  # highest sequence number sent, plus one
        self.fin_seq: int | None = None
        self.fin_acked = False  # the peer acknowledged our FIN (as far as we know)
        self.fin_received = False  # the peer's FIN reached us (as far as we know)
        self.sent_fin = False
        self.peer_packets_at_fin = 0  # the peer's packet count when our FIN first left
        self.sent_rst = False
        self.pending_syn: tuple[int, int] | None = None  # (frame, ts) of a SYN received while CLOSED
        self.tfo = False  # the SYN this endpoint received carried data or a Fast Open cookie
        self.ack_ahead: tuple[int, int, int] | None = None  # (ack, frame, ts): peer acked beyond snd_nxt
        self.last_send_ts: int | None = None  # last segment carrying new data or FIN
        self.win = 0  # last window advertised (unscaled)
        self.wscale: int | None = None  # window scale of its SYN (-1: no option; None: no SYN seen)
        self.beyond: tuple[int, int, int, int] | None = None  # (end, edge, frame, ts): sent past the window
        self.last_ack: int | None = None  # last acknowledgment number it sent
        # Lost-ACK evidence: this endpoint resent its SYN, SYN-ACK or FIN, so the answer it
        # awaits did not arrive; ``held`` is a later bare answer not yet trusted; ``last_tx``
        # and ``rto`` time its retransmissions.
        self.awaiting: Event | None = None
        self.held: tuple[int, int] | None = None
        self.last_tx = 0
        self.rto = 0
        # An RST from this endpoint that its peer would not accept (RFC 5961): (frame, ts,
        # in_window, peer packets at that moment, own packets at that moment)
        self.rst_doubt: tuple[int, int, bool, int, int] | None = None
        self.packets = 0
        self.bytes = 0
        self.retransmissions = 0

    def __repr__(self) -> str:
        return f"<Endpoint {self.side.value} {self.ip}:{self.port} {self.state.value}>"


_WSCALE_KIND: Final = 3
_TFO_KIND: Final = 34
_TFO_EXP_KIND: Final = 254  # experimental Fast Open: magic 0xF989 first


def _tcp_option(raw: bytes, kind: int) -> bytes | None:
    """The value of the first TCP option of ``kind`` in ``raw`` (None if absent); never raises."""
    i, n = 0, len(raw)
    while i < n:
        k = raw[i]
        if k == 0:
            return None
        if k == 1:
            i += 1
            continue
        if i + 1 >= n:
            return None
        length = raw[i + 1]
        if length < 2:
            return None
        if k == kind:
            value = raw[i + 2 : i + length]
            if kind == _TFO_EXP_KIND:
                return value[2:] if value[:2] == b"\xf9\x89" else None
            return value
        i += length
    return None


class Connection:
    """Both endpoints of one TCP connection, their transitions and the anomalies found.

    Feed it every segment of the connection in capture order with :meth:`observe`, then call
    :meth:`finish` once with the capture's end time.
    """

    def __init__(
        self,
        flow_id: int,
        client: tuple[str, int],
        server: tuple[str, int],
        config: Config,
        *,
        midstream: bool = False,
        first_frame: int = 0,
        first_ts: int = 0,
    ) -> None:
        self.flow_id = flow_id
        self.config = config
        self.client = Endpoint(Side.CLIENT, *client)
        self.server = Endpoint(Side.SERVER, *server)
        self.transitions: list[Transition] = []
        self.anomalies: list[Anomaly] = []
        self.first_ts = first_ts
        self.last_ts = first_ts  # the latest segment's timestamp (timers run from it)
        self.min_ts = first_ts  # the earliest and the largest timestamp of its segments
        self.max_ts = first_ts
        self.packets = 0
        self.bytes = 0
        self.midstream = midstream
        self.rst_by: Side | None = None
        self.errno: str | None = None
        self.refused = False
        self.finished = False
        self.tw_ns = round(config.time_wait * NS_PER_S)
        self._cw_ns = round(config.close_wait_timeout * NS_PER_S)
        self._flagged: set[str] = set()
        self.noted: dict[str, int] = {}  # anomalies found per code (only the first few are kept)
        self.dropped_transitions = 0
        self._doubts = False  # some endpoint holds an RST doubt or an untrusted answer
        self._reset_note: int | None = None  # index of the rst_terminated anomaly
        if midstream:
            for ep in (self.client, self.server):
                self._enter(ep, S.ESTABLISHED, "picked up mid-stream", first_frame, first_ts, inferred=True)
            self._note(
                "midstream", None, first_frame, first_ts, None, "no SYN seen: both ends assumed ESTABLISHED"
            )

    # -- recording ------------------------------------------------------------------------

    def _enter(
        self, ep: Endpoint, state: TcpState, cause: str, frame: int | None, ts: int, *, inferred: bool
    ) -> None:
        """The one place where an endpoint changes state."""
        old = ep.state
        if old is state:
            return
        if old is S.CLOSE_WAIT and state is S.CLOSED:
            self._check_close_wait(ep, ts, f"until it {cause}")
        if len(self.transitions) < MAX_TRANSITIONS:
            self.transitions.append(Transition(ep.side, frame, ts, old, state, cause, inferred))
        else:
            self.dropped_transitions += 1
        ep.state = state
        ep.entered_ts = ts

    def _apply(
        self,
        ep: Endpoint,
        direction: Dir,
        event: Event,
        frame: int | None,
        ts: int,
        *,
        inferred: bool = False,
    ) -> bool:
        nxt = TRANSITIONS.get((ep.state, direction, event))
        if nxt is None:
            return False
        if event is Event.FIN and direction is _RECV:
            ep.fin_received = True
        self._enter(ep, nxt, cause_of(direction, event), frame, ts, inferred=inferred)
        return True

    def _note(
        self,
        code: str,
        side: Side | None,
        frame: int | None,
        ts: int | None,
        state: TcpState | None,
        detail: str,
    ) -> None:
        assert code in CATALOGUE, code
        seen = self.noted.get(code, 0) + 1
        self.noted[code] = seen
        if seen <= MAX_NOTES_PER_CODE:  # hostile traffic must not grow memory without bound
            self.anomalies.append(Anomaly(code, side, frame, ts, state, detail))

    def _note_once(
        self,
        code: str,
        side: Side | None,
        frame: int | None,
        ts: int | None,
        state: TcpState | None,
        detail: str,
    ) -> None:
        key = f"{code}/{side}"
        if key not in self._flagged:
            self._flagged.add(key)
            self._note(code, side, frame, ts, state, detail)

    # -- the segment path -------------------------------------------------------------------

    def endpoint_of(self, seg: Segment) -> tuple[Endpoint, Endpoint]:
        """(sender, receiver) of a segment of this connection."""
        c = self.client
        if seg.sport == c.port and seg.src == c.ip:
            return c, self.server
        return self.server, c

    def observe(self, seg: Segment) -> None:
        """Account for one captured segment of this connection."""
        snd, rcv = self.endpoint_of(seg)
        ts = seg.ts
        if self.client.state is S.TIME_WAIT or self.server.state is S.TIME_WAIT:
            self._expire_time_wait(ts)
        if self._doubts:
            self._settle(ts)
        self.last_ts = ts
        if ts > self.max_ts:
            self.max_ts = ts
        elif ts < self.min_ts:
            self.min_ts = ts
        self.packets += 1
        self.bytes += seg.length
        snd.packets += 1
        snd.bytes += seg.length
        if seg.bad_checksum:  # its receiver drops it; nothing in it can be trusted
            self._note(
                "bad_checksum", snd.side, seg.frame, ts, snd.state,
                f"TCP checksum failed ({seg.length} bytes of data); segment ignored",
            )  # fmt: skip
            return
        flags = seg.flags
        snd.win = seg.win
        if flags & ACK:
            snd.last_ack = seg.ack
        code = bad_flags_code(flags)
        if code is not None:
            self._note(
                code, snd.side, seg.frame, ts, snd.state, f"flags {_flag_names(flags)}; segment ignored"
            )
            return
        if not flags & (RST | SYN):
            if snd.rst_doubt is not None:
                snd.rst_doubt = None  # it carries on: that RST did not come from its TCP
            if snd.state is S.CLOSED:
                self._carries_on_after_reset(seg, snd)
        if flags & RST:
            self._on_rst(seg, snd, rcv)
        elif flags & SYN:
            self._on_syn(seg, snd, rcv)
        else:
            self._on_segment(seg, snd, rcv)

    def _carries_on_after_reset(self, seg: Segment, ep: Endpoint) -> None:
        """A reset endpoint sends a normal segment: the RST did not do what it seemed to."""
        frame, ts = seg.frame, seg.ts
        sent, got = cause_of(_SEND, Event.RST), cause_of(_RECV, Event.RST)
        last = next((t for t in reversed(self.transitions) if t.side is ep.side), None)
        if last is None or last.cause not in (sent, got):
            return  # closed some other way (or too long a story to take back)
        removed = self._retract_since(ep, lambda t: t is last)
        if removed is None:
            return
        if removed[0].cause == sent:
            ep.sent_rst = False
            self._note(
                "rst_injected",
                ep.side,
                frame,
                ts,
                ep.state,
                f"the {ep.side} kept sending after an RST in its name (frame {removed[0].frame}): "
                "the RST was forged or injected on the path",
            )
        else:
            self._note(
                "rst_not_received",
                ep.side,
                frame,
                ts,
                ep.state,
                f"the {ep.side} kept sending after the RST of frame {removed[0].frame}: it never got it",
            )
        self._forget_reset()

    def _forget_reset(self) -> None:
        """The RST recorded as ending the connection did not end it after all."""
        if self._reset_note is not None:
            del self.anomalies[self._reset_note]
            self.noted["rst_terminated"] -= 1
            self._reset_note = None
        self.rst_by = None
        self.errno = None
        self.refused = False

    # SYN and SYN-ACK ------------------------------------------------------------------------

    def _on_syn(self, seg: Segment, snd: Endpoint, rcv: Endpoint) -> None:
        frame, ts, seq = seg.frame, seg.ts, seg.seq
        is_synack = bool(seg.flags & ACK)
        if snd.isn is not None:
            if seq != snd.isn:
                if snd.state.synchronized or snd.state in (S.SYN_SENT, S.SYN_RECEIVED):
                    self._note(
                        "syn_isn_changed",
                        snd.side,
                        frame,
                        ts,
                        snd.state,
                        f"{'SYN-ACK' if is_synack else 'SYN'} with ISN {seq}, the connection's is {snd.isn}",
                    )
                return
            snd.retransmissions += 1
            self._syn_retransmitted(seg, snd, rcv, is_synack)
            return
        if snd.state.synchronized:
            # a synchronised endpoint whose ISN we never saw (picked up mid-stream) sent a SYN
            self._note(
                "syn_isn_changed",
                snd.side,
                frame,
                ts,
                snd.state,
                f"SYN with ISN {seq} on a synchronised connection",
            )
            return
        snd.isn = seq
        snd.snd_nxt = seq_add(seq, 1 + seg.length)
        snd.last_send_ts = ts
        snd.last_tx = ts
        wscale = _tcp_option(seg.options, _WSCALE_KIND)
        snd.wscale = min(wscale[0], 14) if wscale else -1
        cookie = _tcp_option(seg.options, _TFO_KIND)
        if cookie is None:
            cookie = _tcp_option(seg.options, _TFO_EXP_KIND)
        tfo = bool(cookie)  # a Fast Open cookie (an empty one only asks for a cookie)
        if seg.length or (tfo and not is_synack):
            self._note(
                "syn_with_data",
                snd.side,
                frame,
                ts,
                snd.state,
                f"{'SYN-ACK' if is_synack else 'SYN'} carries {seg.length} bytes"
                + (" and a Fast Open option" if tfo else ""),
            )
            rcv.tfo = True
        if not is_synack:
            self._send_syn(seg, snd, rcv)
        else:
            self._send_synack(seg, snd, rcv)

    def _send_syn(self, seg: Segment, snd: Endpoint, rcv: Endpoint) -> None:
        frame, ts = seg.frame, seg.ts
        crossing = snd.pending_syn
        self._apply(snd, _SEND, Event.SYN, frame, ts)
        if crossing is not None:
            # the peer's SYN was already on the wire: a simultaneous open
            snd.pending_syn = None
            self._apply(snd, _RECV, Event.SYN, frame, ts, inferred=True)
        if rcv.state is S.SYN_SENT:
            self._note_once("simultaneous_open", None, frame, ts, None, "both endpoints sent a SYN")
            self._apply(rcv, _RECV, Event.SYN, frame, ts)
        elif rcv.state is S.CLOSED:
            # listening or not? The reply (SYN-ACK or RST) will tell.
            rcv.pending_syn = (frame, ts)
        elif rcv.state is S.LISTEN:
            self._apply(rcv, _RECV, Event.SYN, frame, ts)

    def _passive_open(self, ep: Endpoint, frame: int, ts: int, *, syn_seen: bool) -> None:
        """The endpoint answered a SYN, so it had been listening: CLOSED → LISTEN → SYN-RECEIVED."""
        pend = ep.pending_syn
        ep.pending_syn = None
        at_frame, at_ts = pend if pend is not None else (frame, ts)
        self._apply(ep, Dir.APP, Event.PASSIVE_OPEN, at_frame, at_ts, inferred=True)
        self._apply(ep, _RECV, Event.SYN, at_frame, at_ts, inferred=not syn_seen)

    def _send_synack(self, seg: Segment, snd: Endpoint, rcv: Endpoint) -> None:
        frame, ts = seg.frame, seg.ts
        if rcv.isn is None:
            # the SYN this answers is not in the capture
            rcv.isn = seq_add(seg.ack, -1)
            rcv.snd_nxt = seg.ack
            self._note("syn_not_captured", rcv.side, frame, ts, rcv.state, "SYN-ACK seen without its SYN")
            if rcv.state is S.CLOSED:
                self._enter(rcv, S.SYN_SENT, "sent SYN (not captured)", frame, ts, inferred=True)
            if snd.state is S.CLOSED:
                self._passive_open(snd, frame, ts, syn_seen=False)
        elif snd.state is S.CLOSED:
            self._passive_open(snd, frame, ts, syn_seen=snd.pending_syn is not None)
        elif snd.state is S.SYN_SENT and snd.pending_syn is not None:
            snd.pending_syn = None
            self._apply(snd, _RECV, Event.SYN, frame, ts, inferred=True)
        self._apply(snd, _SEND, Event.SYN_ACK, frame, ts)
        if self._synack_acceptable(seg, rcv):
            self._apply(rcv, _RECV, Event.SYN_ACK, frame, ts)
        else:
            self._note(
                "synack_bad_ack",
                snd.side,
                frame,
                ts,
                snd.state,
                f"SYN-ACK acknowledges {seg.ack}, the SYN's ISN+1 is {seq_add(rcv.isn or 0, 1)}",
            )

    @staticmethod
    def _synack_acceptable(seg: Segment, rcv: Endpoint) -> bool:
        """It acknowledges the SYN, and with Fast Open perhaps the data on it (RFC 7413 §4.2)."""
        if rcv.isn is None:
            return True
        lo = seq_add(rcv.isn, 1)
        return seg.ack == lo or (
            rcv.snd_nxt is not None and seq_gt(seg.ack, lo) and seq_le(seg.ack, rcv.snd_nxt)
        )

    # RST ---------------------------------------------------------------------------------------

    def _on_rst(self, seg: Segment, snd: Endpoint, rcv: Endpoint) -> None:
        frame, ts = seg.frame, seg.ts
        if seg.length:
            self._note("rst_with_data", snd.side, frame, ts, snd.state, f"RST carries {seg.length} bytes")
        snd_before, rcv_before = snd.state, rcv.state
        if snd.state is S.CLOSED and snd.pending_syn is not None:
            # a SYN answered by RST: nobody was listening
            snd.pending_syn = None
            if rcv.state is S.SYN_SENT and self._rst_acceptable(seg, rcv):
                self.refused = True
                self._record_reset(snd, rcv, frame, ts, rcv_before, snd_before)
                self._apply(rcv, _RECV, Event.RST, frame, ts)
            elif rcv.state is S.SYN_SENT:
                # RFC 9293 §3.10.7.3: in SYN-SENT an RST that does not acknowledge the SYN is
                # dropped (Linux too): no refusal, the SYN is sent again
                ack = f"acknowledging {seg.ack}" if seg.flags & ACK else "without an ACK"
                self._note(
                    "rst_out_of_window",
                    snd.side,
                    frame,
                    ts,
                    rcv.state,
                    f"RST {ack} answering the SYN (ISN {rcv.isn}): the {rcv.side} ignores it",
                )
            return
        verdict = self._rst_verdict(seg, snd, rcv)
        if verdict != "exact":
            # RFC 5961 §3.2: an RST not exactly at RCV.NXT does not reset the receiver (inside
            # the window it answers with a challenge ACK). Whether the RST really came from the
            # sender's TCP shows in what the sender does next.
            nxt = snd.snd_nxt if snd.snd_nxt is not None else 0
            self._note(
                "rst_in_window" if verdict == "window" else "rst_out_of_window",
                snd.side,
                frame,
                ts,
                rcv.state,
                f"RST seq {seg.seq}, the {rcv.side} expected {nxt}"
                + (" (a challenge ACK is the answer)" if verdict == "window" else " (ignored)"),
            )
            if snd.state is not S.CLOSED and snd.rst_doubt is None:
                snd.rst_doubt = (frame, ts, verdict == "window", rcv.packets, snd.packets)
                self._doubts = True
            return
        if snd.state is not S.CLOSED:
            snd.sent_rst = True
            self._apply(snd, _SEND, Event.RST, frame, ts)
        if rcv.state not in (S.CLOSED, S.LISTEN):
            if rcv.state is S.TIME_WAIT:
                self._note(
                    "rst_in_time_wait",
                    rcv.side,
                    frame,
                    ts,
                    rcv.state,
                    f"RST from the {snd.side} ended the {rcv.side}'s TIME-WAIT",
                )
            if rcv.state is S.SYN_SENT:
                self.refused = self.refused or not snd_before.synchronized
            self._record_reset(snd, rcv, frame, ts, rcv_before, snd_before)
            self._apply(rcv, _RECV, Event.RST, frame, ts)
        elif snd_before not in (S.CLOSED, S.LISTEN, S.TIME_WAIT):
            self._record_reset(snd, rcv, frame, ts, rcv_before, snd_before)

    @staticmethod
    def _rst_acceptable(seg: Segment, rcv: Endpoint) -> bool:
        # RFC 9293 §3.10.7.3: in SYN-SENT only an RST that acknowledges our SYN counts
        return bool(seg.flags & ACK) and (rcv.isn is None or seg.ack == seq_add(rcv.isn, 1))

    def _rst_verdict(self, seg: Segment, snd: Endpoint, rcv: Endpoint) -> str:
        """How the receiver judges an RST: ``exact`` (it resets), ``window`` or ``outside``."""
        st = rcv.state
        if st is S.SYN_SENT:
            return "exact" if self._rst_acceptable(seg, rcv) else "outside"
        nxt = snd.snd_nxt
        if st in (S.CLOSED, S.LISTEN) or nxt is None or snd.state is S.CLOSED:
            return "exact"
        seq = seg.seq
        if seq == nxt or (snd.fin_seq is not None and seq == snd.fin_seq and rcv.fin_received):
            return "exact"  # Linux also takes RCV.NXT - 1 once the sender's FIN is in
        left = rcv.last_ack if rcv.last_ack is not None and seq_le(rcv.last_ack, nxt) else nxt
        if seq_ge(seq, left) and seq_lt(seq, seq_add(nxt, max(self._window(rcv), 1))):
            return "window"
        return "outside"

    def _window(self, ep: Endpoint) -> int:
        """The receive window ``ep`` last advertised, in bytes, never underestimated.

        Scaled when both SYNs carried the window-scale option (RFC 7323 §2.2); when a SYN was
        not captured the scale is unknown and the largest one is assumed.
        """
        c, s = self.client.wscale, self.server.wscale
        if c is None or s is None or ep.wscale is None:
            return ep.win << 14
        if c >= 0 and s >= 0:
            return ep.win << ep.wscale
        return ep.win

    def _record_reset(
        self, snd: Endpoint, rcv: Endpoint, frame: int, ts: int, rcv_state: TcpState, snd_state: TcpState
    ) -> None:
        if self.rst_by is not None:
            return
        self.rst_by = snd.side
        self.errno = errno_for_reset(rcv_state)
        self._reset_note = len(self.anomalies)
        what = "connection refused" if self.refused else "connection reset"
        seen = f"; the {rcv.side} saw {self.errno}" if self.errno else ""
        self._note(
            "rst_terminated",
            snd.side,
            frame,
            ts,
            rcv_state,
            f"{what}: RST from the {snd.side} ({snd_state}) to the {rcv.side} ({rcv_state}){seen}",
        )

    # everything else: ACKs, data, FIN ---------------------------------------------------------

    def _on_segment(self, seg: Segment, snd: Endpoint, rcv: Endpoint) -> None:
        frame, ts, flags = seg.frame, seg.ts, seg.flags
        if snd.sent_rst and snd.state is S.CLOSED:
            return  # after its own RST, with no way to take the RST back: nothing to learn
        fin = bool(flags & FIN)
        if not flags & ACK:
            if snd.state.synchronized:
                self._note(
                    "missing_ack", snd.side, frame, ts, snd.state, f"{_flag_names(flags)} segment without ACK"
                )
            elif seg.length or fin or snd.state is not S.CLOSED:
                self._note(
                    "data_before_handshake",
                    snd.side,
                    frame,
                    ts,
                    snd.state,
                    f"{'FIN' if fin else f'{seg.length} bytes'} sent in {snd.state} without an ACK",
                )
            return
        if not snd.state.synchronized:
            self._infer_handshake(seg, snd, rcv)
        if snd.ack_ahead is not None:
            self._resolve_ack_ahead(seg, snd)
        end = seq_add(seg.seq, seg.length)
        fresh = (seg.length > 0 or fin) and (
            snd.snd_nxt is None or seq_gt(seq_add(end, 1 if fin else 0), snd.snd_nxt)
        )
        # the receiver first processes the acknowledgment ...
        self._on_ack(seg, snd, rcv, fresh)
        if rcv.beyond is not None:
            self._judge_beyond_window(seg, rcv, snd)
        if fresh and seg.length and rcv.last_ack is not None and snd.beyond is None:
            edge = seq_add(rcv.last_ack, self._window(rcv))
            if seq_gt(end, seq_add(edge, 1)):  # one byte past the edge is a zero-window probe
                snd.beyond = (end, edge, frame, ts)
        # ... then the sender's data and FIN
        if snd.fin_seq is not None:
            if fin and seg.seq != snd.fin_seq:
                code = "data_after_fin" if seq_gt(seg.seq, snd.fin_seq) else "fin_seq_changed"
                self._note(
                    code,
                    snd.side,
                    frame,
                    ts,
                    snd.state,
                    f"FIN at {seg.seq}, the first FIN was at {snd.fin_seq}",
                )
                return
            if seg.length and seq_gt(end, snd.fin_seq):
                self._note(
                    "data_after_fin",
                    snd.side,
                    frame,
                    ts,
                    snd.state,
                    f"{seg.length} bytes up to {end}, beyond the FIN at {snd.fin_seq}",
                )
                return
            if fin:
                snd.retransmissions += 1
                self._fin_retransmitted(seg, snd, rcv)
            return
        if snd.snd_nxt is None or seq_gt(end, snd.snd_nxt):
            if seg.length:
                snd.last_send_ts = ts
            snd.snd_nxt = end
        elif seg.length:
            snd.retransmissions += 1
        if fin:
            self._send_fin(seg, snd, rcv, end)

    def _judge_beyond_window(self, seg: Segment, sender: Endpoint, receiver: Endpoint) -> None:
        """``sender`` sent past the window we knew; ``receiver``'s next segment tells if it could.

        If the receiver's window reaches that far now, the capture only missed the window
        update; if not, the receiver drops the excess and the sender broke RFC 9293 §3.8.6.
        """
        assert sender.beyond is not None
        end, edge, frame, ts = sender.beyond
        sender.beyond = None
        if not seg.flags & ACK:
            return
        now = seq_add(seg.ack, self._window(receiver))
        if seq_gt(end, seq_add(now, 1)):
            self._note(
                "data_beyond_window",
                sender.side,
                frame,
                ts,
                sender.state,
                f"data up to {end}, the {receiver.side}'s window ended at {edge}",
            )

    def _infer_handshake(self, seg: Segment, snd: Endpoint, rcv: Endpoint) -> None:
        """An unsynchronised endpoint sent an ACK: it must have seen the peer's SYN."""
        frame, ts = seg.frame, seg.ts
        if snd.state is S.SYN_SENT and snd.awaiting is Event.SYN_ACK and snd.held is not None:
            self._release(snd, inferred=True)  # it acts on the repeated SYN-ACK: that one arrived
            return
        if snd.state is S.SYN_SENT:
            if rcv.isn is None:
                rcv.isn = seq_add(seg.ack, -1)
                rcv.snd_nxt = seg.ack
            if rcv.state is S.CLOSED:
                self._passive_open(rcv, frame, ts, syn_seen=rcv.pending_syn is not None)
                self._apply(rcv, _SEND, Event.SYN_ACK, frame, ts, inferred=True)
            self._note(
                "segment_not_captured",
                rcv.side,
                frame,
                ts,
                rcv.state,
                "the SYN-ACK this ACK answers is not in the capture",
            )
            self._enter(snd, S.ESTABLISHED, "received SYN-ACK (not captured)", frame, ts, inferred=True)
        elif snd.state is S.SYN_RECEIVED:
            if snd.tfo:
                return  # Fast Open: the server may send data before the handshake's ACK arrives
            if snd.awaiting is Event.ACK_OF_SYN:
                # one of the repeated handshake ACKs did arrive after all: it talks as established
                self._release(snd, inferred=True, at=(frame, ts))
                return
            self._note(
                "segment_not_captured",
                rcv.side,
                frame,
                ts,
                snd.state,
                "the handshake's final ACK is not in the capture",
            )
            self._enter(snd, S.ESTABLISHED, "received ACK of SYN (not captured)", frame, ts, inferred=True)
        elif snd.state is S.CLOSED and snd.pending_syn is not None:
            self._passive_open(snd, frame, ts, syn_seen=True)
            self._note(
                "segment_not_captured", snd.side, frame, ts, snd.state, "the SYN-ACK is not in the capture"
            )
            self._apply(rcv, _RECV, Event.SYN_ACK, frame, ts, inferred=True)
            self._enter(snd, S.ESTABLISHED, "received ACK of SYN (not captured)", frame, ts, inferred=True)

    def _on_ack(self, seg: Segment, snd: Endpoint, rcv: Endpoint, fresh: bool) -> None:
        ack, frame, ts = seg.ack, seg.frame, seg.ts
        if (
            rcv.state is S.SYN_RECEIVED
            and rcv.isn is not None
            and seq_gt(ack, rcv.isn)
            and self._answer(rcv, seg, fresh)
        ):
            self._apply(rcv, _RECV, Event.ACK_OF_SYN, frame, ts)
        if rcv.fin_seq is not None and seq_gt(ack, rcv.fin_seq):
            if not snd.fin_received and snd.state is not S.CLOSED:
                # it acknowledges a FIN we had decided it never got: it got it, by now
                self._apply(snd, _RECV, Event.FIN, frame, ts, inferred=True)
            if not rcv.fin_acked and self._answer(rcv, seg, fresh):
                rcv.fin_acked = True
                self._apply(rcv, _RECV, Event.ACK_OF_FIN, frame, ts)
        nxt = rcv.snd_nxt
        if nxt is not None and seq_gt(ack, nxt) and rcv.packets:
            if rcv.fin_seq is not None:
                self._note(
                    "ack_unsent_data",
                    snd.side,
                    frame,
                    ts,
                    snd.state,
                    f"ACK {ack} is beyond the {rcv.side}'s FIN at {rcv.fin_seq}",
                )
            elif rcv.ack_ahead is None:
                rcv.ack_ahead = (ack, frame, ts)

    def _resolve_ack_ahead(self, seg: Segment, snd: Endpoint) -> None:
        """The peer acknowledged more than we saw ``snd`` send; its next segment tells why."""
        assert snd.ack_ahead is not None
        assert snd.snd_nxt is not None
        ack, frame, ts = snd.ack_ahead
        end = seq_add(seg.seq, seg.length + (1 if seg.flags & FIN else 0))
        if seq_ge(end, ack) or seq_gt(seg.seq, snd.snd_nxt):
            snd.ack_ahead = None
            self._note(
                "segment_not_captured",
                snd.side,
                frame,
                ts,
                snd.state,
                f"ACK {ack} covers data of the {snd.side} that the capture does not hold",
            )
        elif seg.length == 0 and not seg.flags & FIN and seg.seq == snd.snd_nxt:
            snd.ack_ahead = None
            peer = snd.side.peer
            self._note(
                "ack_unsent_data",
                peer,
                frame,
                ts,
                None,
                f"ACK {ack} from the {peer}, but the {snd.side} had sent only up to {snd.snd_nxt}",
            )

    def _send_fin(self, seg: Segment, snd: Endpoint, rcv: Endpoint, fin_seq: int) -> None:
        frame, ts = seg.frame, seg.ts
        snd.fin_seq = fin_seq
        snd.snd_nxt = seq_add(fin_seq, 1)
        snd.sent_fin = True
        snd.last_send_ts = ts
        snd.last_tx = ts
        snd.peer_packets_at_fin = rcv.packets
        crossed = (
            snd.state is S.CLOSE_WAIT
            and rcv.fin_seq is not None
            and seq_le(seg.ack, rcv.fin_seq)
            and self._retract_since(snd, lambda t: t.cause == _RECV_FIN) is not None
        )
        if snd.state is S.SYN_SENT or not self._apply(snd, _SEND, Event.FIN, frame, ts):
            self._note("data_before_handshake", snd.side, frame, ts, snd.state, f"FIN sent in {snd.state}")
            return
        if crossed:
            # our FIN left before the peer's FIN arrived: FIN-WAIT-1 → CLOSING
            self._note_once("simultaneous_close", None, frame, ts, None, "the two FINs crossed on the wire")
            self._apply(snd, _RECV, Event.FIN, frame, ts, inferred=True)
        if rcv.state is S.FIN_WAIT_1:
            self._note_once("simultaneous_close", None, frame, ts, None, "the two FINs crossed on the wire")
        self._apply(rcv, _RECV, Event.FIN, frame, ts)

    def _retract_since(self, ep: Endpoint, pred: Callable[[Transition], bool]) -> list[Transition] | None:
        """Take back the endpoint's latest transition matching ``pred`` and all its later ones.

        Used when later segments prove that a segment we assumed delivered never arrived: the
        endpoint never made those moves. Returns the removed transitions (oldest first) so the
        caller can replay the ones that still hold, or None if none matched.
        """
        trans = self.transitions
        for i in range(len(trans) - 1, -1, -1):
            if trans[i].side is ep.side and pred(trans[i]):
                break
        else:
            return None
        removed = [t for t in trans[i:] if t.side is ep.side]
        trans[i:] = [t for t in trans[i:] if t.side is not ep.side]
        ep.state = removed[0].from_state
        ep.entered_ts = next((t.ts for t in reversed(trans[:i]) if t.side is ep.side), removed[0].ts)
        if any(t.cause == _RECV_FIN for t in removed):
            ep.fin_received = False
        return removed

    def _replay(self, ep: Endpoint, removed: list[Transition], *, skip: str) -> None:
        """Apply again the removed transitions' events, except those with cause ``skip``."""
        for t in removed:
            key = _EVENT_OF_CAUSE.get(t.cause)
            if key is None or t.cause == skip or key[0] is Dir.TIMER:
                continue
            self._apply(ep, key[0], key[1], t.frame, t.ts, inferred=t.inferred)

    # lost answers: evidence from retransmissions ------------------------------------------------

    def _await(self, ep: Endpoint, event: Event, ts: int) -> None:
        """``ep`` sent its SYN, SYN-ACK or FIN again at ``ts``: what it waits for did not arrive."""
        if ep.last_tx and ts > ep.last_tx:
            ep.rto = ts - ep.last_tx
        ep.last_tx = ts
        ep.awaiting = event
        ep.held = None
        self._doubts = True

    def _answer(self, ep: Endpoint, seg: Segment, fresh: bool) -> bool:
        """``seg`` answers what ``ep`` waits for: apply it now (True), or hold it (False).

        After a retransmission proved that one answer was lost, a repeat that carries nothing
        new (a bare ACK, a retransmitted FIN) is held until ``ep`` shows it arrived — by going
        quiet past its next retransmission time, or by acting on it.
        """
        if ep.awaiting is None:
            return True
        if not fresh:
            ep.held = (seg.frame, seg.ts)
            self._doubts = True
            return False
        ep.awaiting = None
        ep.held = None
        return True

    def _settle(self, now: int) -> None:
        """Trust held answers whose endpoint would have retransmitted by ``now`` had they been lost."""
        pending = False
        for ep in (self.client, self.server):
            if ep.held is not None:
                if now > ep.last_tx + 2 * ep.rto + max(ep.rto // 4, 10_000_000):
                    self._release(ep, inferred=True)
                else:
                    pending = True
            pending = pending or ep.rst_doubt is not None
        self._doubts = pending

    def _release(self, ep: Endpoint, *, inferred: bool, at: tuple[int, int] | None = None) -> None:
        """Apply the answer ``ep`` was waiting for (held, or shown by ``ep``'s own behaviour)."""
        event = ep.awaiting
        where = ep.held or at
        ep.awaiting = None
        ep.held = None
        if event is None or where is None:
            return
        frame, ts = where
        if event is Event.ACK_OF_FIN:
            ep.fin_acked = True
        self._apply(ep, _RECV, event, frame, ts, inferred=inferred)

    def _syn_retransmitted(self, seg: Segment, snd: Endpoint, rcv: Endpoint, is_synack: bool) -> None:
        frame, ts = seg.frame, seg.ts
        # A repeat proves an answer was lost only if we had taken that answer as delivered
        # (a server also repeats its SYN-ACK when the client repeats its SYN).
        if not is_synack:
            if (
                snd.state is S.ESTABLISHED
                and snd.snd_nxt == seq_add(seg.seq, 1 + seg.length)
                and self._retract_since(snd, lambda t: t.cause == cause_of(_RECV, Event.SYN_ACK))
            ) or snd.awaiting is Event.SYN_ACK:
                # the client sends its SYN again: the SYN-ACK never reached it
                self._await(snd, Event.SYN_ACK, ts)
            else:
                snd.last_tx = ts
            return
        if (
            snd.state is S.ESTABLISHED
            and snd.snd_nxt == seq_add(seg.seq, 1)
            and self._retract_since(snd, lambda t: t.cause == cause_of(_RECV, Event.ACK_OF_SYN))
        ) or snd.awaiting is Event.ACK_OF_SYN:
            # the server sends its SYN-ACK again: the handshake's ACK never reached it
            self._await(snd, Event.ACK_OF_SYN, ts)
        else:
            snd.last_tx = ts
        if rcv.state in (S.SYN_SENT, S.SYN_RECEIVED) and self._synack_acceptable(seg, rcv):
            if rcv.awaiting is Event.SYN_ACK:
                rcv.held = (frame, ts)  # a repeat of a lost SYN-ACK: wait for the client to act on it
                self._doubts = True
            else:
                self._apply(rcv, _RECV, Event.SYN_ACK, frame, ts)

    def _fin_retransmitted(self, seg: Segment, snd: Endpoint, rcv: Endpoint) -> None:
        """``snd`` sends its FIN again: the ACK of it did not arrive, and perhaps not the FIN."""
        ts = seg.ts
        if rcv.state is S.TIME_WAIT:
            rcv.entered_ts = ts  # a retransmitted FIN restarts the 2MSL timer (RFC 9293 §3.10.7.4)
        ack_lost = snd.awaiting is Event.ACK_OF_FIN
        if snd.fin_acked:
            removed = self._retract_since(snd, lambda t: t.cause == _RECV_ACK_OF_FIN)
            snd.fin_acked = False
            if removed is not None:
                ack_lost = True
                self._replay(snd, removed[1:], skip=_RECV_ACK_OF_FIN)
        elif (
            rcv.fin_received
            and snd.fin_seq is not None
            and rcv.packets > snd.peer_packets_at_fin
            and rcv.last_ack is not None
            and seq_le(rcv.last_ack, snd.fin_seq)
        ):
            # the peer has spoken since without acknowledging the FIN: it never got it
            removed = self._retract_since(rcv, lambda t: t.cause == _RECV_FIN)
            if removed is not None:
                self._replay(rcv, removed[1:], skip=_RECV_FIN)
        if ack_lost and snd.state in (S.FIN_WAIT_1, S.CLOSING, S.LAST_ACK):
            self._await(snd, Event.ACK_OF_FIN, ts)
        else:
            snd.last_tx = ts

    # timers and the end of the capture ------------------------------------------------------------

    def _expire_time_wait(self, now: int) -> None:
        for ep in (self.client, self.server):
            if ep.state is S.TIME_WAIT and now - ep.entered_ts >= self.tw_ns:
                self._apply(ep, Dir.TIMER, Event.EXPIRE, None, ep.entered_ts + self.tw_ns, inferred=True)

    def _check_close_wait(self, ep: Endpoint, until: int, how: str) -> None:
        since = ep.entered_ts
        if ep.last_send_ts is not None and ep.last_send_ts > since:
            since = ep.last_send_ts
        idle = until - since
        if idle >= self._cw_ns:
            self._note_once(
                "stuck_close_wait",
                ep.side,
                None,
                since,
                S.CLOSE_WAIT,
                f"the {ep.side} sat in CLOSE-WAIT without sending for {idle / NS_PER_S:.3f} s {how}",
            )

    def _settle_rst_doubts(self) -> None:
        """An in-window RST that drew no challenge ACK was, in truth, exactly at RCV.NXT.

        The observer's idea of RCV.NXT lags when the capture missed some of the sender's data;
        a receiver that neither answers nor sends anything after an in-window RST was reset.
        """
        for ep in (self.client, self.server):
            doubt = ep.rst_doubt
            ep.rst_doubt = None
            if doubt is None:
                continue
            frame, ts, in_window, peer_packets, own_packets = doubt
            peer = self.server if ep is self.client else self.client
            if not in_window or peer.packets != peer_packets or ep.packets != own_packets:
                continue
            ep_before, peer_before = ep.state, peer.state
            ep.sent_rst = True
            self._apply(ep, _SEND, Event.RST, frame, ts, inferred=True)
            if peer.state not in (S.CLOSED, S.LISTEN):
                self._record_reset(ep, peer, frame, ts, peer_before, ep_before)
                self._apply(peer, _RECV, Event.RST, frame, ts, inferred=True)

    def supersede(self, frame: int, ts: int) -> None:
        """A new connection took over this 4-tuple: whatever is left of this one is gone."""
        self._expire_time_wait(ts)
        for ep in (self.client, self.server):
            if ep.state is S.TIME_WAIT:
                self._enter(ep, S.CLOSED, TIME_WAIT_RECYCLED, frame, ts, inferred=True)
            elif ep.state is not S.CLOSED:
                self._note(
                    "superseded",
                    ep.side,
                    frame,
                    ts,
                    ep.state,
                    superseded_detail(ep.side, ep.state),
                )
                self._enter(ep, S.CLOSED, REUSED, frame, ts, inferred=True)
        self.finish(ts)

    def evict(self, now: int) -> None:
        """The flow table is full: close this connection out at capture time ``now``, as it stands."""
        if not self.finished:
            c, s = self.client, self.server
            self._note(
                "flow_evicted",
                None,
                None,
                now,
                None,
                f"evicted from a full connection table after {(now - self.last_ts) / NS_PER_S:.3f} s "
                f"of silence (client {c.state}, server {s.state})",
            )
        self.finish(now)

    def finish(self, end_ts: int) -> None:
        """Apply end-of-capture rules at capture time ``end_ts`` (idempotent)."""
        if self.finished:
            return
        self.finished = True
        end_ts = max(end_ts, self.last_ts)
        if self._doubts:
            self._settle(end_ts)
            self._settle_rst_doubts()
        self._expire_time_wait(end_ts)
        for ep in (self.client, self.server):
            if ep.state is S.CLOSE_WAIT:
                self._check_close_wait(ep, end_ts, "up to the end of the capture")
            if ep.ack_ahead is not None:
                ack, frame, ts = ep.ack_ahead
                ep.ack_ahead = None
                self._note(
                    "segment_not_captured",
                    ep.side,
                    frame,
                    ts,
                    ep.state,
                    f"ACK {ack} covers data of the {ep.side} that the capture does not hold",
                )
        c, s = self.client, self.server
        if c.isn is not None and s.packets == 0 and not c.state.synchronized:
            self._note(
                "unanswered_syn",
                Side.CLIENT,
                None,
                self.first_ts,
                c.state,
                f"{c.packets} SYN(s) and no answer",
            )
        elif (c.packets == 0) != (s.packets == 0):
            quiet = c if c.packets == 0 else s
            self._note(
                "one_direction_only",
                quiet.side,
                None,
                self.first_ts,
                None,
                f"no segment from the {quiet.side} was captured",
            )

    # -- summaries ------------------------------------------------------------------------------

    @property
    def close(self) -> str:
        """How the connection ended: fin, half, rst, refused, unanswered or open."""
        if self.refused:
            return "refused"
        if self.rst_by is not None:
            return "rst"
        c, s = self.client, self.server
        if c.sent_fin and s.sent_fin:
            return "fin"
        if c.sent_fin or s.sent_fin:
            return "half"
        if c.isn is not None and s.packets == 0:
            return "unanswered"
        return "open"


def _flag_names(flags: int) -> str:
    names = [
        n
        for bit, n in ((SYN, "SYN"), (FIN, "FIN"), (RST, "RST"), (PSH, "PSH"), (ACK, "ACK"), (URG, "URG"))
        if flags & bit
    ]
    return "+".join(names) or "no flags"
