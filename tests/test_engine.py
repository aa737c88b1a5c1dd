"""The fast engine against the per-segment reference: the same records, in the same order.

The fast engine evaluates the common paths column-wise and hands everything else to the
per-segment core; these tests run both over every capture at hand (kernel recordings, lossy
paths, format variants, Zeek's corpus, generated traffic with every irregularity the
generator knows) and require identical flows, anomalies, transitions and summaries. Small
chunks put many connections across chunk boundaries; a small ``max_flows`` makes both evict.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, SAMPLES
from trafficgen import (
    bulk_transfers,
    close_waits,
    keepalive,
    lossy_downloads,
    resets_after_fin,
    reused_ports,
    syn_retries,
    syn_scan,
    traffic,
    write_pcap,
)

import tcptrace_sm
from tcptrace_sm import capture
from tcptrace_sm.analysis import Analysis, Options
from tcptrace_sm.capture import ReadStats, read_columns, read_segments
from tcptrace_sm.engine import Engine
from tcptrace_sm.flows import FlowTable, flow_key
from tcptrace_sm.machine import REUSED, TIME_WAIT_RECYCLED, Connection, Endpoint
from tcptrace_sm.zeek import ZeekSummary

CORPUS = ROOT.parent / "shared" / "corpus" / "zeek" / "traces"
SAMPLE_FILES = sorted(p for p in SAMPLES.rglob("*") if p.suffix in (".pcap", ".pcapng", ".gz", ".bin"))


def both(path: Path | list[Path], **kw: Any) -> tuple[Analysis, Analysis]:
    return tcptrace_sm.analyze(path, engine="reference", **kw), tcptrace_sm.analyze(path, engine="fast", **kw)


def assert_same(ref: Analysis, fast: Analysis) -> None:
    for name in ("flow_records", "anomaly_records", "transition_records"):
        a, b = getattr(ref, name), getattr(fast, name)
        assert len(a) == len(b), name
        for x, y in zip(a, b, strict=True):
            assert x == y, name
    assert ref.summary == fast.summary


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(capture, "CHUNK", 1 << 16)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    d = tmp_path_factory.mktemp("traffic")
    return [write_pcap(d / f"t{seed}.pcap", traffic(seed, 700, span_s=8 + 6 * seed)) for seed in range(6)]


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.relative_to(SAMPLES).as_posix())
def test_sample_captures(path: Path) -> None:
    assert_same(*both(path))


def test_sample_captures_merged_in_small_chunks(small_chunks: None) -> None:
    kernel = sorted((SAMPLES / "kernel").glob("*.pcap")) + sorted((SAMPLES / "lossy").glob("*.pcap"))
    assert_same(*both(kernel))


@pytest.mark.skipif(
    not CORPUS.is_dir(), reason="the Zeek corpus (shared/corpus/zeek) is not beside the checkout"
)
def test_zeek_corpus_traces(small_chunks: None) -> None:
    traces = sorted(p for p in CORPUS.rglob("*") if p.is_file())
    for trace in traces:
        for verify in (False, True):
            try:
                ref, fast = both(trace, verify_checksums=verify)
            except tcptrace_sm.CaptureError:
                continue
            assert_same(ref, fast)


@pytest.mark.parametrize("seed", range(6))
def test_generated_traffic(generated: list[Path], seed: int, small_chunks: None) -> None:
    assert_same(*both(generated[seed]))


@pytest.mark.parametrize(("seed", "snaplen"), [(0, 96), (3, 96), (5, 128)])
def test_generated_traffic_cut_by_a_snaplen(
    tmp_path: Path, seed: int, snaplen: int, small_chunks: None
) -> None:
    """Payload the snaplen cut: the endpoints' answers do not change, Zeek's history records
    the gaps; the fast engine keeps the connections whose every payload was cut (or none)."""
    segments = traffic(seed, 700, span_s=8 + 6 * seed)
    whole = write_pcap(tmp_path / "whole.pcap", segments)
    cut = write_pcap(tmp_path / "cut.pcap", segments, snaplen=snaplen)
    ref, fast = both(cut)
    assert_same(ref, fast)
    plain = tcptrace_sm.analyze(whole)
    assert plain.anomaly_records == fast.anomaly_records
    assert plain.transition_records == fast.transition_records
    histories = [f["history"] for f in fast.flow_records]
    assert sum("G" in h or "g" in h for h in histories) > 100
    assert [{**f, "history": ""} for f in plain.flow_records] == [
        {**f, "history": ""} for f in fast.flow_records
    ]
    # sides with payload partly cut stay on the fast paths too (Zeek's reassembler runs there);
    # only a gap still open where a chunk ends hands one over
    cut_over, whole_over = _engine_run(cut).handed_over, _engine_run(whole).handed_over
    assert cut_over <= whole_over + len(histories) // 50


def test_bulk_transfers_cut_by_a_snaplen_stay_on_the_fast_path(tmp_path: Path, small_chunks: None) -> None:
    """Cut full-size segments and a whole last one: where a chunk ends between that last
    segment and its ACK, the block Zeek's reassembler holds is carried to the next chunk
    (it used to hand the whole connection to the core)."""
    cut = write_pcap(tmp_path / "bulk.pcap", bulk_transfers(300), snaplen=96)
    ref, fast = both(cut)
    assert_same(ref, fast)
    assert fast.summary["connections"] == 300
    got = Counter(
        (f["client_state"], f["server_state"], f["close"], f["conn_state"], f["history"])
        for f in fast.flow_records
    )
    # g: the gaps the cut payload makes
    assert got == {("TIME-WAIT", "CLOSED", "fin", "SF", "ShADdggFf"): 300}
    stats = ReadStats()
    eng = Engine(Options())
    held = 0  # connections holding a block where a chunk ended
    for cols in read_columns(cut, stats=stats):
        eng.feed(cols)
        c, live = eng.store.cols, eng.store.live_slots()
        held += int(((c["c_zblo"][live] >= 0) | (c["s_zblo"][live] >= 0)).sum())
    for _ in eng.finish(stats.last_ts or 0):
        pass
    assert held > 0
    assert eng.handed_over == 0


@pytest.mark.parametrize(("pause_s", "fast_only"), [(20, True), (59, True), (61, False), (300, False)])
def test_a_pause_while_established(
    tmp_path: Path, small_chunks: None, pause_s: float, fast_only: bool
) -> None:
    """A silence longer than Zeek's 5 s timers while both sides are established and neither has
    closed only re-arms them: such a connection stays on the fast path up to Zeek's shortest
    inactivity timeout (1 min), past which Zeek starts a new connection (the core's)."""
    path = write_pcap(tmp_path / "keepalive.pcap", keepalive(200, pause_s=pause_s))
    ref, fast = both(path)
    assert_same(ref, fast)
    zeek = Counter((f["conn_state"], f["close"]) for f in fast.flow_records)
    assert zeek[("SF", "fin")] == 200
    assert (_engine_run(path).handed_over == 0) == fast_only


LINUX_BACKOFF = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)


@pytest.mark.parametrize(
    ("gaps", "answer", "fast_only", "close"),
    [
        (LINUX_BACKOFF, "none", True, "unanswered"),
        ((1.0, 2.0, 4.0, 8.0), "none", True, "unanswered"),
        ((6.0, 400.0), "none", True, "unanswered"),
        ((1.0, 2.0), "synack", True, "fin"),
        ((1.0, 2.0, 4.0, 8.0), "synack", False, "fin"),
        ((1.0, 2.0, 4.0, 8.0), "refused", False, "refused"),
    ],
)
def test_syn_retransmissions_backing_off(
    tmp_path: Path, small_chunks: None, gaps: tuple[float, ...], answer: str, fast_only: bool, close: str
) -> None:
    """An attempt whose SYN is sent again after silences of 5 s and more (a kernel backing off
    against a server that is down) stays on the fast path while nobody answers: Zeek's attempt
    timer only starts a new Zeek connection at the next SYN, and the flow's row is the first
    one's. An answer 5 s or more after the first SYN is the core's."""
    path = write_pcap(tmp_path / "backoff.pcap", syn_retries(150, gaps_s=gaps, answer=answer))
    ref, fast = both(path)
    assert_same(ref, fast)
    assert Counter(f["close"] for f in fast.flow_records) == {close: 150}
    assert (_engine_run(path).handed_over == 0) == fast_only


@pytest.mark.parametrize(("rst_after_s", "handed_over", "stuck"), [(0.0, 150, 0), (2.0, 350, 250)])
def test_resets_after_a_fin(
    tmp_path: Path, small_chunks: None, rst_after_s: float, handed_over: int, stuck: int
) -> None:
    """An RST exactly at SND.NXT after one or both FINs (an abortive close) stays on the fast
    path, from any closing state of its sender, but for one into a TIME-WAIT, one at the FIN's
    own number and one inside the window (the core's). Zeek leaves two closed sides closed.
    An RST that ends a CLOSE-WAIT older than the close-wait timeout (1 s) is the core's too: it
    notes the stuck socket."""
    path = write_pcap(tmp_path / "resets.pcap", resets_after_fin(400, rst_after_s=rst_after_s))
    ref, fast = both(path)
    assert_same(ref, fast)
    by_kind = [Counter() for _ in range(8)]
    for i, f in enumerate(sorted(fast.flow_records, key=lambda f: f["client_port"])):
        assert (f["close"], f["client_state"], f["server_state"]) == ("rst", "CLOSED", "CLOSED")
        by_kind[i % 8][(f["conn_state"], f["history"], f["rst_by"])] += 1
    assert by_kind == [
        {("SF", "ShADdFfR", "client"): 50},
        {("RSTR", "ShADdFar", "server"): 50},
        {("RSTO", "ShADdFR", "client"): 50},
        {("RSTO", "ShADdfR", "client"): 50},
        {("RSTO", "ShADdfR", "client"): 50},
        {("SF", "ShADdFfr", "server"): 50},
        {("SF", "ShADdFfR", "client"): 50},
        {("RSTO", "ShADdFaR", "client"): 50},
    ]
    resets = Counter(a["detail"].split(";")[0] for a in fast.anomaly_records if a["code"] == "rst_terminated")
    # (also the one at the FIN's own number, which Linux takes)
    assert resets["connection reset: RST from the client (TIME-WAIT) to the server (LAST-ACK)"] == 100
    assert resets["connection reset: RST from the server (CLOSE-WAIT) to the client (FIN-WAIT-2)"] == 50
    assert resets["connection reset: RST from the client (CLOSE-WAIT) to the server (FIN-WAIT-1)"] == 50
    assert Counter(a["code"] for a in fast.anomaly_records)["stuck_close_wait"] == stuck
    assert _engine_run(path).handed_over == handed_over


def test_a_syn_scan(tmp_path: Path, small_chunks: None) -> None:
    """A SYN scan's half-open connections (SYN, SYN-ACK, the scanner's RST at ISN+1, with or
    without an ACK of the SYN-ACK) stay on the fast path; an RST anywhere else is the core's."""
    path = write_pcap(tmp_path / "scan.pcap", syn_scan(700))
    ref, fast = both(path)
    assert_same(ref, fast)
    got = [
        (f["close"], f["client_state"], f["server_state"], f["conn_state"], f["history"], f["rst_by"])
        for f in sorted(fast.flow_records, key=lambda f: f["server_port"])
    ]
    assert Counter(got[0::7]) == {("rst", "CLOSED", "CLOSED", "RSTO", "ShR", "client"): 100}
    assert Counter(got[1::7]) == {("rst", "CLOSED", "CLOSED", "RSTO", "ShR", "client"): 100}
    assert Counter(got[2::7]) == {("refused", "CLOSED", "CLOSED", "REJ", "Sr", "server"): 100}
    assert Counter(got[3::7]) == {("unanswered", "SYN-SENT", "CLOSED", "S0", "S", None): 100}
    resets = Counter(a["detail"] for a in fast.anomaly_records if a["code"] == "rst_terminated")
    half_open = "connection reset: RST from the client (ESTABLISHED) to the server (SYN-RECEIVED)"
    assert resets[f"{half_open}; the server saw ECONNRESET"] >= 200
    assert _engine_run(path).handed_over == 300


#: The recorded kernel captures the fast path keeps whole (the others have a moment only the
#: core can judge: a simultaneous open or close, a handshake whose last ACK was lost). Each is
#: compared with the reference engine by test_sample_captures; close_wait_leak ends with a
#: stuck CLOSE-WAIT, half_close_open with a CLOSE-WAIT that is still sending.
KERNEL_FAST = [
    "abort_client", "abort_server", "close_wait_leak", "half_close", "half_close_open", "ipv6_orderly",
    "orderly_client_close", "orderly_server_close", "refused", "reuse_after_time_wait", "rst_after_fin",
    "unanswered", "unanswered_backoff",
]  # fmt: skip


@pytest.mark.parametrize("name", KERNEL_FAST)
def test_kernel_captures_on_the_fast_path(name: str) -> None:
    assert _engine_run(SAMPLES / "kernel" / f"{name}.pcap").handed_over == 0


@pytest.mark.parametrize(
    ("silent_s", "timeout", "stuck"),
    [(3.0, 1.0, 100), (0.3, 1.0, 0), (0.3, 0.0, 100), (0.8, 1.0, 50), (30.0, 60.0, 0), (200.0, 60.0, 100)],
)
def test_close_waits_at_the_end_of_the_capture(
    tmp_path: Path, small_chunks: None, silent_s: float, timeout: float, stuck: int
) -> None:
    """A server still in CLOSE-WAIT when the capture ends is judged on the fast path: stuck
    if silent (since the client's FIN or its own last send) for the close-wait timeout."""
    path = write_pcap(tmp_path / "cw.pcap", close_waits(100, silent_s=silent_s))
    ref, fast = both(path, close_wait_timeout=timeout)
    assert_same(ref, fast)
    states = Counter((f["client_state"], f["server_state"], f["close"]) for f in fast.flow_records)
    assert states[("FIN-WAIT-2", "CLOSE-WAIT", "half")] == 100
    assert Counter(a["code"] for a in fast.anomaly_records)["stuck_close_wait"] == stuck
    assert _engine_run(path, Options(close_wait_timeout=timeout)).handed_over == 0


@pytest.mark.parametrize("snaplen", [None, 96])
def test_downloads_with_segments_missing_from_the_capture(
    tmp_path: Path, small_chunks: None, snaplen: int | None
) -> None:
    """A hole in a stream (a segment lost on the way, sent again later, out of order) stays on
    the fast path: Zeek's reassembler holds what is above it, and the retransmission is Zeek's
    t. A segment only the capture dropped, whose ACK covers bytes never seen, is the core's
    (it notes segment_not_captured; Zeek records the content gap)."""
    path = write_pcap(tmp_path / "lossy.pcap", lossy_downloads(60), snaplen=snaplen)
    ref, fast = both(path)
    assert_same(ref, fast)
    got = Counter(
        (f["client_port"] % 2, f["close"], f["history"], tuple(f["anomalies"])) for f in fast.flow_records
    )
    # the cut payload's gaps are Zeek's g too (the tenth one written again)
    lost, dropped = ("ShADdgtgFf", "ShADdggFf") if snaplen else ("ShADdtFf", "ShADdgFf")
    assert got == {(1, "fin", lost, ()): 30, (0, "fin", dropped, ("segment_not_captured",)): 30}
    assert _engine_run(path).handed_over == 30


@pytest.mark.parametrize("seed", [0, 3])
def test_generated_traffic_with_a_full_table(generated: list[Path], seed: int, small_chunks: None) -> None:
    ref, fast = both(generated[seed], max_flows=40)
    assert ref.summary["evicted"] > 0
    assert_same(ref, fast)


@pytest.mark.parametrize("time_wait", [0.0, 2.0, 5.0])
def test_generated_traffic_with_short_time_wait(
    generated: list[Path], time_wait: float, small_chunks: None
) -> None:
    assert_same(*both(generated[1], time_wait=time_wait, close_wait_timeout=0.5))


def test_journals_over_budget_go_to_the_core_a_few_at_a_time(
    generated: list[Path], monkeypatch: pytest.MonkeyPatch, small_chunks: None
) -> None:
    """A small journal budget hands the longest connections to the core, in many replay
    groups; the records do not change."""
    from tcptrace_sm import engine

    monkeypatch.setattr(engine, "JOURNAL_BUDGET", 300)
    monkeypatch.setattr(engine, "_REPLAY_ROWS", 16)
    groups: list[int] = []
    some = engine.Engine._hand_over_some

    def counted(self: Engine, slots: Any) -> None:
        groups.append(len(slots))
        some(self, slots)

    monkeypatch.setattr(engine.Engine, "_hand_over_some", counted)
    assert_same(*both(generated[2]))
    assert len(groups) > 10
    assert max(groups) > 1


def test_journal_parts_too_wide_for_40_bytes_keep_everything(
    generated: list[Path], monkeypatch: pytest.MonkeyPatch, small_chunks: None
) -> None:
    """Journal rows are 40 bytes when frames and clocks fit in 32-bit offsets, 48 otherwise;
    with a tiny limit the parts come in both forms, and hand-overs read both alike."""
    from tcptrace_sm import engine

    monkeypatch.setattr(engine, "_U32", 400)  # about a third of the parts wide
    monkeypatch.setattr(engine, "JOURNAL_BUDGET", 500)
    forms: set[int] = set()
    add = engine._Journal.add

    def spy(self: Any, part: Any) -> None:
        add(self, part)
        forms.add(part.dtype.itemsize)

    monkeypatch.setattr(engine._Journal, "add", spy)
    assert_same(*both(generated[4]))
    assert forms == {40, 48}


def _engine_run(path: Path, options: Options | None = None) -> Engine:
    stats = ReadStats()
    eng = Engine(options or Options())
    for cols in read_columns(path, stats=stats):
        eng.feed(cols)
    for _ in eng.finish(stats.last_ts or 0):
        pass
    return eng


def test_the_fast_path_is_not_a_detour(generated: list[Path]) -> None:
    """Most connections of ordinary traffic never need the core (else the speed is a lie)."""
    eng = _engine_run(generated[2])
    total = len(tcptrace_sm.analyze(generated[2], engine="reference").flow_records)
    assert eng.handed_over < 0.25 * total


@pytest.mark.parametrize("pool", [3, 41, 151])
def test_a_reused_4tuple_stays_on_the_fast_path(tmp_path: Path, small_chunks: None, pool: int) -> None:
    """A SYN on the 4-tuple of a connection in TIME-WAIT (the client's or the server's), or of an
    attempt nobody answered, a refused or a reset one, ends the old connection and opens a new
    one: the same records as the core's. Load generators reuse ports this way by the thousand,
    within a chunk too (~110 connections a chunk: 3 and 41 ports come back in the same one,
    151 in the next): neither connection needs the core."""
    path = write_pcap(tmp_path / "reuse.pcap", reused_ports(1000, pool=pool))
    ref, fast = both(path)
    assert_same(ref, fast)
    assert len(fast.flow_records) == 1000
    closes = Counter(f["close"] for f in fast.flow_records)
    assert closes == {"fin": 400, "unanswered": 200, "refused": 200, "rst": 200}
    # connection i's port comes back with connection i + pool; kinds go round by i % 5
    followed = Counter(i % 5 for i in range(1000 - pool))
    causes = Counter(t["cause"] for t in fast.transition_records if t["inferred"])
    assert causes[TIME_WAIT_RECYCLED] == followed[0] + followed[1]
    assert causes[REUSED] == followed[2]
    assert fast.summary["anomalies"]["superseded"] == followed[2]
    assert _engine_run(path).handed_over == 0


# ---- the one rebuilt state: a closed connection, field by field ------------------------------


def _fields(obj: Any) -> dict[str, Any]:
    names = getattr(obj, "__slots__", None) or vars(obj)
    return {n: getattr(obj, n) for n in names if n not in ("config",)}


def _reference_conn(segments: list[Any], flow_id: int) -> tuple[Connection, ZeekSummary]:
    table = FlowTable()
    zeek: dict[int, ZeekSummary] = {}
    conn = None
    for seg in segments:
        c = table.observe(seg)
        z = zeek.setdefault(c.flow_id, ZeekSummary(seg, clock=table.clock))
        z.update(seg, table.clock)
        if c.flow_id == flow_id:
            conn = c
    assert conn is not None
    return conn, zeek[flow_id]


def _zeek_state(z: ZeekSummary) -> dict[str, Any]:
    """Every field of a summary's open Zeek connection and of its two endpoints."""
    conn = z._conn
    out: dict[str, Any] = {}
    for name in type(conn).__slots__:
        value = getattr(conn, name)
        if name in ("orig", "resp"):
            for field in type(value).__slots__:
                if field != "peer":
                    out[f"{name}.{field}"] = getattr(value, field)
        else:
            out[name] = value
    return out


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_rebuilt_closed_connections_are_the_cores(
    generated: list[Path], small_chunks: None, seed: int
) -> None:
    """Something more on a closed connection's 4-tuple than a new SYN (a FIN again, a stray
    RST or ACK) rebuilds its live state for the core: exactly the core's own."""
    path = generated[seed]
    segments = list(read_segments(path))
    checked = 0
    original = Engine.rebuild_closed
    upto: dict[str, int] = {}

    def spy(self: Engine, s: int) -> tuple[Connection, ZeekSummary]:
        nonlocal checked
        conn, z = original(self, s)
        key = flow_key(conn.client.ip, conn.client.port, conn.server.ip, conn.server.port)
        mine = [
            g for g in segments if g.frame < upto["frame"] and flow_key(g.src, g.sport, g.dst, g.dport) == key
        ]
        ref, zref = _reference_conn(mine, conn.flow_id)
        assert _fields(conn).keys() == _fields(ref).keys()
        for name, value in _fields(ref).items():
            if isinstance(value, Endpoint):
                assert _fields(getattr(conn, name)) == _fields(value), name
            else:
                assert getattr(conn, name) == value, name
        assert z.rows() == [zref.rows()[-1]]
        # Zeek's connection is rebuilt live, field by field, timers included
        assert _zeek_state(z) == _zeek_state(zref)
        checked += 1
        return conn, z

    feed = Engine.feed

    def feed_spy(self: Engine, cols: Any) -> Any:
        upto["frame"] = int(cols.frame[0])
        return feed(self, cols)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Engine, "rebuild_closed", spy)
        mp.setattr(Engine, "feed", feed_spy)
        _engine_run(path)
    assert checked >= 2


def test_options_are_dataclass_fields() -> None:
    assert {f.name for f in dataclasses.fields(Options)} >= {"time_wait", "close_wait_timeout", "max_flows"}


def _iter(x: Iterator[Any]) -> int:
    return sum(1 for _ in x)


def test_a_zero_window_retransmission_writes_w_before_t(tmp_path: Path) -> None:
    """Zeek writes a segment's W (zero window) before its T (retransmission); so do both."""
    c, s = "10.1.0.1", "10.1.0.2"
    t0 = 1_700_000_000 * 10**9
    ci, si = 1000, 5000
    rows = [
        (c, 40000, s, 80, ci, 0, 0x02, 64240, 0),  # SYN
        (s, 80, c, 40000, si, ci + 1, 0x12, 65160, 0),  # SYN-ACK
        (c, 40000, s, 80, ci + 1, si + 1, 0x10, 502, 0),
        (c, 40000, s, 80, ci + 1, si + 1, 0x18, 502, 100),
        (c, 40000, s, 80, ci + 1, si + 1, 0x18, 0, 100),  # again, with a zero window
        (s, 80, c, 40000, si + 1, ci + 101, 0x10, 509, 0),
        (c, 40000, s, 80, ci + 101, si + 1, 0x11, 502, 0),
        (s, 80, c, 40000, si + 1, ci + 102, 0x11, 509, 0),
        (c, 40000, s, 80, ci + 102, si + 2, 0x10, 502, 0),
    ]
    segments = [(t0 + k * 1000, *r[:8], r[8], b"") for k, r in enumerate(rows)]
    ref, fast = both(write_pcap(tmp_path / "wt.pcap", segments))
    assert_same(ref, fast)
    assert fast.flow_records[0]["history"] == "ShADWTaFf"


# ---- the closed table: segments in memory and in temporary files -----------------------------


@pytest.fixture
def spill_all(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Tiny segments of the closed table, every full one written to a temporary file; counts
    the files made and the rows read back from them."""
    from tcptrace_sm import engine

    monkeypatch.setattr(engine, "_CLOSED_SEG", 64)
    monkeypatch.setattr(engine, "CLOSED_IN_MEMORY", 0)
    monkeypatch.setattr(engine, "_CLOSED_RUN_GAP", 4)
    seen = {"files": 0, "open": 0, "read": 0}
    init, close, read = engine._Spilled.__init__, engine._Spilled.close, engine._Spilled.read

    def spy_init(self: Any, rows: Any) -> None:
        init(self, rows)
        seen["files"] += 1
        seen["open"] += 1

    def spy_close(self: Any) -> None:
        if self.fd >= 0:
            seen["open"] -= 1
        close(self)

    def spy_read(self: Any, lo: int, hi: int) -> Any:
        seen["read"] += hi - lo
        return read(self, lo, hi)

    monkeypatch.setattr(engine._Spilled, "__init__", spy_init)
    monkeypatch.setattr(engine._Spilled, "close", spy_close)
    monkeypatch.setattr(engine._Spilled, "read", spy_read)
    return seen


@pytest.mark.parametrize("seed", [1, 4])
def test_closed_connections_in_temporary_files(
    generated: list[Path], seed: int, small_chunks: None, spill_all: dict[str, int]
) -> None:
    """With the closed table written out segment by segment the records do not change; the
    files are made, read back, and all gone at the end."""
    assert_same(*both(generated[seed]))
    assert spill_all["files"] > 5
    assert spill_all["read"] > 100
    assert spill_all["open"] == 0


def test_closed_connections_in_temporary_files_with_short_time_wait(
    generated: list[Path], small_chunks: None, spill_all: dict[str, int]
) -> None:
    assert_same(*both(generated[1], time_wait=2.0, close_wait_timeout=0.5))
    assert spill_all["files"] > 5
    assert spill_all["open"] == 0


def test_rebuilt_closed_connections_from_temporary_files(
    generated: list[Path], small_chunks: None, spill_all: dict[str, int]
) -> None:
    """More segments on a closed 4-tuple: the connection is rebuilt from its row in a file."""
    for seed in (3, 4, 5):
        test_rebuilt_closed_connections_are_the_cores(generated, None, seed)
    assert spill_all["read"] > 0


def test_a_closed_table_that_cannot_write_keeps_its_rows(
    generated: list[Path], small_chunks: None, spill_all: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No room for temporary files: every segment stays in memory, the answers do not change,
    and one warning says why memory grew."""
    from tcptrace_sm import engine

    def full(*_a: Any, **_k: Any) -> Any:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(engine.tempfile, "mkstemp", full)
    ref, fast = both(generated[2])
    assert spill_all["files"] == 0
    assert ref.warnings == []
    (warning,) = fast.warnings
    assert warning.startswith("could not write temporary files in ")
    assert "(No space left on device): connections in TIME-WAIT" in warning
    fast.stats.warnings.clear()
    assert_same(ref, fast)


def _closed_rows(n: int, start: int = 0) -> Any:
    import numpy as np

    from tcptrace_sm import engine

    arr = np.zeros(n, dtype=engine._CLOSED_DT)
    arr["fid"] = np.arange(start, start + n)
    arr["last_ts"] = np.arange(start, start + n) * 10
    arr["cport"] = np.arange(start, start + n) % 65536
    return arr


def test_closed_table_rows_read_back_in_any_order(spill_all: dict[str, int]) -> None:
    import numpy as np

    from tcptrace_sm import engine

    ct = engine._Closed(tw_ns=1)
    rows = np.concatenate(
        [ct.append(_closed_rows(k, int(ct.next)), np.full(k, 7, np.uint64)) for k in (10, 100, 90)]
    )
    assert rows.tolist() == list(range(200))
    assert spill_all["files"] == 3  # rows 0-191 in three full segments, 192-199 in memory
    rng = np.random.default_rng(0)
    for _ in range(20):
        want = rng.choice(200, size=int(rng.integers(1, 60)), replace=False).astype(np.int64)
        got = ct.load(want)
        assert got.arr["fid"].tolist() == want.tolist()
        assert got.cport.tolist() == (want % 65536).tolist()
        assert ct.meta("last_ts", want).tolist() == (want * 10).tolist()
    assert ct.load(np.empty(0, dtype=np.int64)).arr.shape == (0,)


def test_closed_table_forgets_segments_once_their_rows_are_gone(spill_all: dict[str, int]) -> None:
    import numpy as np

    from tcptrace_sm import engine

    ct = engine._Closed(tw_ns=1)
    ct.append(_closed_rows(300), np.zeros(300, np.uint64))
    assert spill_all["open"] == 4
    assert ct.count == 300
    ct.release(np.arange(0, 64))  # the first segment: its file goes, the front moves on
    assert spill_all["open"] == 3
    assert ct.base == 64
    ct.release(np.arange(64, 127))  # all of the second but one row: it stays
    assert spill_all["open"] == 3
    assert ct.base == 64
    ct.release(np.array([127, 128, 129]))
    assert spill_all["open"] == 2
    assert ct.base == 128
    assert ct.live_rows().tolist() == list(range(130, 300))
    ct.release(np.arange(130, 192))
    assert ct.base == 192
    assert spill_all["open"] == 1
    assert ct.live_rows().tolist() == list(range(192, 300))
    assert ct.load(np.array([299, 192])).arr["fid"].tolist() == [299, 192]
    more = ct.append(_closed_rows(5, 300), np.zeros(5, np.uint64))
    assert more.tolist() == list(range(300, 305))
    assert ct.meta("fid", more).tolist() == list(range(300, 305))
    ct.release(ct.live_rows())
    assert ct.count == 0
    assert spill_all["open"] == 0
    ct.close()
    with pytest.raises(AssertionError):
        ct.load(np.array([10]))


def test_closed_table_keeps_segments_in_memory_up_to_its_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    from tcptrace_sm import engine

    monkeypatch.setattr(engine, "_CLOSED_SEG", 64)
    ct = engine._Closed(tw_ns=1, in_memory=2 * 64 * engine._CLOSED_DT.itemsize)
    ct.append(_closed_rows(64 * 6), np.zeros(64 * 6, np.uint64))
    kinds = [type(s).__name__ for s in ct.segs]
    assert kinds == ["ndarray", "ndarray", "_Spilled", "_Spilled", "_Spilled", "_Spilled"]
    assert ct.spilled == 4
    got = ct.load(np.array([383, 0, 200, 64]))
    assert got.arr["fid"].tolist() == [383, 0, 200, 64]
    ct.close()


# ---- parking: connections that only wait, out of the store ------------------------------------


@pytest.fixture
def park_early(monkeypatch: pytest.MonkeyPatch, spill_all: dict[str, int]) -> dict[str, int]:
    """Connections parked after 0.2 s of quiet, in tiny segments all written to files; counts
    what was parked, brought back (and why) and moved to the end of the parked table."""
    from tcptrace_sm import engine

    monkeypatch.setattr(engine, "_PARK_AFTER_NS", 200_000_000)
    monkeypatch.setattr(engine, "PARKED_IN_MEMORY", 0)
    monkeypatch.setattr(engine, "_PARK_SEG", 64)
    seen = spill_all
    seen.update(parked=0, back=0, moved=0)
    park, unpark, quiet = engine.Engine._park, engine.Engine._unpark, engine.Engine._park_quiet
    front = engine._Segmented.front_to_move

    def spy_park(self: Engine, slots: Any) -> None:
        seen["parked"] += len(slots)
        park(self, slots)

    def spy_unpark(self: Engine, rows: Any) -> Any:
        seen["back"] += len(rows)
        return unpark(self, rows)

    def spy_front(self: Any) -> Any:
        out = front(self)
        seen["moved"] += len(out)
        return out

    monkeypatch.setattr(engine.Engine, "_park", spy_park)
    monkeypatch.setattr(engine.Engine, "_unpark", spy_unpark)
    monkeypatch.setattr(engine.Engine, "_park_quiet", quiet)
    monkeypatch.setattr(engine._Segmented, "front_to_move", spy_front)
    return seen


@pytest.mark.parametrize("seed", [0, 3, 5])
def test_parked_connections_come_back_as_they_were(
    generated: list[Path], seed: int, small_chunks: None, park_early: dict[str, int]
) -> None:
    assert_same(*both(generated[seed]))
    assert park_early["parked"] > 50
    assert park_early["back"] == park_early["parked"]  # every one, by the end
    assert park_early["open"] == 0


@pytest.mark.parametrize("seed", [0, 3])
def test_parked_attempts_are_evicted_first_from_a_full_table(
    generated: list[Path], seed: int, small_chunks: None, park_early: dict[str, int]
) -> None:
    ref, fast = both(generated[seed], max_flows=40)
    assert ref.summary["evicted"] > 0
    assert_same(ref, fast)
    assert park_early["parked"] > 20


@pytest.mark.parametrize("time_wait", [0.0, 2.0])
def test_parked_connections_with_short_time_wait(
    generated: list[Path], time_wait: float, small_chunks: None, park_early: dict[str, int]
) -> None:
    assert_same(*both(generated[1], time_wait=time_wait, close_wait_timeout=0.5))
    assert park_early["parked"] > 20


def test_parked_connections_in_cut_and_kernel_captures(
    tmp_path: Path, small_chunks: None, park_early: dict[str, int]
) -> None:
    cut = write_pcap(tmp_path / "cut.pcap", traffic(2, 700, span_s=20), snaplen=96)
    kernel = sorted((SAMPLES / "kernel").glob("*.pcap")) + sorted((SAMPLES / "lossy").glob("*.pcap"))
    assert_same(*both(cut))
    assert_same(*both(kernel))
    assert park_early["parked"] > 20


def _syn_flood(path: Path, n: int, span_s: float, *, answered: Any = None, again: int = 0) -> Path:
    """``n`` SYNs from distinct ports over ``span_s`` seconds; attempt ``i`` answered by a
    SYN-ACK 30 s later where ``answered(i)``; ``again`` of the first ones sent once more at
    the end."""
    syn, ack = 0x02, 0x10
    segs: list[tuple[int, str, int, str, int, int, int, int, int, int, bytes]] = []
    t0 = 1_700_000_000 * 10**9
    step = int(span_s * 10**9 / n)

    def client(i: int) -> tuple[str, int]:
        return f"10.1.{i >> 8 & 255}.{i & 255}", 1024 + i % 60000

    for i in range(n):
        ts = t0 + i * step
        ip, port = client(i)
        segs.append((ts, ip, port, "10.0.0.1", 80, 1000 + i, 0, syn, 64240, 0, b""))
        if answered is not None and answered(i):
            segs.append((ts + 30 * 10**9, "10.0.0.1", 80, ip, port, 5000, 1001 + i, syn | ack, 65160, 0, b""))
    end = t0 + n * step
    for i in range(again):
        ip, port = client(i)
        segs.append((end + i * 1000, ip, port, "10.0.0.1", 80, 1000 + i, 0, syn, 64240, 0, b""))
    segs.sort(key=lambda s: s[0])
    return write_pcap(path, segs)


def test_parked_rows_left_behind_move_to_the_end(
    tmp_path: Path, small_chunks: None, park_early: dict[str, int]
) -> None:
    """Nine attempts in ten answered late (they go to the core), the tenth never: the few
    parked rows left in old segments are moved to the end so those segments can go."""
    path = _syn_flood(tmp_path / "flood.pcap", 3000, 30.0, answered=lambda i: i % 10 != 0, again=40)
    assert_same(*both(path))
    assert park_early["moved"] > 20
    assert park_early["files"] > 20
    assert park_early["read"] > 1000
    assert park_early["open"] == 0


def test_unanswered_attempts_leave_the_store(tmp_path: Path, small_chunks: None) -> None:
    """A SYN flood: the store holds the last few seconds' attempts, the rest are parked (40
    bytes each in memory); the answers are the core's."""
    path = _syn_flood(tmp_path / "flood.pcap", 6000, 60.0, answered=lambda i: i % 97 == 0, again=50)
    stats = ReadStats()
    eng = Engine(Options())
    most = 0
    for cols in read_columns(path, stats=stats):
        eng.feed(cols)
        most = max(most, eng.store.count)
    assert most < 1200  # about 5 s of the 100 a second, and the chunk in hand
    assert eng.parked.count > 4000
    for _ in eng.finish(stats.last_ts or 0):
        pass
    assert eng.parked.count == 0
    assert_same(*both(path))


def test_a_flood_of_attempts_is_parked_before_it_is_quiet(
    tmp_path: Path, small_chunks: None, monkeypatch: pytest.MonkeyPatch, generated: list[Path]
) -> None:
    """More waiting connections in the store than it should hold: the oldest are parked at
    once, quiet or not; answers unchanged, with a full table too."""
    from tcptrace_sm import engine

    monkeypatch.setattr(engine, "_PARK_STORE", 64)
    path = _syn_flood(tmp_path / "flood.pcap", 3000, 3.0, answered=lambda i: i % 7 == 0, again=40)
    stats = ReadStats()
    eng = Engine(Options())
    for cols in read_columns(path, stats=stats):
        eng.feed(cols)
        assert eng.store.count < 64 + 2000  # at most a chunk's new ones on top
    assert eng.parked.count > 2000
    assert_same(*both(path))
    assert_same(*both(path, max_flows=500))
    assert_same(*both(generated[3]))


def test_closed_table_finds_the_rows_that_are_due_segment_by_segment(spill_all: dict[str, int]) -> None:
    """``rows_upto`` gives every row still here whose key is at most the bound, looking only
    at segments that may hold one (rows out of order included)."""
    import numpy as np

    from tcptrace_sm import engine

    ct = engine._Closed(tw_ns=1)
    rows = _closed_rows(300)
    rows["last_ts"][::7] = 5  # a few early ones everywhere
    rows["last_ts"][250] = 10**9  # and a late one
    ct.append(rows, np.zeros(300, np.uint64))
    for bound in (-1, 5, 100, 1500, 2990, 10**10):
        want = [r for r in range(300) if rows["last_ts"][r] <= bound]
        assert ct.rows_upto(bound).tolist() == want
    ct.release(np.arange(0, 140))
    ct.release(np.array([147, 154]))
    left = [r for r in range(140, 300) if r not in (147, 154)]
    assert ct.rows_upto(2000).tolist() == [r for r in left if rows["last_ts"][r] <= 2000]
    assert ct.rows_upto(10**10).tolist() == left
    ct.close()


def test_closed_table_keeps_rows_in_memory_past_its_file_limit(
    spill_all: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np

    from tcptrace_sm import engine

    monkeypatch.setattr(engine, "_MAX_FILES", 2)
    ct = engine._Closed(tw_ns=1)
    ct.append(_closed_rows(64 * 5), np.zeros(64 * 5, np.uint64))
    assert [type(s).__name__ for s in ct.segs] == ["_Spilled", "_Spilled", "ndarray", "ndarray", "ndarray"]
    assert ct.load(np.array([319, 0, 130])).arr["fid"].tolist() == [319, 0, 130]
    ct.close()
