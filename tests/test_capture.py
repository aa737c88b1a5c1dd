"""Tests of the capture reader (tcptrace_sm.capture).

Captures are built byte by byte with ``pcapgen`` (an encoder independent of the reader); the
re-encoded real loopback capture in ``sample_pcaps/formats/`` covers every format and link
type, and a hypothesis test checks the vectorised decoder against a per-packet reference
decoder written here.
"""

from __future__ import annotations

import gzip
import heapq
import importlib.util
import io
import socket
import struct
import sys
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pcapgen as g
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from refdecode import VLAN, Reassembly, reference

from tcptrace_sm import capture
from tcptrace_sm.capture import CaptureError, ReadStats, parse_options, read_batches, read_segments
from tcptrace_sm.model import ACK, FIN, PSH, SYN, Segment, TcpOptions

ROOT = Path(__file__).resolve().parent.parent
BASE = ROOT / "sample_pcaps" / "loopback_base.pcap"
FORMATS = sorted((ROOT / "sample_pcaps" / "formats").glob("*"))

T0 = 1_700_000_000_000_000_000  # ns, a whole second


def read(paths: Any, **kw: Any) -> tuple[list[Segment], ReadStats]:
    stats = ReadStats()
    return list(read_segments(paths, stats=stats, **kw)), stats


def try_read(path: Path) -> tuple[list[Segment], ReadStats] | CaptureError:
    try:
        return read(path)
    except CaptureError as e:
        return e


def write(tmp_path: Path, data: bytes, name: str = "x.pcap") -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def skipped(stats: ReadStats) -> dict[str, int]:
    return {k: v for k, v in stats.skipped.items() if v}


def one(
    tmp_path: Path, frame: bytes, linktype: int = g.LT_ETHERNET, **kw: Any
) -> tuple[list[Segment], ReadStats]:
    return read(write(tmp_path, g.pcap([(T0, frame)], linktype)), **kw)


# --------------------------------------------------------------------------- sample files


def test_base_capture_decodes_as_tcpdump_shows_it() -> None:
    segs, stats = read(BASE)
    assert len(segs) == stats.packets == stats.segments == 24
    assert [s.frame for s in segs] == list(range(1, 25))
    v4, v6 = segs[:12], segs[12:]
    assert {s.src for s in v4} == {"127.0.0.1"}
    assert {s.src for s in v6} == {"::1"}
    assert {48123} <= {s.dport for s in v4} | {s.sport for s in v4}
    assert {48124} <= {s.dport for s in v6} | {s.sport for s in v6}
    for half in (v4, v6):
        assert [s.length for s in half] == [0, 0, 0, 13, 0, 27, 0, 26, 0, 0, 0, 0]
        assert half[0].flags == SYN
        assert half[1].flags == SYN | ACK
        assert half[3].flags == PSH | ACK
        assert half[9].flags == FIN | ACK
        assert half[10].flags == FIN | ACK
        assert half[1].ack == (half[0].seq + 1) & 0xFFFFFFFF
        syn = parse_options(half[0].options)
        assert syn.mss is not None
        assert syn.sack_permitted
        assert syn.wscale is not None
        assert syn.ts_val is not None
        assert syn.ts_ecr == 0
    assert stats.first_ts == segs[0].ts
    assert stats.last_ts == segs[-1].ts
    assert all(t % 1000 == 0 for t in (s.ts for s in segs))
    assert stats.bytes_read == BASE.stat().st_size
    assert not stats.warnings
    assert not stats.truncated


def test_base_capture_agrees_with_dpkt() -> None:
    dpkt = pytest.importorskip("dpkt")
    expected = []
    with BASE.open("rb") as f:
        for frame, (_ts, buf) in enumerate(dpkt.pcap.Reader(f), 1):
            ip = dpkt.ethernet.Ethernet(buf).data
            fam = socket.AF_INET6 if isinstance(ip, dpkt.ip6.IP6) else socket.AF_INET
            plen = ip.plen if fam == socket.AF_INET6 else ip.len - ip.hl * 4
            tcp = ip.data
            expected.append(
                (frame, socket.inet_ntop(fam, ip.src), tcp.sport, socket.inet_ntop(fam, ip.dst), tcp.dport,
                 tcp.seq, tcp.ack, tcp.flags, tcp.win, plen - tcp.off * 4, bytes(tcp.opts))
            )  # fmt: skip
    got = [
        (s.frame, s.src, s.sport, s.dst, s.dport, s.seq, s.ack, s.flags, s.win, s.length, s.options)
        for s in read(BASE)[0]
    ]
    assert got == expected


@pytest.mark.parametrize("path", FORMATS, ids=[p.name for p in FORMATS])
def test_every_format_decodes_like_the_base(path: Path) -> None:
    base, _ = read(BASE)
    segs, stats = read(path)
    assert stats.packets == 24
    assert not stats.warnings
    assert not stats.truncated
    if "headers-only" in path.name:
        assert all(s.options == b"" for s in segs)
        base = [s._replace(options=b"") for s in base]
    assert segs == base


def test_loopback_checksums_are_offloaded_as_tcpdump_reports() -> None:
    # Linux lo leaves TCP checksums to "hardware": tcpdump -vv calls all 24 incorrect
    segs, stats = read(BASE, verify_checksums=True)
    assert len(segs) == 24
    assert all(s.bad_checksum for s in segs)
    assert skipped(stats) == {}
    plain, _stats = read(BASE)
    assert segs == plain  # the same segments, marked
    assert not any(s.bad_checksum for s in plain)


def test_reencode_script_reproduces_the_samples(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("reencode", ROOT / "scripts" / "reencode.py")
    assert spec is not None
    assert spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    written = mod.write_formats(BASE, tmp_path)
    assert sorted(p.name for p in written) == [p.name for p in FORMATS]
    for p in written:
        assert p.read_bytes() == (ROOT / "sample_pcaps" / "formats" / p.name).read_bytes(), p.name


def test_sample_folder_is_complete_and_small() -> None:
    names = {p.name for p in FORMATS}
    parts = (
        "pcap-us-le", "pcap-us-be", "pcap-ns-le", "pcap-ns-be", "pcapng.", "pcapng-2if-eth-raw", "pcapng-be",
        "gzip", "eth.", "eth-vlan", "eth-qinq", "raw101", "raw12", "raw14", "null0", "loop108", "sll113",
        "sll2-276", "headers-only", "padded60",
    )  # fmt: skip
    for part in parts:
        assert any(part in n for n in names), part
    assert sum(p.stat().st_size for p in FORMATS) < 300_000


# --------------------------------------------------------------------------- link layers


def _seg4(**kw: Any) -> bytes:
    return g.tcp4("10.0.0.1", "10.0.0.2", 1234, 80, b"x" * 10, seq=100, ack=200, flags=ACK | PSH, **kw)


def _seg6(**kw: Any) -> bytes:
    return g.tcp6("2001:db8::1", "2001:db8::2", 1234, 80, b"x" * 10, seq=100, ack=200, flags=ACK | PSH, **kw)


@pytest.mark.parametrize(
    ("linktype", "kw"),
    [
        (g.LT_ETHERNET, {}),
        (g.LT_ETHERNET, {"vlans": [(0x8100, 1)]}),
        (g.LT_ETHERNET, {"vlans": [(0x88A8, 1), (0x8100, 2)]}),
        (g.LT_ETHERNET, {"vlans": [(0x9100, 1), (0x8100, 2)]}),
        (g.LT_ETHERNET, {"vlans": [(0x88A8, 1), (0x9100, 2), (0x8100, 3), (0x8100, 4)]}),
        (g.LT_ETHERNET, {"pad_to": 60}),
        (g.LT_RAW, {}),
        (g.LT_RAW_12, {}),
        (g.LT_RAW_14, {}),
        (g.LT_NULL, {"null_byteorder": "little"}),
        (g.LT_NULL, {"null_byteorder": "big"}),
        (g.LT_NULL, {"null_v6_family": 24}),
        (g.LT_NULL, {"null_v6_family": 28}),
        (g.LT_LOOP, {}),
        (g.LT_SLL, {}),
        (g.LT_SLL2, {}),
    ],
)
@pytest.mark.parametrize("v6", [False, True], ids=["v4", "v6"])
def test_link_types(tmp_path: Path, linktype: int, kw: dict[str, Any], v6: bool) -> None:
    ip = _seg6() if v6 else _seg4()
    segs, stats = one(tmp_path, g.frame(ip, linktype, **kw), linktype)
    assert len(segs) == 1, skipped(stats)
    s = segs[0]
    assert (s.src, s.dst) == (("2001:db8::1", "2001:db8::2") if v6 else ("10.0.0.1", "10.0.0.2"))
    assert (s.sport, s.dport, s.seq, s.ack, s.flags, s.length, s.frame, s.ts) == (
        1234,
        80,
        100,
        200,
        0x18,
        10,
        1,
        T0,
    )


@pytest.mark.parametrize(("linktype", "v6"), [(g.LT_IPV4, False), (g.LT_IPV6, True)])
def test_ip_only_link_types(tmp_path: Path, linktype: int, v6: bool) -> None:
    segs, _ = one(tmp_path, _seg6() if v6 else _seg4(), linktype)
    assert len(segs) == 1


def test_vlan_tag_cut_short_is_truncated(tmp_path: Path) -> None:
    frame = g.ethernet(b"", 0x8100)[:16]
    _, stats = one(tmp_path, frame)
    assert skipped(stats) == {"truncated_header": 1}


# --------------------------------------------------------------------------- IP layer


def test_ipv4_options_use_ihl(tmp_path: Path) -> None:
    seg = g.tcp_header(1, 2, 5, 6, ACK, payload=b"abc", src="10.0.0.1", dst="10.0.0.2")
    ip = g.ipv4("10.0.0.1", "10.0.0.2", seg, options=b"\x01\x01\x01\x01\x07\x07\x04\x00" + b"\0" * 4)
    segs, _ = one(tmp_path, g.frame(ip, g.LT_ETHERNET), verify_checksums=True)
    assert [(s.sport, s.dport, s.seq, s.ack, s.length) for s in segs] == [(1, 2, 5, 6, 3)]


def test_ipv6_extension_headers(tmp_path: Path) -> None:
    seg = g.tcp_header(1, 2, 5, 6, ACK, payload=b"abcd", src="2001:db8::1", dst="2001:db8::2")
    ext = [
        (0, b"\x01\x04\0\0\0\0"),
        (43, b"\0\0\0\0\0\0" + bytes(16)),
        (60, b"\x01\x0c" + bytes(12)),
        (51, bytes(14)),
    ]
    ip = g.ipv6("2001:db8::1", "2001:db8::2", seg, ext=ext)
    segs, _ = one(tmp_path, g.frame(ip, g.LT_ETHERNET), verify_checksums=True)
    assert [(s.src, s.sport, s.dport, s.length) for s in segs] == [("2001:db8::1", 1, 2, 4)]


@pytest.mark.parametrize(
    ("ip", "ethertype", "reason"),
    [
        pytest.param(
            g.ipv4("1.1.1.1", "2.2.2.2", g.tcp_header(1, 2), mf=True), 0x0800, "fragment", id="v4-fragment-1"
        ),
        pytest.param(
            g.ipv4("1.1.1.1", "2.2.2.2", g.tcp_header(1, 2), frag_offset=10),
            0x0800,
            "fragment",
            id="v4-fragment-2",
        ),
        pytest.param(
            g.ipv4("1.1.1.1", "2.2.2.2", b"\0" * 8, proto=17, mf=True), 0x0800, "fragment", id="v4-fragment-3"
        ),
        pytest.param(
            g.ipv6("::1", "::2", g.tcp_header(1, 2), ext=[(44, b"\0\x01\0\0\0\x07")]),
            0x86DD,
            "fragment",
            id="v6-fragment-1",
        ),
        pytest.param(  # a fragment (more to come) after a Hop-by-Hop header
            g.ipv6("::1", "::2", g.tcp_header(1, 2), ext=[(0, b"\1\4\0\0\0\0"), (44, b"\0\x01\0\0\0\7")]),
            0x86DD,
            "fragment",
            id="v6-fragment-2",
        ),
        pytest.param(g.ipv4("1.1.1.1", "2.2.2.2", b"\0" * 8, proto=17), 0x0800, "not_tcp", id="v4-not_tcp-1"),
        pytest.param(
            g.ipv6("::1", "::2", b"\x80\0" + b"\0" * 6, next_header=58), 0x86DD, "not_tcp", id="v6-not_tcp-1"
        ),
        pytest.param(g.ipv6("::1", "::2", b"", next_header=59), 0x86DD, "not_tcp", id="v6-not_tcp-2"),
        pytest.param(
            g.ipv6("::1", "::2", b"\0" * 8, next_header=60, ext=[(0, b"")]),
            0x86DD,
            "truncated_header",
            id="v6-truncated_header-1",
        ),
        pytest.param(
            g.ipv4("1.1.1.1", "2.2.2.2", g.tcp_header(1, 2), ihl=4), 0x0800, "malformed", id="v4-malformed-1"
        ),
        pytest.param(
            g.ipv4("1.1.1.1", "2.2.2.2", g.tcp_header(1, 2), version=6),
            0x0800,
            "malformed",
            id="v4-malformed-2",
        ),
        pytest.param(
            g.ipv4("1.1.1.1", "2.2.2.2", g.tcp_header(1, 2), total_length=30),
            0x0800,
            "malformed",
            id="v4-malformed-3",
        ),
        pytest.param(
            g.ipv4("1.1.1.1", "2.2.2.2", g.tcp_header(1, 2, data_offset=4)),
            0x0800,
            "malformed",
            id="v4-malformed-4",
        ),
        pytest.param(
            g.ipv4("1.1.1.1", "2.2.2.2", g.tcp_header(1, 2, data_offset=15)),
            0x0800,
            "malformed",
            id="v4-malformed-5",
        ),
        pytest.param(
            g.ipv6("::1", "::2", g.tcp_header(1, 2), payload_length=12),
            0x86DD,
            "malformed",
            id="v6-malformed-1",
        ),
        pytest.param(
            g.ipv6("::1", "::2", g.tcp_header(1, 2), version=4), 0x86DD, "malformed", id="v6-malformed-2"
        ),
        pytest.param(
            g.ipv4("1.1.1.1", "2.2.2.2", g.tcp_header(1, 2))[:30], 0x0800, "truncated_header", id="v4-cut-1"
        ),
        pytest.param(
            g.ipv4("1.1.1.1", "2.2.2.2", g.tcp_header(1, 2))[:39], 0x0800, "truncated_header", id="v4-cut-2"
        ),
        pytest.param(
            g.ipv4("1.1.1.1", "2.2.2.2", g.tcp_header(1, 2))[:12], 0x0800, "truncated_header", id="v4-cut-3"
        ),
        pytest.param(
            g.ipv4("1.1.1.1", "2.2.2.2", g.tcp_header(1, 2), options=b"\1" * 8)[:26],
            0x0800,
            "truncated_header",
            id="v4-cut-4",
        ),
        pytest.param(
            g.ipv6("::1", "::2", g.tcp_header(1, 2))[:59], 0x86DD, "truncated_header", id="v6-cut-1"
        ),
        pytest.param(
            g.ipv6("::1", "::2", g.tcp_header(1, 2))[:30], 0x86DD, "truncated_header", id="v6-cut-2"
        ),
    ],
)
def test_skip_reasons(tmp_path: Path, ip: bytes, ethertype: int, reason: str) -> None:
    segs, stats = one(tmp_path, g.ethernet(ip, ethertype))
    assert segs == []
    assert skipped(stats) == {reason: 1}
    assert stats.packets == 1


@pytest.mark.parametrize(
    ("frame", "linktype", "reason"),
    [
        (g.ethernet(b"\0" * 28, g.ETH_ARP), g.LT_ETHERNET, "not_ip"),
        (g.ethernet(b"", 0x0800)[:10], g.LT_ETHERNET, "truncated_header"),
        (b"", g.LT_RAW, "truncated_header"),
        (b"\x50" + bytes(40), g.LT_RAW, "not_ip"),
        (b"\x02\0\0", g.LT_NULL, "truncated_header"),
        (struct.pack("<I", 7) + _seg4(), g.LT_NULL, "not_ip"),
        (struct.pack(">I", 7) + _seg4(), g.LT_LOOP, "not_ip"),
        (g.frame(_seg4(), g.LT_SLL)[:15], g.LT_SLL, "truncated_header"),
        (g.frame(_seg4(), g.LT_SLL2)[:19], g.LT_SLL2, "truncated_header"),
    ],
)
def test_link_skip_reasons(tmp_path: Path, frame: bytes, linktype: int, reason: str) -> None:
    segs, stats = one(tmp_path, frame, linktype)
    assert segs == []
    assert skipped(stats) == {reason: 1}


def test_length_comes_from_the_ip_header(tmp_path: Path) -> None:
    full = g.frame(_seg4(), g.LT_ETHERNET)
    recs: list[g.Record] = [(T0, full + b"\0" * 20), (T0 + 1000, full[: 14 + 20 + 20], len(full))]
    segs, stats = read(write(tmp_path, g.pcap(recs)))
    assert [s.length for s in segs] == [10, 10]
    assert not stats.warnings


def test_headers_only_keeps_what_options_are_there(tmp_path: Path) -> None:
    opts = b"\x02\x04\x05\xb4\x01\x03\x03\x07"
    ip = g.tcp4("10.0.0.1", "10.0.0.2", 1, 2, b"data", flags=SYN, options=opts)
    frame = g.frame(ip, g.LT_ETHERNET)
    recs = [(T0, frame[: 14 + 20 + 20 + 4], len(frame))]
    segs, _ = read(write(tmp_path, g.pcap(recs)))
    assert segs[0].options == opts[:4]
    assert segs[0].length == 4
    assert parse_options(segs[0].options).mss == 1460


@pytest.mark.parametrize("v6", [False, True])
def test_zero_ip_length_falls_back_to_captured_length(tmp_path: Path, v6: bool) -> None:
    seg = g.tcp_header(1, 2, payload=b"z" * 100)
    ip = (
        g.ipv6("::1", "::2", seg, payload_length=0)
        if v6
        else g.ipv4("1.1.1.1", "2.2.2.2", seg, total_length=0)
    )
    segs, _ = one(tmp_path, g.frame(ip, g.LT_RAW), g.LT_RAW, verify_checksums=True)
    assert [s.length for s in segs] == [100]


# --------------------------------------------------------------------------- checksums


def _bad_tcp4() -> bytes:
    return g.ipv4("10.0.0.1", "10.0.0.2", g.tcp_header(1, 2, payload=b"abc", csum=0x1234))


def _bad_ip4() -> bytes:
    seg = g.tcp_header(1, 2, payload=b"abc", src="10.0.0.1", dst="10.0.0.2")
    return g.ipv4("10.0.0.1", "10.0.0.2", seg, csum=0x4321)


def _bad_tcp6() -> bytes:
    return g.ipv6("::1", "::2", g.tcp_header(1, 2, payload=b"abcde", csum=0x1234))


@pytest.mark.parametrize("ip", [_bad_tcp4(), _bad_tcp6()], ids=["tcp4", "tcp6"])
def test_bad_tcp_checksums_are_marked_only_when_verifying(tmp_path: Path, ip: bytes) -> None:
    segs, stats = one(tmp_path, g.frame(ip, g.LT_ETHERNET))
    assert len(segs) == 1
    assert not segs[0].bad_checksum
    assert not skipped(stats)
    marked, stats = one(tmp_path, g.frame(ip, g.LT_ETHERNET), verify_checksums=True)
    assert marked == segs
    assert marked[0].bad_checksum
    assert not skipped(stats)


def test_a_bad_ipv4_header_checksum_is_skipped_when_verifying(tmp_path: Path) -> None:
    # the packet never reaches TCP (Zeek does not see it either)
    segs, stats = one(tmp_path, g.frame(_bad_ip4(), g.LT_ETHERNET))
    assert len(segs) == 1
    segs, stats = one(tmp_path, g.frame(_bad_ip4(), g.LT_ETHERNET), verify_checksums=True)
    assert segs == []
    assert skipped(stats) == {"bad_checksum": 1}


@pytest.mark.parametrize("payload", [b"", b"a", b"ab", b"abc" * 101])
@pytest.mark.parametrize("v6", [False, True])
def test_good_checksums_kept_when_verifying(tmp_path: Path, payload: bytes, v6: bool) -> None:
    if v6:
        ip = g.tcp6("2001:db8::1", "fe80::2", 5, 6, payload, options=b"\x01\x01\x08\x0a" + bytes(8))
    else:
        ip = g.tcp4("192.168.1.1", "10.9.8.7", 5, 6, payload, options=b"\x01\x01\x08\x0a" + bytes(8))
    segs, stats = one(tmp_path, g.frame(ip, g.LT_ETHERNET), verify_checksums=True)
    assert len(segs) == 1, skipped(stats)


def test_snaplen_cut_segment_is_not_dropped_for_its_checksum(tmp_path: Path) -> None:
    frame = g.frame(_bad_tcp4(), g.LT_ETHERNET)
    segs, stats = read(write(tmp_path, g.pcap([(T0, frame[:54], len(frame))])), verify_checksums=True)
    assert len(segs) == 1
    assert not skipped(stats)


def test_bench_style_checksums_agree_with_rfc1071() -> None:
    data = bytes(range(1, 200))
    x = int.from_bytes(data + b"\0", "big") % 0xFFFF
    assert 0xFFFF - (x or 0xFFFF) == g.checksum(data)


# --------------------------------------------------------------------------- TCP options


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"", TcpOptions()),
        (b"\x02\x04\x05\xb4", TcpOptions(mss=1460)),
        (b"\x01\x03\x03\x07", TcpOptions(wscale=7)),
        (b"\x04\x02", TcpOptions(sack_permitted=True)),
        (b"\x01\x01\x05\x0a\0\0\0\x01\0\0\0\x02", TcpOptions(sack=((1, 2),))),
        (b"\x05\x1a" + struct.pack("!6I", 1, 2, 3, 4, 5, 6), TcpOptions(sack=((1, 2), (3, 4), (5, 6)))),
        (b"\x08\x0a" + struct.pack("!II", 0xFFFFFFFF, 7), TcpOptions(ts_val=0xFFFFFFFF, ts_ecr=7)),
        (b"\x22\x02", TcpOptions(fastopen=b"")),
        (b"\x22\x0a" + b"cookie!!", TcpOptions(fastopen=b"cookie!!")),
        (b"\xfe\x04\xf9\x89", TcpOptions(fastopen=b"")),
        (b"\xfe\x0c\xf9\x89" + b"12345678", TcpOptions(fastopen=b"12345678")),
        (b"\xfe\x06\x12\x34\0\0", TcpOptions()),  # other experiment
        (b"\x1e\x04\0\0\x02\x04\x01\x00", TcpOptions(mss=256)),  # unknown kind (MPTCP) skipped
        (b"\x00\x02\x04\x05\xb4", TcpOptions()),  # EOL ends the list
        (b"\x02\x04\x05", TcpOptions()),  # truncated
        (b"\x02", TcpOptions()),
        (b"\x03\x03\x07\x02\x01", TcpOptions(wscale=7)),  # length < 2 stops
        (b"\x02\x03\x05\x01\x02\x04\x00\x10", TcpOptions(mss=16)),  # wrong length ignored
        (b"\x02\x04\x00\x01\x02\x04\x00\x02", TcpOptions(mss=2)),  # the last one wins
        (
            b"\x02\x04\xff\xd7\x04\x02\x08\x0a\0\0\0\x05\0\0\0\0\x01\x03\x03\x0a",
            TcpOptions(mss=65495, sack_permitted=True, ts_val=5, ts_ecr=0, wscale=10),
        ),
    ],
)
def test_parse_options(raw: bytes, expected: TcpOptions) -> None:
    assert parse_options(raw) == expected


@given(st.binary(max_size=60))
def test_parse_options_never_raises(raw: bytes) -> None:
    parse_options(raw)


# --------------------------------------------------------------------------- timestamps


@pytest.mark.parametrize("big", [False, True])
def test_nanosecond_pcap_is_exact(tmp_path: Path, big: bool) -> None:
    ts = [T0 + 123_456_789, T0 + 999_999_999, 4_000_000_000 * 10**9 + 1]
    data = g.pcap([(t, g.frame(_seg4(), g.LT_ETHERNET)) for t in ts], nanos=True, big_endian=big)
    segs, stats = read(write(tmp_path, data))
    assert [s.ts for s in segs] == ts
    assert (stats.first_ts, stats.last_ts) == (ts[0], ts[-1])


@pytest.mark.parametrize(
    ("tsresol", "units", "offset", "expected"),
    [
        (6, 1_700_000_000_123_456, 0, 1_700_000_000_123_456_000),
        (9, 1_700_000_000_123_456_789, 0, 1_700_000_000_123_456_789),
        (3, 1_700_000_000_123, 0, 1_700_000_000_123_000_000),
        (0, 1_700_000_000, 0, 1_700_000_000_000_000_000),
        (12, 1_700_000_000_123_456_789, 0, 1_700_000_000_123_456),
        (20, 2**64 - 1, 0, 184_467_440),  # beyond the vectorised range: exact integers
        (0x80 | 20, (1_700_000_000 << 20) + (1 << 19), 0, 1_700_000_000_500_000_000),
        (0x80 | 30, (5 << 30) + 3, 0, 5_000_000_002),  # 3 * 2^-30 s = 2.79 ns: floored
        (0x80 | 0, 17, 0, 17_000_000_000),
        (6, 1_000_000, 1_600_000_000, 1_600_000_001_000_000_000),
        (9, 5, -1, -999_999_995),
    ],
)
def test_pcapng_tsresol_and_tsoffset(
    tmp_path: Path, tsresol: int, units: int, offset: int, expected: int
) -> None:
    w = g.Pcapng().section()
    w.interface(g.LT_RAW, tsresol=tsresol, tsoffset=offset)
    w.epb(0, 0, _seg4(), units=units)
    segs, _ = read(write(tmp_path, w.bytes()))
    assert [s.ts for s in segs] == [expected]


# --------------------------------------------------------------------------- pcapng structure


def test_pcapng_sections_interfaces_and_block_kinds(tmp_path: Path) -> None:
    w = g.Pcapng().section()
    w.interface(g.LT_ETHERNET, tsresol=6)
    w.interface(g.LT_RAW, tsresol=9)
    w.other(5)  # interface statistics
    w.epb(0, T0 + 1000, g.frame(_seg4(), g.LT_ETHERNET))
    w.epb(1, T0 + 2001, _seg6())
    w.other(4, b"\0" * 4)  # name resolution
    w.other(0x0BAD, b"\0" * 12)  # custom
    w.pb(0, T0 + 3000, g.frame(_seg4(), g.LT_ETHERNET))
    w.section(big_endian=True)  # interfaces reset; other byte order
    w.interface(g.LT_SLL2, tsresol=0x80 | 10)
    w.epb(0, T0 + 4_000_000_000, g.frame(_seg6(), g.LT_SLL2))
    w.spb(g.frame(_seg4(), g.LT_SLL2))  # no timestamp: the previous one
    w.epb(1, 0, _seg4(), units=0)  # interface 1 is gone with the new section
    w.section(big_endian=False)
    w.interface(147)  # USER0: unsupported, but the section has a supported one
    w.interface(g.LT_RAW)
    w.epb(0, T0 + 5_000_000_000, b"\0" * 40)
    w.epb(1, T0 + 6_000_000_000, _seg6())
    w.epb(0, T0 + 7_000_000_000, b"\0" * 40)
    segs, stats = read(write(tmp_path, w.bytes(), "x.pcapng"))
    assert [(s.frame, s.ts, s.src) for s in segs] == [
        (1, T0 + 1000, "10.0.0.1"),
        (2, T0 + 2001, "2001:db8::1"),
        (3, T0 + 3000, "10.0.0.1"),
        (4, T0 + 4_000_000_000, "2001:db8::1"),
        (5, T0 + 4_000_000_000, "10.0.0.1"),
        (8, T0 + 6_000_000_000, "2001:db8::1"),
    ]
    assert stats.packets == 9
    assert skipped(stats) == {"malformed": 1, "not_ip": 2}
    assert len(stats.warnings) == 1
    assert "unsupported link type 147 (USER0)" in stats.warnings[0]
    assert not stats.truncated


def test_simple_packet_block_is_clamped_to_the_snaplen(tmp_path: Path) -> None:
    w = g.Pcapng().section()
    w.interface(g.LT_ETHERNET, snaplen=14 + 20 + 20)
    frame = g.frame(_seg4(), g.LT_ETHERNET)
    w.spb(frame)  # the writer stored more than the snaplen: only snaplen bytes count
    segs, _ = read(write(tmp_path, w.bytes()))
    assert [(s.ts, s.length) for s in segs] == [(0, 10)]


def test_pcapng_undefined_interface_is_malformed(tmp_path: Path) -> None:
    w = g.Pcapng().section()
    w.interface(g.LT_RAW)
    w.epb(0, T0, _seg4())
    w.blocks.append(struct.pack("<IIIIIII", 6, 32, 9, 0, 0, 0, 0) + struct.pack("<I", 32))
    segs, stats = read(write(tmp_path, w.bytes()))
    assert len(segs) == 1
    assert skipped(stats) == {"malformed": 1}


def test_pcapng_epb_caplen_larger_than_block_is_clamped(tmp_path: Path) -> None:
    w = g.Pcapng().section()
    w.interface(g.LT_RAW)
    ip = _seg4()
    w.epb(0, T0, ip)
    blk = bytearray(w.blocks[-1])
    struct.pack_into("<I", blk, 20, 5000)
    w.blocks[-1] = bytes(blk)
    segs, stats = read(write(tmp_path, w.bytes()))
    assert [s.length for s in segs] == [10]
    assert not stats.warnings


# --------------------------------------------------------------------------- several files, stdin, gzip


def _records(n: int, start: int, step: int, port: int) -> list[tuple[int, bytes]]:
    return [
        (start + i * step, g.frame(g.tcp4("10.0.0.1", "10.0.0.2", port, 80, seq=i), g.LT_ETHERNET))
        for i in range(n)
    ]


def test_merge_two_files_by_time_with_frame_numbers(tmp_path: Path) -> None:
    a = _records(3, T0, 2000, 1)
    b = _records(3, T0 + 1000, 2000, 2)
    b.insert(1, (T0 + 2000, g.ethernet(b"\0" * 28, g.ETH_ARP)))  # not TCP, still a frame; ties a[1]
    pa = write(tmp_path, g.pcap(a), "a.pcap")
    pb = write(tmp_path, g.pcap(b, nanos=True), "b.pcap")
    segs, stats = read([pa, pb])
    assert [(s.frame, s.sport, s.seq, s.ts - T0) for s in segs] == [
        (1, 1, 0, 0),
        (2, 2, 0, 1000),
        (3, 1, 1, 2000),
        # frame 4: b's ARP, at the same time as a[1]: a (the earlier file) first
        (5, 2, 1, 3000),
        (6, 1, 2, 4000),
        (7, 2, 2, 5000),
    ]
    assert stats.files == [str(pa), str(pb)]
    assert stats.packets == 7
    assert skipped(stats) == {"not_ip": 1}
    # the other order of files
    segs2, _ = read([pb, pa])
    assert [(s.frame, s.sport) for s in segs2] == [(1, 1), (2, 2), (4, 1), (5, 2), (6, 1), (7, 2)]


def _merge_reference(files: list[list[tuple[int, bytes]]]) -> list[tuple[int, int, int]]:
    """(frame, sport, seq) via heapq.merge over (ts, file, record) as documented."""
    streams = [[(ts, k, i) for i, (ts, _) in enumerate(recs)] for k, recs in enumerate(files)]
    out = []
    for frame, (_ts, k, i) in enumerate(heapq.merge(*streams, key=lambda r: r[0]), 1):
        out.append((frame, k + 1, i))
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.lists(st.integers(0, 30), min_size=0, max_size=60), min_size=2, max_size=4),
    st.booleans(),
    st.sampled_from([64, 700, 1 << 20]),
)
def test_merge_matches_heapq_merge(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tss: list[list[int]], sort: bool, chunk: int
) -> None:
    monkeypatch.setattr(capture, "CHUNK", chunk)
    files = []
    paths = []
    for k, times in enumerate(tss):
        recs = [
            (T0 + t * 1000, g.frame(g.tcp4("10.0.0.1", "10.0.0.2", k + 1, 80, seq=i), g.LT_ETHERNET))
            for i, t in enumerate(sorted(times) if sort else times)
        ]
        files.append(recs)
        paths.append(write(tmp_path, g.pcap(recs), f"m{k}.pcap"))
    segs, stats = read(paths)
    assert [(s.frame, s.sport, s.seq) for s in segs] == _merge_reference(files)
    assert stats.packets == sum(map(len, tss))


class _Pipe(io.RawIOBase):
    """A non-seekable byte stream that hands out small pieces, like a pipe."""

    def __init__(self, data: bytes, piece: int = 7) -> None:
        self._data = data
        self._piece = piece

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = min(len(b), self._piece, len(self._data))
        b[:n] = self._data[:n]
        self._data = self._data[n:]
        return n


class _Stdin:
    def __init__(self, buffer: Any) -> None:
        self.buffer = buffer


@pytest.mark.parametrize("wrap", ["bytesio", "pipe", "gzip-pipe"])
def test_stdin(monkeypatch: pytest.MonkeyPatch, wrap: str) -> None:
    data = BASE.read_bytes()
    if wrap == "bytesio":
        buffer: Any = io.BytesIO(data)
    else:
        if wrap == "gzip-pipe":
            data = gzip.compress(data)
        buffer = io.BufferedReader(_Pipe(data), buffer_size=16)
    monkeypatch.setattr(sys, "stdin", _Stdin(buffer))
    segs, stats = read("-")
    assert segs == read(BASE)[0]
    assert stats.files == ["-"]
    assert not buffer.closed


def test_gzip_multi_member_and_zero_padding(tmp_path: Path) -> None:
    data = BASE.read_bytes()
    z = gzip.compress(data[:1000]) + gzip.compress(data[1000:]) + b"\0" * 512
    segs, stats = read(write(tmp_path, z, "capture.anything"))
    assert segs == read(BASE)[0]
    assert not stats.warnings
    assert stats.bytes_read == len(z)
    assert stats.formats == ["gzip, pcap (µs, little-endian), ETHERNET"]


@pytest.mark.parametrize(
    ("mangle", "why"),
    [
        (lambda z: z[:-30], "gzip stream cut"),
        (lambda z: z[:-8] + b"\xff" * 8, "gzip data corrupt"),
        (lambda z: z[: len(z) // 2] + bytes(100) + z[len(z) // 2 + 100 :], "gzip data corrupt"),
        (lambda z: z + b"trailing junk", "not gzip"),
    ],
    ids=["cut", "bad-crc", "garbage-inside", "trailing-junk"],
)
def test_corrupt_gzip_tail_keeps_the_prefix(tmp_path: Path, mangle: Any, why: str) -> None:
    base = read(BASE)[0]
    z = mangle(gzip.compress(BASE.read_bytes() * 1))
    segs, stats = read(write(tmp_path, z, "x.pcap.gz"))
    assert segs == base[: len(segs)]
    assert stats.truncated or why == "not gzip"
    assert len(stats.warnings) == 1
    assert why in stats.warnings[0]
    assert "\n" not in stats.warnings[0]


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"<html><body>nope</body></html>", "x.bin: not a pcap or pcapng capture (starts with 3c 68 74 6d)"),
        (b"", "x.bin: empty file"),
        (b"\xd4\xc3", "x.bin: not a pcap or pcapng capture (starts with d4 c3)"),
        (b"\xd4\xc3\xb2\xa1\x02\x00", "x.bin: pcap file header cut short (6 of 24 bytes)"),
        (g.pcap([], 105), "x.bin: unsupported link type 105 (IEEE802_11)"),
        (g.pcap([], 9999), "x.bin: unsupported link type 9999"),
        (g.Pcapng().section().bytes()[:20], "x.bin: pcapng section header cut short"),
        (b"\x0a\x0d\x0d\x0a" + b"\0" * 24, "x.bin: pcapng section header has no valid byte-order magic"),
        (gzip.compress(b"", mtime=0), "x.bin: empty after gzip decompression"),
        (
            gzip.compress(b"hello world", mtime=0),
            "x.bin: not a pcap or pcapng capture (starts with 68 65 6c 6c, after gzip",
        ),
        (b"\x1f\x8b\x08\x00garbage" + bytes(20), "x.bin: gzip stream cut before its end"),
        (b"\x1f\x8b\x08\x00\0\0\0\0\0\xff\xff\xff\xff" + bytes(20), "x.bin: gzip data corrupt"),
    ],
)
def test_capture_errors(tmp_path: Path, content: bytes, message: str) -> None:
    p = write(tmp_path, content, "x.bin")
    with pytest.raises(CaptureError) as e:
        read_segments(p)
    assert str(e.value).startswith(str(tmp_path / message))
    assert "\n" not in str(e.value)
    assert isinstance(e.value, ValueError)


def test_pcapng_with_only_unsupported_interfaces_is_rejected(tmp_path: Path) -> None:
    w = g.Pcapng().section()
    w.interface(127)
    w.interface(105)
    w.epb(0, T0, b"\0" * 40)
    with pytest.raises(CaptureError, match=r"unsupported link type 127 \(IEEE802_11_RADIOTAP\)"):
        read_segments(write(tmp_path, w.bytes()))


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match=r"nope\.pcap: no such file"):
        read_segments(tmp_path / "nope.pcap")
    with pytest.raises(CaptureError, match="is a directory"):
        read_segments(tmp_path)


def test_error_in_a_later_file_comes_first_and_closes_the_others(tmp_path: Path) -> None:
    good = write(tmp_path, BASE.read_bytes(), "good.pcap")
    with pytest.raises(CaptureError, match=r"missing\.pcap"):
        read_segments([good, tmp_path / "missing.pcap"])


def test_unused_or_abandoned_iterators_leak_nothing() -> None:
    it = read_segments([BASE, BASE])
    del it
    it2 = read_segments(BASE)
    next(it2)
    del it2
    for _ in read_batches(BASE):
        break


# --------------------------------------------------------------------------- cut and corrupt files


def _small_pcap() -> bytes:
    recs = [(T0 + i * 1000, g.frame(_seg6() if i % 2 else _seg4(), g.LT_ETHERNET)) for i in range(4)]
    return g.pcap(recs)


def _small_pcapng(other: bool = True) -> bytes:
    w = g.Pcapng().section()
    w.interface(g.LT_ETHERNET)
    w.interface(g.LT_RAW, tsresol=9)
    for i in range(4):
        if i % 2:
            w.epb(1, T0 + i * 1000, _seg6())
        else:
            w.epb(0, T0 + i * 1000, g.frame(_seg4(), g.LT_ETHERNET))
    if other:
        w.other(5)
    return w.bytes()


def _boundaries(data: bytes, pcapng: bool) -> set[int]:
    out = set()
    off = 0 if pcapng else 24
    while off < len(data):
        out.add(off)
        off += (
            struct.unpack_from("<I", data, off + 4)[0]
            if pcapng
            else 16 + struct.unpack_from("<8xI", data, off)[0]
        )
    return out | {len(data)}


@pytest.mark.parametrize("kind", ["pcap", "pcapng", "gzip"])
def test_every_cut_point(tmp_path: Path, kind: str) -> None:
    full = _small_pcapng() if kind == "pcapng" else _small_pcap()
    whole, _ = read(write(tmp_path, full))
    assert len(whole) == 4
    bounds = _boundaries(full, kind == "pcapng")
    first = 28 if kind == "pcapng" else 24  # the file header itself
    for cut in range(len(full)):
        data = full[:cut]
        if kind == "gzip":
            data = gzip.compress(data)
        got = try_read(write(tmp_path, data, f"cut{cut}"))
        if isinstance(got, CaptureError):
            assert cut < first, (cut, got)
            assert "\n" not in str(got)
            continue
        segs, stats = got
        assert cut >= first
        if kind == "pcapng":
            assert segs == whole[: len(segs)]
        else:  # every complete record before the cut, and nothing else
            assert segs == whole[: sum(1 for b in bounds if 24 < b <= cut)]
        if cut in bounds:
            assert not stats.warnings, cut
        else:
            assert stats.truncated, cut
            assert len(stats.warnings) == 1
            assert "cut mid-record" in stats.warnings[0]


def test_cut_gzip_stream_at_every_point(tmp_path: Path) -> None:
    z = gzip.compress(_small_pcap())
    whole = read(write(tmp_path, _small_pcap()))[0]
    for cut in range(2, len(z)):
        got = try_read(write(tmp_path, z[:cut], "g.gz"))
        if isinstance(got, CaptureError):
            assert "\n" not in str(got)
            continue
        segs, stats = got
        assert segs == whole[: len(segs)]
        assert stats.truncated


def _timed_read(p: Path) -> tuple[list[Segment], ReadStats, float, int]:
    tracemalloc.start()
    t = time.perf_counter()
    try:
        segs, stats = read(p)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return segs, stats, time.perf_counter() - t, peak


def _pcap_with_record_header(caplen: int) -> bytes:
    return _small_pcap() + struct.pack("<IIII", 1, 2, caplen, caplen) + b"\0" * 100 + _small_pcap()[24:]


def _pcapng_with_block(btype: int, blen: int) -> bytes:
    return _small_pcapng() + struct.pack("<II", btype, blen) + b"\0" * 64 + _small_pcapng()[28:]


@pytest.mark.parametrize(
    "data",
    [
        _pcap_with_record_header(0xFFFFFFF0),
        _pcap_with_record_header(300_000),
        _pcapng_with_block(6, 0xFFFFFFF0),
        _pcapng_with_block(6, 30),  # not a multiple of 4
        _pcapng_with_block(6, 16),  # smaller than an EPB
        _pcapng_with_block(3, 8),
        _pcapng_with_block(0x99, 0x7FFFFFFC),
        _pcapng_with_block(1, 0x40000000),
        _pcapng_with_block(0x0A0D0D0A, 64),  # section header without byte-order magic
        _small_pcapng(other=False)[:-4] + b"\x99\0\0\0",  # trailing length differs
    ],
    ids=[
        "huge",
        "too-long",
        "ng-huge",
        "ng-unaligned",
        "ng-small",
        "spb-small",
        "ng-other",
        "idb-huge",
        "shb",
        "trailer",
    ],
)
def test_absurd_lengths_stop_the_file_quickly(tmp_path: Path, data: bytes) -> None:
    segs, stats, dt, peak = _timed_read(write(tmp_path, data))
    assert len(segs) in (3, 4)
    assert stats.truncated
    assert len(stats.warnings) == 1
    assert "corrupt" in stats.warnings[0]
    assert dt < 2
    assert peak < 64 << 20


def test_absurd_length_in_a_gzip_stream(tmp_path: Path) -> None:
    segs, stats, dt, peak = _timed_read(write(tmp_path, gzip.compress(_pcap_with_record_header(0xFFFFFFF0))))
    assert len(segs) == 4
    assert stats.truncated
    assert dt < 2
    assert peak < 64 << 20


def test_gzip_bomb_stays_bounded(tmp_path: Path) -> None:
    head = g.pcap([(T0, g.frame(_seg4(), g.LT_ETHERNET))])
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    body = z.compress(head) + z.compress(struct.pack("<IIII", 1, 0, 200_000, 200_000))
    zeros = bytes(1 << 20)
    for _ in range(12):  # 12 MiB of zero records (caplen 0 headers) from ~12 KiB of gzip
        body += z.compress(zeros)
    body += z.flush()
    segs, _stats, _dt, peak = _timed_read(write(tmp_path, body))
    assert len(segs) == 1
    assert peak < 64 << 20


# --------------------------------------------------------------------------- API details


def test_api_accepts_str_pathlike_and_sequences() -> None:
    a = read(str(BASE))[0]
    assert read(BASE)[0] == a
    assert read([BASE])[0] == a
    assert read((str(BASE),))[0] == a
    assert [s for b in read_batches(BASE) for s in b] == a


def test_stats_accumulate_over_calls_and_have_every_reason() -> None:
    stats = ReadStats(files=[])
    list(read_segments(BASE, stats=stats))
    list(read_segments(BASE, stats=stats))
    assert stats.packets == 48
    assert stats.files == [str(BASE), str(BASE)]
    assert set(stats.skipped) == set(capture.SKIP_REASONS)


def test_modified_pcap_format(tmp_path: Path) -> None:
    frame = g.frame(_seg4(), g.LT_ETHERNET)
    head = struct.pack("<IHHiIII", 0xA1B2CD34, 2, 4, 0, 0, 65535, 1)
    rec = struct.pack("<IIII", 1_700_000_000, 5, len(frame), len(frame)) + struct.pack("<IHBx", 2, 0x0800, 0)
    segs, _ = read(write(tmp_path, head + rec + frame))
    assert [(s.ts, s.length) for s in segs] == [(1_700_000_000_000_005_000, 10)]


# --------------------------------------------------------------------------- vectorised vs per-packet


@st.composite
def packets(draw: st.DrawFn, lt: int) -> bytes:
    v6 = draw(st.booleans())
    opts = draw(
        st.sampled_from([b"", b"\x02\x04\x05\xb4", b"\x01\x01\x08\x0a" + bytes(range(8)), bytes(range(40))])
    )
    payload = b"p" * draw(st.integers(0, 40))
    seg = g.tcp_header(
        draw(st.integers(0, 65535)),
        443,
        draw(st.integers(0, 2**32 - 1)),
        7,
        draw(st.integers(0, 255)),
        9,
        opts,
        payload,
    )
    if v6:
        ext = draw(
            st.lists(st.tuples(st.sampled_from([0, 43, 60, 51, 44]), st.binary(max_size=20)), max_size=3)
        )
        ip = g.ipv6(
            f"2001:db8::{draw(st.integers(1, 5))}", "::1", seg, draw(st.sampled_from([6, 6, 6, 17])), ext=ext
        )
    else:
        ip = g.ipv4(
            f"10.0.0.{draw(st.integers(1, 5))}",
            "192.0.2.1",
            seg,
            draw(st.sampled_from([6, 6, 6, 17])),
            options=draw(st.sampled_from([b"", b"\x01" * 4, b"\x01" * 40])),
            mf=draw(st.integers(0, 9)) == 0,
        )
    vlans = (
        [(draw(st.sampled_from([*VLAN, 0x0800])), 5) for _ in range(draw(st.integers(0, 2)))]
        if lt in (1,)
        else []
    )
    frame = bytearray(g.frame(ip, lt, vlans=vlans, pad_to=draw(st.sampled_from([0, 60]))))
    for _ in range(draw(st.integers(0, 2))):  # random damage in the headers
        if frame:
            frame[draw(st.integers(0, min(len(frame), 100) - 1))] = draw(st.integers(0, 255))
    return bytes(frame[: draw(st.integers(0, len(frame)))] if draw(st.booleans()) else frame)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.data())
def test_vectorised_decoder_matches_reference(tmp_path: Path, data: st.DataObject) -> None:
    lt = data.draw(st.sampled_from([g.LT_ETHERNET, g.LT_RAW, g.LT_NULL, g.LT_LOOP, g.LT_SLL, g.LT_SLL2]))
    frames = data.draw(st.lists(packets(lt), min_size=1, max_size=12))
    p = write(tmp_path, g.pcap([(T0 + i, f) for i, f in enumerate(frames)], lt, nanos=True), "h.pcap")
    ports = data.draw(st.sampled_from([(), (80,), range(65536)]))  # whose payload to keep
    segs, stats = read(p, payload_ports=ports)
    expected: list[tuple[Any, ...]] = []
    reasons: dict[str, int] = {}
    pieces = Reassembly()
    for i, f in enumerate(frames):
        r = reference(f, lt, pieces=pieces)
        if isinstance(r, str):
            reasons[r] = reasons.get(r, 0) + 1
        else:
            kept = r[1] in ports or r[3] in ports
            expected.append((i + 1, T0 + i, *r[:-1], r[-1] if kept else b""))
    assert [tuple(s) for s in segs] == expected
    assert skipped(stats) == reasons
    assert stats.packets == len(frames)


def _iter_chunks(data: bytes, n: int) -> Iterator[bytes]:
    for i in range(0, len(data), n):
        yield data[i : i + n]
