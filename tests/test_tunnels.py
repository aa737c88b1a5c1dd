"""Tunnelled TCP: the reader takes the inner segments out of IP-in-IP, GRE, VXLAN, Geneve,
GTP-U and Teredo, keyed by the inner 4-tuple as Zeek keys them.

Captures are built with ``pcapgen`` (and GRE / IP-in-IP once more with dpkt, an encoder that
shares nothing with ours); a hypothesis test checks random nestings, damage and cuts against
the per-packet reference decoder of ``refdecode``; Zeek's own tunnel traces are checked against
the connections Zeek logged for them.
"""

from __future__ import annotations

import csv
import io
import struct
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dpkt
import pcapgen as g
import pytest
from click.testing import CliRunner
from conftest import ROOT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from refdecode import Reassembly, reference

from tcptrace_sm import analyze
from tcptrace_sm.capture import MAX_TUNNEL_DEPTH, TUNNELS, ReadStats, read_segments
from tcptrace_sm.cli import cli
from tcptrace_sm.model import ACK, FIN, PSH, SYN, Segment

T0 = 1_700_000_000_000_000_000
C4, S4 = "10.1.0.1", "10.2.0.2"
C6, S6 = "2001:db8:1::1", "2001:db8:2::2"
# a Teredo client and a native IPv6 server (Zeek's Teredo.pcap has this very pair)
TEREDO_C, TEREDO_S = "2001:0:4137:9e50:8000:f12a:b9c8:2815", "2001:4860:0:2001::68"
CORPUS = ROOT.parent / "shared" / "corpus" / "zeek" / "traces" / "tunnels"


def read(path: Path, **kw: Any) -> tuple[list[Segment], ReadStats]:
    stats = ReadStats()
    return list(read_segments(path, stats=stats, **kw)), stats


def nonzero(counts: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in counts.items() if v}


def write(tmp_path: Path, frames: list[bytes], name: str = "t.pcap") -> Path:
    p = tmp_path / name
    p.write_bytes(g.pcap([(T0 + i * 1000, f) for i, f in enumerate(frames)], nanos=True))
    return p


def conversation(client: str = C4, server: str = S4, sport: int = 40000, dport: int = 80) -> list[bytes]:
    """The IP packets of a whole connection: handshake, request, answer, orderly close."""
    pk = g.tcp6 if ":" in client else g.tcp4
    req, resp = b"GET / HTTP/1.0\r\n\r\n", b"HTTP/1.0 200 OK\r\n\r\nhello"
    a, b = 100, 500
    return [
        pk(client, server, sport, dport, seq=a, flags=SYN, options=b"\x02\x04\x05\xb4"),
        pk(server, client, dport, sport, seq=b, ack=a + 1, flags=SYN | ACK, options=b"\x02\x04\x05\xb4"),
        pk(client, server, sport, dport, seq=a + 1, ack=b + 1, flags=ACK),
        pk(client, server, sport, dport, req, seq=a + 1, ack=b + 1, flags=PSH | ACK),
        pk(server, client, dport, sport, resp, seq=b + 1, ack=a + 1 + len(req), flags=PSH | ACK),
        pk(client, server, sport, dport, seq=a + 1 + len(req), ack=b + 1 + len(resp), flags=FIN | ACK),
        pk(server, client, dport, sport, seq=b + 1 + len(resp), ack=a + 2 + len(req), flags=FIN | ACK),
        pk(client, server, sport, dport, seq=a + 2 + len(req), ack=b + 2 + len(resp), flags=ACK),
    ]


# --------------------------------------------------------------------------- encapsulations


def over4(proto: int, payload: bytes, src: str = "192.0.2.1", dst: str = "192.0.2.2") -> bytes:
    """An outer IPv4 packet (proto ``proto``) on Ethernet."""
    return g.ethernet(g.ipv4(src, dst, payload, proto), g.ETH_IPV4)


def over6(proto: int, payload: bytes) -> bytes:
    return g.ethernet(g.ipv6("2001:db8:ff::1", "2001:db8:ff::2", payload, proto), g.ETH_IPV6)


def eth(ip: bytes, **kw: Any) -> bytes:
    return g.frame(ip, g.LT_ETHERNET, **kw)


def ethertype(ip: bytes) -> int:
    return g.ETH_IPV4 if g.ip_version(ip) == 4 else g.ETH_IPV6


def ppp(ip: bytes, hdlc: bool = True) -> bytes:
    return (
        (b"\xff\x03" if hdlc else b"") + struct.pack("!H", 0x0021 if g.ip_version(ip) == 4 else 0x0057) + ip
    )


ERSPAN2 = struct.pack("!HHI", 1 << 12, 7, 0)  # version 1 (type II), session 7
ERSPAN3 = struct.pack("!HHIHH", 2 << 12, 7, 0, 0, 1) + bytes(8)  # type III, O flag: 8 more bytes


Wrap = Callable[[bytes], bytes]
# id -> (kind counted in ReadStats.decapsulated, inner IP versions it can carry, wrap an IP packet)
ENCAPSULATIONS: dict[str, tuple[str, tuple[int, ...], Wrap]] = {
    "ip4-in-ip4": ("ip-in-ip", (4,), lambda ip: over4(g.PROTO_IPIP, ip)),
    "ip6-in-ip4": ("ip-in-ip", (6,), lambda ip: over4(g.PROTO_IPV6, ip)),
    "ip4-in-ip6": ("ip-in-ip", (4,), lambda ip: over6(g.PROTO_IPIP, ip)),
    "ip6-in-ip6": ("ip-in-ip", (6,), lambda ip: over6(g.PROTO_IPV6, ip)),
    "gre-ip": ("gre", (4, 6), lambda ip: over4(g.PROTO_GRE, g.gre(ip, ethertype(ip)))),
    "gre-csum-key-seq": (
        "gre",
        (4, 6),
        lambda ip: over4(g.PROTO_GRE, g.gre(ip, ethertype(ip), checksum_present=True, key=3, seq=9)),
    ),
    "gre-ethernet-over-ip6": ("gre", (4, 6), lambda ip: over6(g.PROTO_GRE, g.gre(eth(ip), g.ETH_BRIDGE))),
    "gre-erspan-ii": ("gre", (4, 6), lambda ip: over4(g.PROTO_GRE, g.gre(ERSPAN2 + eth(ip), 0x88BE, seq=1))),
    "gre-erspan-iii": ("gre", (4, 6), lambda ip: over4(g.PROTO_GRE, g.gre(ERSPAN3 + eth(ip), 0x22EB))),
    "pptp": ("gre", (4, 6), lambda ip: over4(g.PROTO_GRE, g.gre(ppp(ip), 0x880B, key=7, seq=1, version=1))),
    "pptp-no-address-control": (
        "gre",
        (4, 6),
        lambda ip: over4(g.PROTO_GRE, g.gre(ppp(ip, hdlc=False), 0x880B, key=7, seq=2, ack=1, version=1)),
    ),
    "vxlan": ("vxlan", (4, 6), lambda ip: over4(17, g.udp(50000, g.PORT_VXLAN, g.vxlan(eth(ip))))),
    "vxlan-source-port": (
        "vxlan",
        (4, 6),
        lambda ip: over4(17, g.udp(g.PORT_VXLAN, 50000, g.vxlan(eth(ip)))),
    ),
    "vxlan-vlan": (
        "vxlan",
        (4, 6),
        lambda ip: over4(17, g.udp(50000, g.PORT_VXLAN, g.vxlan(eth(ip, vlans=[(0x8100, 12)])))),
    ),
    "vxlan-qinq-over-ip6": (
        "vxlan",
        (4, 6),
        lambda ip: over6(17, g.udp(50000, g.PORT_VXLAN, g.vxlan(eth(ip, vlans=[(0x88A8, 1), (0x8100, 2)])))),
    ),
    "vxlan-padded-inner": (
        "vxlan",
        (4, 6),
        lambda ip: over4(17, g.udp(50000, g.PORT_VXLAN, g.vxlan(eth(ip, pad_to=100)))),
    ),
    "geneve": ("geneve", (4, 6), lambda ip: over4(17, g.udp(50000, g.PORT_GENEVE, g.geneve(eth(ip))))),
    "geneve-options": (
        "geneve",
        (4, 6),
        lambda ip: over4(17, g.udp(50000, g.PORT_GENEVE, g.geneve(eth(ip), options=bytes(12)))),
    ),
    "geneve-ip": (
        "geneve",
        (4, 6),
        lambda ip: over4(17, g.udp(50000, g.PORT_GENEVE, g.geneve(ip, ethertype(ip)))),
    ),
    "gtp-u": ("gtp-u", (4, 6), lambda ip: over4(17, g.udp(g.PORT_GTP_U, g.PORT_GTP_U, g.gtp_u(ip)))),
    "gtp-u-seq-npdu": (
        "gtp-u",
        (4, 6),
        lambda ip: over4(17, g.udp(5906, g.PORT_GTP_U, g.gtp_u(ip, seq=4, npdu=9))),
    ),
    "gtp-u-extension-headers": (
        "gtp-u",
        (4, 6),
        lambda ip: over4(
            17, g.udp(g.PORT_GTP_U, 5906, g.gtp_u(ip, seq=4, ext=[(0x85, b"\x10\x09"), (0x40, bytes(9))]))
        ),
    ),
    "teredo": ("teredo", (6,), lambda ip: over4(17, g.udp(3797, g.PORT_TEREDO, g.teredo(ip)))),
    "teredo-origin": (
        "teredo",
        (6,),
        lambda ip: over4(17, g.udp(g.PORT_TEREDO, 3797, g.teredo(ip, origin=(3797, "192.0.2.9")))),
    ),
    "teredo-auth-origin": (
        "teredo",
        (6,),
        lambda ip: over4(
            17, g.udp(g.PORT_TEREDO, 3797, g.teredo(ip, auth=(b"id", b"auth"), origin=(1, "192.0.2.9")))
        ),
    ),
}


def wrapped(case: str, v6: bool) -> tuple[str, list[bytes], list[bytes]]:
    """(kind, the conversation's frames in the tunnel, the same packets on plain Ethernet)."""
    kind, versions, wrap = ENCAPSULATIONS[case]
    want = 6 if v6 else 4
    if want not in versions:
        pytest.skip(f"{case} carries IPv{versions[0]} only")
    client, server = (TEREDO_C, TEREDO_S) if kind == "teredo" else (C6, S6) if v6 else (C4, S4)
    ips = conversation(client, server)
    return kind, [wrap(ip) for ip in ips], [eth(ip) for ip in ips]


CASES = [
    (case, v6)
    for case, (_k, versions, _w) in ENCAPSULATIONS.items()
    for v6 in (False, True)
    if (6 if v6 else 4) in versions
]


@pytest.mark.parametrize(("case", "v6"), CASES, ids=[f"{c}-v{6 if v6 else 4}" for c, v6 in CASES])
def test_inner_segments_are_those_of_the_plain_capture(tmp_path: Path, case: str, v6: bool) -> None:
    kind, frames, plain = wrapped(case, v6)
    segs, stats = read(write(tmp_path, frames))
    base, _ = read(write(tmp_path, plain, "plain.pcap"))
    assert segs == base  # same frames, times, inner addresses and ports, lengths, options
    assert len(segs) == 8
    assert nonzero(stats.decapsulated) == {kind: 8}
    assert nonzero(stats.skipped) == {}
    assert set(stats.decapsulated) == set(TUNNELS)
    # with --no-decapsulate the reader answers as before: the tunnels are not TCP
    segs, stats = read(write(tmp_path, frames), decapsulate=False)
    assert segs == []
    assert nonzero(stats.skipped) == {"not_tcp": 8}
    assert nonzero(stats.decapsulated) == {}


@pytest.mark.parametrize("case", ["gre-ip", "vxlan-vlan", "gtp-u-extension-headers", "teredo-auth-origin"])
def test_flows_are_keyed_and_analysed_by_the_inner_connection(tmp_path: Path, case: str) -> None:
    _kind, frames, plain = wrapped(case, v6=case.startswith("teredo"))
    a = analyze(write(tmp_path, frames))
    base = analyze(write(tmp_path, plain, "plain.pcap"))
    assert a.flow_records == base.flow_records
    assert a.transition_records == base.transition_records
    (flow,) = a.flow_records
    client, server = (TEREDO_C, TEREDO_S) if case.startswith("teredo") else (C4, S4)
    assert (flow["client_ip"], flow["client_port"], flow["server_ip"], flow["server_port"]) == (
        client,
        40000,
        server,
        80,
    )
    assert (flow["client_packets"], flow["server_packets"]) == (5, 3)
    assert (flow["client_state"], flow["server_state"], flow["close"]) == ("TIME-WAIT", "CLOSED", "fin")
    assert flow["conn_state"] == "SF"


def test_gre_and_ip_in_ip_built_by_dpkt(tmp_path: Path) -> None:
    """The same GRE and IP-in-IP packets from an encoder that shares nothing with ours."""
    frames, plain = [], []
    for i, ip in enumerate(conversation()):
        inner = dpkt.ip.IP(ip)
        if i % 2:
            gre = dpkt.gre.GRE(p=0x0800, data=inner)
            gre.flags |= dpkt.gre.GRE_KP
            gre.key = 0x1234
            outer = dpkt.ip.IP(src=bytes([192, 0, 2, 1]), dst=bytes([192, 0, 2, 2]), p=47, data=gre)
        else:
            outer = dpkt.ip.IP(src=bytes([192, 0, 2, 1]), dst=bytes([192, 0, 2, 2]), p=4, data=inner)
        outer.len = len(outer)
        frames.append(
            bytes(dpkt.ethernet.Ethernet(src=b"\x02" * 6, dst=b"\x04" * 6, type=0x0800, data=outer))
        )
        plain.append(eth(ip))
    segs, stats = read(write(tmp_path, frames))
    assert segs == read(write(tmp_path, plain, "plain.pcap"))[0]
    assert nonzero(stats.decapsulated) == {"gre": 4, "ip-in-ip": 4}


def test_record_order_frame_numbers_and_times_are_the_records(tmp_path: Path) -> None:
    ips = conversation()
    dns = over4(17, g.udp(5353, 53, b"\0" * 20))
    kinds = ["vxlan", "gtp-u", "gre-ip", "ip4-in-ip6"]
    frames: list[bytes] = []
    for i, ip in enumerate(ips):
        frames.append(ENCAPSULATIONS[kinds[i % 4]][2](ip) if i % 3 else eth(ip))
        frames.append(dns)
    segs, stats = read(write(tmp_path, frames))
    assert [s.frame for s in segs] == [2 * i + 1 for i in range(8)]
    assert [s.ts for s in segs] == [T0 + 2 * i * 1000 for i in range(8)]
    assert [(s.seq, s.flags) for s in segs] == [
        (s.seq, s.flags) for s in read(write(tmp_path, [eth(ip) for ip in ips], "p.pcap"))[0]
    ]
    assert nonzero(stats.skipped) == {"not_tcp": 8}
    assert stats.segments + sum(stats.skipped.values()) == stats.packets == 16


def test_segment_length_comes_from_the_inner_ip_header(tmp_path: Path) -> None:
    ip = g.tcp4(C4, S4, 1, 2, b"abc", seq=1, flags=PSH | ACK)
    frames = [
        # Ethernet padding inside the tunnel and after the outer packet; trailing bytes after
        # the UDP datagram and after the GTP message
        g.ethernet(
            g.ipv4("192.0.2.1", "192.0.2.2", g.udp(1, g.PORT_VXLAN, g.vxlan(eth(ip, pad_to=90))), 17),
            0x0800,
            pad_to=200,
        ),
        over4(17, g.udp(1, g.PORT_VXLAN, g.vxlan(eth(ip)), length=8 + 8 + 14 + len(ip)) + b"junk" * 9),
        over4(17, g.udp(g.PORT_GTP_U, 1, g.gtp_u(ip, length=len(ip)) + b"trailing bytes")),
    ]
    segs, stats = read(write(tmp_path, frames))
    assert [s.length for s in segs] == [3, 3, 3]
    assert nonzero(stats.skipped) == {}


def test_checksums_verified_are_the_inner_packets(tmp_path: Path) -> None:
    good = g.tcp4(C4, S4, 1, 2, b"x", seq=1)
    bad_tcp = g.ipv4(C4, S4, g.tcp_header(1, 2, 1, payload=b"x", csum=0xDEAD))
    bad_ip = g.ipv4(C4, S4, g.tcp_header(1, 2, 1, payload=b"x", src=C4, dst=S4), csum=0xDEAD)
    frames = [
        over4(17, g.udp(1, g.PORT_VXLAN, g.vxlan(eth(good)), csum=0x1234)),  # outer UDP checksum wrong
        g.ethernet(g.ipv4("192.0.2.1", "192.0.2.2", good, 4, csum=0x4242), 0x0800),  # outer IPv4 header wrong
        over4(17, g.udp(1, g.PORT_VXLAN, g.vxlan(eth(bad_tcp)))),
        over4(g.PROTO_GRE, g.gre(bad_ip)),
        over6(g.PROTO_IPIP, bad_tcp),
    ]
    segs, stats = read(write(tmp_path, frames), verify_checksums=True)
    # the inner TCP checksums fail on 3 and 5 (marked); the inner IPv4 header on 4 (skipped)
    assert [(s.frame, s.bad_checksum) for s in segs] == [(1, False), (2, False), (3, True), (5, True)]
    assert nonzero(stats.skipped) == {"bad_checksum": 1}
    segs, stats = read(write(tmp_path, frames))
    assert len(segs) == 5
    assert not any(s.bad_checksum for s in segs)


# --------------------------------------------------------------------------- hostile input

SYN4 = g.tcp4(C4, S4, 40000, 80, seq=1, flags=SYN)
SYN6 = g.tcp6(TEREDO_C, TEREDO_S, 40000, 80, seq=1, flags=SYN)


def vx(inner_frame: bytes, **kw: Any) -> bytes:
    return over4(17, g.udp(50000, g.PORT_VXLAN, g.vxlan(inner_frame, **kw)))


def gtp(payload: bytes) -> bytes:
    return over4(17, g.udp(g.PORT_GTP_U, g.PORT_GTP_U, payload))


HOSTILE: dict[str, tuple[bytes, str]] = {
    "vxlan-without-I-flag": (vx(eth(SYN4), flags=0), "not_tcp"),
    "udp-to-vxlan-port-empty": (over4(17, g.udp(1, g.PORT_VXLAN, b"")), "not_tcp"),
    "vxlan-header-cut": (over4(17, g.udp(1, g.PORT_VXLAN, b"\x08\0\0")), "truncated_header"),
    "vxlan-inner-ethernet-cut": (vx(eth(SYN4)[:10]), "truncated_header"),
    "vxlan-inner-vlan-tag-cut": (vx(eth(SYN4, vlans=[(0x8100, 1)])[:16]), "truncated_header"),
    "vxlan-inner-ip-cut": (vx(eth(SYN4)[: 14 + 12]), "truncated_header"),
    "vxlan-inner-tcp-cut": (vx(eth(SYN4)[: 14 + 20 + 12]), "truncated_header"),
    "vxlan-cut-by-udp-length": (
        over4(17, g.udp(1, g.PORT_VXLAN, g.vxlan(eth(SYN4)), length=30)),
        "truncated_header",
    ),
    "vxlan-arp": (vx(g.ethernet(bytes(28), g.ETH_ARP)), "not_tcp"),
    "vxlan-dns": (vx(eth(g.ipv4(C4, S4, g.udp(1, 53, b"q"), 17))), "not_tcp"),
    "vxlan-inner-fragment": (vx(eth(g.ipv4(C4, S4, g.tcp_header(1, 2), mf=True))), "fragment"),
    "vxlan-inner-bad-data-offset": (vx(eth(g.ipv4(C4, S4, g.tcp_header(1, 2, data_offset=3)))), "malformed"),
    "vxlan-inner-bad-ip-version": (vx(eth(g.ipv4(C4, S4, g.tcp_header(1, 2), version=5))), "malformed"),
    "outer-fragment": (
        g.ethernet(
            g.ipv4("192.0.2.1", "192.0.2.2", g.udp(1, g.PORT_VXLAN, g.vxlan(eth(SYN4))), 17, mf=True), 0x0800
        ),
        "fragment",
    ),
    "geneve-version-1": (over4(17, g.udp(1, g.PORT_GENEVE, g.geneve(eth(SYN4), version=1))), "not_tcp"),
    "geneve-unknown-protocol": (over4(17, g.udp(1, g.PORT_GENEVE, g.geneve(eth(SYN4), 0x1234))), "not_tcp"),
    "geneve-options-cut": (
        over4(17, g.udp(1, g.PORT_GENEVE, g.geneve(b"", options=bytes(8))[:12])),
        "truncated_header",
    ),
    "geneve-says-ipv4-holds-ipv6": (over4(17, g.udp(1, g.PORT_GENEVE, g.geneve(SYN6, 0x0800))), "malformed"),
    "gtp-echo-request": (gtp(g.gtp_u(b"", msg_type=1)), "not_tcp"),
    "gtp-version-2": (gtp(g.gtp_u(SYN4, version=2)), "not_tcp"),
    "gtp-not-ip": (gtp(g.gtp_u(b"\x80" + bytes(30))), "not_tcp"),
    "gtp-empty-g-pdu": (gtp(g.gtp_u(b"")), "not_tcp"),
    "gtp-optional-fields-cut": (gtp(g.gtp_u(b"", seq=1)[:10]), "truncated_header"),
    "gtp-length-cuts-inner": (gtp(g.gtp_u(SYN4, length=30)), "truncated_header"),
    "gtp-extension-length-0": (
        gtp(g.gtp_u(SYN4, ext=[(0x85, b"\0\0")])[:12] + b"\x00\x00\x00\x00" + SYN4),
        "malformed",
    ),
    "gtp-extension-cut": (gtp(g.gtp_u(SYN4, ext=[(0x85, bytes(10))])[:16]), "truncated_header"),
    "gtp-17-extension-headers": (gtp(g.gtp_u(SYN4, ext=[(0x40, b"\0\0")] * 17)), "malformed"),
    "gtp-in-gtp": (
        gtp(g.gtp_u(g.ipv4(C4, S4, g.udp(g.PORT_GTP_U, g.PORT_GTP_U, g.gtp_u(SYN4)), 17))),
        "not_tcp",
    ),
    "gre-routing": (over4(g.PROTO_GRE, g.gre(SYN4, routing=True)), "not_tcp"),
    "gre-version-2": (over4(g.PROTO_GRE, g.gre(SYN4, version=2)), "not_tcp"),
    "gre-arp": (over4(g.PROTO_GRE, g.gre(bytes(28), g.ETH_ARP)), "not_tcp"),
    "gre-header-cut": (over4(g.PROTO_GRE, g.gre(b"", key=1)[:6]), "truncated_header"),
    "gre-says-ipv6-holds-ipv4": (over4(g.PROTO_GRE, g.gre(SYN4, g.ETH_IPV6)), "malformed"),
    "erspan-iii-cut": (over4(g.PROTO_GRE, g.gre(ERSPAN3[:15], 0x22EB)), "truncated_header"),
    "pptp-acknowledgment-alone": (over4(g.PROTO_GRE, g.gre(b"", 0x880B, key=7, ack=3, version=1)), "not_tcp"),
    "pptp-lcp": (
        over4(g.PROTO_GRE, g.gre(b"\xff\x03\xc0\x21" + bytes(8), 0x880B, key=7, version=1)),
        "not_tcp",
    ),
    "pptp-version-1-not-ppp": (over4(g.PROTO_GRE, g.gre(SYN4, g.ETH_IPV4, key=7, version=1)), "not_tcp"),
    "ip4-in-ip-holds-ipv6": (over4(g.PROTO_IPIP, SYN6), "malformed"),
    "ip6-in-ip-holds-ipv4": (over4(g.PROTO_IPV6, SYN4), "malformed"),
    "ip-in-ip-empty": (over4(g.PROTO_IPIP, b""), "not_tcp"),
    "ip-in-ip-cut": (over4(g.PROTO_IPIP, SYN4[:10]), "truncated_header"),
    "teredo-bubble": (
        over4(17, g.udp(1, g.PORT_TEREDO, g.teredo(g.ipv6(TEREDO_C, TEREDO_S, b"", 59)))),
        "not_tcp",
    ),
    "teredo-not-ipv6": (over4(17, g.udp(1, g.PORT_TEREDO, SYN4)), "not_tcp"),
    "teredo-two-authentications": (
        over4(17, g.udp(1, g.PORT_TEREDO, g.teredo(g.teredo(SYN6, auth=(b"", b"")), auth=(b"a", b"b")))),
        "not_tcp",
    ),
    "teredo-authentication-cut": (
        over4(17, g.udp(1, g.PORT_TEREDO, g.teredo(SYN6, auth=(b"id", b"x" * 30))[:20])),
        "truncated_header",
    ),
    "teredo-origin-cut": (
        over4(17, g.udp(1, g.PORT_TEREDO, g.teredo(SYN6, origin=(1, "1.2.3.4"))[:5])),
        "truncated_header",
    ),
    "teredo-inner-ipv6-cut": (over4(17, g.udp(1, g.PORT_TEREDO, SYN6[:30])), "truncated_header"),
    # on another port, Teredo is only recognised whole: these are plain UDP
    "teredo-like-cut-on-other-port": (over4(17, g.udp(1, 2, SYN6[:-1])), "not_tcp"),
    "teredo-like-not-teredo-address-on-other-port": (over4(17, g.udp(1, 2, g.tcp6(C6, S6, 1, 2))), "not_tcp"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_tunnels_are_counted_once_under_the_right_reason(tmp_path: Path, case: str) -> None:
    frame, reason = HOSTILE[case]
    assert reference(frame, g.LT_ETHERNET) == reason  # the per-packet rules say the same
    segs, stats = read(write(tmp_path, [frame]))
    assert segs == []
    assert nonzero(stats.skipped) == {reason: 1}


def test_gtp_with_16_extension_headers_is_decoded(tmp_path: Path) -> None:
    segs, stats = read(write(tmp_path, [gtp(g.gtp_u(SYN4, ext=[(0x40, b"\0\0")] * 16))]))
    assert [(s.src, s.sport, s.flags) for s in segs] == [(C4, 40000, SYN)]
    assert nonzero(stats.decapsulated) == {"gtp-u": 1}


def test_gtp_in_gtp_opens_one_tunnel_only(tmp_path: Path) -> None:
    _, stats = read(write(tmp_path, [HOSTILE["gtp-in-gtp"][0]]))
    assert nonzero(stats.decapsulated) == {"gtp-u": 1}


def test_teredo_is_recognised_by_its_contents_on_other_ports(tmp_path: Path) -> None:
    frames = [over4(17, g.udp(3797, 32900, g.teredo(ip))) for ip in conversation(TEREDO_C, TEREDO_S)]
    segs, stats = read(write(tmp_path, frames))
    assert [(s.src, s.dst) for s in segs][:2] == [(TEREDO_C, TEREDO_S), (TEREDO_S, TEREDO_C)]
    assert len(segs) == 8
    assert nonzero(stats.decapsulated) == {"teredo": 8}


def nest(ip: bytes, levels: int, kinds: list[str]) -> bytes:
    """``ip`` inside ``levels`` tunnels, the innermost first, kinds taken in turn."""
    for i in range(levels):
        frame = ENCAPSULATIONS[kinds[i % len(kinds)]][2](ip)
        ip = frame[14:]  # the outer IP packet: the next tunnel wraps it
    return g.ethernet(ip, ethertype(ip))


@pytest.mark.parametrize("levels", range(1, MAX_TUNNEL_DEPTH + 3))
def test_nesting_is_bounded(tmp_path: Path, levels: int) -> None:
    frame = nest(SYN4, levels, ["vxlan"])
    segs, stats = read(write(tmp_path, [frame]))
    assert reference(frame, g.LT_ETHERNET) == (
        "malformed" if levels > MAX_TUNNEL_DEPTH else reference(eth(SYN4), 1)
    )
    if levels <= MAX_TUNNEL_DEPTH:
        assert [(s.src, s.sport, s.dst, s.dport) for s in segs] == [(C4, 40000, S4, 80)]
        assert nonzero(stats.decapsulated) == {"vxlan": levels}
    else:
        assert segs == []
        assert nonzero(stats.skipped) == {"malformed": 1}
        assert nonzero(stats.decapsulated) == {"vxlan": MAX_TUNNEL_DEPTH}


def test_different_tunnels_nest(tmp_path: Path) -> None:
    kinds = ["ip4-in-ip6", "gtp-u", "gre-ethernet-over-ip6", "vxlan"]
    frame = nest(SYN4, 4, kinds)
    segs, stats = read(write(tmp_path, [frame, nest(SYN4, 5, kinds)]))
    assert [s.frame for s in segs] == [1]
    assert nonzero(stats.decapsulated) == {"ip-in-ip": 2, "gtp-u": 2, "gre": 2, "vxlan": 2}
    assert nonzero(stats.skipped) == {"malformed": 1}


def test_endless_nesting_costs_nothing(tmp_path: Path) -> None:
    frames = [nest(SYN4, 60, ["ip4-in-ip4"])] * 2000
    _, stats = read(write(tmp_path, frames))
    assert nonzero(stats.skipped) == {"malformed": 2000}


def test_every_cut_of_a_nested_packet_is_one_skip(tmp_path: Path) -> None:
    frame = nest(g.tcp6(TEREDO_C, TEREDO_S, 1, 2, b"data"), 1, ["teredo-auth-origin"])[14:]
    frame = nest(frame, 2, ["gtp-u-extension-headers", "gre-erspan-iii"])
    cuts = [frame[:n] for n in range(len(frame) + 1)]
    segs, stats = read(write(tmp_path, cuts))
    expected = [reference(c, g.LT_ETHERNET) for c in cuts]
    assert [s.frame for s in segs] == [i + 1 for i, r in enumerate(expected) if not isinstance(r, str)]
    assert nonzero(stats.skipped) == dict(Counter(r for r in expected if isinstance(r, str)))
    assert stats.segments + sum(stats.skipped.values()) == stats.packets


# --------------------------------------------------------------------------- against the reference


def _port(draw: st.DrawFn, port: int) -> tuple[int, int]:
    other = draw(st.sampled_from([1, 53, 50000, 4789, 2152, port]))
    return (port, other) if draw(st.booleans()) else (other, port)


@st.composite
def tunnelled(draw: st.DrawFn) -> bytes:
    """An Ethernet frame: a TCP (or UDP, or not IP at all) packet in 0-6 random tunnels,
    sometimes damaged in its headers or cut."""
    v6 = draw(st.booleans())
    teredo_addr = draw(st.booleans())
    c, s = (TEREDO_C, TEREDO_S) if teredo_addr else (C6, S6)
    payload = b"p" * draw(st.integers(0, 12))
    if v6:
        ip = g.tcp6(c, s, draw(st.integers(0, 65535)), 80, payload, seq=draw(st.integers(0, 2**32 - 1)))
    else:
        ip = g.tcp4(C4, S4, draw(st.integers(0, 65535)), 80, payload, options=b"\x02\x04\x05\xb4")
    if draw(st.integers(0, 9)) == 0:
        ip = g.ipv6(c, s, g.udp(1, 2, b"x"), 17) if v6 else g.ipv4(C4, S4, g.udp(1, 2, b"x"), 17)
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(
            st.sampled_from(["ipip", "gre", "gre-eth", "pptp", "erspan", "vxlan", "geneve", "gtp", "teredo"])
        )
        inner_v = g.ip_version(ip)
        if kind == "ipip":
            body, proto = ip, (g.PROTO_IPIP if inner_v == 4 else g.PROTO_IPV6)
        elif kind == "gre":
            key = draw(st.none() | st.integers(0, 2**32 - 1))
            body, proto = (
                g.gre(
                    ip,
                    ethertype(ip),
                    checksum_present=draw(st.booleans()),
                    key=key,
                    seq=draw(st.none() | st.just(1)),
                ),
                47,
            )
        elif kind == "gre-eth":
            body, proto = g.gre(eth(ip, vlans=[(0x8100, 1)] * draw(st.integers(0, 2))), g.ETH_BRIDGE), 47
        elif kind == "pptp":
            body, proto = (
                g.gre(
                    ppp(ip, draw(st.booleans())), 0x880B, key=1, ack=draw(st.none() | st.just(1)), version=1
                ),
                47,
            )
        elif kind == "erspan":
            body, proto = (
                g.gre(ERSPAN3 + eth(ip), 0x22EB)
                if draw(st.booleans())
                else g.gre(ERSPAN2 + eth(ip), 0x88BE, seq=1),
                47,
            )
        elif kind == "vxlan":
            body, proto = g.udp(*_port(draw, g.PORT_VXLAN), g.vxlan(eth(ip))), 17
        elif kind == "geneve":
            inner = eth(ip) if draw(st.booleans()) else ip
            prot = g.ETH_BRIDGE if len(inner) != len(ip) else ethertype(ip)
            body, proto = (
                g.udp(
                    *_port(draw, g.PORT_GENEVE),
                    g.geneve(inner, prot, options=bytes(4 * draw(st.integers(0, 3)))),
                ),
                17,
            )
        elif kind == "gtp":
            ext = [(0x85, b"\x00" * draw(st.integers(0, 6))) for _ in range(draw(st.integers(0, 3)))]
            body = g.gtp_u(ip, seq=draw(st.none() | st.just(5)), ext=ext)
            body, proto = g.udp(*_port(draw, g.PORT_GTP_U), body), 17
        else:
            origin = draw(st.none() | st.just((1, "192.0.2.1")))
            auth = draw(st.none() | st.just((b"i", b"au")))
            port = g.PORT_TEREDO if draw(st.booleans()) else 32900
            body, proto = g.udp(*_port(draw, port), g.teredo(ip, origin=origin, auth=auth)), 17
        if draw(st.booleans()):
            ip = g.ipv4("192.0.2.1", "192.0.2.2", body, proto)
        else:
            ip = g.ipv6("2001:db8:ff::1", "2001:db8:ff::2", body, proto)
    frame = bytearray(eth(ip))
    for _ in range(draw(st.integers(0, 2))):  # random damage in the headers
        frame[draw(st.integers(0, min(len(frame), 160) - 1))] = draw(st.integers(0, 255))
    return bytes(frame[: draw(st.integers(0, len(frame)))] if draw(st.integers(0, 3)) == 0 else frame)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.data())
def test_vectorised_decapsulation_matches_reference(tmp_path: Path, data: st.DataObject) -> None:
    frames = data.draw(st.lists(tunnelled(), min_size=1, max_size=10))
    decapsulate = data.draw(st.booleans() | st.just(True))
    keep = data.draw(st.booleans())  # the payload of every port, or of none
    segs, stats = read(
        write(tmp_path, frames), decapsulate=decapsulate, payload_ports=range(65536) if keep else ()
    )
    expected: list[tuple[Any, ...]] = []
    reasons: Counter[str] = Counter()
    opened: list[str] = []
    pieces = Reassembly()
    for i, f in enumerate(frames):
        r = reference(f, g.LT_ETHERNET, decapsulate=decapsulate, opened=opened, pieces=pieces)
        if isinstance(r, str):
            reasons[r] += 1
        else:
            expected.append((i + 1, T0 + i * 1000, *r[:-1], r[-1] if keep else b""))
    assert [tuple(s) for s in segs] == expected
    assert nonzero(stats.skipped) == dict(reasons)
    assert nonzero(stats.decapsulated) == dict(Counter(opened))
    assert stats.packets == len(frames)


# --------------------------------------------------------------------------- Zeek's traces


needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="the Zeek corpus is not beside the checkout")


def _flows(segs: list[Segment]) -> Counter[tuple[str, int, str, int]]:
    return Counter((s.src, s.sport, s.dst, s.dport) for s in segs)


@needs_corpus
def test_zeek_teredo_trace() -> None:
    segs, stats = read(CORPUS / "Teredo.pcap")
    flows = _flows(segs)
    # Zeek's conn.log: 2001:0:4137:9e50:8000:f12a:b9c8:2815:1286 -> [2001:4860:0:2001::68]:80,
    # orig_pkts 10, resp_pkts 12 (the plain IPv4 connections are as before)
    assert flows[(TEREDO_C, 1286, TEREDO_S, 80)] == 10
    assert flows[(TEREDO_S, 80, TEREDO_C, 1286)] == 12
    assert nonzero(stats.decapsulated) == {"teredo": 29}  # 22 TCP, 7 ICMPv6 / bubbles
    assert nonzero(stats.skipped) == {"not_tcp": 23}
    old, old_stats = read(CORPUS / "Teredo.pcap", decapsulate=False)
    assert old == [s for s in segs if ":" not in s.src]
    assert nonzero(old_stats.skipped) == {"not_tcp": 45}


@needs_corpus
@pytest.mark.parametrize("name", ["vxlan", "geneve"])
def test_zeek_vxlan_and_geneve_traces_have_a_bad_inner_checksum(name: str) -> None:
    path = CORPUS / f"{name}-inner-tcp-bad-checksum.pcap"
    segs, stats = read(path)
    assert [(s.src, s.sport, s.dst, s.dport, s.flags) for s in segs] == [
        ("10.0.0.1", 12345, "10.0.0.2", 80, SYN)
    ]
    assert nonzero(stats.decapsulated) == {name: 1}
    # Zeek (without -C) records the segment as 'C'; verifying, we mark it (and ignore it)
    marked, stats = read(path, verify_checksums=True)
    assert marked == segs
    assert marked[0].bad_checksum
    assert not nonzero(stats.skipped)


@needs_corpus
def test_zeek_gtp_trace() -> None:
    segs, stats = read(CORPUS / "gtp" / "gtp2_different_udp_port.pcap")
    flows = _flows(segs)
    # Zeek: 10.131.17.170:51803 -> 173.199.115.168:80, S3, orig_pkts 29, resp_pkts 49. The
    # downlink's big packets come in fragmented outer IPv4 packets (84 fragments), which the
    # reader reassembles, as Zeek does: each of those 42 comes out as its second fragment
    assert set(flows) == {
        ("10.131.17.170", 51803, "173.199.115.168", 80),
        ("173.199.115.168", 80, "10.131.17.170", 51803),
    }
    assert flows[("10.131.17.170", 51803, "173.199.115.168", 80)] == 29
    assert flows[("173.199.115.168", 80, "10.131.17.170", 51803)] == 49
    assert nonzero(stats.skipped) == {"fragment": 42}
    assert nonzero(stats.decapsulated) == {"gtp-u": 78}


# --------------------------------------------------------------------------- command line


def test_cli_analyze_csv_and_no_decapsulate(tmp_path: Path) -> None:
    _kind, frames, _plain = wrapped("vxlan-vlan", v6=False)
    path = str(write(tmp_path, frames))
    result = CliRunner().invoke(cli, ["analyze", path, "--format", "csv"], catch_exceptions=False)
    assert result.exit_code == 0
    (row,) = csv.DictReader(io.StringIO(result.stdout))
    assert (row["client_ip"], row["client_port"], row["server_ip"], row["server_port"]) == (
        C4,
        "40000",
        S4,
        "80",
    )
    assert (row["packets"], row["client_state"], row["server_state"], row["conn_state"]) == (
        "8",
        "TIME-WAIT",
        "CLOSED",
        "SF",
    )
    assert "8 packets, 8 TCP segments; decapsulated 8 vxlan" in result.stderr
    result = CliRunner().invoke(
        cli, ["analyze", path, "--format", "csv", "--no-decapsulate"], catch_exceptions=False
    )
    assert result.exit_code == 0
    assert len(result.stdout.splitlines()) == 1  # no flow
    assert "8 packets, 0 TCP segments; skipped 8 not tcp" in result.stderr

    result = CliRunner().invoke(cli, ["segments", path, "--format", "csv"], catch_exceptions=False)
    assert len(result.stdout.splitlines()) == 1 + 8
    assert "decapsulated 8 vxlan" in result.stderr
    result = CliRunner().invoke(
        cli, ["segments", path, "--format", "csv", "--no-decapsulate"], catch_exceptions=False
    )
    assert result.exit_code == 0
    assert len(result.stdout.splitlines()) == 1  # the header only
    assert "8 packets, 0 TCP segments; skipped 8 not tcp" in result.stderr
