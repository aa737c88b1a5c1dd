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
from dataclasses import dataclass
from typing import Final

from tcptrace_sm.anomalies import CATALOGUE, Anomaly
from tcptrace_sm.model import ACK, FIN, PSH, RST, SYN, URG, Segment, Side, TcpState, Transition

NS_PER_S: Final = 1_000_000_000
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


class Event(enum.Enum):
    SYN = "SYN"
    SYN_ACK = "SYN-ACK"
    ACK_OF_SYN = "ACK of SYN"
    FIN = "FIN"
    ACK_OF_FIN = "ACK of FIN"
    RST = "RST"
    PASSIVE_OPEN = "passive open"
    EXPIRE = "2MSL timeout"


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


def cause_of(direction: Dir, event: Event) -> str:
    """Human-readable cause of a transition, e.g. ``sent SYN`` or ``received ACK of FIN``."""
    if direction is Dir.TIMER:
        return "timer"
    if direction is Dir.APP:
        return event.value
    return f"{direction.value} {event.value}"


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
        "ack_lost",
        "bytes",
        "entered_ts",
        "fin_acked",
        "fin_seq",
        "ip",
        "isn",
        "last_send_ts",
        "packets",
        "pending_syn",
        "port",
        "prev_state",
        "retransmissions",
        "sent_fin",
        "sent_rst",
        "side",
        "snd_nxt",
        "state",
        "tfo",
    )

    def __init__(self, side: Side, ip: str, port: int) -> None:
        self.side = side
        self.ip = ip
        self.port = port
        self.state = S.CLOSED
        self.prev_state: TcpState | None = None
        self.entered_ts = 0
        self.isn: int | None = None
        self.snd_nxt: int | None = None  # highest sequence number sent, plus one
        self.fin_seq: int | None = None
        self.fin_acked = False
        self.sent_fin = False
        self.sent_rst = False
        self.pending_syn: tuple[int, int] | None = None  # (frame, ts) of a SYN received while CLOSED
        self.tfo = False  # the SYN this endpoint received carried data or a Fast Open cookie
        self.ack_lost = False  # it resent its SYN-ACK: the handshake's ACK did not arrive
        self.ack_ahead: tuple[int, int, int] | None = None  # (ack, frame, ts): peer acked beyond snd_nxt
        self.last_send_ts: int | None = None  # last segment carrying new data or FIN
        self.packets = 0
        self.bytes = 0
        self.retransmissions = 0

    def __repr__(self) -> str:
        return f"<Endpoint {self.side.value} {self.ip}:{self.port} {self.state.value}>"


_TFO_KIND: Final = 34
_TFO_EXP_KIND: Final = 254


def _has_fastopen_option(raw: bytes) -> bool:
    i, n = 0, len(raw)
    while i < n:
        kind = raw[i]
        if kind == 0:
            return False
        if kind == 1:
            i += 1
            continue
        if i + 1 >= n:
            return False
        if kind == _TFO_KIND or (kind == _TFO_EXP_KIND and raw[i + 2 : i + 4] == b"\xf9\x89"):
            return True
        length = raw[i + 1]
        if length < 2:
            return False
        i += length
    return False


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
        self.last_ts = first_ts
        self.packets = 0
        self.bytes = 0
        self.midstream = midstream
        self.rst_by: Side | None = None
        self.errno: str | None = None
        self.refused = False
        self.finished = False
        self._tw_ns = round(config.time_wait * NS_PER_S)
        self._cw_ns = round(config.close_wait_timeout * NS_PER_S)
        self._flagged: set[str] = set()
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
        self.transitions.append(Transition(ep.side, frame, ts, old, state, cause, inferred))
        ep.prev_state = old
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
        self.last_ts = ts
        self.packets += 1
        self.bytes += seg.length
        snd.packets += 1
        snd.bytes += seg.length
        flags = seg.flags
        code = bad_flags_code(flags)
        if code is not None:
            self._note(
                code, snd.side, seg.frame, ts, snd.state, f"flags {_flag_names(flags)}; segment ignored"
            )
            return
        if flags & RST:
            self._on_rst(seg, snd, rcv)
        elif flags & SYN:
            self._on_syn(seg, snd, rcv)
        else:
            self._on_segment(seg, snd, rcv)

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
            if is_synack and rcv.state in (S.SYN_SENT, S.SYN_RECEIVED) and self._synack_acceptable(seg, rcv):
                self._apply(rcv, _RECV, Event.SYN_ACK, frame, ts)
            elif (
                is_synack
                and snd.state is S.ESTABLISHED
                and snd.snd_nxt == seq_add(seq, 1)
                and self._retract(snd, S.ESTABLISHED, cause_of(_RECV, Event.ACK_OF_SYN))
            ):
                # A SYN-ACK sent again: the handshake's ACK never reached the server. Until the
                # server shows otherwise (data, FIN), a repeated bare ACK is not trusted either.
                snd.ack_lost = True
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
        tfo = _has_fastopen_option(seg.options)
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
            return
        if snd.state is not S.CLOSED:
            snd.sent_rst = True
            self._apply(snd, _SEND, Event.RST, frame, ts)
        if self._rst_acceptable(seg, rcv) and rcv.state not in (S.CLOSED, S.LISTEN):
            if rcv.state is S.SYN_SENT:
                self.refused = self.refused or not snd_before.synchronized
            if rcv.state is S.TIME_WAIT:
                self._note(
                    "rst_in_time_wait",
                    rcv.side,
                    frame,
                    ts,
                    rcv.state,
                    f"RST from the {snd.side} ended the {rcv.side}'s TIME-WAIT",
                )
            self._record_reset(snd, rcv, frame, ts, rcv_before, snd_before)
            self._apply(rcv, _RECV, Event.RST, frame, ts)
        elif snd_before not in (S.CLOSED, S.LISTEN, S.TIME_WAIT):
            self._record_reset(snd, rcv, frame, ts, rcv_before, snd_before)

    @staticmethod
    def _rst_acceptable(seg: Segment, rcv: Endpoint) -> bool:
        if rcv.state is S.SYN_SENT:
            # RFC 9293 §3.10.7.3: only an RST that acknowledges our SYN counts
            return bool(seg.flags & ACK) and (rcv.isn is None or seg.ack == seq_add(rcv.isn, 1))
        return True

    def _record_reset(
        self, snd: Endpoint, rcv: Endpoint, frame: int, ts: int, rcv_state: TcpState, snd_state: TcpState
    ) -> None:
        if self.rst_by is not None:
            return
        self.rst_by = snd.side
        self.errno = errno_for_reset(rcv_state)
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
            self._note_once(
                "data_after_rst",
                snd.side,
                frame,
                ts,
                snd.state,
                "the endpoint sent a segment after its own RST",
            )
            return
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
        # the receiver first processes the acknowledgment ...
        self._on_ack(seg, snd, rcv)
        # ... then the sender's data and FIN
        end = seq_add(seg.seq, seg.length)
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
                if rcv.state is S.TIME_WAIT:
                    rcv.entered_ts = ts  # a retransmitted FIN restarts the 2MSL timer (RFC 9293 §3.10.7.4)
            return
        if snd.snd_nxt is None or seq_gt(end, snd.snd_nxt):
            if seg.length:
                snd.last_send_ts = ts
            snd.snd_nxt = end
        elif seg.length:
            snd.retransmissions += 1
        if fin:
            self._send_fin(seg, snd, rcv, end)

    def _infer_handshake(self, seg: Segment, snd: Endpoint, rcv: Endpoint) -> None:
        """An unsynchronised endpoint sent an ACK: it must have seen the peer's SYN."""
        frame, ts = seg.frame, seg.ts
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
            if snd.ack_lost:
                # one of the repeated handshake ACKs did arrive after all: it talks as established
                self._enter(snd, S.ESTABLISHED, "received ACK of SYN", frame, ts, inferred=True)
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

    def _on_ack(self, seg: Segment, snd: Endpoint, rcv: Endpoint) -> None:
        ack, frame, ts = seg.ack, seg.frame, seg.ts
        if (
            rcv.state is S.SYN_RECEIVED
            and rcv.isn is not None
            and seq_gt(ack, rcv.isn)
            and not (rcv.ack_lost and seg.length == 0 and not seg.flags & FIN)
        ):
            self._apply(rcv, _RECV, Event.ACK_OF_SYN, frame, ts)
        if rcv.fin_seq is not None and not rcv.fin_acked and seq_gt(ack, rcv.fin_seq):
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
        crossed = (
            snd.state is S.CLOSE_WAIT
            and rcv.fin_seq is not None
            and seq_le(seg.ack, rcv.fin_seq)
            and self._retract(snd, S.CLOSE_WAIT, cause_of(_RECV, Event.FIN))
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

    def _retract(self, ep: Endpoint, to_state: TcpState, cause: str) -> bool:
        """Take back the endpoint's last transition if it went to ``to_state`` for ``cause``.

        Used when later segments prove that a segment we assumed delivered never arrived (or
        arrived later than assumed): the endpoint never was in that state.
        """
        for i in range(len(self.transitions) - 1, -1, -1):
            t = self.transitions[i]
            if t.side is ep.side:
                if t.to_state is to_state and t.cause == cause:
                    del self.transitions[i]
                    ep.state = t.from_state
                    ep.entered_ts = t.ts
                    return True
                return False
        return False

    # timers and the end of the capture ------------------------------------------------------------

    def _expire_time_wait(self, now: int) -> None:
        for ep in (self.client, self.server):
            if ep.state is S.TIME_WAIT and now - ep.entered_ts >= self._tw_ns:
                self._apply(ep, Dir.TIMER, Event.EXPIRE, None, ep.entered_ts + self._tw_ns, inferred=True)

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

    def supersede(self, frame: int, ts: int) -> None:
        """A new connection took over this 4-tuple: whatever is left of this one is gone."""
        self._expire_time_wait(ts)
        for ep in (self.client, self.server):
            if ep.state is S.TIME_WAIT:
                self._enter(
                    ep, S.CLOSED, "TIME-WAIT ended by a new SYN on the 4-tuple", frame, ts, inferred=True
                )
            elif ep.state is not S.CLOSED:
                self._note(
                    "superseded",
                    ep.side,
                    frame,
                    ts,
                    ep.state,
                    f"the 4-tuple was reused while the {ep.side} was {ep.state}",
                )
                self._enter(ep, S.CLOSED, "4-tuple reused by a new connection", frame, ts, inferred=True)
        self.finish(ts)

    def finish(self, end_ts: int) -> None:
        """Apply end-of-capture rules at capture time ``end_ts`` (idempotent)."""
        if self.finished:
            return
        self.finished = True
        end_ts = max(end_ts, self.last_ts)
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
