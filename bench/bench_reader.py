#!/usr/bin/env python3
"""Throughput of ``read_segments`` against a plain dpkt object-per-packet loop.

Generates (once, cached in ``bench/out/``) a deterministic capture of many short TCP
connections (90 % IPv4, 10 % IPv6, Linux-style timestamp options, snaplen 96), then times in
the same run:

* ``read_segments`` over the file (every segment materialised and consumed);
* ``read_batches`` (the same, in lists);
* a dpkt loop: ``dpkt.pcap.Reader`` + ``dpkt.ethernet.Ethernet`` per packet, building the
  same fields;
* optionally (``--formats``) the reader on pcapng and gzip copies, and on two rotated halves.

Usage: ``python bench/bench_reader.py [--packets 1000000] [--formats]``
"""

from __future__ import annotations

import argparse
import gzip
import os
import random
import socket
import struct
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT))

from tcptrace_sm.capture import ReadStats, read_batches, read_segments  # noqa: E402

SNAPLEN = 96


def _csum(data: bytes) -> int:
    """Internet checksum via the identity sum-of-16-bit-words = int(data) mod 0xFFFF."""
    x = int.from_bytes(data, "big") % 0xFFFF
    return 0xFFFF - (x or 0xFFFF)


def _tcp(
    src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int, flags: int, ts: int, plen: int
) -> bytes:
    """20-byte header + NOP NOP TS (data offset 8, as Linux sends), checksummed as if followed
    by ``plen`` zero bytes of payload (zeros add nothing to the sum)."""
    hdr = struct.pack(
        "!HHIIBBHHHBBBBII", sport, dport, seq, ack, 8 << 4, flags, 502, 0, 0, 1, 1, 8, 10, ts, 0
    )
    n = len(hdr) + plen
    pseudo = src + dst + (struct.pack("!HH", 6, n) if len(src) == 4 else struct.pack("!II", n, 6))
    return hdr[:16] + _csum(pseudo + hdr).to_bytes(2, "big") + hdr[18:]


def generate(path: Path, packets: int, seed: int = 1) -> None:
    """Write the benchmark capture with a fast struct-based writer."""
    rnd = random.Random(seed)
    rec = struct.Struct("<IIII")
    eth4 = b"\x02\0\0\0\0\x02\x02\0\0\0\0\x01\x08\x00"
    eth6 = b"\x02\0\0\0\0\x02\x02\0\0\0\0\x01\x86\xdd"
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, SNAPLEN, 1)]
    ts_us = 1_700_000_000_000_000
    n = 0
    conn = 0
    pad = bytes(2000)
    while n < packets:
        conn += 1
        v6 = rnd.random() < 0.1
        cport = 10000 + conn % 50000
        sport = 80 if conn % 3 else 443
        if v6:
            a = socket.inet_pton(socket.AF_INET6, f"2001:db8::{conn % 60000 + 1:x}")
            b = socket.inet_pton(socket.AF_INET6, "2001:db8:ffff::1")
        else:
            a = struct.pack("!I", 0x0A000000 + conn % 60000 + 1)
            b = bytes([192, 0, 2, 1 + conn % 5])
        ciss, siss = rnd.getrandbits(32), rnd.getrandbits(32)
        req, resp = rnd.randrange(50, 400), rnd.randrange(100, 1400)
        c = (ciss + 1) & 0xFFFFFFFF
        s = (siss + 1) & 0xFFFFFFFF
        script = [
            (True, ciss, 0, 0x02, 0),
            (False, siss, c, 0x12, 0),
            (True, c, s, 0x10, 0),
            (True, c, s, 0x18, req),
            (False, s, (c + req) & 0xFFFFFFFF, 0x10, 0),
            (False, s, (c + req) & 0xFFFFFFFF, 0x18, resp),
            (True, (c + req) & 0xFFFFFFFF, (s + resp) & 0xFFFFFFFF, 0x10, 0),
            (True, (c + req) & 0xFFFFFFFF, (s + resp) & 0xFFFFFFFF, 0x11, 0),
            (False, (s + resp) & 0xFFFFFFFF, (c + req + 1) & 0xFFFFFFFF, 0x11, 0),
            (True, (c + req + 1) & 0xFFFFFFFF, (s + resp + 1) & 0xFFFFFFFF, 0x10, 0),
        ]
        for fwd, seq, ack, flags, plen in script:
            if n >= packets:
                break
            ts_us += rnd.randrange(1, 200)
            sp, dp = (cport, sport) if fwd else (sport, cport)
            src, dst = (a, b) if fwd else (b, a)
            tcp = _tcp(src, dst, sp, dp, seq, ack, flags, n & 0xFFFFFFFF, plen)
            if v6:
                ip = struct.pack("!IHBB", 6 << 28, len(tcp) + plen, 6, 64) + src + dst
                frame = eth6 + ip + tcp + pad[:plen]
            else:
                ip = (
                    struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(tcp) + plen, n & 0xFFFF, 0x4000, 64, 6, 0)
                    + src
                    + dst
                )
                ip = ip[:10] + _csum(ip).to_bytes(2, "big") + ip[12:]
                frame = eth4 + ip + tcp + pad[:plen]
            cap = frame[:SNAPLEN]
            out.append(rec.pack(ts_us // 1_000_000, ts_us % 1_000_000, len(cap), len(frame)))
            out.append(cap)
            n += 1
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(b"".join(out))
    os.replace(tmp, path)


def dpkt_loop(path: Path) -> int:
    import dpkt

    n = 0
    ntop = socket.inet_ntop
    with path.open("rb") as f:
        for frame, (ts, buf) in enumerate(dpkt.pcap.Reader(f), 1):
            try:
                eth = dpkt.ethernet.Ethernet(buf)
            except dpkt.UnpackError:
                continue
            ip = eth.data
            if isinstance(ip, dpkt.ip.IP):
                fam = socket.AF_INET
                plen = ip.len - ip.hl * 4
            elif isinstance(ip, dpkt.ip6.IP6):
                fam = socket.AF_INET6
                plen = ip.plen
            else:
                continue
            tcp = ip.data
            if not isinstance(tcp, dpkt.tcp.TCP):
                continue
            _ = (
                frame,
                int(ts * 1e9),
                ntop(fam, ip.src),
                tcp.sport,
                ntop(fam, ip.dst),
                tcp.dport,
                tcp.seq,
                tcp.ack,
                tcp.flags,
                tcp.win,
                plen - tcp.off * 4,
                tcp.opts,
            )
            n += 1
    return n


def timed(label: str, fn: Callable[[], int], packets: int) -> float:
    t0 = time.perf_counter()
    segs = fn()
    dt = time.perf_counter() - t0
    pps = packets / dt
    print(f"{label:<34} {dt:7.2f} s  {pps / 1000:8.0f} k packets/s  ({segs} segments)")
    return pps


def consume(it: Iterator[object]) -> int:
    n = 0
    for _ in it:
        n += 1
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--formats", action="store_true", help="also time pcapng, gzip and two rotated files")
    ap.add_argument("--no-dpkt", action="store_true", help="skip the (slow) dpkt baseline")
    a = ap.parse_args()
    path = OUT / f"bench-v2-{a.packets}.pcap"
    if not path.exists():
        t0 = time.perf_counter()
        generate(path, a.packets)
        print(f"generated {path} ({path.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - t0:.1f} s")
    size = path.stat().st_size / 1e6
    print(f"{a.packets} packets, snaplen {SNAPLEN}, {size:.1f} MB, Python {sys.version.split()[0]}")

    st = ReadStats()
    ours = timed("read_segments", lambda: consume(read_segments(path, stats=st)), a.packets)
    assert st.packets == a.packets, st
    timed("read_batches", lambda: sum(len(b) for b in read_batches(path)), a.packets)
    timed(
        "read_segments verify_checksums",
        lambda: consume(read_segments(path, verify_checksums=True)),
        a.packets,
    )
    if a.formats:
        import tempfile

        sys.path.insert(0, str(ROOT / "tests"))
        with tempfile.TemporaryDirectory(dir=OUT) as tmp:
            data = path.read_bytes()
            gz = Path(tmp) / "b.pcap.gz"
            gz.write_bytes(gzip.compress(data, compresslevel=1))
            timed("read_segments gzip", lambda: consume(read_segments(gz)), a.packets)
            ng = Path(tmp) / "b.pcapng"
            _to_pcapng(path, ng)
            timed("read_segments pcapng", lambda: consume(read_segments(ng)), a.packets)
            half = _split(path, Path(tmp))
            timed("read_segments 2 rotated files", lambda: consume(read_segments(half)), a.packets)
            mixed = _interleave(path, Path(tmp))
            timed("read_segments 2 interleaved files", lambda: consume(read_segments(mixed)), a.packets)
    if not a.no_dpkt:
        base = timed("dpkt object-per-packet loop", lambda: dpkt_loop(path), a.packets)
        print(f"speed-up of read_segments over dpkt: {ours / base:.1f}x")


def _records(path: Path) -> Iterator[tuple[bytes, bytes]]:
    data = path.read_bytes()
    off = 24
    while off < len(data):
        caplen = struct.unpack_from("<8xI", data, off)[0]
        yield data[off : off + 16], data[off + 16 : off + 16 + caplen]
        off += 16 + caplen


def _to_pcapng(src: Path, dst: Path) -> None:
    out = [struct.pack("<IIIHHqI", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1, 28)]
    out.append(struct.pack("<IIHHII", 1, 20, 1, 0, SNAPLEN, 20))
    for hdr, cap in _records(src):
        sec, usec, caplen, orig = struct.unpack("<IIII", hdr)
        u = sec * 1_000_000 + usec
        body = struct.pack("<IIIII", 0, u >> 32, u & 0xFFFFFFFF, caplen, orig) + cap + b"\0" * (-caplen % 4)
        n = len(body) + 12
        out.append(struct.pack("<II", 6, n) + body + struct.pack("<I", n))
    dst.write_bytes(b"".join(out))


def _split(src: Path, tmp: Path) -> list[Path]:
    data = src.read_bytes()
    recs = list(_records(src))
    half = len(recs) // 2
    paths = []
    for k, part in enumerate((recs[:half], recs[half:])):
        p = tmp / f"rot{k}.pcap"
        p.write_bytes(data[:24] + b"".join(h + c for h, c in part))
        paths.append(p)
    return paths


def _interleave(src: Path, tmp: Path) -> list[Path]:
    data = src.read_bytes()
    recs = list(_records(src))
    paths = []
    for k in range(2):
        p = tmp / f"il{k}.pcap"
        p.write_bytes(data[:24] + b"".join(h + c for h, c in recs[k::2]))
        paths.append(p)
    return paths


if __name__ == "__main__":
    main()
