"""IPv4 fragments are reassembled, as the receiving host and Zeek do: the datagram comes out as
its completing fragment's record, the other fragments count as skipped (``fragment``)."""

from __future__ import annotations

import struct
from itertools import pairwise
from pathlib import Path
from typing import Any

import pcapgen as g
import pytest

from tcptrace_sm import capture
from tcptrace_sm.capture import MAX_FRAGMENTED, ReadStats, read_segments
from tcptrace_sm.model import ACK, PSH, Segment

T0 = 1_700_000_000 * 10**9
SRC, DST = "192.0.2.1", "198.51.100.2"
PAYLOAD = bytes(range(256)) * 6  # 1536 bytes: a segment that does not fit a 1500-byte MTU


def _checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def fragments(packet: bytes, cuts: list[int], ident: int = 7) -> list[bytes]:
    """The IPv4 ``packet`` in fragments whose payloads start at ``cuts`` (multiples of 8)."""
    hl = (packet[0] & 15) * 4
    head, body = bytearray(packet[:hl]), packet[hl:]
    bounds = [0, *cuts, len(body)]
    out = []
    for lo, hi in pairwise(bounds):
        h = bytearray(head)
        more = 0x2000 if hi < len(body) else 0
        struct.pack_into("!HHH", h, 2, hl + hi - lo, ident, more | lo // 8)
        struct.pack_into("!H", h, 10, 0)
        struct.pack_into("!H", h, 10, _checksum(bytes(h)))
        out.append(bytes(h) + body[lo:hi])
    return out


def segment(payload: bytes = PAYLOAD, seq: int = 1000, sport: int = 40000) -> bytes:
    return g.tcp4(SRC, DST, sport, 80, payload, seq=seq, ack=2000, flags=ACK | PSH)


def write(tmp_path: Path, packets: list[bytes], name: str = "f.pcap", snaplen: int | None = None) -> Path:
    records: list[Any] = []
    for i, p in enumerate(packets):
        f = g.frame(p, g.LT_ETHERNET)
        records.append((T0 + i * 1000, f[:snaplen] if snaplen else f, len(f)))
    path = tmp_path / name
    path.write_bytes(g.pcap(records, snaplen=snaplen or 262144))
    return path


def read(path: Path, **kw: Any) -> tuple[list[Segment], ReadStats]:
    stats = ReadStats()
    segs = list(read_segments(path, stats=stats, **kw))
    assert len(segs) + sum(stats.skipped.values()) == stats.packets  # every record accounted for
    return segs, stats


def skipped(stats: ReadStats) -> dict[str, int]:
    return {k: v for k, v in stats.skipped.items() if v}


@pytest.mark.parametrize(
    ("order", "frame"),
    [((0, 1), 2), ((1, 0), 2), ((2, 0, 1), 3), ((0, 2, 1), 3)],
    ids=["in order", "reversed", "last first", "middle last"],
)
def test_a_segment_in_fragments_comes_out_whole(tmp_path: Path, order: tuple[int, ...], frame: int) -> None:
    cuts = [512, 1024][: len(order) - 1]
    pieces = fragments(segment(), cuts)
    segs, stats = read(write(tmp_path, [pieces[i] for i in order]))
    assert len(segs) == 1
    s = segs[0]
    assert (s.src, s.sport, s.dst, s.dport, s.seq, s.length) == (SRC, 40000, DST, 80, 1000, len(PAYLOAD))
    assert s.frame == frame  # the fragment that completed it
    assert skipped(stats) == {"fragment": len(order) - 1}
    assert not s.truncated


def test_payload_of_a_reassembled_segment(tmp_path: Path) -> None:
    segs, _ = read(write(tmp_path, fragments(segment(), [512, 1024])), payload_ports={80})
    assert segs[0].payload == PAYLOAD


@pytest.mark.parametrize(
    "case",
    ["missing", "overlap disagrees", "cut by the snaplen"],
)
def test_a_datagram_that_cannot_be_rebuilt_is_skipped(tmp_path: Path, case: str) -> None:
    pieces = fragments(segment(), [512, 1024])
    snaplen = None
    if case == "missing":
        pieces = [pieces[0], pieces[2]]
    elif case == "overlap disagrees":
        # a second middle with other bytes: the datagram is lost, and its last fragment
        # starts a new one that cannot complete
        other = fragments(segment(payload=bytes(len(PAYLOAD))), [512, 1024])
        pieces = [pieces[0], other[1], pieces[1], pieces[2]]
    else:
        snaplen = 300
    segs, stats = read(write(tmp_path, pieces, snaplen=snaplen))
    assert segs == []
    assert skipped(stats) == {"fragment": len(pieces)}


def test_duplicate_and_agreeing_overlapping_fragments(tmp_path: Path) -> None:
    pieces = fragments(segment(), [512, 1024])
    overlap = fragments(segment(), [256, 768])[1]  # bytes 256..768: the same bytes again
    segs, stats = read(write(tmp_path, [pieces[0], pieces[0], overlap, pieces[1], pieces[2]]))
    assert [s.length for s in segs] == [len(PAYLOAD)]
    assert segs[0].frame == 5
    assert skipped(stats) == {"fragment": 4}


def test_fragments_of_different_datagrams_interleaved(tmp_path: Path) -> None:
    a = fragments(segment(seq=1000, sport=40000), [512], ident=1)
    b = fragments(segment(seq=5000, sport=40001), [512], ident=2)
    segs, _ = read(write(tmp_path, [a[0], b[0], b[1], a[1]]))
    assert [(s.sport, s.seq, s.frame) for s in segs] == [(40001, 5000, 3), (40000, 1000, 4)]


def test_fragments_across_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(capture, "CHUNK", 1 << 10)  # every record its own chunk, or nearly
    pieces = fragments(segment(), [512, 1024])
    filler = [g.tcp4(SRC, DST, 50000 + i, 80, b"x" * 400, seq=i) for i in range(6)]
    segs, _ = read(write(tmp_path, [pieces[0], *filler[:3], pieces[1], *filler[3:], pieces[2]]))
    assert [s.length for s in segs if s.sport == 40000] == [len(PAYLOAD)]
    assert len(segs) == 7


def test_pending_datagrams_are_bounded(tmp_path: Path) -> None:
    n = MAX_FRAGMENTED + 10
    firsts = [fragments(segment(sport=1024 + i), [512], ident=i)[0] for i in range(n)]
    last = fragments(segment(sport=1024), [512], ident=0)[1]  # the first datagram was forgotten
    segs, stats = read(write(tmp_path, [*firsts, last]))
    assert segs == []
    assert skipped(stats) == {"fragment": len(firsts) + 1}


def test_a_fragment_with_a_bad_header_checksum_is_dropped_when_verifying(tmp_path: Path) -> None:
    pieces = fragments(segment(), [512])
    bad = bytearray(pieces[1])
    bad[10] ^= 0xFF
    path = write(tmp_path, [pieces[0], bytes(bad)])
    segs, stats = read(path, verify_checksums=True)
    assert segs == []
    assert skipped(stats) == {"fragment": 1, "bad_checksum": 1}
    segs, _ = read(path)  # not verifying: reassembled
    assert [s.length for s in segs] == [len(PAYLOAD)]
    good, _ = read(write(tmp_path, pieces, name="g.pcap"), verify_checksums=True)
    assert [s.length for s in good] == [len(PAYLOAD)]  # the rebuilt header's checksum is right
    assert not good[0].bad_checksum


# --------------------------------------------------------------------------- IPv6

SRC6, DST6 = "2001:db8::1", "2001:db8::2"


def fragments6(packet: bytes, cuts: list[int], ident: int = 9, hop_by_hop: bool = False) -> list[bytes]:
    """The IPv6 ``packet`` in fragments (a Fragment header after an optional Hop-by-Hop one)."""
    base, body = bytearray(packet[:40]), packet[40:]
    carried = base[6]
    bounds = [0, *cuts, len(body)]
    out = []
    for lo, hi in pairwise(bounds):
        h = bytearray(base)
        ext = b""
        if hop_by_hop:
            h[6] = 0
            ext = bytes([44, 0, 1, 4, 0, 0, 0, 0])  # next: Fragment; a PadN option
        else:
            h[6] = 44
        more = 1 if hi < len(body) else 0
        frag = struct.pack("!BBHI", carried, 0, lo | more, ident)
        struct.pack_into("!H", h, 4, len(ext) + 8 + hi - lo)
        out.append(bytes(h) + ext + frag + body[lo:hi])
    return out


def segment6(payload: bytes = PAYLOAD) -> bytes:
    return g.tcp6(SRC6, DST6, 40000, 80, payload, seq=1000, ack=2000, flags=ACK | PSH)


@pytest.mark.parametrize("hop_by_hop", [False, True], ids=["fragment header", "after hop-by-hop"])
@pytest.mark.parametrize("order", [(0, 1, 2), (2, 1, 0)], ids=["in order", "reversed"])
def test_an_ipv6_segment_in_fragments_comes_out_whole(
    tmp_path: Path, hop_by_hop: bool, order: tuple[int, ...]
) -> None:
    pieces = fragments6(segment6(), [512, 1024], hop_by_hop=hop_by_hop)
    segs, stats = read(write(tmp_path, [pieces[i] for i in order]), payload_ports={80})
    assert [(s.src, s.dst, s.seq, s.length, s.frame) for s in segs] == [(SRC6, DST6, 1000, len(PAYLOAD), 3)]
    assert segs[0].payload == PAYLOAD
    assert skipped(stats) == {"fragment": 2}


def test_an_atomic_ipv6_fragment_is_the_packet(tmp_path: Path) -> None:
    (only,) = fragments6(segment6(b"hello"), [])
    segs, stats = read(write(tmp_path, [only]))
    assert [(s.seq, s.length, s.frame) for s in segs] == [(1000, 5, 1)]
    assert not skipped(stats)


def test_a_fragment_inside_a_reassembled_datagram_stays_a_fragment(tmp_path: Path) -> None:
    """An atomic IPv6 fragment whose payload is another Fragment header (a hypothesis
    finding): the inner piece is counted, not lost from the accounting."""
    (outer,) = fragments6(segment6(b"hello"), [])
    h = bytearray(outer[:40])
    inner = outer[40:48]  # the Fragment header, then the segment
    nested = bytes(h[:6]) + bytes([44]) + bytes(h[7:40])
    nested = nested[:4] + struct.pack("!H", len(outer) - 40 + 8) + nested[6:]
    packet = nested + bytes([44]) + inner[1:] + inner + outer[48:]
    segs, stats = read(write(tmp_path, [packet]))
    assert segs == []
    assert skipped(stats) == {"fragment": 1}
