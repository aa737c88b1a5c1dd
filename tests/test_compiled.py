"""The compiled helpers (``tcptrace_sm._scan``) against the numpy / Python paths they replace.

The reader uses the compiled record walk and row gathering when they were built at install
time (``capture.COMPILED``) and numpy plus a Python loop otherwise; both must give the same
segments, the same skip counts and the same warnings on every capture, clean or mangled.
"""

from __future__ import annotations

import os
import random
import struct
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import SAMPLES
from mutate import SEEDS, make_case, time_budget

from tcptrace_sm import capture
from tcptrace_sm.capture import CaptureError, Columns, ReadStats, read_columns
from tcptrace_sm.engine import syn_options

needs_compiled = pytest.mark.skipif(not capture.COMPILED, reason="tcptrace_sm._scan was not built")


def _read(paths: list[Path], compiled: bool) -> tuple[list[tuple[str, Any]], dict[str, Any]]:
    saved = capture.COMPILED
    capture.COMPILED = compiled
    try:
        stats = ReadStats()
        with time_budget(20, f"reading {paths}"):
            blocks = list(read_columns(paths, stats=stats))
    except CaptureError as e:  # an unusable file: the same one-line error either way
        return [], {"error": str(e)}
    finally:
        capture.COMPILED = saved
    cols: list[tuple[str, Any]] = []
    for b in blocks:
        for name in ("frame", "fam", "src", "dst", "sport", "dport", "seq", "ack", "flags", "win", "length"):
            cols.append((name, np.asarray(getattr(b, name)).tobytes()))
        cols.append(("opt", b.opt.tobytes()))
        cols.append(("ooff", b.ooff.tobytes()))
        cols.append(("mark", b.mark.tobytes()))
    facts = {
        "packets": stats.packets,
        "segments": stats.segments,
        "skipped": dict(stats.skipped),
        "truncated": stats.truncated,
        "warnings": list(stats.warnings),
    }
    return cols, facts


def test_the_ci_build_compiles_the_helpers() -> None:
    """``optional=True`` lets an install without a compiler succeed; CI, which has one, must
    not slip to the slow path unnoticed (``.ci/run`` sets ``TCPSM_EXPECT_COMPILED``)."""
    if not os.environ.get("TCPSM_EXPECT_COMPILED"):
        pytest.skip("only asserted where TCPSM_EXPECT_COMPILED is set (CI)")
    assert capture.COMPILED


def test_the_environment_can_turn_the_helpers_off() -> None:
    code = "from tcptrace_sm import capture; print(capture.COMPILED)"
    env = {**os.environ, "TCPSM_PURE_PYTHON": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@needs_compiled
@pytest.mark.parametrize("path", SEEDS, ids=lambda p: p.name)
def test_same_columns_on_every_sample(path: Path) -> None:
    assert _read([path], True) == _read([path], False)


@needs_compiled
@pytest.mark.parametrize("seed", range(200))
def test_same_columns_on_mangled_captures(seed: int) -> None:
    case = make_case(seed, max_size=400_000)
    with tempfile.TemporaryDirectory() as d:
        paths = case.write(Path(d))
        assert _read(paths, True) == _read(paths, False), case.describe()


def _records(caplens: list[int], big: bool = False) -> bytes:
    fmt = ">IIII" if big else "<IIII"
    return b"".join(struct.pack(fmt, 1, 2, c, c) + b"x" * c for c in caplens)


@needs_compiled
@pytest.mark.parametrize(
    ("buf", "pos", "big"),
    [
        (b"", 0, False),
        (_records([4, 0, 7]), 0, False),
        (_records([4, 0, 7], big=True), 0, True),
        (_records([4, 0, 7]) + b"\x01" * 10, 0, False),  # a cut record header at the end
        (_records([4, 9]) + _records([100])[:30], 0, False),  # a record cut inside its data
        (_records([4, 9]), 20, False),  # starting at the second record
        (_records([4]), 500, False),  # past the end
        (b"\x00" * 8 + b"\xff\xff\xff\xff" + b"\x00" * 4, 0, False),  # 4 GiB captured length
    ],
)
def test_walk_agrees_with_the_python_loop(buf: bytes, pos: int, big: bool) -> None:
    raw, end = capture._scan.pcap_walk(buf, pos, 16, big)
    saved = capture.COMPILED
    capture.COMPILED = False
    try:
        offs, pend = capture._pcap_walk(buf, pos, 16, big)
    finally:
        capture.COMPILED = saved
    assert np.frombuffer(raw, dtype=np.int64).tolist() == offs.tolist()
    assert end == pend


@needs_compiled
def test_gather_copies_rows_and_refuses_out_of_bounds() -> None:
    src = np.arange(50, dtype=np.uint8)
    out = np.zeros((3, 4), dtype=np.uint8)
    capture._scan.gather(src, np.array([0, 10, 46], dtype=np.int64), 4, out)
    assert out.tolist() == [[0, 1, 2, 3], [10, 11, 12, 13], [46, 47, 48, 49]]
    capture._scan.gather(src, np.array([-4], dtype=np.int64), 4, out)  # counts from the end, as numpy
    assert out[0].tolist() == [46, 47, 48, 49]
    for bad in (47, 50, -51):
        with pytest.raises(IndexError):
            capture._scan.gather(src, np.array([bad], dtype=np.int64), 4, out)
    with pytest.raises(ValueError, match="too small"):
        capture._scan.gather(src, np.array([0, 1, 2, 3], dtype=np.int64), 4, out)


def _options(rng: random.Random) -> bytes:
    """TCP option bytes as SYNs carry them, and as mangled ones do."""
    parts = [
        b"\x02\x04\x05\xb4",  # MSS
        b"\x01",  # NOP
        b"\x03\x03" + bytes([rng.randrange(256)]),  # window scale, any shift
        b"\x03\x02",  # window scale without its value
        b"\x04\x02",  # SACK permitted
        b"\x08\x0a" + bytes(rng.randrange(256) for _ in range(8)),  # timestamps
        b"\x22\x02",  # Fast Open, cookie request (no value)
        b"\x22\x0a" + bytes(8),  # Fast Open with a cookie
        b"\xfe\x06\xf9\x89\x01\x02",  # experimental Fast Open with a cookie
        b"\xfe\x04\xf9\x89",  # experimental Fast Open, no cookie
        b"\xfe\x06\x12\x34\x01\x02",  # another experiment
        b"\x00",  # EOL
        bytes([rng.randrange(256), rng.randrange(4)]),  # garbage kind, lengths 0-3
        bytes([rng.randrange(256)]),
    ]
    out = b"".join(rng.choice(parts) for _ in range(rng.randrange(12)))
    return out[: rng.choice((40, 40, 60, rng.randrange(61)))]


@needs_compiled
def test_syn_options_agree_with_the_numpy_walk() -> None:
    rng = random.Random(7)
    raw = [_options(rng) for _ in range(5000)]
    opt = np.frombuffer(b"".join(raw), dtype=np.uint8)
    ooff = np.zeros(len(raw) + 1, dtype=np.int64)
    np.cumsum([len(r) for r in raw], out=ooff[1:])
    cols = Columns.empty()
    cols.opt, cols.ooff = opt, ooff
    rows = np.array(rng.sample(range(len(raw)), 3000), dtype=np.int64)
    got = syn_options(cols, rows)
    saved = capture.COMPILED
    capture.COMPILED = False
    try:
        want = syn_options(cols, rows)
    finally:
        capture.COMPILED = saved
    assert got[0].tolist() == want[0].tolist()
    assert got[1].tolist() == want[1].tolist()
    assert {-1, 0, 14} <= set(got[0].tolist())  # the cases the walk must tell apart occur
    assert got[1].any()
    assert not got[1].all()


@needs_compiled
@pytest.mark.parametrize(
    "name", ["kernel/close_wait_leak.pcap", "lossy", "formats/base-eth.pcap", "loopback_base.pcap"]
)
def test_same_analysis_either_way(name: str) -> None:
    from tcptrace_sm import analyze

    path = SAMPLES / name
    paths = sorted(path.glob("*.pcap")) if path.is_dir() else [path]
    saved = capture.COMPILED
    try:
        capture.COMPILED = False
        plain = analyze(paths)
        capture.COMPILED = True
        fast = analyze(paths)
    finally:
        capture.COMPILED = saved
    for table in ("flows", "anomalies", "transitions"):
        assert getattr(fast, table).equals(getattr(plain, table)), table
    assert len(fast.flows) > 0


@needs_compiled
def test_address_names_agree_with_socket_inet_ntop() -> None:
    rng = random.Random(3)
    six = [
        bytes(16),
        bytes(15) + b"\x01",
        b"\x00" * 10 + b"\xff\xff" + bytes([192, 0, 2, 1]),  # IPv4-mapped
        b"\x20\x01\x0d\xb8" + bytes(12),
        b"\xfe\x80" + bytes(6) + bytes(rng.randrange(256) for _ in range(8)),
        *(bytes(rng.randrange(256) for _ in range(16)) for _ in range(300)),
        *(bytes(rng.choice((0, 0, 0, 1, 255)) for _ in range(16)) for _ in range(300)),
    ]
    four = [bytes(12) + bytes(rng.randrange(256) for _ in range(4)) for _ in range(300)]
    four += [bytes(16), bytes(12) + b"\xff" * 4]
    fam = np.array([6] * len(six) + [4] * len(four), dtype=np.uint8)
    addr = np.frombuffer(b"".join(six + four), dtype="V16")
    order = np.array(rng.sample(range(len(fam)), len(fam)))
    fam, addr = fam[order], addr[order]
    got = capture.NAMES.of(fam, addr)
    saved = capture.COMPILED
    capture.COMPILED = False
    try:
        want = [capture.NAMES.of(fam, addr), capture.NAMES.of(fam[fam == 4], addr[fam == 4])]
    finally:
        capture.COMPILED = saved
    assert got == want[0]
    assert capture.NAMES.of(fam[fam == 4], addr[fam == 4]) == want[1]
    assert "::ffff:192.0.2.1" in got
    assert "2001:db8::" in got


@needs_compiled
@pytest.mark.parametrize(
    "values",
    [
        [],
        [0, 1, 999_999_999, 1_000_000_000, 1_700_000_000_123_456_789, None, -1, -1_500_000_000],
        [capture.TS_MIN, capture.TS_MAX, -(2**63), 2**63 - 1],
        [1, 2**64, -(2**70)],  # beyond 64 bits: Python formats them
    ],
)
def test_timestamp_cells_agree_with_ts_text(values: list[int | None]) -> None:
    from tcptrace_sm.report import _ts_cells, ts_text

    assert _ts_cells(values) == [ts_text(v) for v in values]


class _Code(str):
    """A str subclass, as an enum's value would be."""


@needs_compiled
@pytest.mark.parametrize(
    "values",
    [
        [1, 0, -5, 2**70, True, False, None],
        [True, False, None],
        ["a", "", None, _Code("CLOSE-WAIT")],
        [["a", "b"], [], ("x",), (), [1, 2], None],
        [0.0, -0.0, 1.5, 0.1234567, 100.0, 1e-9, -2.25, 1e20, float("inf"), float("nan"), None, 3],
        [np.float64(0.5), np.int64(7), np.bool_(True), _Code("")],
    ],
)
def test_csv_cells_agree_with_the_python_formatting(values: list[Any]) -> None:
    from tcptrace_sm.report import _cell, _column_cells

    got = _column_cells("duration", values)
    saved = capture.COMPILED
    capture.COMPILED = False
    try:
        want = _column_cells("duration", values)
    finally:
        capture.COMPILED = saved
    assert got == want == [_cell("duration", v) for v in values]


def _block(btype: int, blen: int, big: bool = False, body: bytes | None = None) -> bytes:
    fmt = ">II" if big else "<II"
    raw = struct.pack(fmt, btype, blen)
    return raw + (body if body is not None else b"\x00" * max(blen - 8, 0))


@needs_compiled
@pytest.mark.parametrize(
    ("buf", "big"),
    [
        (b"", False),
        (_block(6, 32) + _block(3, 16) + _block(2, 32) + _block(5, 12) + _block(6, 36), False),
        (_block(6, 32, True) + _block(3, 20, True) + _block(6, 32, True), True),
        (_block(6, 32) + _block(1, 20), False),  # an interface description stops the walk
        (_block(6, 32) + _block(0x0A0D0D0A, 28), False),  # so does a section header
        (_block(6, 32) + _block(6, 30), False),  # not a multiple of 4
        (_block(6, 32) + _block(6, 28), False),  # below the minimum
        (_block(3, 12), False),
        (_block(99, 8), False),
        (_block(6, 32) + _block(6, 64)[:40], False),  # the last block does not fit
        (_block(6, 32) + _block(6, 0xFFFFFFF0, body=b"\x00" * 8), False),  # absurdly long
        (_block(6, 32) + b"\x06\x00", False),  # a cut block header
    ],
)
def test_pcapng_walk_agrees_with_the_python_loop(buf: bytes, big: bool) -> None:
    got = capture._pcapng_walk(buf, 0, big)
    saved = capture.COMPILED
    capture.COMPILED = False
    try:
        want = capture._pcapng_walk(buf, 0, big)
    finally:
        capture.COMPILED = saved
    assert got[0].tolist() == want[0].tolist()
    assert got[1:] == want[1:]


@needs_compiled
def test_one_chunk_mixing_plain_and_unusual_records(tmp_path: Path) -> None:
    """Plain TCP records (decoded in C) and every kind the numpy decoder keeps (extension
    headers, fragments, tunnels, VLAN tags, skips) in one chunk: merged back in record order."""
    import pcapgen as g

    seg = g.tcp_header(40000, 80, 1000, 7, g.ACK | g.PSH, payload=b"x" * 16) + b"x" * 16
    v4 = g.ipv4("10.0.0.1", "10.0.0.2", seg)
    frag1 = g.ipv4("10.0.0.1", "10.0.0.2", seg[:16], df=False, mf=True, ident=9, total_length=36)
    frag2 = g.ipv4("10.0.0.1", "10.0.0.2", seg[16:], df=False, frag_offset=2, ident=9, total_length=20 + 20)
    frames = [
        g.frame(v4, g.LT_ETHERNET),  # plain: C
        g.frame(g.tcp6("2001:db8::1", "2001:db8::2", 40001, 80, b"y"), g.LT_ETHERNET),  # plain: C
        g.frame(v4, g.LT_ETHERNET, vlans=[(0x8100, 5), (0x88A8, 6)]),  # tagged: C
        g.frame(g.ipv6("2001:db8::1", "2001:db8::2", seg, ext=[(0, b"\x01\x00")]), g.LT_ETHERNET),
        g.frame(frag1, g.LT_ETHERNET),  # fragments: numpy, reassembled as the second's record
        g.frame(v4, g.LT_ETHERNET),
        g.frame(frag2, g.LT_ETHERNET),
        g.frame(g.ipv4("10.0.0.1", "10.0.0.2", g.udp(5, 53, b"q"), proto=17), g.LT_ETHERNET),
        g.frame(g.ipv4("192.0.2.1", "192.0.2.2", g.udp(1, 4789, g.vxlan(g.frame(v4, g.LT_ETHERNET))), 17), 1),
        g.frame(v4, g.LT_ETHERNET)[:30],  # cut inside the IP header
        g.ethernet(b"\0" * 28, 0x0806),  # not IP
        g.frame(g.ipv4("10.0.0.1", "10.0.0.2", seg, ihl=4), g.LT_ETHERNET),  # malformed
        g.frame(v4, g.LT_ETHERNET),
    ]
    path = tmp_path / "mixed.pcap"
    path.write_bytes(g.pcap([(1_700_000_000_000_000_000 + k * 1000, f) for k, f in enumerate(frames)]))
    fast, plain = _read([path], True), _read([path], False)
    assert fast == plain
    frames_of = [c for name, c in fast[0] if name == "frame"]
    assert np.frombuffer(b"".join(frames_of), dtype=np.int64).tolist() == [1, 2, 3, 4, 6, 7, 9, 13]
    skipped = {k: v for k, v in fast[1]["skipped"].items() if v}
    assert skipped == {"fragment": 1, "not_tcp": 1, "truncated_header": 1, "not_ip": 1, "malformed": 1}


# ---- the fast engine's chunk evaluation: compiled (one segment at a time) against numpy ----


def _traffic_files(tmp: Path) -> list[Path]:
    from trafficgen import lossy_downloads, resets_after_fin, syn_retries, syn_scan, traffic, write_pcap

    out = [
        write_pcap(tmp / "lossy.pcap", lossy_downloads(60)),
        write_pcap(tmp / "lossy_cut.pcap", lossy_downloads(60), snaplen=96),
        write_pcap(tmp / "resets.pcap", resets_after_fin(400)),
        write_pcap(tmp / "resets_late.pcap", resets_after_fin(400, rst_after_s=2.0)),
        write_pcap(tmp / "scan.pcap", syn_scan(700)),
        write_pcap(tmp / "backoff.pcap", syn_retries(200, gaps_s=(1.0, 2.0, 4.0, 8.0, 16.0))),
    ]
    for seed in range(4):
        segments = traffic(seed, 500, span_s=8 + 6 * seed)
        out.append(write_pcap(tmp / f"t{seed}.pcap", segments))
        out.append(write_pcap(tmp / f"t{seed}_cut.pcap", segments, snaplen=96 + 32 * (seed % 2)))
    return out


@needs_compiled
def test_compiled_chunk_evaluation_is_the_numpy_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every chunk is evaluated both ways from the same store: the same connections handed
    over, and every field of every other connection's row (and its SYN-ACK's options) the same.
    Small chunks put connections across many chunk boundaries; both outcomes occur
    (committed, handed over), and so do committed connections with a side whose payload the
    snaplen cut only in part (Zeek's reassembler runs there, compiled too)."""
    from tcptrace_sm import _scan
    from tcptrace_sm.analysis import Options
    from tcptrace_sm.engine import Engine

    files = _traffic_files(tmp_path) + sorted((SAMPLES / "kernel").glob("*.pcap"))
    files += sorted((SAMPLES / "lossy").glob("*.pcap"))
    outcomes = np.zeros(2, dtype=np.int64)
    apply = _scan.fast_apply

    def counted(*args: Any) -> None:
        apply(*args)
        outcomes[:] += np.bincount(args[11], minlength=2)

    compiled = Engine._fast
    compared = mixed = 0

    def both(self: Engine, cols: Columns, rows: Any, seg_slot: Any, is_new: Any, clock: Any) -> Any:
        nonlocal compared, mixed
        st = self.store
        saved = [a.copy() for a in (st.data64, st.data32, st.opt, st.optlen)]
        by_numpy = self._fast_columns(cols, rows, seg_slot, is_new, clock)
        after = [a.copy() for a in (st.data64, st.data32, st.opt)]
        for a, b in zip((st.data64, st.data32, st.opt, st.optlen), saved, strict=True):
            a[:] = b
        bail = compiled(self, cols, rows, seg_slot, is_new, clock)
        assert sorted(bail.tolist()) == sorted(by_numpy.tolist())
        kept = np.setdiff1d(np.unique(seg_slot[rows]), bail)
        assert np.array_equal(after[0][kept], st.data64[kept])
        assert np.array_equal(after[1][kept], st.data32[kept])
        assert np.array_equal(after[2][:, kept], st.opt[:, kept])
        compared += len(kept)
        mixed += int(((st.cols["c_ztr"][kept] == 2) | (st.cols["s_ztr"][kept] == 2)).sum())
        return bail

    monkeypatch.setattr(_scan, "fast_apply", counted)
    monkeypatch.setattr(Engine, "_fast", both)
    for chunk in (1 << 12, 1 << 16):
        monkeypatch.setattr(capture, "CHUNK", chunk)
        for path in files:
            stats = ReadStats()
            eng = Engine(Options())
            for cols in read_columns(path, stats=stats):
                eng.feed(cols)
            for _ in eng.finish(stats.last_ts or 0):
                pass
    assert compared > 10_000
    assert mixed > 100, mixed
    assert (outcomes > 0).all(), outcomes


@needs_compiled
def test_compiled_chunk_evaluation_checks_its_arguments() -> None:
    from tcptrace_sm import _scan

    d64 = np.zeros((4, 3), dtype=np.int64)
    d32 = np.zeros((4, 2), dtype=np.int32)
    nf = len(_scan.fast_fields())
    fmap = np.zeros(nf, dtype=np.int64)
    one = np.zeros(1, dtype=np.int64)
    args: list[Any] = [d64, 3, d32, 2, fmap, np.array([0, 1]), one, np.zeros(1, np.uint8)]
    args += [np.zeros((9, 1), np.int64), np.zeros((4, 1), np.uint8), np.zeros(15, np.int64)]
    args += [np.zeros(1, np.uint8), np.zeros(1, np.int64)]
    _scan.fast_apply(*args)  # well formed
    bad: list[tuple[int, Any, str]] = [
        (1, 5, "tables do not match"),
        (4, np.zeros(3, np.int64), "one entry per field"),
        (4, np.full(nf, 7 << 32, np.int64), "column is out of range"),
        (5, np.array([0, 2]), "slot or bounds"),
        (6, np.array([9]), "slot or bounds"),
        (7, np.zeros(2, np.uint8), "one bound, slot"),
        (8, np.zeros((8, 1), np.int64), "9 rows"),
        (10, np.zeros(8, np.int64), "params 15"),
    ]
    for i, value, message in bad:
        wrong = list(args)
        wrong[i] = value
        with pytest.raises(ValueError, match=message):
            _scan.fast_apply(*wrong)
    assert nf == len(set(_scan.fast_fields()))


@needs_compiled
def test_compiled_segments_and_journal_rows_check_their_arguments() -> None:
    from tcptrace_sm import _scan

    i64 = np.zeros(2, np.int64)
    seg_args: list[Any] = [np.array([1, 0]), np.array([0, 1]), *[i64] * 9, np.zeros((2, 16), np.uint8)]
    seg_args += [np.zeros(2, np.uint8), i64, np.zeros((2, 16), np.uint8), 2]
    seg_args += [np.zeros((9, 2), np.int64), np.zeros((4, 2), np.uint8)]
    _scan.fast_segments(*seg_args)  # well formed
    for i, value, message in [
        (1, np.zeros(3, np.int64), "must match order"),
        (11, np.zeros((1, 16), np.uint8), "src, mark and cip"),
        (5, np.zeros(3, np.int64), "int64 of one length"),
        (0, np.array([0, 2]), "out of range"),
        (1, np.array([0, 5]), "out of range"),
    ]:
        wrong = list(seg_args)
        wrong[i] = value
        with pytest.raises(ValueError, match=message):
            _scan.fast_segments(*wrong)
    seg64, seg8 = np.zeros((9, 2), np.int64), np.zeros((4, 2), np.uint8)
    seg64[0] = [5, 6]  # frames, the group's first at 5
    jr_args: list[Any] = [np.array([1, 0]), 2, seg64, seg8, np.array([0, 2]), np.zeros(1, np.uint8)]
    jr_args += [np.zeros(1, np.int64), np.array([5]), np.zeros(1, np.int64), 1 << 32]
    out = np.zeros(2, dtype=[("b", "V40")])
    assert _scan.journal_rows(*jr_args, out) == 2
    assert _scan.journal_rows(*jr_args[:9], 1, out) == -1  # a frame 1 after its first: too far
    for i, value, message in [
        (2, np.zeros((9, 1), np.int64), "must match order"),
        (4, np.array([0, 3]), "slot or bounds"),
        (5, np.zeros(2, np.uint8), "one bound, status"),
        (0, np.array([2, 0]), "out of range"),
        (9, -1, "one bound, status"),
    ]:
        wrong = list(jr_args)
        wrong[i] = value
        with pytest.raises(ValueError, match=message):
            _scan.journal_rows(*wrong, out)


@needs_compiled
@pytest.mark.parametrize("n", [0, 1, 7, 1000, 50_000])
def test_distinct_values_as_numpy_unique_gives_them(n: int) -> None:
    """The compiled grouping of a chunk's 4-tuple hashes: numpy.unique's first positions and
    inverse, exactly (few and many distinct values, zero, the largest value, runs)."""
    from tcptrace_sm.engine import _unique_first

    rng = np.random.default_rng(n)
    for distinct in (1, 3, max(n // 10, 1), max(n, 1)):
        h = rng.integers(0, distinct, n).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        if n > 2:
            h[0], h[-1] = np.uint64(0), np.uint64(2**64 - 1)
        _u, first, inv = np.unique(h, return_index=True, return_inverse=True)
        got_first, got_inv = _unique_first(h)
        assert got_first.tolist() == first.tolist()
        assert got_inv.tolist() == inv.ravel().tolist()


@needs_compiled
def test_distinct_values_need_room_for_every_position() -> None:
    from tcptrace_sm import _scan

    h = np.arange(5, dtype=np.uint64)
    with pytest.raises(ValueError, match="room"):
        _scan.group_first(h, np.empty(4, dtype=np.int64), np.empty(5, dtype=np.int64))
