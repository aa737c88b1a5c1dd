"""Zeek's conn_state and history, driven by segment scripts: one case per code and per rule.

Every rule of :mod:`tcptrace_sm.zeek` has its row in a table below; a case lists the Zeek
connections (``rows()``: conn_state and history of each) that Zeek carves out of the script.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from segscript import CLIENT, SERVER, T0, Wire

from tcptrace_sm.model import FIN, RST, SYN, Segment
from tcptrace_sm.zeek import MAX_ROWS, ZeekConfig, ZeekRow, ZeekSummary

#: A bare run (``zeek -b``): no protocol scripts, so no likely server ports.
BARE = ZeekConfig(likely_server_ports=frozenset())


class Marked(Segment):
    """A segment as a reader that marks checksum failures and snaplen cuts would deliver it."""

    __slots__ = ()
    bad_checksum = False
    truncated = False


class BadChecksum(Marked):
    __slots__ = ()
    bad_checksum = True


class Truncated(Marked):
    __slots__ = ()
    truncated = True


def summary(w: Wire, config: ZeekConfig | None = None) -> ZeekSummary:
    z = ZeekSummary(w.segments[0], config=config) if config else ZeekSummary(w.segments[0])
    for seg in w.segments:
        z.update(seg)
    return z


def zeek(w: Wire) -> tuple[str, str]:
    z = summary(w)
    return z.conn_state, z.history


def rows(w: Wire, config: ZeekConfig | None = None) -> list[tuple[str, str]]:
    return [(r.conn_state, r.history) for r in summary(w, config).rows()]


def mark(w: Wire, kinds: dict[int, type[Marked]]) -> None:
    """Deliver every segment as ``Marked``; the ones at these indexes as the given kind."""
    w.segments[:] = [kinds.get(i, Marked)(*seg) for i, seg in enumerate(w.segments)]


# -- one case per conn_state code (and the scaled T letter) ----------------------------------


def _s0(w: Wire) -> None:
    w.c.syn()
    w.c.syn(seq=1000, advance=False)


def _s1(w: Wire) -> None:
    w.handshake()
    w.c.data(10)
    w.s.data(10)


def _sf(w: Wire) -> None:
    _s1(w)
    w.c.fin()
    w.s.fin()
    w.c.ack()


def _rej(w: Wire) -> None:
    w.c.syn()
    w.s.rst(seq=0)


def _s2(w: Wire) -> None:
    _s1(w)
    w.c.fin()
    w.s.ack()


def _s3(w: Wire) -> None:
    _s1(w)
    w.s.fin()
    w.c.ack()


def _rsto(w: Wire) -> None:
    _s1(w)
    w.c.rst()


def _rstr(w: Wire) -> None:
    _s1(w)
    w.s.rst()


def _rstos0(w: Wire) -> None:
    w.c.syn()
    w.c.rst(with_ack=False)


def _rstrh(w: Wire) -> None:
    w.c.nxt += 1
    w.s.synack()
    w.s.rst()


def _sh(w: Wire) -> None:
    w.c.syn()
    w.c.fin()


def _shr(w: Wire) -> None:
    w.c.nxt += 1
    w.s.synack()
    w.s.fin()


def _oth(w: Wire) -> None:
    w.c.data(10)
    w.s.data(10)
    w.c.ack()


def _retransmissions(w: Wire) -> None:
    _s1(w)
    for _ in range(12):
        w.c.data(10, seq=1001, advance=False)


CASES: list[tuple[Callable[[Wire], None], str, str]] = [
    (_s0, "S0", "S"),
    (_s1, "S1", "ShADd"),
    (_sf, "SF", "ShADdFf"),
    (_rej, "REJ", "Sr"),
    (_s2, "S2", "ShADdFa"),
    (_s3, "S3", "ShADdf"),
    (_rsto, "RSTO", "ShADdR"),
    (_rstr, "RSTR", "ShADdr"),
    (_rstos0, "RSTOS0", "SR"),
    (_rstrh, "RSTRH", "^hr"),
    (_sh, "SH", "SF"),
    (_shr, "SHR", "^hf"),
    (_oth, "OTH", "DdA"),
    (_retransmissions, "S1", "ShADdTT"),  # the 1st and the 10th retransmission
]


@pytest.mark.parametrize(
    ("script", "state", "history"), CASES, ids=[c[1] + "-" + c[0].__name__ for c in CASES]
)
def test_conn_state_and_history(script: Callable[[Wire], None], state: str, history: str) -> None:
    w = Wire()
    script(w)
    assert zeek(w) == (state, history)
    assert rows(w) == [(state, history)]  # no timer, no reuse: one Zeek connection


# -- Zeek's endpoint state machine -------------------------------------------------------------


def _syn_synack(w: Wire) -> None:
    w.c.syn()
    w.s.synack()  # the SYN-ACK establishes both sides: no ACK needed


def _fin_rst_then_peer_fin(w: Wire) -> None:
    _s1(w)
    w.c.fin()
    w.c.rst()
    w.s.fin()  # turns the FIN-then-RST side back into CLOSED


def _rst_after_both_fins(w: Wire) -> None:
    _sf(w)
    w.c.rst()  # both closed: the RST changes nothing


def _both_reset_no_data(w: Wire) -> None:
    w.c.syn()
    w.s.rst(seq=0)
    w.c.rst(with_ack=False)


def _ack_in_syn_sent(w: Wire) -> None:
    w.c.syn()
    w.c.ack(ack=1)  # an ACK alone never leaves SYN_SENT
    w.c.data(5)


def _syn_then_stuff_then_rst(w: Wire) -> None:
    w.c.syn()
    w.s.ack()
    w.c.raw(FIN)
    w.c.rst(with_ack=False)


def _rst_to_synack(w: Wire) -> None:
    w.c.nxt += 1
    w.s.synack()
    w.c.rst(with_ack=False)


STATE_CASES: list[tuple[Callable[[Wire], None], str, str]] = [
    (_syn_synack, "S1", "Sh"),
    (_fin_rst_then_peer_fin, "SF", "ShADdFRf"),
    (_rst_after_both_fins, "SF", "ShADdFfR"),
    (_both_reset_no_data, "REJ", "SrR"),
    (_ack_in_syn_sent, "S0", "SAD"),
    (_syn_then_stuff_then_rst, "OTH", "SaFR"),  # the FIN before the RST: not RSTOS0
    (_rst_to_synack, "RSTO", "^hR"),  # Zeek's "reject" event, but conn_state() says RSTO
]


@pytest.mark.parametrize(
    ("script", "state", "history"), STATE_CASES, ids=[c[0].__name__ for c in STATE_CASES]
)
def test_endpoint_states(script: Callable[[Wire], None], state: str, history: str) -> None:
    w = Wire()
    script(w)
    assert rows(w) == [(state, history)]


# -- who is the originator ---------------------------------------------------------------------


def _synack_first(w: Wire) -> None:
    w.c.nxt += 1
    w.s.synack()


def _synack_then_ack(w: Wire) -> None:
    _synack_first(w)
    w.c.ack()
    w.c.data(10)


def _synack_then_own_ack(w: Wire) -> None:
    _synack_first(w)
    w.s.ack()
    w.s.fin()


def _synack_then_rst(w: Wire) -> None:
    _synack_first(w)
    w.c.rst(with_ack=False)


def _synack_then_syn(w: Wire) -> None:
    w.s.synack(ack=1001)
    w.c.syn()  # the SYN reordered after its SYN-ACK
    w.c.ack()
    w.c.data(10)
    w.s.data(10)
    w.c.fin()
    w.s.fin()


def _synack_twice_then_ack(w: Wire) -> None:
    _synack_first(w)
    w.s.synack(seq=5000, advance=False)  # the same SYN-ACK again: still a lone 'H'
    w.c.ack()


def _midstream_from_server(w: Wire) -> None:
    w.s.data(10)
    w.c.ack()


def _midstream_from_client(w: Wire) -> None:
    w.c.data(10)
    w.s.ack()


BOTH_LIKELY = ZeekConfig(likely_server_ports=frozenset({80, 40000}))

ORIGINATOR_CASES: list[tuple[str, Callable[[Wire], None], ZeekConfig | None, list[tuple[str, str]]]] = [
    ("synack-from-likely-port", _synack_first, None, [("OTH", "^h")]),
    ("lone-synack-bare", _synack_first, BARE, [("OTH", "H")]),
    ("synack-then-ack-bare", _synack_then_ack, BARE, [("OTH", "^hAD")]),
    ("synack-then-own-ack-bare", _synack_then_own_ack, BARE, [("SHR", "^haf")]),
    ("synack-twice-then-ack-bare", _synack_twice_then_ack, BARE, [("OTH", "^hA")]),
    ("synack-then-rst-bare", _synack_then_rst, BARE, [("REJ", "Hr")]),  # a stealth scan's answer
    ("synack-then-syn-bare", _synack_then_syn, BARE, [("SF", "Hs^ADdFf")]),
    ("midstream-from-server", _midstream_from_server, None, [("OTH", "^dA")]),
    ("midstream-from-server-bare", _midstream_from_server, BARE, [("OTH", "Da")]),
    ("both-likely-lower-source", _midstream_from_server, BOTH_LIKELY, [("OTH", "^dA")]),
    ("both-likely-higher-source", _midstream_from_client, BOTH_LIKELY, [("OTH", "Da")]),
    ("both-likely-synack", _synack_first, BOTH_LIKELY, [("OTH", "H")]),
]


@pytest.mark.parametrize(
    ("script", "config", "expected"), [c[1:] for c in ORIGINATOR_CASES], ids=[c[0] for c in ORIGINATOR_CASES]
)
def test_originator(
    script: Callable[[Wire], None], config: ZeekConfig | None, expected: list[tuple[str, str]]
) -> None:
    w = Wire()
    script(w)
    assert rows(w, config) == expected


def test_flipped_row_names_the_server_as_originator_and_counts_follow() -> None:
    w = Wire()
    _synack_then_own_ack(w)
    (row,) = summary(w, BARE).rows()
    assert (row.orig_h, row.orig_p, row.resp_h, row.resp_p) == (*CLIENT, *SERVER)
    assert (row.orig_pkts, row.resp_pkts) == (0, 3)


# -- Zeek's timers and connection reuse: several Zeek connections in one flow ------------------


def _half_duplex_client(w: Wire) -> None:
    w.c.syn(at=0)
    w.c.ack(ack=5001)
    w.c.data(10)
    w.c.data(10, at=6)  # tcp_attempt_delay (5 s) after the SYN, nothing came back
    w.c.fin()


def _half_duplex_quick(w: Wire) -> None:
    w.c.syn(at=0)
    w.c.ack(ack=5001)
    w.c.data(10, at=4)
    w.c.fin()


def _late_answer(w: Wire) -> None:
    w.c.syn(at=0)
    w.s.synack(at=5)  # the attempt timer fires at 5 s, before this packet


def _ack_after_close(w: Wire) -> None:
    w.handshake()
    w.c.fin()
    w.s.fin()
    w.c.ack(at=5.005)  # tcp_close_delay after the last packet of the close: a new connection


def _ack_soon_after_close(w: Wire) -> None:
    w.handshake()
    w.c.fin()
    w.s.fin()
    w.c.ack(at=4.9)


def _data_after_rst(w: Wire) -> None:
    w.handshake()
    w.c.rst()
    w.c.data(10, at=16)
    w.s.rst(at=16.1)


def _data_soon_after_rst(w: Wire) -> None:
    w.handshake()
    w.c.rst()
    w.c.data(10, at=4)


def _fin_with_silent_peer(w: Wire) -> None:
    w.c.data(10, at=0)
    w.c.fin()
    w.c.ack(at=6)


def _idle_five_minutes(w: Wire) -> None:
    w.c.data(10, at=0)
    w.s.ack(at=0.00001)
    w.c.data(10, seq=1000, advance=False, at=300.00001)  # tcp_inactivity_timeout


def _idle_just_under(w: Wire) -> None:
    w.c.data(10, at=0)
    w.s.ack(at=0.00001)
    w.c.data(10, seq=1000, advance=False, at=300)


def _established_idle(w: Wire) -> None:
    _s1(w)
    w.c.data(10, at=400)


def _syn_resent_after_a_minute(w: Wire) -> None:
    w.c.syn(at=0)
    w.c.syn(at=61, seq=1000, advance=False)  # udp_inactivity_timeout: still in the handshake


def _syn_resent_within_a_minute(w: Wire) -> None:
    w.c.syn(at=0)
    w.c.syn(at=59, seq=1000, advance=False)


def _new_isn_while_established(w: Wire) -> None:
    _s1(w)
    w.c.syn(seq=777)  # IsReuse: not the originator's initial sequence number


def _same_syn_after_rst(w: Wire) -> None:
    w.c.syn()
    w.s.rst(seq=0)
    w.c.syn(seq=1000)  # the same ISN, but the connection was reset


def _syn_resent(w: Wire) -> None:
    w.c.syn()
    w.c.syn(seq=1000, advance=False)
    w.s.synack()


def _simultaneous_open(w: Wire) -> None:
    w.c.syn()
    w.s.syn()  # a SYN from the responder with its own ISN: Zeek's IsReuse says reuse
    w.c.synack(seq=1000, ack=5001)
    w.s.synack(seq=5000, ack=1001)
    w.c.ack()


def _rst_after_fin_then_quiet(w: Wire) -> None:
    _s1(w)
    w.c.fin(at=1)
    w.c.rst(at=1.1)  # the expire timer removes it once it has been quiet for 5 s
    w.s.data(5, at=13)


NO_ATTEMPT = ZeekConfig(tcp_attempt_delay=0)  # no attempt timer to end the handshake first

TIMER_CASES: list[tuple[str, Callable[[Wire], None], ZeekConfig | None, list[tuple[str, str]]]] = [
    ("attempt-timer", _half_duplex_client, None, [("S0", "SAD"), ("SH", "DF")]),
    ("attempt-timer-not-yet", _half_duplex_quick, None, [("SH", "SADF")]),
    ("attempt-timer-late-answer", _late_answer, None, [("S0", "S"), ("OTH", "^h")]),
    ("close-delay", _ack_after_close, None, [("SF", "ShAFf"), ("OTH", "A")]),
    ("close-delay-not-yet", _ack_soon_after_close, None, [("SF", "ShAFf")]),
    ("close-delay-after-rst", _data_after_rst, None, [("RSTO", "ShAR"), ("RSTRH", "Dr")]),
    ("close-delay-after-rst-not-yet", _data_soon_after_rst, None, [("RSTO", "ShARD")]),
    ("close-delay-silent-peer", _fin_with_silent_peer, None, [("SH", "DF"), ("OTH", "A")]),
    ("inactivity", _idle_five_minutes, None, [("OTH", "Da"), ("OTH", "D")]),
    ("inactivity-not-yet", _idle_just_under, None, [("OTH", "DaT")]),
    ("inactivity-established", _established_idle, None, [("S1", "ShADd"), ("OTH", "D")]),
    ("initial-inactivity", _syn_resent_after_a_minute, NO_ATTEMPT, [("S0", "S"), ("S0", "S")]),
    ("initial-inactivity-not-yet", _syn_resent_within_a_minute, NO_ATTEMPT, [("S0", "S")]),
    ("reuse-new-isn", _new_isn_while_established, None, [("S1", "ShADd"), ("S0", "S")]),
    ("reuse-after-rst", _same_syn_after_rst, None, [("REJ", "Sr"), ("S0", "S")]),
    ("syn-retransmission", _syn_resent, None, [("S1", "Sh")]),
    ("simultaneous-open", _simultaneous_open, None, [("S0", "S"), ("S1", "Sha")]),
    ("expire-timer", _rst_after_fin_then_quiet, None, [("RSTO", "ShADdFR"), ("OTH", "^d")]),
]


@pytest.mark.parametrize(
    ("script", "config", "expected"), [c[1:] for c in TIMER_CASES], ids=[c[0] for c in TIMER_CASES]
)
def test_zeek_connections_within_a_flow(
    script: Callable[[Wire], None], config: ZeekConfig | None, expected: list[tuple[str, str]]
) -> None:
    w = Wire()
    script(w)
    z = summary(w, config)
    assert [(r.conn_state, r.history) for r in z.rows()] == expected
    assert (z.conn_state, z.history) == expected[0]  # the flow shows the first one


def test_rows_carry_each_connections_first_packet_and_counts() -> None:
    w = Wire()
    _half_duplex_client(w)
    first, second = summary(w).rows()
    assert first == ZeekRow(T0, *CLIENT, *SERVER, "S0", "SAD", 3, 0)
    assert second == ZeekRow(T0 + 6 * 10**9, *CLIENT, *SERVER, "SH", "DF", 2, 0)


def test_rows_are_bounded() -> None:
    w = Wire()
    for i in range(MAX_ROWS + 10):
        w.c.syn(at=10.0 * i, seq=1000 + i, advance=False)  # every SYN a new ISN: a new connection
    z = summary(w)
    assert len(z.rows()) == MAX_ROWS
    assert z.rows_dropped == 10
    assert z.rows()[0].ts == T0


# -- history letters ---------------------------------------------------------------------------


def _fin_resent(w: Wire) -> None:
    _s1(w)
    w.c.fin()
    w.c.fin(seq=1011, advance=False)  # the same FIN: one F


def _fin_moved(w: Wire) -> None:
    _s1(w)
    w.c.fin(seq=1011, advance=False)
    w.c.fin(5, seq=1011)  # a FIN ending elsewhere: another F


def _rst_twice(w: Wire) -> None:
    _s1(w)
    w.s.rst()
    w.s.rst(seq=5020)


def _rst_resent(w: Wire) -> None:
    _s1(w)
    w.s.rst()
    w.s.rst()


def _zero_windows(w: Wire) -> None:
    w.handshake()
    for _ in range(10):
        w.s.ack(win=0)


def _zero_window_on_rst(w: Wire) -> None:
    w.handshake()
    w.s.rst(win=0)


def _zero_window_after_peer_fin(w: Wire) -> None:
    w.handshake()
    w.c.fin()
    w.s.ack(win=0)


def _zero_window_on_fin(w: Wire) -> None:
    w.handshake()
    w.c.fin(win=0)


def _syn_with_payload(w: Wire) -> None:
    w.c.syn(20)  # Zeek counts the payload of a first SYN as a retransmission
    w.s.synack()


def _rxmit_after_rst(w: Wire) -> None:
    _s1(w)
    w.c.rst()
    w.c.data(10, seq=1001, advance=False)


def _multi_flag(w: Wire) -> None:
    w.handshake()
    w.c.raw(SYN | FIN, seq=1000)  # the originator's own ISN: not a reuse
    w.c.raw(FIN | RST)


HISTORY_CASES: list[tuple[Callable[[Wire], None], str]] = [
    (_fin_resent, "ShADdF"),
    (_fin_moved, "ShADdFF"),
    (_rst_twice, "ShADdrr"),
    (_rst_resent, "ShADdr"),
    (_zero_windows, "ShAaww"),
    (_zero_window_on_rst, "ShAr"),
    (_zero_window_after_peer_fin, "ShAFa"),
    (_zero_window_on_fin, "ShAFW"),
    (_syn_with_payload, "STh"),
    (_rxmit_after_rst, "ShADdR"),
    (_multi_flag, "ShAQI"),
]


@pytest.mark.parametrize(("script", "history"), HISTORY_CASES, ids=[c[0].__name__ for c in HISTORY_CASES])
def test_history_letters(script: Callable[[Wire], None], history: str) -> None:
    w = Wire()
    script(w)
    assert zeek(w)[1] == history


# -- content gaps (G) and the reader's markers (C, truncated payload) --------------------------


def _ack_of_unseen_data(w: Wire) -> None:
    w.handshake()
    w.c.data(10)
    w.c.nxt += 100  # 100 bytes the capture missed
    w.c.data(10)
    w.s.ack()


def _ack_of_unseen_server_data(w: Wire) -> None:
    w.handshake()
    w.s.nxt += 100
    w.c.ack()


def _out_of_order_filled(w: Wire) -> None:
    w.handshake()
    w.c.data(10, seq=1011, advance=False)  # the second segment first
    w.c.data(10)  # fills the hole; Zeek calls it a retransmission (it does not advance)
    w.c.nxt = 1021
    w.s.ack()


def _partial_connection_gap(w: Wire) -> None:
    w.c.data(10)
    w.c.nxt += 100
    w.c.data(10)
    w.s.ack()  # not established: Zeek reports no gap


def _gap_before_fin(w: Wire) -> None:
    w.handshake()
    w.s.nxt += 100
    w.s.fin()
    w.c.ack()  # the FIN's ACK reveals the missing bytes before it


def _gaps_ten_times(w: Wire) -> None:
    w.handshake()
    for _ in range(10):
        w.s.nxt += 10
        w.c.ack()


GAP_CASES: list[tuple[Callable[[Wire], None], str]] = [
    (_ack_of_unseen_data, "ShADaG"),
    (_ack_of_unseen_server_data, "ShAg"),
    (_out_of_order_filled, "ShADTa"),  # no gap
    (_partial_connection_gap, "Da"),
    (_gap_before_fin, "ShAfg"),
    (_gaps_ten_times, "ShAgg"),
]


@pytest.mark.parametrize(("script", "history"), GAP_CASES, ids=[c[0].__name__ for c in GAP_CASES])
def test_content_gaps(script: Callable[[Wire], None], history: str) -> None:
    w = Wire()
    script(w)
    assert zeek(w)[1] == history


def test_bad_checksums_are_recorded_and_otherwise_ignored() -> None:
    w = Wire()
    w.c.syn()
    w.s.synack()
    w.c.ack()
    w.c.data(10)
    w.s.ack()
    mark(w, {1: BadChecksum, 3: BadChecksum})
    assert rows(w) == [("S0", "ScACa")]  # the SYN-ACK never counted: still a connection attempt
    assert summary(w).rows()[0][7:] == (2, 1)  # bad segments are not counted either


def test_a_bad_checksum_can_open_the_connection() -> None:
    w = Wire()
    w.c.syn()
    mark(w, {0: BadChecksum})
    assert rows(w, BARE) == [("OTH", "C")]


def test_only_bad_checksums_expire_after_the_linger_time() -> None:
    w = Wire()
    w.c.syn(at=0)
    w.c.syn(at=12, seq=1000, advance=False)  # expire timer at 5 s, then 11 s: nobody is active
    mark(w, {0: BadChecksum, 1: BadChecksum})
    assert rows(w) == [("OTH", "C"), ("OTH", "C")]


def test_truncated_payload_is_a_gap_once_acknowledged() -> None:
    w = Wire()
    w.handshake()
    w.c.data(100)
    w.s.ack()
    mark(w, {3: Truncated})
    assert zeek(w)[1] == "ShADaG"


def test_plain_segments_need_no_markers() -> None:
    w = Wire()
    _sf(w)
    plain = zeek(w)
    mark(w, {})
    assert zeek(w) == plain


# -- through the whole pipeline ----------------------------------------------------------------


def test_flow_records_carry_the_zeek_fields() -> None:
    from conftest import SAMPLES

    import tcptrace_sm

    a = tcptrace_sm.analyze(SAMPLES / "kernel" / "refused.pcap")
    assert (a.flow_records[0]["conn_state"], a.flow_records[0]["history"]) == ("REJ", "Sr")


# -- a cleanly closed connection rebuilt without its segments ----------------------------------


@pytest.mark.parametrize(("rxmit", "win0"), [(0, 0), (1, 0), (12, 3), (0, 10)])
def test_a_clean_close_rebuilt_is_the_summary_fed_its_segments(rxmit: int, win0: int) -> None:
    """:meth:`ZeekSummary.closed` holds what a summary fed the segments holds, field by field
    (the faster engine drops a closed connection's segments and rebuilds it this way)."""
    from tcptrace_sm.zeek import ClosedSide

    w = Wire()
    w.handshake()
    first = w.c.data(100)
    for _ in range(rxmit):  # retransmissions of the same bytes: Zeek's T, scaled
        w.c.send(first.flags, 100, seq=first.seq)
    w.s.ack()
    for _ in range(win0):  # zero windows from the client: W, scaled
        w.c.ack(win=0)
    w.s.data(50)
    w.c.fin()
    w.s.fin()
    w.c.ack()
    fed = summary(w)
    c_isn, s_isn = w.segments[0].seq, w.segments[1].seq
    last_fin = w.segments[-2]
    rebuilt = ZeekSummary.closed(
        ts=w.segments[0].ts,
        last_time=last_fin.ts,
        history=fed.history,
        orig=ClosedSide(*CLIENT, c_isn, 101, 102, 5 + rxmit + win0, rxmit, win0),
        resp=ClosedSide(*SERVER, s_isn, 51, 52, 4, 0, 0),
    )
    assert rebuilt.rows() == fed.rows()

    def state(z: ZeekSummary) -> dict[str, object]:
        c = z._conn
        out: dict[str, object] = {k: getattr(c, k) for k in type(c).__slots__ if k not in ("orig", "resp")}
        for side in ("orig", "resp"):
            ep = getattr(c, side)
            out |= {f"{side}.{k}": getattr(ep, k) for k in type(ep).__slots__ if k != "peer"}
        return out

    assert state(rebuilt) == state(fed)
    # and the next segment is judged alike: here a retransmitted FIN within the close delay
    again = w.s.send(FIN | 0x10, seq=last_fin.seq, advance=False)
    fed.update(again)
    rebuilt.update(again)
    assert state(rebuilt) == state(fed)
