"""The core, driven by tiny segment scripts (no capture files)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest
from segscript import Wire, codes, path, states

from tcptrace_sm.anomalies import CATALOGUE, Category
from tcptrace_sm.machine import TRANSITIONS, Dir, Event, bad_flags_code, errno_for_reset, seq_gt, seq_lt
from tcptrace_sm.model import ACK, FIN, PSH, RST, SYN, URG, Side, TcpState

S = TcpState
C, SV = Side.CLIENT, Side.SERVER


def violations(conn: object) -> list[str]:
    return [c for c in codes(conn) if CATALOGUE[c].category is Category.VIOLATION]  # type: ignore[arg-type]


# --- opening ---------------------------------------------------------------------------------


def test_active_and_passive_open() -> None:
    w = Wire()
    w.handshake()
    conn = w.run()
    assert path(conn, C) == [S.CLOSED, S.SYN_SENT, S.ESTABLISHED]
    assert path(conn, SV) == [S.CLOSED, S.LISTEN, S.SYN_RECEIVED, S.ESTABLISHED]
    listen = next(t for t in conn.transitions if t.to_state is S.LISTEN)
    assert listen.inferred
    assert listen.frame == 1
    assert listen.cause == "passive open"
    syn_rcvd = next(t for t in conn.transitions if t.to_state is S.SYN_RECEIVED)
    assert syn_rcvd.frame == 1
    assert not syn_rcvd.inferred
    assert syn_rcvd.cause == "received SYN"
    assert conn.close == "open"
    assert codes(conn) == []


def test_refused_connection_never_listened() -> None:
    w = Wire()
    w.c.syn()
    w.s.rst(seq=0)
    conn = w.run()
    assert states(conn) == (S.CLOSED, S.CLOSED)
    assert path(conn, SV) == [S.CLOSED]  # nobody listened: no LISTEN, no SYN-RECEIVED
    assert path(conn, C) == [S.CLOSED, S.SYN_SENT, S.CLOSED]
    assert (conn.close, conn.rst_by, conn.errno) == ("refused", SV, "ECONNREFUSED")
    assert codes(conn) == ["rst_terminated"]


def test_unanswered_syn_is_an_artifact_not_a_violation() -> None:
    w = Wire()
    w.c.syn()
    w.c.syn(seq=1000, advance=False)
    w.c.syn(seq=1000, advance=False)
    conn = w.run()
    assert states(conn) == (S.SYN_SENT, S.CLOSED)
    assert path(conn, C) == [S.CLOSED, S.SYN_SENT]  # retransmissions: no double transition
    assert conn.close == "unanswered"
    assert codes(conn) == ["unanswered_syn"]
    assert conn.client.retransmissions == 2


def test_retransmitted_syn_and_synack_do_not_transition_twice() -> None:
    w = Wire()
    w.c.syn()
    w.c.syn(seq=1000, advance=False)
    w.s.synack()
    w.s.synack(seq=5000, advance=False)
    w.c.ack()
    conn = w.run()
    assert path(conn, C) == [S.CLOSED, S.SYN_SENT, S.ESTABLISHED]
    assert path(conn, SV) == [S.CLOSED, S.LISTEN, S.SYN_RECEIVED, S.ESTABLISHED]
    assert codes(conn) == []


def test_simultaneous_open() -> None:
    w = Wire()
    w.c.syn()
    w.s.syn()  # crosses the client's SYN
    w.c.synack(seq=1000, advance=False)
    w.s.synack(seq=5000, advance=False)
    conn = w.run()
    assert states(conn) == (S.ESTABLISHED, S.ESTABLISHED)
    for side in (C, SV):
        assert path(conn, side) == [S.CLOSED, S.SYN_SENT, S.SYN_RECEIVED, S.ESTABLISHED]
    assert "simultaneous_open" in codes(conn)
    assert violations(conn) == []


def test_fast_open_data_on_syn_is_legal() -> None:
    w = Wire()
    tfo_cookie = bytes([34, 10]) + b"\x01" * 8
    w.c.syn(length=50, options=tfo_cookie)
    w.s.synack()
    w.s.data(200)  # a TFO server may send before the handshake's ACK arrives
    w.c.ack()
    conn = w.run()
    assert states(conn) == (S.ESTABLISHED, S.ESTABLISHED)
    assert "syn_with_data" in codes(conn)
    assert violations(conn) == []


# --- closing ---------------------------------------------------------------------------------


@pytest.mark.parametrize("closer", [C, SV])
def test_orderly_close_from_either_side(closer: Side) -> None:
    w = Wire()
    w.handshake()
    w.c.data(100)
    w.s.data(300)
    first, second = (w.c, w.s) if closer is C else (w.s, w.c)
    first.fin()
    second.ack()
    second.fin()
    first.ack()
    conn = w.run()
    active = [S.ESTABLISHED, S.FIN_WAIT_1, S.FIN_WAIT_2, S.TIME_WAIT]
    passive = [S.ESTABLISHED, S.CLOSE_WAIT, S.LAST_ACK, S.CLOSED]
    assert path(conn, closer)[-4:] == active
    assert path(conn, closer.peer)[-4:] == passive
    assert conn.close == "fin"
    assert conn.rst_by is None
    assert codes(conn) == []


def test_fin_acking_our_fin_goes_straight_through_fin_wait_2_to_time_wait() -> None:
    w = Wire()
    w.handshake()
    w.c.fin()
    w.s.fin()  # acknowledges the client's FIN and carries the server's
    w.c.ack()
    conn = w.run()
    assert path(conn, C)[-4:] == [S.ESTABLISHED, S.FIN_WAIT_1, S.FIN_WAIT_2, S.TIME_WAIT]
    fw2, tw = (t for t in conn.transitions if t.side is C and t.to_state in (S.FIN_WAIT_2, S.TIME_WAIT))
    assert fw2.frame == tw.frame == 5


def test_simultaneous_close_goes_through_closing() -> None:
    w = Wire()
    w.handshake()
    w.c.fin()
    w.s.send(FIN | ACK, ack=1001)  # sent before the client's FIN arrived: does not ack it
    w.c.ack()
    w.s.ack()
    conn = w.run()
    for side in (C, SV):
        assert path(conn, side)[-4:] == [S.ESTABLISHED, S.FIN_WAIT_1, S.CLOSING, S.TIME_WAIT]
    assert states(conn) == (S.TIME_WAIT, S.TIME_WAIT)
    assert codes(conn) == ["simultaneous_close"]


def test_half_close_with_data_flowing_after_the_fin() -> None:
    w = Wire()
    w.handshake()
    w.c.data(50)
    w.c.fin()
    for i in range(5):
        w.s.data(1000, at=0.5 + i * 0.5)  # gaps below the close-wait timeout
        w.c.ack()
    conn = w.run(close_wait_timeout=1.0)
    assert states(conn) == (S.FIN_WAIT_2, S.CLOSE_WAIT)
    assert conn.close == "half"
    assert codes(conn) == []  # keeps sending: not stuck


def test_fin_carrying_data() -> None:
    w = Wire()
    w.handshake()
    w.c.fin(length=120)
    w.s.fin()
    w.c.ack()
    conn = w.run()
    assert states(conn) == (S.TIME_WAIT, S.CLOSED)
    assert conn.client.fin_seq == 1001 + 120
    assert codes(conn) == []


def test_retransmitted_fin_does_not_transition_twice() -> None:
    w = Wire()
    w.handshake()
    w.c.fin()
    w.c.fin(seq=1001, advance=False)
    w.s.ack()
    w.s.fin()
    w.s.fin(seq=5001, advance=False)
    w.c.ack()
    conn = w.run()
    assert path(conn, C) == [S.CLOSED, S.SYN_SENT, S.ESTABLISHED, S.FIN_WAIT_1, S.FIN_WAIT_2, S.TIME_WAIT]
    assert path(conn, SV)[-3:] == [S.CLOSE_WAIT, S.LAST_ACK, S.CLOSED]
    assert codes(conn) == []


@pytest.mark.parametrize(
    ("time_wait", "end", "client_state"),
    [(60.0, 59.0, S.TIME_WAIT), (60.0, 61.0, S.CLOSED), (2.0, 2.5, S.CLOSED), (2.0, 1.0, S.TIME_WAIT)],
)
def test_time_wait_expires_after_2msl_of_capture_time(
    time_wait: float, end: float, client_state: TcpState
) -> None:
    w = Wire()
    w.handshake()
    w.c.fin(at=0.0)
    w.s.fin(at=0.0)
    w.c.ack(at=0.0)
    conn = w.run(end=end, time_wait=time_wait)
    assert conn.client.state is client_state
    if client_state is S.CLOSED:
        timer = conn.transitions[-1]
        assert (timer.from_state, timer.cause, timer.inferred, timer.frame) == (
            S.TIME_WAIT,
            "timer",
            True,
            None,
        )


# --- resets ----------------------------------------------------------------------------------


def _to_state(w: Wire, target: TcpState, side: Side) -> None:
    """Drive the script until ``side`` is in ``target`` (as a client or a server)."""
    me, peer = (w.c, w.s) if side is C else (w.s, w.c)
    if side is C:
        w.c.syn()
        if target is S.SYN_SENT:
            return
        w.s.synack()
        w.c.ack()
    else:
        w.c.syn()
        w.s.synack()
        if target is S.SYN_RECEIVED:
            return
        w.c.ack()
    if target is S.ESTABLISHED:
        return
    if target in (S.FIN_WAIT_1, S.FIN_WAIT_2, S.TIME_WAIT, S.CLOSING):
        me.fin()
        if target is S.FIN_WAIT_1:
            return
        if target is S.CLOSING:
            peer.send(FIN | ACK, ack=me.nxt - 1)
            return
        peer.ack()
        if target is S.TIME_WAIT:
            peer.fin()
            me.ack()
        return
    peer.fin()
    if target is S.CLOSE_WAIT:
        return
    me.fin()  # LAST-ACK


RST_STATES = [s for s in TcpState if s not in (S.CLOSED, S.LISTEN)]


def _role_states(states: list[TcpState]) -> list[tuple[TcpState, Side]]:
    """(state, side) pairs reachable without simultaneous open: only clients are SYN-SENT and
    only servers SYN-RECEIVED."""
    return [
        (st, side)
        for st in states
        for side in (C, SV)
        if not ((st is S.SYN_SENT and side is SV) or (st is S.SYN_RECEIVED and side is C))
    ]


@pytest.mark.parametrize(("state", "side"), _role_states(RST_STATES))
def test_rst_received_in_every_state(state: TcpState, side: Side) -> None:
    w = Wire()
    _to_state(w, state, side)
    assert (w.run().client if side is C else w.run().server).state is state
    peer = w.s if side is C else w.c
    peer.rst(ack=(w.c if side is C else w.s).nxt)
    conn = w.run()
    me = conn.client if side is C else conn.server
    assert me.state is S.CLOSED
    assert conn.rst_by is side.peer
    assert conn.errno == errno_for_reset(state)
    assert conn.close == ("refused" if state is S.SYN_SENT else "rst")
    assert violations(conn) == []
    if state is S.TIME_WAIT:
        assert "rst_in_time_wait" in codes(conn)
    else:
        assert "rst_terminated" in codes(conn)


@pytest.mark.parametrize(("state", "side"), _role_states([s for s in RST_STATES if s is not S.TIME_WAIT]))
def test_rst_sent_in_every_state(state: TcpState, side: Side) -> None:
    w = Wire()
    _to_state(w, state, side)
    me = w.c if side is C else w.s
    me.rst()
    conn = w.run()
    ep = conn.client if side is C else conn.server
    assert ep.state is S.CLOSED
    assert path(conn, side)[-2:] == [state, S.CLOSED]
    assert conn.rst_by is side
    assert violations(conn) == []


def test_errno_mapping_follows_linux_tcp_reset() -> None:
    assert errno_for_reset(S.SYN_SENT) == "ECONNREFUSED"
    assert errno_for_reset(S.CLOSE_WAIT) == "EPIPE"
    for st in (S.SYN_RECEIVED, S.ESTABLISHED, S.FIN_WAIT_1, S.FIN_WAIT_2, S.CLOSING, S.LAST_ACK):
        assert errno_for_reset(st) == "ECONNRESET"
    assert errno_for_reset(S.CLOSED) is None


@pytest.mark.parametrize(
    ("with_ack", "ack", "said"),
    [(True, 999_999, "RST acknowledging 999999"), (False, 0, "RST without an ACK")],
)
def test_rst_in_syn_sent_without_acceptable_ack_is_ignored(with_ack: bool, ack: int, said: str) -> None:
    """RFC 9293 §3.10.7.3: an RST answering a SYN must acknowledge it; else it is dropped (no
    refusal), and the anomaly says so."""
    w = Wire()
    w.c.syn()
    w.s.rst(with_ack=with_ack, ack=ack)
    conn = w.run()
    assert conn.client.state is S.SYN_SENT
    assert conn.close != "refused"
    (note,) = conn.anomalies
    assert (note.code, note.side, note.state) == ("rst_out_of_window", SV, S.SYN_SENT)
    assert note.detail == f"{said} answering the SYN (ISN 1000): the client ignores it"


# --- stuck CLOSE-WAIT ---------------------------------------------------------------------------


def test_stuck_close_wait_until_end_of_capture() -> None:
    w = Wire()
    w.handshake()
    w.s.data(100, at=0.1)
    w.c.fin(at=0.2)
    w.s.ack(at=0.2)
    conn = w.run(end=5.2, close_wait_timeout=2.0)
    assert states(conn) == (S.FIN_WAIT_2, S.CLOSE_WAIT)
    [stuck] = [a for a in conn.anomalies if a.code == "stuck_close_wait"]
    assert stuck.side is SV
    assert stuck.state is S.CLOSE_WAIT
    assert "5.000 s" in stuck.detail


def test_stuck_close_wait_ended_by_rst() -> None:
    w = Wire()
    w.handshake()
    w.c.fin(at=0.1)
    w.s.ack(at=0.1)
    w.c.rst(at=4.0, seq=w.c.nxt)
    conn = w.run(close_wait_timeout=2.0)
    assert conn.errno == "EPIPE"
    assert {"stuck_close_wait", "rst_terminated"} <= set(codes(conn))


def test_close_wait_below_timeout_is_not_stuck() -> None:
    w = Wire()
    w.handshake()
    w.c.fin(at=0.1)
    w.s.ack(at=0.1)
    conn = w.run(end=0.9, close_wait_timeout=1.0)
    assert conn.server.state is S.CLOSE_WAIT
    assert "stuck_close_wait" not in codes(conn)


def test_late_close_is_not_stuck() -> None:
    w = Wire()
    w.handshake()
    w.c.fin(at=0.1)
    w.s.ack(at=0.1)
    w.s.fin(at=3.0)
    w.c.ack(at=3.0)
    conn = w.run(close_wait_timeout=1.0)
    assert "stuck_close_wait" not in codes(conn)


# --- violations: one test each ----------------------------------------------------------------------

Script = Callable[[Wire], None]


def _syn_fin(w: Wire) -> None:
    w.c.raw(SYN | FIN)


def _syn_rst(w: Wire) -> None:
    w.handshake()
    w.c.raw(SYN | RST)


def _null(w: Wire) -> None:
    w.handshake()
    w.c.raw(0, 10)


def _all(w: Wire) -> None:
    w.handshake()
    w.c.raw(FIN | SYN | RST | PSH | ACK | URG)


def _missing_ack(w: Wire) -> None:
    w.handshake()
    w.c.raw(PSH, 100)


def _isn_changed(w: Wire) -> None:
    w.handshake()
    w.c.data(10)
    w.c.syn(seq=77777)


def _synack_bad_ack(w: Wire) -> None:
    w.c.syn()
    w.s.synack(ack=4242)


def _data_before_handshake(w: Wire) -> None:
    w.c.syn()
    w.c.raw(PSH, 100)


def _fin_before_handshake(w: Wire) -> None:
    w.c.syn()
    w.c.raw(FIN)


def _data_after_fin(w: Wire) -> None:
    w.handshake()
    w.c.fin()
    w.c.data(100)


def _fin_after_fin(w: Wire) -> None:
    w.handshake()
    w.c.data(10)
    w.c.fin()
    w.c.fin(seq=w.c.nxt + 50)


def _fin_moved_back(w: Wire) -> None:
    w.handshake()
    w.c.data(10)
    w.c.fin()
    w.c.fin(seq=w.c.nxt - 5)


def _ack_unsent(w: Wire) -> None:
    w.handshake()
    w.c.ack(ack=w.s.nxt + 1000)  # acknowledges 1000 bytes the server never sent ...
    w.s.ack()  # ... and the server's next segment shows it had sent nothing more


def _ack_beyond_fin(w: Wire) -> None:
    w.handshake()
    w.s.fin()
    w.c.ack(ack=w.s.nxt + 10)


def _beyond_window(w: Wire) -> None:
    w.handshake()
    w.s.ack(win=1000)  # the server can take 1000 bytes
    w.c.data(3000)  # the client sends 3000
    w.s.ack(ack=w.c.nxt - 2000, win=0)  # the server takes what fitted


VIOLATION_SCRIPTS: dict[str, list[Script]] = {
    "flags_syn_fin": [_syn_fin],
    "flags_syn_rst": [_syn_rst],
    "flags_null": [_null],
    "flags_all": [_all],
    "missing_ack": [_missing_ack],
    "syn_isn_changed": [_isn_changed],
    "synack_bad_ack": [_synack_bad_ack],
    "data_before_handshake": [_data_before_handshake, _fin_before_handshake],
    "data_after_fin": [_data_after_fin, _fin_after_fin],
    "data_beyond_window": [_beyond_window],
    "fin_seq_changed": [_fin_moved_back],
    "ack_unsent_data": [_ack_unsent, _ack_beyond_fin],
}


@pytest.mark.parametrize(
    ("code", "script"),
    [pytest.param(code, s, id=s.__name__.strip("_")) for code, ss in VIOLATION_SCRIPTS.items() for s in ss],
)
def test_each_violation_has_its_own_case(code: str, script: Script) -> None:
    w = Wire()
    script(w)
    conn = w.run()
    assert violations(conn) == [code]


def test_every_violation_code_is_exercised() -> None:
    catalogued = {k.code for k in CATALOGUE.values() if k.category is Category.VIOLATION}
    assert catalogued == set(VIOLATION_SCRIPTS)


@pytest.mark.parametrize(
    ("flags", "code"),
    [
        (SYN | FIN, "flags_syn_fin"),
        (SYN | FIN | ACK, "flags_syn_fin"),
        (SYN | RST, "flags_syn_rst"),
        (0, "flags_null"),
        (FIN | SYN | RST | PSH | ACK | URG, "flags_all"),
        (SYN, None),
        (SYN | ACK, None),
        (RST | ACK, None),
        (FIN | PSH | ACK, None),
    ],
)
def test_bad_flag_combinations(flags: int, code: str | None) -> None:
    assert bad_flags_code(flags) == code


# --- artifacts are not violations ----------------------------------------------------------------


def test_midstream_pickup() -> None:
    w = Wire()
    w.s.data(100)  # from port 80: the server
    w.c.ack()
    w.c.fin()
    w.s.fin()
    w.c.ack()
    conn = w.run()
    assert conn.midstream
    assert (conn.server.port, conn.client.port) == (80, 40000)
    assert states(conn) == (S.TIME_WAIT, S.CLOSED)
    first = conn.transitions[0]
    assert first.inferred
    assert first.to_state is S.ESTABLISHED
    assert codes(conn) == ["midstream"]


def test_synack_without_syn_makes_its_sender_the_server() -> None:
    w = Wire()
    w.c.nxt += 1  # the SYN went by uncaptured
    w.s.synack()
    w.c.ack()
    conn = w.run()
    assert not conn.midstream
    assert (conn.server.port, conn.client.port) == (80, 40000)
    assert states(conn) == (S.ESTABLISHED, S.ESTABLISHED)
    assert codes(conn) == ["syn_not_captured"]


def test_missing_synack_is_inferred_from_the_clients_ack() -> None:
    w = Wire()
    w.c.syn()
    w.s.nxt += 1  # the SYN-ACK was not captured
    w.c.ack()
    w.c.data(10)
    conn = w.run()
    assert states(conn) == (S.ESTABLISHED, S.ESTABLISHED)
    assert violations(conn) == []
    assert "segment_not_captured" in codes(conn)
    assert any(t.inferred and t.cause.endswith("(not captured)") for t in conn.transitions)


def test_ack_of_uncaptured_data_is_an_artifact() -> None:
    w = Wire()
    w.handshake()
    w.s.nxt += 500  # 500 bytes from the server that the capture missed
    w.c.ack()
    w.s.data(100)
    conn = w.run()
    assert violations(conn) == []
    assert "segment_not_captured" in codes(conn)


def test_one_direction_only() -> None:
    w = Wire()
    w.s.data(100)
    w.s.data(100)
    conn = w.run()
    assert "one_direction_only" in codes(conn)
    assert violations(conn) == []


# --- flows: reuse ---------------------------------------------------------------------------


def test_four_tuple_reuse_after_time_wait_is_a_new_connection() -> None:
    w = Wire()
    w.handshake()
    w.s.fin()  # the server closes first and holds TIME-WAIT
    w.c.ack()
    w.c.fin()
    w.s.ack()
    w.c.nxt = 90_000
    w.handshake()
    conns = w.run_all()
    assert len(conns) == 2
    old, new = conns
    assert (old.flow_id, new.flow_id) == (1, 8)  # each one's first frame
    assert states(old) == (S.CLOSED, S.CLOSED)
    assert old.transitions[-1].cause == "TIME-WAIT ended by a new SYN on the 4-tuple"
    assert states(new) == (S.ESTABLISHED, S.ESTABLISHED)
    assert violations(old) == violations(new) == []


def test_new_syn_on_live_connection_is_not_a_new_connection() -> None:
    w = Wire()
    w.handshake()
    w.c.syn(seq=123)
    conns = w.run_all()
    assert len(conns) == 1
    assert violations(conns[0]) == ["syn_isn_changed"]


def test_sequence_numbers_wrap_past_2_32() -> None:
    w = Wire(client_isn=0xFFFFFF00, server_isn=0xFFFFFFF0)
    w.handshake()
    for _ in range(5):
        w.c.data(100)
        w.s.ack()
    w.s.data(64)
    w.c.fin()
    w.s.fin()
    w.c.ack()
    conn = w.run()
    assert states(conn) == (S.TIME_WAIT, S.CLOSED)
    assert codes(conn) == []


def test_seq_compare_mod_2_32() -> None:
    assert seq_lt(0xFFFFFFF0, 5)
    assert seq_gt(5, 0xFFFFFFF0)
    assert not seq_lt(5, 5)


# --- the table itself ----------------------------------------------------------------------------


def test_every_state_is_reachable_in_the_table() -> None:
    reached = {S.CLOSED}
    frontier = [S.CLOSED]
    while frontier:
        st = frontier.pop()
        for (frm, _d, _e), to in TRANSITIONS.items():
            if frm is st and to not in reached:
                reached.add(to)
                frontier.append(to)
    assert reached == set(TcpState)


def test_every_state_is_reached_by_some_script() -> None:
    reached: set[TcpState] = set()
    for target in TcpState:
        for side in (C, SV):
            w = Wire()
            if target in (S.CLOSED, S.LISTEN):
                w.handshake()
            else:
                try:
                    _to_state(w, target, side)
                except AssertionError:
                    continue
            conn = w.run()
            reached.update(t.to_state for t in conn.transitions)
    assert reached == set(TcpState)


def test_both_directions_use_one_table() -> None:
    directions = {d for (_s, d, _e) in TRANSITIONS}
    assert {Dir.SEND, Dir.RECV} <= directions
    assert (S.ESTABLISHED, Dir.SEND, Event.FIN) in TRANSITIONS
    assert (S.ESTABLISHED, Dir.RECV, Event.FIN) in TRANSITIONS


def test_segments_the_core_ignores_do_not_raise() -> None:
    w = Wire()
    for flags in range(256):
        w.c.raw(flags, flags % 3, seq=flags * 7919, ack=flags * 104729)
        w.s.raw(255 - flags, 0, seq=flags * 31, ack=flags)
    conns = w.run_all()
    assert conns


def test_core_imports_no_io_libraries() -> None:
    code = (
        "import sys, tcptrace_sm.machine, tcptrace_sm.flows;"
        "bad = [m for m in ('dpkt', 'click', 'pandas', 'numpy') if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_retransmitted_synack_means_the_handshake_ack_was_lost() -> None:
    w = Wire()
    w.handshake()
    w.s.synack(seq=5000, advance=False)  # the server never got the ACK ...
    w.c.ack()  # ... and a repeated bare ACK is no proof that this one arrived
    conn = w.run()
    assert states(conn) == (S.ESTABLISHED, S.SYN_RECEIVED)
    assert path(conn, SV) == [S.CLOSED, S.LISTEN, S.SYN_RECEIVED]
    assert violations(conn) == []


def test_server_data_after_a_lost_handshake_ack_shows_it_got_there() -> None:
    w = Wire()
    w.handshake()
    w.s.synack(seq=5000, advance=False)
    w.c.ack()
    w.s.data(100)
    conn = w.run()
    assert states(conn) == (S.ESTABLISHED, S.ESTABLISHED)
    assert "segment_not_captured" not in codes(conn)


# --- fidelity: what the capture proves about delivery (RFC 5961, lost segments) ---------------


def test_rst_out_of_window_is_ignored_and_the_connection_lives_on() -> None:
    w = Wire()
    w.handshake()
    w.c.rst(seq=w.c.nxt + 10_000_000)  # far outside the server's window
    w.c.data(10)
    w.s.ack()
    conn = w.run()
    assert states(conn) == (S.ESTABLISHED, S.ESTABLISHED)
    assert "rst_out_of_window" in codes(conn)
    assert conn.rst_by is None
    assert violations(conn) == []


def test_rst_in_window_draws_a_challenge_ack() -> None:
    w = Wire()
    w.handshake()
    w.c.rst(seq=w.c.nxt + 100)  # inside the window, not at RCV.NXT
    w.s.ack()  # the challenge ACK
    conn = w.run()
    assert states(conn) == (S.ESTABLISHED, S.ESTABLISHED)
    assert "rst_in_window" in codes(conn)


def test_in_window_rst_without_any_answer_did_reset() -> None:
    # the capture missed 100 bytes of the client's: its RST looks in-window but was exact
    w = Wire()
    w.handshake()
    w.c.rst(seq=w.c.nxt + 100)
    conn = w.run()
    assert states(conn) == (S.CLOSED, S.CLOSED)
    assert conn.rst_by is C
    assert conn.close == "rst"


def test_forged_exact_rst_then_the_real_endpoint_keeps_talking() -> None:
    w = Wire()
    w.handshake()
    w.c.rst()  # forged in the client's name, exactly at RCV.NXT: the server is reset ...
    w.c.data(10)  # ... but the real client knows nothing of it
    w.s.rst(seq=w.s.nxt, with_ack=False)  # the server has no socket any more
    conn = w.run()
    assert states(conn) == (S.CLOSED, S.CLOSED)
    assert "rst_injected" in codes(conn)
    assert violations(conn) == []
    assert path(conn, C)[-2:] == [S.ESTABLISHED, S.CLOSED]
    assert conn.rst_by is SV


def test_lost_rst_then_a_second_rst() -> None:
    w = Wire()
    w.handshake()
    w.c.rst()  # the client aborts; its RST is lost on the way
    w.s.data(100)  # the server carries on: it never got the RST
    w.c.rst(seq=w.c.nxt)  # the client's kernel answers with a second RST
    conn = w.run()
    assert states(conn) == (S.CLOSED, S.CLOSED)
    assert "rst_not_received" in codes(conn)
    assert (conn.rst_by, conn.errno) == (C, "ECONNRESET")
    assert codes(conn).count("rst_terminated") == 1


@pytest.mark.parametrize(("end", "final"), [(1.2, S.FIN_WAIT_1), (5.0, S.FIN_WAIT_2)])
def test_retransmitted_fin_means_its_ack_was_lost(end: float, final: TcpState) -> None:
    w = Wire()
    w.handshake()
    w.c.fin(at=0.0)
    w.s.ack(at=0.0)  # lost on the way back to the client ...
    w.c.fin(seq=1001, advance=False, at=0.2)  # ... so the client resends its FIN
    w.s.ack(at=0.2)  # a repeat of the ACK: arrived or not? The client's silence tells
    w.c.fin(seq=1001, advance=False, at=0.6)
    w.s.ack(at=0.6)
    conn = w.run(end=end)
    # RTO doubled to 0.4 s: a client still waiting would resend by 0.6 + 0.8 s
    assert conn.client.state is final
    assert conn.server.state is S.CLOSE_WAIT
    assert violations(conn) == []


def test_fin_lost_while_the_other_side_closes_ends_in_closing() -> None:
    w = Wire()
    w.handshake()
    w.c.fin(at=0.0)  # lost before the server
    w.s.send(FIN | ACK, ack=1001, at=0.01)  # the server closes too, without having seen it
    w.c.ack(at=0.01)  # lost as well ...
    w.c.fin(seq=1001, advance=False, at=0.2)
    w.s.fin(seq=5001, ack=1001, advance=False, at=0.25)  # ... as the server's own retransmission shows
    w.c.ack(at=0.25)
    w.c.fin(seq=1001, advance=False, at=0.6)
    conn = w.run(end=0.7)
    assert conn.client.state is S.CLOSING
    assert conn.server.state is S.FIN_WAIT_1
    assert violations(conn) == []


def test_synack_lost_seen_from_the_server_side() -> None:
    w = Wire()
    w.c.syn(at=0.0)
    w.s.synack(at=0.0)
    w.c.syn(seq=1000, advance=False, at=1.0)
    w.s.synack(seq=5000, advance=False, at=1.0)
    w.c.syn(seq=1000, advance=False, at=3.0)
    w.s.synack(seq=5000, advance=False, at=3.0)
    conn = w.run(end=3.5)
    assert states(conn) == (S.SYN_SENT, S.SYN_RECEIVED)


def test_keepalive_and_zero_window_probes_are_not_anomalies() -> None:
    w = Wire()
    w.handshake()
    w.c.data(100)
    w.s.ack()
    for _ in range(3):
        w.c.ack(seq=w.c.nxt - 1)  # keep-alive: SND.UNA - 1, no data
        w.s.ack()
    w.c.data(1)  # zero-window probe: one byte
    w.s.send(ACK, ack=w.c.nxt - 1)  # window still closed: the byte is not taken
    conn = w.run()
    assert codes(conn) == []
    assert states(conn) == (S.ESTABLISHED, S.ESTABLISHED)


def test_synack_captured_before_its_syn() -> None:
    w = Wire()
    w.c.nxt += 1
    w.s.synack(at=0.0)
    w.c.syn(seq=1000, advance=False, at=0.0)  # merged captures put the SYN second
    w.c.ack(at=0.001)
    conn = w.run()
    assert (conn.client.port, conn.server.port) == (40000, 80)
    assert states(conn) == (S.ESTABLISHED, S.ESTABLISHED)
    assert violations(conn) == []


def test_new_syn_after_the_sender_closed_its_side_is_a_new_connection() -> None:
    # the client closed (FIN) and its socket is gone; the server leaks CLOSE-WAIT; the
    # client's port comes round again
    w = Wire()
    w.handshake()
    w.c.fin(at=0.0)
    w.s.ack(at=0.0)
    w.c.nxt = 777_000
    w.c.syn(at=5.0)
    conns = w.run_all()
    assert len(conns) == 2
    assert "syn_isn_changed" not in codes(conns[0])


def test_new_syn_after_a_long_silence_is_a_new_connection() -> None:
    w = Wire()
    w.handshake()
    w.c.nxt = 777_000
    w.c.syn(at=120.0)  # quiet for longer than TIME-WAIT lasts
    conns = w.run_all()
    assert len(conns) == 2
    assert violations(conns[0]) == violations(conns[1]) == []


def test_sending_past_an_uncaptured_window_update_is_not_a_violation() -> None:
    w = Wire()
    w.handshake()
    w.s.ack(win=1000)
    # the server's window update to 64 KiB was not captured
    w.c.data(3000)
    w.s.ack(win=60000)  # it took all 3000 bytes
    conn = w.run()
    assert violations(conn) == []


def test_zero_window_probe_is_not_beyond_the_window() -> None:
    w = Wire()
    w.handshake()
    w.s.ack(win=0)
    w.c.data(1)
    w.s.ack(ack=w.c.nxt - 1, win=0)
    conn = w.run()
    assert violations(conn) == []
