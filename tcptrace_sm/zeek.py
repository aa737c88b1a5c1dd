"""Zeek's per-connection summaries — ``conn_state`` and ``history`` — so Zeek users can compare.

This module replays, one segment at a time, the parts of Zeek's TCP analysis that decide a
``conn.log`` line's ``conn_state`` and ``history``, as Zeek 9.1 does them (``TCPSessionAdapter``,
``TCP_Endpoint``, ``TCP_Reassembler``, the session timers, ``IsReuse``, ``WantConnection`` and
``conn_state()`` in ``base/protocols/conn/main.zeek``). The rules below are restated from
Zeek's sources, documentation and test baselines; no Zeek code is used. Settings are Zeek's
script-level options, with their defaults, in :class:`ZeekConfig`.

Endpoint states
    Each side is INACTIVE, SYN_SENT, SYN_ACK_SENT, PARTIAL (sent something without a SYN),
    ESTABLISHED, CLOSED (sent a FIN) or RESET. The responder's SYN-ACK establishes *both*
    sides at once; an ACK alone never moves a side out of SYN_SENT; a pure ACK from an inactive
    side after the peer's SYN-ACK establishes it, other segments make it PARTIAL (except an
    empty ACK to the originator's SYN); a FIN closes an established or partial side, and turns
    a peer that had sent FIN then RST back into CLOSED; a RST from a closed side counts only
    while the peer is not closed; a RESET side stays RESET.

``conn_state``
    Derived from the pair of endpoint states when the Zeek connection ends, in the order of
    ``conn_state()``: responder RESET (REJ / RSTRH / RSTR), originator RESET (RSTOS0 when the
    history matches ``^?S[^HAFGIQ]*R.*``, else OTH, or RSTO), both CLOSED (SF), one CLOSED
    (SH / S2, SHR / S3), S0, S1, else OTH. REJ also covers both sides reset with no payload,
    measured with Zeek's sequence-number size of each side (``TCP_Endpoint::Size``).

``history``
    One letter per event, upper case for the originator and lower case for the responder:
    S (SYN), H (SYN-ACK), A (pure ACK), D (payload), F (FIN), R (RST), I (FIN+RST), Q (SYN
    with FIN or RST), C (bad checksum), G (content gap), T (retransmission), W (zero window),
    ``^`` (roles swapped). A, D, I, Q are recorded once per direction; S/H, F and R again when
    their sequence number, relative to the sender's initial one, differs from the previous one
    of that kind; C, G, T and W at the 1st, 10th, 100th, ... occurrence. After a swap the
    "already recorded" bits stay with the letter's case, not with the endpoint, as in Zeek.
    T is Zeek's: a segment with payload that does not advance its sender's highest sequence
    number (SYN/RST jumps of more than 1 MiB and anything after the sender's RST ignored).
    W: a window of 0 on a segment without RST, unless the sender has reset or the peer has
    closed.
    X (always upper case, once): with :attr:`ZeekConfig.ssh_max_packet_length` or
    ``ssh_max_string_length`` set, an SSH key-exchange packet over the limit
    (:mod:`tcptrace_sm.zeek_ssh`).

Originator
    The sender of the first packet, except that Zeek swaps the roles (``WantConnection``)
    when that packet is not a plain SYN and comes from one of ``likely_server_ports`` (when
    both ports are likely server ports: only for a packet without SYN whose source port is
    the lower one). A SYN-ACK from a port that is not a likely server port is left alone
    (that would break on stealth scans); Zeek swaps later instead:

    * when the SYN arrives after its SYN-ACK (the two reordered), mid-history: ``Hs^ADadFf``;
    * when an ACK or payload without SYN or RST follows while the history is still a lone
      ``H`` (Zeek's PR #2191: a stealth scan answers a SYN-ACK with a RST or nothing, never
      with ACKs or data); the history then reads ``^h``, as if the roles had been swapped from
      the start. That trigger and that rewrite are what Zeek's baselines show (conn-size-flip,
      flip-without-syn, checksums_ignore_nets); the PR's code itself was not at hand.

    The default port set is the one Zeek's default scripts register (``LIKELY_SERVER_PORTS``);
    ``zeek -b`` runs load fewer scripts and have fewer (``ZeekConfig(likely_server_ports=)``).

Several Zeek connections in one flow (``rows()``)
    Zeek ends a connection, and opens a new one with the next packet of the 4-tuple, when:

    * a SYN is not a retransmission of the originator's (``IsReuse``): after either side closed
      or reset, or with an initial sequence number other than the originator's (a SYN-ACK only
      while the originator has sent nothing);
    * ``tcp_attempt_delay`` (5 s) after the originator's SYN nothing has come back (the
      responder is still inactive);
    * ``tcp_close_delay`` (5 s) after the close completed (FIN from both sides, a RST, or a FIN
      with the peer silent), counted from the last packet before the close completed;
    * the connection was idle for ``tcp_inactivity_timeout`` (5 min), or for
      ``udp_inactivity_timeout`` (1 min: Zeek's initial value, also for TCP) while both sides
      are still in handshake states;
    * Zeek's expire timer (first ``tcp_SYN_timeout`` = 5 s after the first packet, then every
      ``tcp_session_timer`` = 6 s, plus a second chain 6 s after a one-sided close) finds,
      more than ``tcp_connection_linger`` (5 s) after the last packet, one side closed and the
      other reset, silent or closed too, or no side active at all (e.g. every packet failed the
      checksum). It stops once the connection was reported finished or reset.

    Timers run on capture time only and fire before the first packet at or after their due
    time, as Zeek expires timers before it processes a packet. One approximation: Zeek fires a
    timer at the next packet of *any* connection; here it fires at its due time, which only
    matters for when the expire timer re-arms (in a busy capture, the same). Not modelled:
    ``tcp_reset_delay`` (needs a ``connection_reset`` handler; without one the expire timer
    removes those connections), ``tcp_partial_close_delay`` (needs a
    ``connection_partial_close`` handler), closes deferred while reassembled data is pending,
    and ``max_timer_expires`` (at most 300 timers expire per packet).

    ``rows()`` lists these Zeek connections in order. The flow record's ``conn_state`` and
    ``history`` are those of the *first* one, ``rows()[0]``: the Zeek connection that starts
    with the flow's first packet, so it has the flow's ``ts`` and 4-tuple. Later ones are only
    in ``rows()`` (at most ``MAX_ROWS`` per flow; ``rows_dropped`` counts the rest).

Content gaps (G)
    Zeek reassembles every TCP stream (``dpd_reassemble_first_packets``); when an
    acknowledgment covers stream bytes it never saw, that is a gap, recorded in the history
    only while both sides are established (or closed after being established). This module
    keeps, per side, the delivered edge, the acknowledged edge and up to ``_MAX_BLOCKS``
    out-of-order ranges, with Zeek's rules: the acknowledgment of a FIN stops before it, the
    first byte of a partial connection is forgiven, and reassembly gives up after 16 KiB above
    a hole with nothing acknowledged (``tcp_max_above_hole_without_any_acks``) or 10 MiB
    buffered (``tcp_excessive_data_without_further_acks``).

What the capture reader must supply for the rest
    Segments whose TCP checksum failed (Zeek checks only segments captured whole; it records
    'C'/'c' and otherwise ignores the segment, which can still open a connection or be a reuse
    SYN) are recognised by ``bad_checksum`` (the reader's
    :class:`~tcptrace_sm.model.BadChecksumSegment`, with ``verify_checksums``); payload that
    the capture cut short (snaplen) when they carry ``truncated = True`` (Zeek does not
    reassemble it, so its acknowledgment is a gap; the reader does not mark those yet).
    (Packets whose IPv4 *header* checksum fails never reach Zeek's TCP analysis; the reader
    leaves them out.)

Not reproduced: 'X' (an application analyzer, e.g. SSH, hit one of its configured limits),
and what needs IP fragments reassembled (the reader skips fragments).
"""

from __future__ import annotations

import re
from typing import NamedTuple

from tcptrace_sm.model import ACK, FIN, RST, SYN, Segment
from tcptrace_sm.zeek_ssh import SshLimits

INACTIVE, SYN_SENT, SYN_ACK_SENT, PARTIAL, ESTABLISHED, CLOSED, RESET = range(7)
CONN_STATES = ("S0", "S1", "SF", "REJ", "S2", "S3", "RSTO", "RSTR", "RSTOS0", "RSTRH", "SH", "SHR", "OTH")
_INACTIVE_LIKE = (INACTIVE, PARTIAL)
_HANDSHAKE = (INACTIVE, SYN_SENT, SYN_ACK_SENT)

#: The TCP ports in Zeek's ``likely_server_ports`` with its default scripts loaded (those the
#: base protocol analyzers register).
LIKELY_SERVER_PORTS = frozenset(
    {21, 22, 23, 25, 53, 80, 81, 88, 110, 111, 135, 137, 139, 143, 389, 443, 445, 465, 502, 563, 587,
     585, 614, 631, 636, 989, 990, 992, 993, 995, 1080, 1812, 2049, 2811, 3128, 3306, 3389, 5060,
     5222, 5223, 5269, 5432, 6379, 6666, 6667, 6668, 6669, 8000, 8080, 8888, 20000, 44818}
)  # fmt: skip

MAX_ROWS = 256  # Zeek connections kept per flow by rows()

_NS = 1_000_000_000
_NEVER = 1 << 63  # a due time no capture reaches (timestamps are int64 nanoseconds)
_MASK = 0xFFFFFFFF
_TOO_LARGE_SEQ_DELTA = 1 << 20  # Zeek ignores SYN/RST sequence numbers jumping further
_MAX_INITIAL_WINDOW = 16384  # tcp_max_initial_window
_MAX_ABOVE_HOLE = 16384  # tcp_max_above_hole_without_any_acks
_MAX_BUFFERED = 10 * 1024 * 1024  # tcp_excessive_data_without_further_acks
_MAX_BLOCKS = 16  # out-of-order ranges kept per side (Zeek keeps them all)

# history "seen" bits (the responder's are these shifted left by 16)
_SYN_M, _FIN_M, _RST_M, _FINRST_M, _DATA_M, _ACK_M, _MULTI_M = 1, 2, 4, 8, 16, 32, 64
_UNKNOWN_M = 128 | 128 << 16  # 'X', once per connection whichever side (and across a flip)
_LETTER_MASKS = {
    "S": _SYN_M, "H": _SYN_M, "F": _FIN_M, "R": _RST_M,
    "I": _FINRST_M, "D": _DATA_M, "A": _ACK_M, "Q": _MULTI_M,
}  # fmt: skip
_RSTOS0 = re.compile(r"\^?S[^HAFGIQ]*R.*")
_CLOSE, _CLOSE_EVENT = 1, 2  # what a segment did to the connection (state machine result)


class ZeekConfig(NamedTuple):
    """The Zeek settings that change the answers (times in integer ns; Zeek's defaults)."""

    likely_server_ports: frozenset[int] = LIKELY_SERVER_PORTS
    tcp_attempt_delay: int = 5 * _NS
    tcp_close_delay: int = 5 * _NS
    tcp_syn_timeout: int = 5 * _NS  # Zeek's tcp_SYN_timeout
    tcp_session_timer: int = 6 * _NS
    tcp_connection_linger: int = 5 * _NS
    tcp_inactivity_timeout: int = 300 * _NS
    udp_inactivity_timeout: int = 60 * _NS  # Zeek's initial inactivity timeout, also for TCP
    #: ``SSH::max_packet_length`` and ``SSH::max_string_length`` (0: no limit), for the
    #: connections to ``ssh_ports``: see :mod:`tcptrace_sm.zeek_ssh`. They need the segments'
    #: payload (``read_segments(..., payload_ports=ssh_ports)``).
    ssh_max_packet_length: int = 0
    ssh_max_string_length: int = 0
    ssh_ports: frozenset[int] = frozenset({22})


DEFAULT_CONFIG = ZeekConfig()


class ZeekRow(NamedTuple):
    """One Zeek connection (one ``conn.log`` line), as far as its state goes."""

    ts: int  # its first packet, integer ns
    orig_h: str
    orig_p: int
    resp_h: str
    resp_p: int
    conn_state: str
    history: str
    orig_pkts: int
    resp_pkts: int


def _sdelta(a: int, b: int) -> int:
    """``a - b`` in 32-bit sequence space, as a signed number."""
    d = (a - b) & _MASK
    return d - 0x100000000 if d & 0x80000000 else d


class _Endpoint:
    """One side of one Zeek connection: Zeek's ``TCP_Endpoint`` and its reassembler."""

    __slots__ = (
        "ack_abs",
        "ack_rel",
        "blocks",
        "chk",
        "chk_at",
        "did_close",
        "fin_cnt",
        "fin_seq",
        "gap",
        "gap_at",
        "hist_fin",
        "hist_rst",
        "hist_syn",
        "host",
        "last_abs",
        "last_rel",
        "peer",
        "pkts",
        "port",
        "prev_state",
        "reassem",
        "rxmit",
        "rxmit_at",
        "skip",
        "start",
        "state",
        "trim",
        "win0",
        "win0_at",
    )

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.peer: _Endpoint = self
        self.state = self.prev_state = INACTIVE
        self.start = 0  # initial sequence number (32 bits), as Zeek initialises it
        self.last_abs = self.ack_abs = 0  # highest sequence number sent / acknowledged by the peer
        self.last_rel = self.ack_rel = 0  # the same relative to start, unwrapped
        self.hist_syn = self.hist_fin = self.hist_rst = 0  # relative numbers of the last S/H, F, R
        self.fin_cnt = 0
        self.fin_seq = 0  # relative number just after the FIN
        self.did_close = False
        self.pkts = 0
        self.rxmit = self.win0 = self.chk = self.gap = 0  # counts behind the scaled letters
        self.rxmit_at = self.win0_at = self.chk_at = self.gap_at = 1  # ... and the next threshold
        self.reassem = self.trim = 1  # reassembler: delivered up to / forgotten below
        self.blocks: list[list[int]] = []  # undelivered [lo, hi) ranges above ``reassem``
        self.skip = False  # Zeek stopped reassembling this side

    def init_seq(self, start: int, last: int) -> None:
        self.start = start
        self.ack_abs = start
        self.ack_rel = 0
        self.last_abs = last
        self.last_rel = _sdelta(last, start)

    def size(self) -> int:
        """Zeek's ``TCP_Endpoint::Size()``: payload bytes, from sequence numbers."""
        if (
            self.prev_state == SYN_SENT
            and self.state == RESET
            and self.peer.state == INACTIVE
            and self.ack_rel not in (0, 1)
        ):
            return 0
        size = max(self.last_rel, self.ack_rel)
        if size > 0:
            size -= 1
            if self.fin_cnt and size:
                size -= 1
        return max(size, 0)

    def clean(self) -> bool:
        return self.state == ESTABLISHED or (self.state == CLOSED and self.prev_state == ESTABLISHED)


class _Conn:
    """One Zeek connection in progress, with its timers."""

    __slots__ = (
        "attempt_at",
        "delete_at",
        "due",
        "expire",
        "first_seen",
        "history",
        "inactivity",
        "is_active",
        "is_partial",
        "last_time",
        "orig",
        "resp",
        "seen",
        "ssh",
        "ts",
    )

    def __init__(self, seg: Segment, config: ZeekConfig, now: int | None = None) -> None:
        flags, sport, dport = seg.flags, seg.sport, seg.dport
        now = seg.ts if now is None else now
        flip = False
        if not flags & SYN or flags & ACK:  # Zeek's WantConnection: a partial connection
            ports = config.likely_server_ports
            if sport in ports:
                flip = (not flags & SYN and sport < dport) if dport in ports else True
        src, dst = _Endpoint(seg.src, sport), _Endpoint(seg.dst, dport)
        self.orig, self.resp = (dst, src) if flip else (src, dst)
        src.peer, dst.peer = dst, src
        self.history: list[str] = ["^"] if flip else []
        self.seen = 0
        self.ssh = (
            SshLimits(config.ssh_max_packet_length, config.ssh_max_string_length)
            if (config.ssh_max_packet_length or config.ssh_max_string_length)
            and self.resp.port in config.ssh_ports
            else None
        )
        self.ts = seg.ts
        self.last_time = now
        self.is_active = True
        self.is_partial = False
        self.first_seen = 0  # 1: the originator's first packet was seen, 2: the responder's
        self.inactivity = config.udp_inactivity_timeout
        self.attempt_at = self.delete_at = _NEVER
        self.expire = [now + config.tcp_syn_timeout]  # due times of the expire-timer chains
        self.due = self.expire[0]  # the earliest of attempt_at, delete_at and expire

    def reschedule(self) -> None:
        self.due = min(self.attempt_at, self.delete_at, *self.expire)

    # -- history -----------------------------------------------------------------------------

    def check(self, ep: _Endpoint, mask: int, letter: str) -> bool:
        """Zeek's ``CheckHistory``: record the letter the first time; True if seen before."""
        if ep is not self.orig:
            mask <<= 16
            letter = letter.lower()
        if self.seen & mask:
            return True
        self.seen |= mask
        self.history.append(letter)
        return False

    def add(self, ep: _Endpoint, letter: str) -> None:
        self.history.append(letter if ep is self.orig else letter.lower())

    def scaled(self, ep: _Endpoint, count: int, at: int, letter: str) -> int:
        """Zeek's ``ScaledHistoryEntry``: the letter at the 1st, 10th, 100th ...; the next threshold."""
        if count == at:
            self.add(ep, letter)
            return at * 10
        return at

    def flip(self) -> None:
        """Zeek's ``FlipRoles``: the history letters already written keep their case."""
        self.orig, self.resp = self.resp, self.orig
        self.first_seen = ((self.first_seen & 1) << 1) | ((self.first_seen & 2) >> 1)
        self.is_partial = False
        self.history.append("^")

    def flip_from_start(self) -> None:
        """The swap when ACKs or data follow a lone SYN-ACK: the history becomes ``^h``."""
        self.flip()
        self.history = ["^", "h"]
        self.seen = ((self.seen & 0xFFFF) << 16) | (self.seen >> 16)

    # -- the end -----------------------------------------------------------------------------

    def row(self) -> ZeekRow:
        o, r = self.orig, self.resp
        history = "".join(self.history)
        return ZeekRow(
            self.ts, o.host, o.port, r.host, r.port, self.conn_state(history), history, o.pkts, r.pkts
        )

    def conn_state(self, history: str) -> str:
        os_, rs = self.orig.state, self.resp.state
        if rs == RESET:
            if os_ in (SYN_SENT, SYN_ACK_SENT) or (
                os_ == RESET and self.orig.size() == 0 and self.resp.size() == 0
            ):
                return "REJ"
            return "RSTRH" if os_ in _INACTIVE_LIKE else "RSTR"
        if os_ == RESET:
            if rs in _INACTIVE_LIKE:
                return "RSTOS0" if _RSTOS0.fullmatch(history) else "OTH"
            return "RSTO"
        if os_ == CLOSED and rs == CLOSED:
            return "SF"
        if os_ == CLOSED:
            return "SH" if rs in _INACTIVE_LIKE else "S2"
        if rs == CLOSED:
            return "SHR" if os_ in _INACTIVE_LIKE else "S3"
        if os_ == SYN_SENT and rs == INACTIVE:
            return "S0"
        if os_ == ESTABLISHED and rs == ESTABLISHED:
            return "S1"
        return "OTH"


class ClosedSide(NamedTuple):
    """One side of a cleanly closed Zeek connection (see :meth:`ZeekSummary.closed`); sequence
    numbers relative to the side's ISN."""

    host: str
    port: int
    isn: int
    fin: int  # its FIN (the data before it all delivered)
    acked: int  # the peer's highest ACK
    pkts: int
    rxmit: int  # its retransmissions, zero windows and content gaps, as Zeek counts them
    win0: int
    gap: int = 0

    def endpoint(self) -> _Endpoint:
        ep = _Endpoint(self.host, self.port)
        ep.state, ep.prev_state = CLOSED, ESTABLISHED
        ep.start = self.isn
        ep.last_rel = self.fin + 1
        ep.last_abs = (self.isn + self.fin + 1) & _MASK
        ep.ack_rel = self.acked
        ep.ack_abs = (self.isn + self.acked) & _MASK
        ep.hist_fin = self.fin
        ep.fin_cnt = 1
        ep.fin_seq = self.fin + 1
        ep.did_close = True
        ep.pkts = self.pkts
        ep.rxmit, ep.rxmit_at = self.rxmit, _next_threshold(self.rxmit)
        ep.win0, ep.win0_at = self.win0, _next_threshold(self.win0)
        ep.gap, ep.gap_at = self.gap, _next_threshold(self.gap)
        ep.reassem = ep.trim = self.fin
        return ep


def _next_threshold(count: int) -> int:
    """Where a scaled letter is written next after ``count`` events (1, 10, 100, ...)."""
    at = 1
    while at <= count:
        at *= 10
    return at


class ZeekSummary:
    """Feed it every segment of one flow (first one first); read ``conn_state``, ``history``.

    ``rows()`` gives every Zeek connection that Zeek's timers and reuse rules carve out of the
    flow; ``conn_state`` and ``history`` are the first one's.
    """

    __slots__ = ("_config", "_conn", "_first", "_fresh", "_marks", "_rows", "rows_dropped")

    def __init__(
        self, first: Segment, *, config: ZeekConfig = DEFAULT_CONFIG, clock: int | None = None
    ) -> None:
        self._config = config
        self._conn = _Conn(first, config, clock)
        self._rows: list[ZeekRow] = []  # finished Zeek connections
        self._first: ZeekRow | None = None
        self.rows_dropped = 0
        self._fresh = True
        # the reader's optional markers (see the module docstring): checked only if present
        self._marks = hasattr(first, "bad_checksum") or hasattr(first, "truncated")

    @classmethod
    def closed(
        cls,
        *,
        ts: int,
        last_time: int,
        history: str,
        orig: ClosedSide,
        resp: ClosedSide,
        config: ZeekConfig = DEFAULT_CONFIG,
    ) -> ZeekSummary:
        """The summary, still live, of a flow whose one Zeek connection closed cleanly: the
        originator's SYN, the responder's SYN-ACK, data in order, a FIN each way and the ACKs
        of both (``history`` its letters, ``ts`` its first packet, ``last_time`` the capture
        clock at the second FIN). Exactly what a summary fed those segments holds (a faster
        engine hands such flows over without their segments): Zeek removes the connection
        ``tcp_close_delay`` after ``last_time``, and until then a segment still belongs to it."""
        conn = _Conn.__new__(_Conn)
        o, r = orig.endpoint(), resp.endpoint()
        o.peer, r.peer = r, o
        conn.orig, conn.resp = o, r
        conn.history = list(history)
        conn.seen = 0
        for letter in history:
            mask = _LETTER_MASKS.get(letter.upper(), 0)
            conn.seen |= mask if letter.isupper() else mask << 16
        conn.ssh = None
        conn.ts = ts
        conn.last_time = last_time
        conn.is_active = False
        conn.is_partial = False
        conn.first_seen = 3
        conn.inactivity = config.tcp_inactivity_timeout
        conn.attempt_at = _NEVER
        conn.expire = []
        conn.delete_at = last_time + config.tcp_close_delay
        conn.reschedule()
        self = cls.__new__(cls)
        self._config = config
        self._conn = conn
        self._rows = []
        self._first = None
        self.rows_dropped = 0
        self._fresh = False
        self._marks = False
        return self

    # -- results -------------------------------------------------------------------------------

    def rows(self) -> list[ZeekRow]:
        """Zeek's connections within this flow, in order; the last one is the one still open."""
        return [*self._rows, self._conn.row()]

    def _first_row(self) -> ZeekRow:
        return self._first if self._first is not None else self._conn.row()

    @property
    def conn_state(self) -> str:
        return self._first_row().conn_state

    @property
    def history(self) -> str:
        return self._first_row().history

    # -- input ---------------------------------------------------------------------------------

    def update(self, seg: Segment, clock: int | None = None) -> None:
        """Account for the flow's next segment. ``clock`` is the capture clock at it (the latest
        timestamp seen in the whole capture, by default this segment's): Zeek's timers run on
        network time, which only moves forward, so a segment stamped earlier than one already
        seen cannot bring back a connection its timers removed."""
        c = self._conn
        flags = seg.flags
        ts = seg.ts if clock is None else clock
        if self._marks:
            bad = bool(getattr(seg, "bad_checksum", False))
            captured = not getattr(seg, "truncated", False)
        else:
            bad, captured = False, True
        if self._fresh:
            self._fresh = False  # the packet that opened the connection
        elif (
            (c.inactivity and c.last_time + c.inactivity <= ts)  # Zeek's inactivity timer
            or (ts >= c.due and self._expired(c, ts))
            or (flags & SYN and self._reuse(c, seg))
        ):
            c = self._new_conn(seg, ts)
        elif (
            len(c.history) == 1
            and c.history[0] == "H"
            and not flags & (SYN | RST)
            and (flags & ACK or seg.length)
            and not bad
        ):
            c.flip_from_start()  # after a lone SYN-ACK: a stealth scan would not go on like this
        is_orig = seg.sport == c.orig.port and seg.src == c.orig.host
        ep = c.orig if is_orig else c.resp
        if bad:
            ep.chk += 1  # Zeek records 'C' and drops the segment
            ep.chk_at = c.scaled(ep, ep.chk, ep.chk_at, "C")
            return
        self._process(c, ep, is_orig, seg, captured, ts)

    def _new_conn(self, seg: Segment, now: int) -> _Conn:
        row = self._conn.row()
        if self._first is None:
            self._first = row
        if len(self._rows) < MAX_ROWS - 1:
            self._rows.append(row)
        else:
            self.rows_dropped += 1
        c = self._conn = _Conn(seg, self._config, now)
        return c

    # -- Zeek's timers and connection reuse ----------------------------------------------------

    def _expired(self, c: _Conn, now: int) -> bool:
        """Whether one of the TCP analyzer's timers, due by ``now``, removed the connection."""
        if c.delete_at <= now:
            return True
        o, r = c.orig, c.resp
        if c.attempt_at <= now:
            c.attempt_at = _NEVER
            if c.is_active and o.state in (SYN_SENT, SYN_ACK_SENT) and r.state == INACTIVE:
                return True
        if c.expire and min(c.expire) <= now:
            if not c.is_active:
                c.expire = []  # the timer does not re-arm any more
            else:
                step = self._config.tcp_session_timer
                removable = (o.state == INACTIVE and r.state == INACTIVE) or (
                    (o.did_close or r.did_close)
                    and (
                        (o.did_close and r.did_close)
                        or RESET in (o.state, r.state)
                        or INACTIVE in (o.state, r.state)
                    )
                )
                quiet_after = c.last_time + self._config.tcp_connection_linger
                chains = []
                for due in c.expire:
                    if due > now:
                        chains.append(due)
                        continue
                    if removable:  # removed at the first firing after the linger time
                        fire = due if due > quiet_after else due + ((quiet_after - due) // step + 1) * step
                        if fire <= now:
                            return True
                    chains.append(due + ((now - due) // step + 1) * step)  # re-armed every 6 s
                c.expire = chains
        c.reschedule()
        return False

    @staticmethod
    def _reuse(c: _Conn, seg: Segment) -> bool:
        """Zeek's ``IsReuse`` for a segment with SYN: does it open a new connection?"""
        o, r = c.orig, c.resp
        opener = o
        if seg.flags & ACK:
            if o.state != INACTIVE:
                return False
            opener = r
        if o.did_close or r.did_close:
            return True
        if seg.seq == opener.start:
            return False
        # the SYN of a SYN-ACK seen before it: Zeek swaps the roles instead
        return not (
            not seg.flags & ACK
            and opener.state == SYN_ACK_SENT
            and r.state == INACTIVE
            and seg.seq == r.start
        )

    # -- one segment ---------------------------------------------------------------------------

    def _set_state(self, c: _Conn, ep: _Endpoint, state: int) -> None:
        """``TCP_Endpoint::SetState``: leaving the handshake sets the longer inactivity timeout."""
        if state != ep.state:
            if state not in _HANDSHAKE and ep.state in _HANDSHAKE and ep.peer.state in _HANDSHAKE:
                c.inactivity = self._config.tcp_inactivity_timeout
            ep.prev_state = ep.state
            ep.state = state

    def _process(
        self, c: _Conn, ep: _Endpoint, is_orig: bool, seg: Segment, captured: bool, now: int
    ) -> None:
        """``TCPSessionAdapter::Process`` for one valid segment from ``ep`` (the hot path)."""
        flags, seq, length = seg.flags, seg.seq, seg.length
        peer = ep.peer
        syn, fin, rst = flags & SYN, flags & FIN, flags & RST
        ctl = flags & (SYN | FIN | RST)
        # SetPartialStatus
        if is_orig:
            if not c.first_seen & 1:
                c.is_partial = not syn or bool(flags & ACK)
        elif not c.first_seen & 2 and not c.is_partial:
            c.is_partial = not syn
        seg_len = length + (1 if syn else 0) + (1 if fin else 0) - (length if rst else 0)
        past = (seq + seg_len) & _MASK
        # init_endpoint
        st = ep.state
        if st == INACTIVE:
            if syn:
                ep.init_seq(seq, past)
            else:
                ep.init_seq((seq - 1) & _MASK, seq)
        elif syn and (
            (st in (SYN_SENT, SYN_ACK_SENT) and seq != ep.start)
            or st in (ESTABLISHED, PARTIAL)
            or (st == RESET and ep.prev_state == INACTIVE)
        ):
            ep.init_seq(seq, past)
        d = (seq - ep.last_abs) & _MASK
        rel = ep.last_rel + (d - 0x100000000 if d & 0x80000000 else d)
        # update_history
        if ctl:
            if ctl & (ctl - 1):  # more than one of SYN, FIN, RST
                if fin and rst:
                    c.check(ep, _FINRST_M, "I")
                else:
                    c.check(ep, _MULTI_M, "Q")
            elif syn:
                code = "H" if flags & ACK else "S"
                if c.check(ep, _SYN_M, code) and rel != ep.hist_syn:
                    c.add(ep, code)
                ep.hist_syn = rel
            elif fin:
                if c.check(ep, _FIN_M, "F") and rel + length != ep.hist_fin:
                    c.add(ep, "F")
                ep.hist_fin = rel + length
            else:
                if c.check(ep, _RST_M, "R") and rel != ep.hist_rst:
                    c.add(ep, "R")
                ep.hist_rst = rel
        elif length or flags & ACK:
            mask = _DATA_M if length else _ACK_M
            if not c.seen & (mask if is_orig else mask << 16):
                c.check(ep, mask, "D" if length else "A")
        # update_window
        if seg.win == 0 and not rst and peer.state != CLOSED and st != RESET:
            ep.win0 += 1
            ep.win0_at = c.scaled(ep, ep.win0, ep.win0_at, "W")
        if not (c.orig.did_close and c.resp.did_close):
            c.last_time = now
        if fin:
            ep.fin_cnt += 1
            ep.fin_seq = rel + seg_len
        rel_ack = 0
        if flags & ACK:
            ack = seg.ack
            if peer.state == INACTIVE:  # init_peer
                rel_ack = 1
                peer.init_seq((ack - 1) & _MASK, (ack - 1) & _MASK)
            else:
                d = (ack - peer.ack_abs) & _MASK
                if d & 0x80000000:
                    d -= 0x100000000
                rel_ack = peer.ack_rel + d
                if rel_ack < 0:
                    rel_ack = 0  # Zeek: TCP_ack_underflow_or_misorder
                elif d > 0 and not rst and not (ack == 0 and d > _TOO_LARGE_SEQ_DELTA):
                    peer.ack_rel = rel_ack
                    peer.ack_abs = ack
        # update_last_seq
        d = (past - ep.last_abs) & _MASK
        delta = d - 0x100000000 if d & 0x80000000 else d
        if (syn or rst) and (delta > _TOO_LARGE_SEQ_DELTA or delta < -_TOO_LARGE_SEQ_DELTA):
            pass
        elif (st != RESET and delta > 0) or (fin and ep.last_abs == (ep.start + 1) & _MASK):
            ep.last_rel += delta
            ep.last_abs = past
        elif st != RESET and length > 0:
            ep.rxmit += 1
            ep.rxmit_at = c.scaled(ep, ep.rxmit, ep.rxmit_at, "T")
        # the state machine: nothing to do for a plain segment of a side past INACTIVE
        done = self._state_machine(c, ep, is_orig, flags, seq, length, now) if ctl or st == INACTIVE else 0
        if flags & ACK:  # AckReceived, usually for data delivered already
            _acked(c, peer, rel_ack)
        ep.pkts += 1
        c.first_seen |= 1 if is_orig else 2
        if length and not rst and rel >= 0 and captured and not ep.skip:  # DataSent
            _deliver(ep, rel + 1 if syn else rel, length)
        if c.ssh is not None and length and not rst and rel >= 0:
            data = seg.payload if captured and not ep.skip else b""
            if c.ssh.deliver(ep is c.orig, rel + 1 if syn else rel, data, length) and not c.seen & _UNKNOWN_M:
                c.seen |= _UNKNOWN_M
                c.history.append("X")
        if done:
            self._closed(c, ep, bool(done & _CLOSE_EVENT))

    def _state_machine(
        self, c: _Conn, ep: _Endpoint, is_orig: bool, flags: int, seq: int, length: int, now: int
    ) -> int:
        """Zeek's ``UpdateStateMachine``; returns _CLOSE (and _CLOSE_EVENT) when it closes."""
        peer = ep.peer
        st = ep.state
        set_state = self._set_state
        done = 0
        if st == INACTIVE:
            if flags & SYN:
                if is_orig:
                    set_state(c, ep, SYN_ACK_SENT if flags & ACK else SYN_SENT)
                    if self._config.tcp_attempt_delay:
                        c.attempt_at = now + self._config.tcp_attempt_delay
                        c.reschedule()
                else:
                    if not flags & ACK and peer.state == SYN_ACK_SENT and seq == ep.start:
                        c.flip()  # the SYN of a SYN-ACK seen before it
                        set_state(c, peer, ESTABLISHED)
                        c.first_seen |= 1
                    if peer.state == SYN_SENT:
                        set_state(c, peer, ESTABLISHED)
                    set_state(c, ep, ESTABLISHED)
            if flags & FIN:
                set_state(c, ep, CLOSED)
                done = _CLOSE | _CLOSE_EVENT
            if flags & RST:
                set_state(c, ep, RESET)
                reject = peer.state == ESTABLISHED if is_orig else peer.state in (SYN_SENT, SYN_ACK_SENT)
                done = _CLOSE if reject else _CLOSE | _CLOSE_EVENT
            if ep.state == INACTIVE:
                if not is_orig and length == 0 and c.orig.state == SYN_SENT:
                    pass  # an ACK of the SYN before the SYN-ACK: not a partial connection
                elif flags & ACK and peer.state == ESTABLISHED:
                    set_state(c, ep, ESTABLISHED)  # the SYN was missed, the handshake was not
                    c.is_partial = False
                    c.first_seen |= 1 if is_orig else 2
                else:
                    set_state(c, ep, PARTIAL)
        elif st in (SYN_SENT, SYN_ACK_SENT):
            if flags & FIN:
                set_state(c, ep, CLOSED)
                done = _CLOSE | _CLOSE_EVENT
            if flags & RST:
                set_state(c, ep, RESET)
                c.is_active = False  # ConnectionReset
                done |= _CLOSE
        elif st in (ESTABLISHED, PARTIAL):
            if flags & SYN and st == PARTIAL and peer.state == INACTIVE and not flags & ACK:
                set_state(c, ep, SYN_SENT)
            if flags & FIN and not flags & RST:
                set_state(c, ep, CLOSED)
                if peer.state == RESET and peer.prev_state == CLOSED:
                    set_state(c, peer, CLOSED)  # FIN then RST was a normal close after all
                done = _CLOSE | _CLOSE_EVENT
            if flags & RST:
                set_state(c, ep, RESET)
                done |= _CLOSE
                if peer.state != RESET or peer.prev_state != ESTABLISHED:
                    c.is_active = False  # ConnectionReset
        elif st == CLOSED and flags & RST and peer.state != CLOSED:
            set_state(c, ep, RESET)
            if not ep.did_close:
                done = _CLOSE
        return done

    def _closed(self, c: _Conn, ep: _Endpoint, gen_event: bool) -> None:
        """Zeek's ``ConnectionClosed``: once the close is complete, the state goes soon after."""
        if ep.did_close:
            return
        ep.did_close = True
        peer = ep.peer
        if ep.state == RESET or peer.did_close or peer.state == INACTIVE:
            if gen_event and (ep.prev_state != INACTIVE or peer.state != INACTIVE):
                c.is_active = False  # ConnectionFinished
            c.attempt_at = _NEVER  # CancelTimers
            c.expire = []
            c.delete_at = c.last_time + self._config.tcp_close_delay
        elif ep.prev_state != INACTIVE:
            c.expire = sorted([*c.expire, c.last_time + self._config.tcp_session_timer])[:2]
        c.reschedule()

    # -- reassembly, for content gaps -----------------------------------------------------------

    @staticmethod
    def _data_sent(ep: _Endpoint, seq: int, length: int) -> None:
        """``TCP_Reassembler::DataSent``: payload [seq, seq + length), relative numbers."""
        if ep.skip:
            return
        upper = seq + length
        if seq < ep.ack_rel:
            if upper <= ep.ack_rel:
                return  # delivered and acknowledged already
            seq = ep.ack_rel
        if upper <= ep.trim:
            return
        seq = max(seq, ep.trim)
        blocks = ep.blocks
        if seq <= ep.reassem:
            if upper > ep.reassem:
                ep.reassem = upper
                while blocks and blocks[0][0] <= ep.reassem:
                    ep.reassem = max(ep.reassem, blocks.pop(0)[1])
                if ep.ack_rel in (0, 1) and ep.size() > _MAX_INITIAL_WINDOW:
                    ep.trim = ep.reassem  # nothing acknowledged: Zeek stops holding the data
        else:
            _insert(blocks, seq, upper)
        if blocks:
            if (ep.ack_rel in (0, 1) and blocks[-1][1] - ep.reassem > _MAX_ABOVE_HOLE) or (
                ep.reassem - ep.trim + sum(hi - lo for lo, hi in blocks) > _MAX_BUFFERED
            ):
                blocks.clear()
                ep.skip = True
        elif ep.reassem - ep.trim > _MAX_BUFFERED:
            ep.skip = True

    @staticmethod
    def _ack_received(c: _Conn, ep: _Endpoint, seq: int) -> None:
        """``TCP_Reassembler::AckReceived`` of ``ep``'s data up to ``seq`` (past its FIN: before
        it), beyond what was delivered: bytes acknowledged but never seen are gaps."""
        if not (seq <= 2 and c.is_partial):
            blocks = ep.blocks
            if not ep.skip:
                while blocks and blocks[0][0] < seq:
                    lo, hi = blocks.pop(0)
                    if lo > ep.reassem:
                        _gap(c, ep)
                    ep.reassem = max(ep.reassem, hi)
                    while blocks and blocks[0][0] <= ep.reassem:
                        ep.reassem = max(ep.reassem, blocks.pop(0)[1])
                if seq > ep.reassem:
                    _gap(c, ep)
            ep.reassem = max(ep.reassem, seq)
            while blocks and blocks[0][1] <= seq:
                blocks.pop(0)
        ep.trim = seq


def _acked(c: _Conn, ep: _Endpoint, rel_ack: int) -> None:
    """``TCP_Reassembler::AckReceived`` for ``ep``'s data (past its FIN: before it)."""
    if ep.fin_cnt and rel_ack >= ep.fin_seq:
        rel_ack = ep.fin_seq - 1
    if rel_ack > ep.trim:
        if rel_ack <= ep.reassem:
            ep.trim = rel_ack
        else:
            ZeekSummary._ack_received(c, ep, rel_ack)


def _deliver(ep: _Endpoint, lo: int, length: int) -> None:
    """``ep``'s payload [lo, lo + length), captured whole, into its reassembler."""
    hi = lo + length
    if ep.ack_rel <= lo and ep.trim <= lo <= ep.reassem < hi and not ep.blocks:
        ep.reassem = hi  # in order: delivered at once
        if ep.ack_rel in (0, 1) and ep.size() > _MAX_INITIAL_WINDOW:
            ep.trim = hi  # nothing acknowledged: Zeek stops holding the data
        elif hi - ep.trim > _MAX_BUFFERED:
            ep.skip = True
    else:
        ZeekSummary._data_sent(ep, lo, length)


class GapCounter:
    """Zeek's reassembler for one side of an established connection, alone: where its
    payload is partly cut by the snaplen, which of the peer's ACKs show a content gap (the
    faster engine runs this for such sides; the rules are those of :class:`ZeekSummary`)."""

    __slots__ = ("_conn", "ep")

    def __init__(
        self, trim: int, reassem: int, ack_rel: int, sent: int, block: tuple[int, int] | None = None
    ) -> None:
        ep, peer = _Endpoint("", 0), _Endpoint("", 0)
        ep.peer, peer.peer = peer, ep
        ep.state = ep.prev_state = peer.state = peer.prev_state = ESTABLISHED
        ep.trim, ep.reassem, ep.ack_rel, ep.last_rel = trim, reassem, ack_rel, sent
        if block is not None:
            ep.blocks.append(list(block))
        self.ep = ep
        conn = _Conn.__new__(_Conn)
        conn.is_partial = False
        conn.history = []
        conn.orig, conn.resp = ep, peer
        self._conn = conn

    def sent(self, end: int, fin: int | None = None) -> None:
        """The side sent up to ``end`` (relative; its FIN at ``fin``, if this is the FIN)."""
        ep = self.ep
        ep.last_rel = max(ep.last_rel, end)
        if fin is not None and not ep.fin_cnt:
            ep.fin_cnt, ep.fin_seq = 1, fin + 1

    def data(self, lo: int, length: int) -> None:
        """Payload [lo, lo + length) captured whole."""
        if not self.ep.skip:
            _deliver(self.ep, lo, length)

    def ack(self, rel_ack: int, reset: bool = False) -> int:
        """The peer's ACK (relative to this side's ISN), with RST if ``reset``: how many gaps."""
        ep = self.ep
        if rel_ack > ep.ack_rel and not reset:
            ep.ack_rel = rel_ack
        if reset:
            ep.peer.state = RESET  # Zeek's state machine runs first: no gap counted
        before = ep.gap
        _acked(self._conn, ep, rel_ack)
        return ep.gap - before

    @property
    def state(self) -> tuple[int, int, int, tuple[int, int] | None, bool]:
        """(trim, reassem, ack_rel, the one payload block held above ``reassem`` if any,
        whether it can be carried on from these alone: at most one block, nothing skipped)."""
        ep = self.ep
        block = (ep.blocks[0][0], ep.blocks[0][1]) if len(ep.blocks) == 1 else None
        return ep.trim, ep.reassem, ep.ack_rel, block, len(ep.blocks) <= 1 and not ep.skip


def _gap(c: _Conn, ep: _Endpoint) -> None:
    """``TCP_Reassembler::Gap``: the letter only while both sides are cleanly established."""
    if ep.clean() and ep.peer.clean():
        ep.gap += 1
        ep.gap_at = c.scaled(ep, ep.gap, ep.gap_at, "G")


def _insert(blocks: list[list[int]], lo: int, hi: int) -> None:
    """Add [lo, hi) to sorted, disjoint ranges, merging what touches; keep the lowest _MAX_BLOCKS."""
    i = 0
    n = len(blocks)
    while i < n and blocks[i][1] < lo:
        i += 1
    j = i
    while j < n and blocks[j][0] <= hi:
        lo = min(lo, blocks[j][0])
        hi = max(hi, blocks[j][1])
        j += 1
    blocks[i:j] = [[lo, hi]]
    if len(blocks) > _MAX_BLOCKS:
        del blocks[_MAX_BLOCKS:]
