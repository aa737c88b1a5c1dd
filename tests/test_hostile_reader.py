"""Hostile input for the capture reader: hand-built corner cases, one test each, and a property test
over random pcap / pcapng files whose record headers say whatever hypothesis likes.

The behaviour asserted is the one ``tcptrace_sm/capture.py``'s docstring documents: only
``CaptureError`` (one line, naming the file) for an unusable file, raised when the reader is
called; a cut or corrupt record ends the file with one warning, keeping everything before it.
"""

from __future__ import annotations

import gzip
import struct
import tempfile
import time
from itertools import pairwise
from pathlib import Path
from typing import Any

import dpkt
import pcapgen as g
import pytest
from conftest import SAMPLES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mutate import Hang, time_budget

import tcptrace_sm
from tcptrace_sm.capture import MAX_BLOCK, MAX_CAPLEN, TS_MIN, CaptureError, ReadStats, read_segments
from tcptrace_sm.model import Segment

T_SEC = 1_700_000_000
US, NS, MODIFIED = 0xA1B2C3D4, 0xA1B23C4D, 0xA1B2CD34


def frame(k: int, payload: bytes = b"", flags: int = g.ACK, linktype: int = g.LT_ETHERNET) -> bytes:
    ip = g.tcp4("10.0.0.1", "10.0.0.2", 40000, 80, payload, seq=1000 + k * 10, ack=7, flags=flags)
    return g.frame(ip, linktype)


FRAMES = [frame(k, b"d" * k) for k in range(6)]


def records(frames: list[bytes] = FRAMES) -> list[g.PcapField]:
    return [(T_SEC + k, k, len(f), len(f), f) for k, f in enumerate(frames)]


def write(tmp_path: Path, data: bytes, name: str = "x.pcap") -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def read(paths: Any) -> tuple[list[Segment], ReadStats]:
    """Every segment and the stats, under a hard time budget (a hang fails instead of blocking)."""
    stats = ReadStats()
    try:
        with time_budget(10, f"reading {paths}"):
            return list(read_segments(paths, stats=stats)), stats
    except Hang as e:
        pytest.fail(str(e), pytrace=False)


def clean() -> list[Segment]:
    """The segments of FRAMES in an unremarkable pcap (what a damaged file must keep a prefix of)."""
    with tempfile.TemporaryDirectory() as d:
        return read(write(Path(d), g.pcap_fields(records())))[0]


def assert_sane(segs: list[Segment], stats: ReadStats) -> None:
    frames = [s.frame for s in segs]
    assert frames == sorted(set(frames))
    assert all(1 <= f <= stats.packets for f in frames)
    assert stats.segments == len(segs) <= stats.packets
    assert stats.segments + sum(stats.skipped.values()) == stats.packets
    assert all(v >= 0 for v in stats.skipped.values())
    assert all("\n" not in w for w in stats.warnings)
    if stats.truncated:
        assert stats.warnings


def one_warning(stats: ReadStats, *words: str) -> str:
    assert stats.truncated
    assert len(stats.warnings) == 1, stats.warnings
    w = stats.warnings[0]
    for word in words:
        assert word in w, w
    return w


# --------------------------------------------------------------------------- snaplen


@pytest.mark.parametrize("snaplen", [0, 0xFFFFFFFF], ids=["snaplen0", "snaplen2^32-1"])
@pytest.mark.parametrize("magic", [US, NS, MODIFIED], ids=["us", "ns", "modified"])
@pytest.mark.parametrize("big", [False, True], ids=["le", "be"])
def test_snaplen_0_and_2_32_minus_1_still_read_every_packet(
    tmp_path: Path, snaplen: int, magic: int, big: bool
) -> None:
    segs, stats = read(
        write(tmp_path, g.pcap_fields(records(), snaplen=snaplen, magic=magic, big_endian=big))
    )
    assert_sane(segs, stats)
    assert not stats.warnings
    assert [(s.frame, s.seq, s.length) for s in segs] == [(s.frame, s.seq, s.length) for s in clean()]


def test_a_record_above_the_default_limit_is_read_under_a_huge_snaplen(tmp_path: Path) -> None:
    """libpcap's rule: a record within the file's own (huge) snaplen is a record, up to MAX_BLOCK."""
    big = g.frame(
        g.ipv4("10.0.0.1", "10.0.0.2", g.tcp_header(40000, 80, 5, 7, payload=b"j" * 300_000), total_length=0),
        1,
    )
    recs = [*records()[:2], (T_SEC + 9, 0, len(big), len(big), big), *records()[2:]]
    segs, stats = read(write(tmp_path, g.pcap_fields(recs, snaplen=0xFFFFFFFF)))
    assert_sane(segs, stats)
    assert not stats.warnings
    assert len(segs) == 7
    assert segs[2].length == len(big) - 14 - 20 - 20  # IPv4 total length 0: the captured length
    # the same record under the usual snaplen is corrupt: the file stops there, keeping the prefix
    segs, stats = read(write(tmp_path, g.pcap_fields(recs), "y.pcap"))
    one_warning(stats, "corrupt record header", "captured length 300054")
    assert segs == clean()[:2]


def test_a_record_more_than_64k_above_a_small_snaplen_is_corrupt(tmp_path: Path) -> None:
    pad = FRAMES[1] + b"\0" * 1000
    over = b"\0" * (100 + 65536 + 1)
    recs = [records()[0], (T_SEC, 0, len(pad), len(pad), pad), (T_SEC, 0, len(over), len(over), over)]
    segs, stats = read(write(tmp_path, g.pcap_fields([*recs, *records()[2:]], snaplen=100)))
    assert len(segs) == 2  # 1000 bytes over a snaplen of 100 is still a record
    one_warning(stats, "corrupt record header")


@pytest.mark.parametrize("snaplen", [0, 0xFFFFFFFF])
def test_pcapng_interface_snaplen_0_and_2_32_minus_1(tmp_path: Path, snaplen: int) -> None:
    w = g.Pcapng().section()
    w.interface(g.LT_ETHERNET, snaplen=snaplen)
    for k, f in enumerate(FRAMES):
        w.epb(0, (T_SEC + k) * 10**9, f)
    w.spb(FRAMES[0])
    segs, stats = read(write(tmp_path, w.bytes(), "x.pcapng"))
    assert_sane(segs, stats)
    assert not stats.warnings
    assert len(segs) == len(FRAMES) + 1


# ------------------------------------------------------------ zero-length records, caplen > origlen


@pytest.mark.parametrize("origlen", [0, 60])
def test_zero_length_pcap_records_are_counted_and_skipped(tmp_path: Path, origlen: int) -> None:
    recs = records()
    empty = (T_SEC, 0, 0, origlen, b"")
    segs, stats = read(write(tmp_path, g.pcap_fields([empty, recs[0], empty, empty, *recs[1:], empty])))
    assert_sane(segs, stats)
    assert not stats.warnings
    assert stats.packets == len(FRAMES) + 4
    assert stats.skipped["truncated_header"] == 4
    assert [s.frame for s in segs] == [2, 5, 6, 7, 8, 9]  # the empty records have frame numbers


def test_zero_length_pcapng_blocks_are_counted_and_skipped(tmp_path: Path) -> None:
    w = g.Pcapng().section()
    w.interface(g.LT_ETHERNET)
    w.epb(0, T_SEC * 10**9, b"")
    w.epb(0, T_SEC * 10**9, FRAMES[0])
    w.spb(b"")
    w.pb(0, T_SEC * 10**9, b"")
    w.epb(0, T_SEC * 10**9, b"", orig_len=1500)
    w.epb(0, T_SEC * 10**9, FRAMES[1])
    segs, stats = read(write(tmp_path, w.bytes(), "x.pcapng"))
    assert_sane(segs, stats)
    assert not stats.warnings
    assert [s.frame for s in segs] == [2, 6]
    assert stats.skipped["truncated_header"] == 4


def test_caplen_greater_than_origlen_decodes_what_was_captured(tmp_path: Path) -> None:
    recs = [
        (s, f, cap, rng, d) for (s, f, cap, _, d), rng in zip(records(), [0, 1, 20, 54, 1, 0], strict=True)
    ]
    segs, stats = read(write(tmp_path, g.pcap_fields(recs)))
    assert_sane(segs, stats)
    assert not stats.warnings
    assert segs == clean()  # lengths come from the IP header, not from origlen
    w = g.Pcapng().section()
    w.interface(g.LT_ETHERNET)
    for k, f in enumerate(FRAMES):
        w.epb(0, (T_SEC + k) * 10**9, f, orig_len=k)
    segs, stats = read(write(tmp_path, w.bytes(), "x.pcapng"))
    assert not stats.warnings
    assert [(s.seq, s.length) for s in segs] == [(s.seq, s.length) for s in clean()]


# --------------------------------------------------------------------------- absurd lengths


@pytest.mark.parametrize(
    "caplen", [MAX_CAPLEN + 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF], ids=lambda v: f"{v:#x}"
)
@pytest.mark.parametrize("big", [False, True], ids=["le", "be"])
def test_an_absurd_pcap_caplen_stops_the_file_keeping_the_prefix(
    tmp_path: Path, caplen: int, big: bool
) -> None:
    recs = records()
    bad = (T_SEC, 0, caplen, caplen, FRAMES[3])
    t0 = time.monotonic()
    segs, stats = read(write(tmp_path, g.pcap_fields([*recs[:3], bad, *recs[3:]], big_endian=big)))
    assert time.monotonic() - t0 < 5
    assert_sane(segs, stats)
    one_warning(stats, "corrupt record header", f"captured length {caplen}")
    assert segs == clean()[:3]


@pytest.mark.parametrize("delta", [-3, -1, 1, 2, 7])
def test_a_caplen_off_by_a_few_never_raises(tmp_path: Path, delta: int) -> None:
    recs = records()
    s, f, cap, orig, d = recs[3]
    segs, stats = read(write(tmp_path, g.pcap_fields([*recs[:3], (s, f, cap + delta, orig, d), *recs[4:]])))
    assert_sane(segs, stats)
    assert segs[:3] == clean()[:3]  # everything before the damage, as it was


@pytest.mark.parametrize(
    ("length", "trailer"),
    [(0, None), (1, None), (4, None), (8, None), (12, None), (28, None), (30, None), (MAX_BLOCK + 4, None),
     (0x7FFFFFFC, None), (0xFFFFFFFC, None), (0xFFFFFFFF, None), (None, 0), (None, 0xFFFFFFFF), ("+4", None),
     ("-4", None), ("+1", None), (None, "+4")],
)  # fmt: skip
def test_absurd_pcapng_block_lengths_stop_the_file_keeping_the_prefix(
    tmp_path: Path, length: int | str | None, trailer: int | str | None
) -> None:
    w = g.Pcapng().section()
    w.interface(g.LT_ETHERNET)
    for k, f in enumerate(FRAMES[:3]):
        w.epb(0, (T_SEC + k) * 10**9, f)
    true = 28 + len(FRAMES[3]) + (-len(FRAMES[3]) % 4) + 4

    def value(v: int | str | None) -> int | None:
        return true + int(v) if isinstance(v, str) else v

    bad = g.epb_fields(
        0, 0, len(FRAMES[3]), len(FRAMES[3]), FRAMES[3], length=value(length), trailer=value(trailer)
    )
    tail = g.Pcapng()
    for k, f in enumerate(FRAMES[4:]):
        tail.epb(0, 0, f, units=k)
    data = w.bytes() + bad + tail.bytes()
    segs, stats = read(write(tmp_path, data, "x.pcapng"))
    assert_sane(segs, stats)
    assert [s.seq for s in segs[:3]] == [s.seq for s in clean()[:3]]
    assert stats.truncated
    assert len(stats.warnings) == 1


# --------------------------------------------------------------------------- cuts


def _pcapng_bytes() -> tuple[bytes, list[int]]:
    """A small pcapng file and the offset where each of its packet blocks starts."""
    w = g.Pcapng().section()
    w.interface(g.LT_ETHERNET)
    for k, f in enumerate(FRAMES):
        w.epb(0, (T_SEC + k) * 10**9, f)
    starts = []
    off = 0
    for b in w.blocks:
        if struct.unpack_from("<I", b)[0] == 6:
            starts.append(off)
        off += len(b)
    return w.bytes(), starts


@pytest.mark.parametrize("where", ["record header", "record data"])
@pytest.mark.parametrize("fmt", ["pcap", "pcapng", "pcap.gz"])
def test_a_cut_inside_a_record_header_or_its_data_keeps_every_whole_record(
    tmp_path: Path, where: str, fmt: str
) -> None:
    if fmt == "pcapng":
        data, starts = _pcapng_bytes()
        hdr = 28
    else:
        data = g.pcap_fields(records())
        starts = [24 + sum(16 + len(f) for f in FRAMES[:k]) for k in range(len(FRAMES))]
        hdr = 16
    last = starts[-1]
    for cut in range(last + 1, last + hdr) if where == "record header" else range(last + hdr, len(data)):
        blob = data[:cut]
        segs, stats = read(
            write(tmp_path, gzip.compress(blob, mtime=0) if fmt.endswith("gz") else blob, f"c.{fmt}")
        )
        assert_sane(segs, stats)
        assert [s.seq for s in segs] == [s.seq for s in clean()[:-1]], cut
        one_warning(stats, "cut mid-record")


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_a_cut_inside_the_file_header_is_a_capture_error(tmp_path: Path, fmt: str) -> None:
    data = _pcapng_bytes()[0] if fmt == "pcapng" else g.pcap_fields(records())
    for cut in range(28 if fmt == "pcapng" else 24):
        p = write(tmp_path, data[:cut], f"h{cut}.{fmt}")
        with pytest.raises(CaptureError) as e:
            read_segments(p)  # raised by the call, not by the iterator
        assert "\n" not in str(e.value)
        assert str(p) in str(e.value)


# --------------------------------------------------------------------------- time


def test_timestamps_going_backwards_keep_record_order(tmp_path: Path) -> None:
    secs = [T_SEC + 10, T_SEC, T_SEC + 5, T_SEC - 100, T_SEC - 100, T_SEC + 1]
    recs = [(s, 0, len(f), len(f), f) for s, f in zip(secs, FRAMES, strict=True)]
    segs, stats = read(write(tmp_path, g.pcap_fields(recs)))
    assert_sane(segs, stats)
    assert [s.frame for s in segs] == [1, 2, 3, 4, 5, 6]
    assert [s.ts for s in segs] == [s * 10**9 for s in secs]
    assert (stats.first_ts, stats.last_ts) == (min(secs) * 10**9, max(secs) * 10**9)


def test_timestamps_going_backwards_across_two_merged_files(tmp_path: Path) -> None:
    a = [(T_SEC + s, 0, len(f), len(f), f) for s, f in zip([5, 1, 9], FRAMES[:3], strict=True)]
    b = [(T_SEC + s, 0, len(f), len(f), f) for s, f in zip([2, 8, 0], FRAMES[3:], strict=True)]
    pa, pb = write(tmp_path, g.pcap_fields(a), "a.pcap"), write(tmp_path, g.pcap_fields(b), "b.pcap")
    segs, stats = read([pa, pb])
    assert_sane(segs, stats)
    assert [s.frame for s in segs] == [1, 2, 3, 4, 5, 6]  # positions in the merged stream
    assert sorted(s.seq for s in segs) == sorted(s.seq for s in clean())
    assert (stats.first_ts, stats.last_ts) == (T_SEC * 10**9, (T_SEC + 9) * 10**9)


@pytest.mark.parametrize("sec", [0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFF00, 0xFFFFFFFF])
def test_far_past_future_and_negative_looking_pcap_seconds_are_unsigned(tmp_path: Path, sec: int) -> None:
    recs = records()
    recs[2] = (sec, 999_999, *recs[2][2:])
    p = write(tmp_path, g.pcap_fields(recs))
    segs, stats = read(p)
    assert_sane(segs, stats)
    assert segs[2].ts == sec * 10**9 + 999_999_000
    a = tcptrace_sm.analyze(p)
    assert len(a.flows) == 1  # the pandas views take such times too
    assert a.summary["first_ts"] == min(sec * 10**9 + 999_999_000, T_SEC * 10**9)


@pytest.mark.parametrize("tsresol", [6, 9])
def test_huge_pcapng_timestamps_do_not_wrap_to_negative_times(tmp_path: Path, tsresol: int) -> None:
    w = g.Pcapng().section()
    w.interface(g.LT_ETHERNET, tsresol=tsresol)
    for k, units in enumerate([1000, 2**63, 2**64 - 1, 2000]):
        w.epb(0, 0, FRAMES[k], units=units)
    segs, stats = read(write(tmp_path, w.bytes(), "x.pcapng"))
    assert_sane(segs, stats)
    assert len(segs) == 4
    assert all(s.ts >= 0 for s in segs), [s.ts for s in segs]


@pytest.mark.parametrize("offset", [1 << 40, -(1 << 62)])
def test_an_absurd_pcapng_tsoffset_never_raises(tmp_path: Path, offset: int) -> None:
    w = g.Pcapng().section()
    w.interface(g.LT_ETHERNET, tsoffset=offset)
    for k, f in enumerate(FRAMES):
        w.epb(0, 0, f, units=k)
    p = write(tmp_path, w.bytes(), "x.pcapng")
    segs, stats = read(p)
    assert_sane(segs, stats)
    assert all("\n" not in x for x in stats.warnings)
    a = tcptrace_sm.analyze(p)
    _ = (a.flows, a.summary)


def test_an_absurd_pcapng_tsoffset_keeps_the_packets(tmp_path: Path) -> None:
    w = g.Pcapng().section()
    w.interface(g.LT_ETHERNET, tsoffset=1 << 40)
    for k, f in enumerate(FRAMES):
        w.epb(0, 0, f, units=k)
    segs, _stats = read(write(tmp_path, w.bytes(), "x.pcapng"))
    assert len(segs) == len(FRAMES)


# --------------------------------------------------------------------------- pcapng interfaces


def test_packets_on_an_undefined_interface_are_malformed(tmp_path: Path) -> None:
    w = g.Pcapng().section()
    w.interface(g.LT_ETHERNET)
    w.epb(0, 0, FRAMES[0], units=1)
    w.blocks.append(g.epb_fields(1, 2, len(FRAMES[1]), len(FRAMES[1]), FRAMES[1]))
    w.blocks.append(g.epb_fields(0xFFFFFFFF, 3, len(FRAMES[2]), len(FRAMES[2]), FRAMES[2]))
    w.epb(0, 0, FRAMES[3], units=4)
    segs, stats = read(write(tmp_path, w.bytes(), "x.pcapng"))
    assert_sane(segs, stats)
    assert [s.frame for s in segs] == [1, 4]
    assert stats.skipped["malformed"] == 2


def test_a_repeated_section_header_resets_the_interfaces(tmp_path: Path) -> None:
    w = g.Pcapng().section()
    w.interface(g.LT_ETHERNET)
    w.epb(0, 0, FRAMES[0], units=1)
    w.section(big_endian=True)  # a new section, the other byte order, no interface yet
    w.blocks.append(g.epb_fields(0, 2, len(FRAMES[1]), len(FRAMES[1]), FRAMES[1], big_endian=True))
    w.interface(g.LT_RAW)
    w.epb(0, 0, FRAMES[2][14:], units=3)
    segs, stats = read(write(tmp_path, w.bytes(), "x.pcapng"))
    assert_sane(segs, stats)
    assert [s.frame for s in segs] == [1, 3]
    assert stats.skipped["malformed"] == 1


# --------------------------------------------------------------------------- random files

LINKTYPES = [g.LT_ETHERNET, g.LT_RAW, g.LT_NULL, g.LT_LOOP, g.LT_SLL, g.LT_SLL2, g.LT_IPV4]


@st.composite
def packet(draw: st.DrawFn, linktype: int) -> bytes:
    """A TCP/IP packet with random fields, framed for ``linktype``, sometimes cut or damaged."""
    v6 = linktype != g.LT_IPV4 and draw(st.booleans())
    payload = b"p" * draw(st.integers(0, 30))
    kw: dict[str, Any] = {
        "seq": draw(st.integers(0, 2**32 - 1)),
        "ack": draw(st.integers(0, 2**32 - 1)),
        "flags": draw(st.integers(0, 255)),
        "win": draw(st.integers(0, 65535)),
        "options": draw(
            st.sampled_from([b"", b"\x02\x04\x05\xb4", b"\x01\x03\x03\x07", b"\x05\xff", b"\x08"])
        ),
    }
    if draw(st.integers(0, 4)) == 0:
        kw["data_offset"] = draw(st.integers(0, 15))
    sport, dport = draw(st.integers(0, 65535)), draw(st.sampled_from([0, 80, 443, 65535]))
    if v6:
        ip = g.tcp6("2001:db8::1", "2001:db8::2", sport, dport, payload, **kw)
    else:
        seg = g.tcp_header(sport, dport, payload=payload, src="10.0.0.1", dst="10.0.0.2", **kw)
        ip = g.ipv4(
            "10.0.0.1",
            "10.0.0.2",
            seg,
            proto=draw(st.sampled_from([6, 6, 6, 17])),
            total_length=draw(st.none() | st.integers(0, 65535)),
            ihl=draw(st.none() | st.integers(0, 15)),
            mf=draw(st.integers(0, 9)) == 0,
        )
    data = g.frame(ip, linktype)
    if draw(st.integers(0, 3)) == 0:
        data = data[: draw(st.integers(0, len(data)))]
    return data


@st.composite
def pcap_file(draw: st.DrawFn) -> bytes:
    """A pcap file from pcapgen's builders with random header and record fields."""
    lt = draw(st.sampled_from(LINKTYPES))
    magic = draw(st.sampled_from([US, NS, MODIFIED]))
    big = draw(st.booleans())
    snaplen = draw(st.sampled_from([0, 1, 64, 65535, 262144, 0xFFFFFFFF]) | st.integers(0, 2**32 - 1))
    out = []
    for _ in range(draw(st.integers(0, 12))):
        data = draw(packet(lt) | st.binary(max_size=80))
        cap = len(data)
        if draw(st.integers(0, 9)) == 0:  # a caplen that lies
            cap = draw(st.sampled_from([0, 1, cap + 1, max(cap - 1, 0), 0xFFFFFFFF, MAX_CAPLEN + 1]))
        orig = draw(st.sampled_from([len(data), 0, 1, 0xFFFFFFFF]) | st.integers(0, 2**32 - 1))
        sec = draw(st.sampled_from([T_SEC, 0, 0x80000000, 0xFFFFFFFF]) | st.integers(0, 2**32 - 1))
        frac = draw(st.integers(0, 999_999) | st.integers(0, 2**32 - 1))
        out.append((sec, frac, cap, orig, data))
    blob = g.pcap_fields(out, lt, snaplen=snaplen, big_endian=big, magic=magic)
    if draw(st.integers(0, 5)) == 0:
        blob = blob[: draw(st.integers(0, len(blob)))]
    return blob


@st.composite
def pcapng_file(draw: st.DrawFn) -> bytes:
    """A pcapng file: random sections, interfaces and packet blocks with random fields."""
    w = g.Pcapng()
    for _ in range(draw(st.integers(1, 2))):
        w.section(big_endian=draw(st.booleans()))
        lts = draw(st.lists(st.sampled_from([*LINKTYPES, 147]), min_size=0, max_size=2))
        for lt in lts:
            w.interface(
                lt,
                tsresol=draw(st.sampled_from([6, 9, 3, 0x80 | 20])),
                snaplen=draw(st.sampled_from([0, 64, 0xFFFFFFFF])),
            )
        for _ in range(draw(st.integers(0, 6))):
            k = draw(st.integers(0, max(len(lts), 1)))  # sometimes an undefined interface
            lt = lts[k] if k < len(lts) else g.LT_ETHERNET
            data = draw((packet(lt) if lt in LINKTYPES else st.nothing()) | st.binary(max_size=60))
            kind = draw(st.sampled_from(["epb", "epb", "spb", "pb", "lie"]))
            if kind == "epb":
                w.epb(k, 0, data, units=draw(st.integers(0, 2**64 - 1)))
            elif kind == "spb":
                w.spb(data)
            elif kind == "pb" and k < len(lts):
                w.blocks.append(
                    g.pcapng_block(
                        2,
                        struct.pack(w.bo + "HHIIII", k, 0, 0, 5, len(data), len(data)) + data,
                        big_endian=w.big_endian,
                    )
                )
            else:
                cap = draw(st.sampled_from([0, len(data) + 1, 0xFFFFFFFF, max(len(data) - 1, 0)]))
                w.blocks.append(
                    g.epb_fields(
                        k, draw(st.integers(0, 2**64 - 1)), cap, len(data), data, big_endian=w.big_endian
                    )
                )
    blob = w.bytes()
    if draw(st.integers(0, 5)) == 0:
        blob = blob[: draw(st.integers(0, len(blob)))]
    return blob


@settings(
    max_examples=250,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(pcap_file() | pcapng_file(), min_size=1, max_size=2))
def test_random_capture_files_through_read_segments(tmp_path: Path, files: list[bytes]) -> None:
    paths = [write(tmp_path, data, f"r{k}.cap") for k, data in enumerate(files)]
    stats = ReadStats()
    error = None
    try:
        with time_budget(10, "random capture files"):
            try:
                it = read_segments(paths, stats=stats)
            except CaptureError as e:  # only ever from the call itself
                error = str(e)
            segs = [] if error is not None else list(it)
    except Hang as e:
        pytest.fail(str(e), pytrace=False)
    if error is not None:
        assert "\n" not in error
        assert any(str(p) in error for p in paths)
        return
    assert_sane(segs, stats)
    frames = [s.frame for s in segs]
    assert all(b > a for a, b in pairwise(frames))
    assert not frames or frames[0] >= 1
    for s in segs:
        assert 0 <= s.sport <= 65535
        assert 0 <= s.dport <= 65535
        assert 0 <= s.seq < 2**32
        assert 0 <= s.ack < 2**32
        assert s.length >= 0


def test_times_out_of_range_saturate_so_the_engines_agree(tmp_path: Path) -> None:
    """A pcapng whose offset puts closed connections absurdly early, then a capture of the same
    4-tuples at a normal time: the times saturate (at 1896), and both engines see the first
    connections' TIME-WAIT run out (a fuzzing finding: the difference of two int64 times
    overflowed, and the fast engine kept them in TIME-WAIT)."""
    base = SAMPLES / "loopback_base.pcap"
    with open(base, "rb") as f:
        frames = [bytes(buf) for _ts, buf in dpkt.pcap.Reader(f)]
    w = g.Pcapng().section()
    w.interface(g.LT_ETHERNET, tsoffset=-(1 << 63))
    for k, fr in enumerate(frames):
        w.epb(0, 0, fr, units=k)
    early = write(tmp_path, w.bytes(), "early.pcapng")
    segs, stats = read(early)
    assert_sane(segs, stats)
    assert {s.ts for s in segs} == {TS_MIN}
    ref = tcptrace_sm.analyze([early, base], engine="reference")
    fast = tcptrace_sm.analyze([early, base], engine="fast")
    assert ref.flow_records == fast.flow_records
    assert ref.transition_records == fast.transition_records
    assert {f["client_state"] for f in fast.flow_records if f["first_ts"] == TS_MIN} == {"CLOSED"}
