"""Hostile input: mutated captures through analyze(), random segment sequences into the core,
and hand-built hostile traffic (time going backwards, overlapping and duplicated segments,
sequence numbers wrapping, a SYN flood, spoofed resets).

Every capture-level case runs under a hard time budget (``mutate.time_budget``): a hang fails
the test and names the seed instead of blocking CI. ``scripts/fuzz.py`` runs the same cases
(any number of seeds) for longer.
"""

from __future__ import annotations

import os
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pcapgen as g
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mutate import Hang, check_analysis, check_error, engine_differences, make_case, time_budget
from segscript import T0, Wire, path

import tcptrace_sm
from tcptrace_sm.anomalies import CATALOGUE
from tcptrace_sm.flows import FlowTable
from tcptrace_sm.machine import MAX_NOTES_PER_CODE, MAX_TRANSITIONS, Config
from tcptrace_sm.model import Segment, Side

C, SV = Side.CLIENT, Side.SERVER

#: mutated captures analysed on every run (scripts/fuzz.py runs the same seeds and more)
MUTATED_CASES = 600
#: seconds one mutated capture may take; they take milliseconds, so this only catches hangs
CASE_BUDGET = 10.0
#: one mutated case in this many is also run through the reference engine, which must agree
COMPARE_EVERY = 4

# --------------------------------------------------------------------------- the core, directly

_HOSTS = [("10.0.0.1", 40000), ("10.0.0.2", 80), ("10.0.0.1", 40001)]
_SEQS = [0, 1, 1000, 1001, 1101, 5000, 5001, 0xFFFFFFFF, 0x7FFFFFFF, 0x80000000]

segment_st = st.tuples(
    st.sampled_from([(0, 1), (1, 0), (2, 1), (1, 2)]),
    st.sampled_from(_SEQS) | st.integers(0, 0xFFFFFFFF),
    st.sampled_from(_SEQS) | st.integers(0, 0xFFFFFFFF),
    st.integers(0, 255),
    st.sampled_from([0, 1, 100, 1460]),
    st.sampled_from([0, 1, 65535]),
    st.integers(-2_000_000_000, 70_000_000_000),
)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.lists(segment_st, max_size=60), st.floats(0, 120))
def test_random_segment_sequences_never_break_the_core(
    segments: list[tuple[tuple[int, int], int, int, int, int, int, int]], time_wait: float
) -> None:
    table = FlowTable(Config(time_wait=time_wait, close_wait_timeout=1.0))
    now = T0
    for i, ((a, b), seq, ack, flags, length, win, dt) in enumerate(segments, 1):
        now += dt  # time may go backwards (badly merged captures)
        src, dst = _HOSTS[a], _HOSTS[b]
        table.observe(Segment(i, now, src[0], src[1], dst[0], dst[1], seq, ack, flags, win, length))
    for conn in table.finish(now):
        for side in (C, SV):
            states_seen = path(conn, side)  # asserts every transition starts where the last ended
            assert states_seen[-1] is (conn.client if side is C else conn.server).state
        for anomaly in conn.anomalies:
            assert anomaly.code in CATALOGUE


def test_a_flood_of_bad_segments_is_counted_not_stored() -> None:
    w = Wire()
    w.handshake()
    for _ in range(5000):
        w.c.raw(0, 10)  # null-flag segments
    conn = w.run()
    assert len(conn.anomalies) == MAX_NOTES_PER_CODE
    assert conn.noted["flags_null"] == 5000
    assert len(conn.transitions) <= MAX_TRANSITIONS


# --------------------------------------------------------------------------- mutated captures


def analyse_hostile(
    paths: list[Path], what: str, budget: float = CASE_BUDGET, *, compare: bool = True, **options: Any
) -> tcptrace_sm.Analysis | None:
    """analyze() under a hard time budget; None for a CaptureError, which must be one line naming a file.

    Anything else (another exception, a hang, counts that do not add up, with ``compare`` the
    fast and the reference engine disagreeing) fails, naming ``what``.
    """
    try:
        with time_budget(budget, what):
            a = tcptrace_sm.analyze(paths if len(paths) > 1 else paths[0], **options)
            problems = check_analysis(a)
            if compare and not problems:
                problems = [f"engines differ: {d}" for d in engine_differences(paths)]
    except tcptrace_sm.CaptureError as e:
        problems = check_error(str(e), paths)
        if compare:
            problems += [f"engines differ: {d}" for d in engine_differences(paths)]
        assert not problems, f"{what}: {problems}"
        return None
    except Hang as e:
        pytest.fail(f"{e} (a hang: reproduce with scripts/fuzz.py)", pytrace=False)
    except Exception:
        pytest.fail(f"{what}: an exception other than CaptureError escaped\n{traceback.format_exc()}")
    assert not problems, f"{what}: {problems}"
    return a


def test_the_time_budget_interrupts_a_blocked_analysis(tmp_path: Path) -> None:
    """The budget's exception gets through the reader's own guards (a FIFO nobody writes blocks open())."""
    fifo = tmp_path / "never.pcap"
    os.mkfifo(fifo)
    t0 = time.monotonic()
    with pytest.raises(Hang, match="blocked"), time_budget(0.3, "blocked"):
        tcptrace_sm.analyze(fifo)
    assert time.monotonic() - t0 < 5
    with pytest.raises(Hang), time_budget(0.1, "busy"):
        _spin()


def _spin() -> None:
    while True:
        pass


@pytest.mark.parametrize("seed", range(MUTATED_CASES))
def test_mutated_captures_only_ever_raise_capture_error(seed: int, tmp_path: Path) -> None:
    case = make_case(seed, max_size=5000)
    compare = seed % COMPARE_EVERY == 0  # the engines promise the same records: check a share of the cases
    again = f"again: scripts/fuzz.py --seed {seed} --runs 1 -v{' --compare' if compare else ''}"
    analyse_hostile(case.write(tmp_path), f"{case.describe()}; {again}", compare=compare)


#: Seeds of past findings of longer campaigns (scripts/fuzz.py --compare), kept as regressions:
#: 200336 (two times far apart overflowed a subtraction), 425100 (a stray segment after a
#: complete close, with the clock far ahead of its time, kept in the closed connection).
FOUND = (200336, 425100)


@pytest.mark.parametrize("seed", FOUND)
def test_past_findings_stay_fixed(seed: int, tmp_path: Path) -> None:
    case = make_case(seed, max_size=5000)
    again = f"again: scripts/fuzz.py --seed {seed} --runs 1 -v --compare"
    analyse_hostile(case.write(tmp_path), f"{case.describe()}; {again}", compare=True)


def test_the_mutated_cases_cover_every_mutation_family() -> None:
    """The fixed seeds exercise both families, gzip both ways and merged files (a guard on make_case)."""
    steps = []
    merged = 0
    for seed in range(MUTATED_CASES):
        case = make_case(seed, max_size=5000)
        steps += case.steps
        merged += len(case.files) > 1
    text = "\n".join(steps)
    for needle in (
        "bytes: ",
        "pcap: ",
        "pcapng: ",
        "duplicated",
        "swapped",
        "dropped",
        "emptied",
        "snaplen",
        "time word",
        "cut inside record",
        "IHL",
        "TCP data offset",
        "TCP flags",
        "gzip: recompressed",
        "gzip: compressed bytes",
        "gzip: written back uncompressed",
        "block length",
    ):
        assert needle in text, needle
    assert merged >= 30


# --------------------------------------------------------------------------- hand-built traffic

CLIENT = ("10.1.0.1", 40000)
SERVER = ("10.1.0.2", 80)
T = 1_700_000_000 * 10**9


@dataclass
class Talk:
    """A scripted conversation written as pcap records: each side tracks its next sequence number."""

    client_isn: int = 1000
    server_isn: int = 5000
    client: tuple[str, int] = CLIENT
    server: tuple[str, int] = SERVER
    now: int = T
    records: list[tuple[int, bytes]] = field(default_factory=list)
    nxt: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.nxt = {"c": self.client_isn, "s": self.server_isn}

    def send(
        self,
        who: str,
        flags: int,
        payload: bytes = b"",
        *,
        seq: int | None = None,
        ack: int | None = None,
        ts: int | None = None,
        advance: bool = True,
    ) -> None:
        peer = "s" if who == "c" else "c"
        src, dst = (self.client, self.server) if who == "c" else (self.server, self.client)
        s = self.nxt[who] if seq is None else seq
        a = (self.nxt[peer] if ack is None else ack) if flags & g.ACK else (ack or 0)
        self.now = self.now + 1_000_000 if ts is None else ts
        ip = g.tcp4(
            src[0], dst[0], src[1], dst[1], payload, seq=s & 0xFFFFFFFF, ack=a & 0xFFFFFFFF, flags=flags
        )
        self.records.append((self.now, g.frame(ip, g.LT_ETHERNET)))
        if advance and seq is None:
            self.nxt[who] = (s + len(payload) + (1 if flags & (g.SYN | g.FIN) else 0)) & 0xFFFFFFFF

    def handshake(self) -> None:
        self.send("c", g.SYN)
        self.send("s", g.SYN | g.ACK)
        self.send("c", g.ACK)

    def close(self) -> None:
        self.send("c", g.FIN | g.ACK)
        self.send("s", g.FIN | g.ACK)
        self.send("c", g.ACK)

    def pcap(self) -> bytes:
        return g.pcap(self.records, nanos=True)


def write(tmp_path: Path, data: bytes, name: str = "h.pcap") -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def chain_breaks(transitions: list[dict[str, Any]]) -> list[str]:
    """Where a listed transition does not start in the state the side's previous one ended in."""
    last: dict[tuple[int, str], str] = {}
    out = []
    for r in transitions:
        k = (r["flow_id"], r["side"])
        if last.get(k, "CLOSED") != r["from_state"]:
            out.append(
                f"flow {k[0]} {k[1]}: {last.get(k, 'CLOSED')} then {r['from_state']} -> {r['to_state']}"
            )
        last[k] = r["to_state"]
    return out


def only(a: tcptrace_sm.Analysis) -> dict[str, Any]:
    assert len(a.flow_records) == 1, a.flow_records
    return a.flow_records[0]


def _backwards_talk() -> Talk:
    """An orderly connection whose timestamps jump back by seconds after the handshake."""
    t = Talk()
    t.handshake()
    t.send("c", g.ACK | g.PSH, b"x" * 100, ts=T - 5 * 10**9)
    t.send("s", g.ACK, ts=T - 10 * 10**9)
    t.send("s", g.ACK | g.PSH, b"y" * 200, ts=T + 3 * 10**9)
    t.send("c", g.ACK, ts=T - 20 * 10**9)
    t.send("c", g.FIN | g.ACK, ts=T + 2 * 10**9)
    t.send("s", g.FIN | g.ACK, ts=T - 1)
    t.send("c", g.ACK, ts=T + 1)
    return t


def test_time_going_backwards_in_one_file(tmp_path: Path) -> None:
    t = _backwards_talk()
    a = analyse_hostile([write(tmp_path, t.pcap())], "time backwards")
    assert a is not None
    f = only(a)
    assert (f["close"], f["client_state"], f["server_state"]) == ("fin", "TIME-WAIT", "CLOSED")
    assert f["packets"] == len(t.records)
    assert a.summary["first_ts"] == min(ts for ts, _ in t.records)
    assert a.summary["last_ts"] == max(ts for ts, _ in t.records)
    assert [r["frame"] for r in a.transition_records if r["frame"] is not None]  # frames listed


def _merged_files(tmp_path: Path) -> list[Path]:
    """One connection seen by two capture points with skewed clocks, plus one more in the second file.

    The first file holds what the client sent, the second what the server sent, its clock 3 ms
    behind: merged by time, answers come before the questions they answer.
    """
    t = Talk()
    t.handshake()
    t.send("c", g.ACK | g.PSH, b"q" * 50)
    t.send("s", g.ACK | g.PSH, b"a" * 500)
    t.close()
    sent_by_client = [r for r in t.records if r[1][26:30] == g.addr(CLIENT[0])]
    sent_by_server = [(ts - 3_000_000, d) for ts, d in t.records if d[26:30] == g.addr(SERVER[0])]
    other = Talk(client=("10.1.0.3", 50000), client_isn=77, now=T - 2_000_000)
    other.handshake()
    other.close()
    second = sorted(sent_by_server + other.records, key=lambda r: r[0])
    return [
        write(tmp_path, g.pcap(sent_by_client, nanos=True), "a.pcap"),
        write(tmp_path, g.pcap(second, nanos=True), "b.pcap"),
    ]


def test_time_going_backwards_across_two_merged_files(tmp_path: Path) -> None:
    paths = _merged_files(tmp_path)
    a = analyse_hostile(paths, "two skewed files")
    assert a is not None
    assert a.summary["packets"] == 14
    assert a.summary["connections"] == 2
    assert not chain_breaks(a.transition_records)  # the merged stream is in time order
    for f in a.flow_records:
        assert f["client_packets"] + f["server_packets"] == f["packets"]
    # and backwards in either order of the files
    b = analyse_hostile(paths[::-1], "two skewed files, reversed")
    assert b is not None
    assert b.summary["packets"] == 14


@pytest.mark.parametrize("merged", [False, True], ids=["one-file", "merged"])
def test_transitions_stay_consistent_when_time_goes_backwards(tmp_path: Path, merged: bool) -> None:
    t = _backwards_talk()
    if merged:  # a second, well-ordered file merged in: the first file's disorder stays
        other = Talk(client=("10.1.0.3", 50000), now=T - 30 * 10**9)
        other.handshake()
        paths = [write(tmp_path, t.pcap(), "a.pcap"), write(tmp_path, other.pcap(), "b.pcap")]
    else:
        paths = [write(tmp_path, t.pcap())]
    a = analyse_hostile(paths, "time backwards")
    assert a is not None
    assert chain_breaks(a.transition_records) == []


def test_flow_duration_is_never_negative(tmp_path: Path) -> None:
    a = analyse_hostile([write(tmp_path, _backwards_talk().pcap())], "time backwards")
    assert a is not None
    f = only(a)
    assert f["duration"] >= 0
    assert f["first_ts"] <= f["last_ts"]


def test_times_beyond_2_62_ns_keep_the_zeek_summary(tmp_path: Path) -> None:
    t = Talk()
    t.handshake()
    t.send("c", g.ACK | g.PSH, b"x" * 10)
    t.send("s", g.ACK)
    t.close()
    w = g.Pcapng().section()
    w.interface(g.LT_ETHERNET, tsresol=9)
    for k, (_, data) in enumerate(t.records):
        w.epb(0, 0, data, units=(1 << 62) + k * 1000)
    p = write(tmp_path, w.bytes(), "future.pcapng")
    for engine in ("fast", "reference"):
        f = only(tcptrace_sm.analyze(p, engine=engine))
        assert (f["close"], f["conn_state"], f["history"]) == ("fin", "SF", "ShADaFf"), engine


def test_overlapping_and_duplicated_segments(tmp_path: Path) -> None:
    t = Talk()
    t.send("c", g.SYN)
    t.send("c", g.SYN, seq=t.client_isn)  # the SYN again
    t.send("s", g.SYN | g.ACK)
    t.send("c", g.ACK)
    t.send("c", g.ACK, seq=t.nxt["c"])  # duplicated ACK
    base = t.nxt["c"]
    data = bytes(range(256)) * 4
    t.send("c", g.ACK | g.PSH, data[:300])  # 0..300
    t.send("c", g.ACK | g.PSH, data[:300], seq=base)  # exact duplicate
    t.send("c", g.ACK | g.PSH, data[250:500], seq=base + 250)  # overlaps the end of the first
    t.nxt["c"] = base + 500
    t.send("c", g.ACK | g.PSH, data[100:200], seq=base + 100)  # entirely inside what was sent
    t.send("c", g.ACK | g.PSH, data[500:700])
    t.send("c", g.ACK | g.PSH, data[450:800], seq=base + 450)  # overlaps both ends' data
    t.nxt["c"] = base + 800
    t.send("s", g.ACK)
    t.send("s", g.ACK)  # duplicate ACKs
    t.send("s", g.ACK, ack=base + 300)  # an old ACK, reordered
    t.send("c", g.FIN | g.ACK)
    t.send("c", g.FIN | g.ACK, seq=base + 800)  # the FIN again
    t.send("s", g.FIN | g.ACK)
    t.send("c", g.ACK)
    t.send("c", g.ACK, seq=t.nxt["c"])
    a = analyse_hostile([write(tmp_path, t.pcap())], "overlap")
    assert a is not None
    f = only(a)
    assert (f["close"], f["client_state"], f["server_state"]) == ("fin", "TIME-WAIT", "CLOSED")
    assert f["rst_by"] is None
    assert f["packets"] == len(t.records)
    assert f["client_bytes"] >= 800
    assert not [r for r in a.anomaly_records if r["severity"] == "error"], a.anomaly_records
    assert not chain_breaks(a.transition_records)


def test_sequence_numbers_wrap_past_2_32_mid_transfer(tmp_path: Path) -> None:
    t = Talk(client_isn=0xFFFFFFFF - 1000, server_isn=0xFFFFFFFF)  # the server's SYN-ACK ends at 2^32
    t.handshake()
    for _ in range(10):  # 3000 bytes: the client's sequence numbers wrap after 1000 of them
        t.send("c", g.ACK | g.PSH, b"c" * 300)
        t.send("s", g.ACK)
    for _ in range(5):
        t.send("s", g.ACK | g.PSH, b"s" * 1000)
        t.send("c", g.ACK)
    t.close()
    assert t.nxt["c"] < 5000  # wrapped
    assert t.nxt["s"] < 6000
    a = analyse_hostile([write(tmp_path, t.pcap())], "seq wrap")
    assert a is not None
    f = only(a)
    assert (f["close"], f["client_state"], f["server_state"]) == ("fin", "TIME-WAIT", "CLOSED")
    assert (f["client_bytes"], f["server_bytes"]) == (3000, 5000)
    assert a.anomaly_records == []
    assert not chain_breaks(a.transition_records)


def _syn_flood(n: int) -> bytes:
    records = []
    for i in range(n):
        src = f"198.51.{(i >> 8) & 255}.{i & 255}"
        ip = g.tcp4(
            src, SERVER[0], 1024 + i % 60000, SERVER[1], seq=(i * 2654435761) & 0xFFFFFFFF, flags=g.SYN
        )
        records.append((T + i * 1000, g.frame(ip, g.LT_ETHERNET)))
    return g.pcap(records)


def test_a_syn_flood_of_20000_connections(tmp_path: Path) -> None:
    n = 20_000
    a = analyse_hostile([write(tmp_path, _syn_flood(n))], "SYN flood", budget=120, compare=False)
    assert a is not None
    s = a.summary
    assert (s["packets"], s["segments"], s["connections"]) == (n, n, n)
    assert s["close"] == {"unanswered": n}
    assert {(f["client_state"], f["server_state"]) for f in a.flow_records} == {("SYN-SENT", "CLOSED")}
    assert len(a.flows) == n


def test_a_syn_flood_beyond_max_flows_is_evicted_not_stored(tmp_path: Path) -> None:
    n, cap = 20_000, 1000
    a = analyse_hostile(
        [write(tmp_path, _syn_flood(n))], "SYN flood", budget=120, compare=False, max_flows=cap
    )
    assert a is not None
    s = a.summary
    assert (s["packets"], s["connections"]) == (n, n)  # every attempt is still reported
    assert s["close"] == {"unanswered": n}
    assert s["anomalies"]["flow_evicted"] == n - cap
    assert s["anomalies"]["unanswered_syn"] == n


def _spoofed_rsts(t: Talk, count: int = 1) -> None:
    """RSTs forged in either side's name, far outside the receiver's window (and with a wrapped seq)."""
    for k in range(count):
        for who in ("c", "s"):
            for off in (50_000_000, -50_000_000, 1 << 31):
                t.send(who, g.RST | (g.ACK if k % 2 else 0), seq=t.nxt[who] + off + k)


def test_spoofed_out_of_window_rsts_do_not_reset_the_connection(tmp_path: Path) -> None:
    t = Talk()
    t.send("c", g.SYN)
    t.send("s", g.RST | g.ACK, seq=123456, ack=999)  # a blind RST in SYN-SENT that does not ACK the SYN
    t.send("s", g.SYN | g.ACK)
    t.send("c", g.ACK)
    t.send("c", g.ACK | g.PSH, b"GET /")
    _spoofed_rsts(t)
    t.send("s", g.ACK | g.PSH, b"200 OK")
    _spoofed_rsts(t)
    t.send("c", g.ACK)
    t.close()
    a = analyse_hostile([write(tmp_path, t.pcap())], "spoofed RSTs")
    assert a is not None
    f = only(a)
    assert (f["close"], f["rst_by"], f["errno"]) == ("fin", None, None)
    assert (f["client_state"], f["server_state"]) == ("TIME-WAIT", "CLOSED")
    # the twelve spoofed while synchronised, and the blind one in SYN-SENT
    assert a.summary["anomalies"].get("rst_out_of_window") == 13
    assert "rst_terminated" not in a.summary["anomalies"]


def test_a_flood_of_spoofed_rsts_is_counted_not_stored(tmp_path: Path) -> None:
    t = Talk()
    t.handshake()
    _spoofed_rsts(t, count=500)  # 3000 forged RSTs
    t.close()
    a = analyse_hostile([write(tmp_path, t.pcap())], "RST flood", budget=60)
    assert a is not None
    f = only(a)
    assert (f["close"], f["rst_by"]) == ("fin", None)
    assert a.summary["anomalies"]["rst_out_of_window"] == 3000
    listed = [r for r in a.anomaly_records if r["code"] == "rst_out_of_window"]
    assert len(listed) == MAX_NOTES_PER_CODE
    assert a.summary["anomalies_not_listed"] >= 3000 - MAX_NOTES_PER_CODE


def test_the_recorded_out_of_window_rst_is_ignored() -> None:
    sample = (
        Path(__file__).resolve().parent.parent / "sample_pcaps" / "lossy" / "spoofed_rst_out_of_window.pcap"
    )
    a = analyse_hostile([sample], sample.name)
    assert a is not None
    f = only(a)
    assert (f["client_state"], f["server_state"]) == ("ESTABLISHED", "ESTABLISHED")  # as the kernel said
    assert (f["close"], f["rst_by"]) == ("open", None)
    assert [r["code"] for r in a.anomaly_records] == ["rst_out_of_window"]
