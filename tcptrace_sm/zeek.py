"""Zeek's per-connection summaries — ``conn_state`` and ``history`` — so Zeek users can compare.

Zeek keeps a coarse state per endpoint (inactive, SYN sent, SYN-ACK sent, partial,
established, closed, reset) and derives ``conn_state`` (S0, S1, SF, REJ, S2, S3, RSTO, RSTR,
RSTOS0, RSTRH, SH, SHR, OTH) from the pair at the end. ``history`` records one letter per kind
of event, upper case for the originator and lower case for the responder: S (SYN), H
(SYN-ACK), A (pure ACK), D (data), F (FIN), R (RST), T (retransmitted data), W (zero window),
I (FIN and RST together), Q (SYN with FIN or RST); ``^`` marks a swap of originator and
responder. Most letters are recorded once per direction; S, H, F and R again when the
sequence number changes; T and W at the 1st, 10th, 100th, ... occurrence.

Zeek's originator is the sender of the first packet, except that Zeek swaps the roles when
that packet is a SYN-ACK, or when it is not a SYN and comes from a likely server port towards
one that is not. That is usually, but not always, our client.

Not reproduced (and listed as deliberate differences in the corpus test): C (bad checksum:
such segments are dropped before the analysis with ``--verify-checksums``), G (content gaps,
which need stream reassembly) and the letters Zeek's application analyzers add.
"""

from __future__ import annotations

from tcptrace_sm.model import ACK, FIN, RST, SYN, Segment

INACTIVE, SYN_SENT, SYN_ACK_SENT, PARTIAL, ESTABLISHED, CLOSED, RESET = range(7)
CONN_STATES = ("S0", "S1", "SF", "REJ", "S2", "S3", "RSTO", "RSTR", "RSTOS0", "RSTRH", "SH", "SHR", "OTH")
_INACTIVE_LIKE = (INACTIVE, PARTIAL)

#: Ports that Zeek's default scripts register analyzers for, roughly: its "likely server ports".
LIKELY_SERVER_PORTS = frozenset(
    {21, 22, 23, 25, 53, 80, 81, 88, 110, 111, 135, 137, 139, 143, 389, 443, 445, 465, 502, 563, 587,
     585, 614, 631, 636, 989, 990, 992, 993, 995, 1080, 1812, 2049, 2811, 3128, 3306, 3389, 5060,
     5222, 5223, 5269, 5432, 6379, 6666, 6667, 6668, 6669, 8000, 8080, 8888, 20000, 44818}
)  # fmt: skip

_SYN_MASK, _FIN_MASK, _RST_MASK, _FINRST_MASK, _DATA_MASK, _ACK_MASK, _MULTI_MASK = (1, 2, 4, 8, 16, 32, 64)


class _Side:
    __slots__ = (
        "last_fin",
        "last_rst",
        "last_syn",
        "max_end",
        "rxmit",
        "rxmit_next",
        "seen",
        "state",
        "win0",
        "win0_next",
    )

    def __init__(self) -> None:
        self.state = INACTIVE
        self.seen = 0  # history masks already recorded
        self.last_syn: int | None = None
        self.last_fin: int | None = None
        self.last_rst: int | None = None
        self.max_end: int | None = None  # highest sequence number + length sent
        self.rxmit = 0
        self.rxmit_next = 1
        self.win0 = 0
        self.win0_next = 1


class ZeekSummary:
    """Feed it every segment of one connection (first one first); read ``conn_state``, ``history``."""

    __slots__ = ("_history", "_orig", "_resp", "flipped", "orig")

    def __init__(self, first: Segment) -> None:
        src, dst = (first.src, first.sport), (first.dst, first.dport)
        flags = first.flags
        synack_first = bool(flags & SYN and flags & ACK and not flags & RST)
        from_server_port = (
            not flags & SYN and first.sport in LIKELY_SERVER_PORTS and first.dport not in LIKELY_SERVER_PORTS
        )
        flip = synack_first or from_server_port
        self.orig = dst if flip else src
        self.flipped = flip
        self._orig = _Side()
        self._resp = _Side()
        self._history: list[str] = []

    def _add(self, is_orig: bool, side: _Side, mask: int, code: str, seq: int | None = None) -> None:
        letter = code if is_orig else code.lower()
        if not side.seen & mask:
            side.seen |= mask
            self._history.append(letter)
            return
        if seq is None:
            return
        last = {_SYN_MASK: side.last_syn, _FIN_MASK: side.last_fin, _RST_MASK: side.last_rst}.get(mask)
        if last is not None and last != seq:
            self._history.append(letter)

    def update(self, seg: Segment) -> None:
        is_orig = seg.sport == self.orig[1] and seg.src == self.orig[0]
        me, peer = (self._orig, self._resp) if is_orig else (self._resp, self._orig)
        flags, seq, length = seg.flags, seg.seq, seg.length
        bits = bool(flags & SYN) + bool(flags & FIN) + bool(flags & RST)
        # history
        if bits > 1:
            if flags & FIN and flags & RST:
                self._add(is_orig, me, _FINRST_MASK, "I")
            else:
                self._add(is_orig, me, _MULTI_MASK, "Q")
        elif bits == 1:
            if flags & SYN:
                self._add(is_orig, me, _SYN_MASK, "H" if flags & ACK else "S", seq)
                me.last_syn = seq
            if flags & FIN:
                end = (seq + length) & 0xFFFFFFFF
                self._add(is_orig, me, _FIN_MASK, "F", end)
                me.last_fin = end
            if flags & RST:
                self._add(is_orig, me, _RST_MASK, "R", seq)
                me.last_rst = seq
        elif length:
            self._add(is_orig, me, _DATA_MASK, "D")
        elif flags & ACK:
            self._add(is_orig, me, _ACK_MASK, "A")
        if length and not flags & (SYN | RST):
            end = (seq + length) & 0xFFFFFFFF
            if me.max_end is not None and ((me.max_end - end) & 0xFFFFFFFF) < 0x80000000:
                me.rxmit += 1
                if me.rxmit == me.rxmit_next:
                    me.rxmit_next *= 10
                    self._history.append("T" if is_orig else "t")
            else:
                me.max_end = end
        if seg.win == 0 and not flags & (SYN | FIN | RST):
            me.win0 += 1
            if me.win0 == me.win0_next:
                me.win0_next *= 10
                self._history.append("W" if is_orig else "w")
        # endpoint state
        if flags & RST:
            me.state = RESET
        elif me.state == RESET:
            pass
        elif flags & FIN:
            me.state = CLOSED
        elif flags & SYN:
            if me.state == INACTIVE:
                me.state = SYN_ACK_SENT if flags & ACK else SYN_SENT
        elif me.state == INACTIVE:
            me.state = PARTIAL
        elif flags & ACK and (
            (me.state == SYN_SENT and peer.state == SYN_ACK_SENT)
            or (me.state == SYN_ACK_SENT and peer.state in (SYN_SENT, ESTABLISHED))
        ):
            me.state = peer.state = ESTABLISHED  # the handshake's ACK

    @property
    def history(self) -> str:
        return ("^" if self.flipped else "") + "".join(self._history)

    @property
    def conn_state(self) -> str:
        o, r = self._orig.state, self._resp.state
        if r == RESET:
            if o in (SYN_SENT, SYN_ACK_SENT) or (o == RESET and not self._bytes_seen()):
                return "REJ"
            return "RSTRH" if o in _INACTIVE_LIKE else "RSTR"
        if o == RESET:
            if r in _INACTIVE_LIKE:
                return "RSTOS0" if self._syn_then_reset() else "OTH"
            return "RSTO"
        if o == CLOSED and r == CLOSED:
            return "SF"
        if o == CLOSED:
            return "SH" if r in _INACTIVE_LIKE else "S2"
        if r == CLOSED:
            return "SHR" if o in _INACTIVE_LIKE else "S3"
        if o == SYN_SENT and r == INACTIVE:
            return "S0"
        if o == ESTABLISHED and r == ESTABLISHED:
            return "S1"
        return "OTH"

    def _bytes_seen(self) -> bool:
        return self._orig.max_end is not None or self._resp.max_end is not None

    def _syn_then_reset(self) -> bool:
        """History: optional ``^``, ``S``, then no H, A, F, G, I or Q before an ``R``."""
        letters = self._history
        if not letters or letters[0] != "S":
            return False
        for c in letters[1:]:
            if c == "R":
                return True
            if c in "HAFGIQ":
                return False
        return False
