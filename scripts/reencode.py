#!/usr/bin/env python3
"""Sample captures for the reader's format tests.

Two subcommands:

``record-base``
    Records ``sample_pcaps/loopback_base.pcap`` with tcpdump on ``lo`` (root needed) while
    this script makes one IPv4 connection (127.0.0.1:48123) and one IPv6 connection
    ([::1]:48124), each with a little data both ways and an orderly close.

``formats`` (the default)
    Re-encodes the base capture into every format and link type the reader supports, in
    ``sample_pcaps/formats/``. Timestamps are preserved exactly (the base is a microsecond
    pcap, which every format can hold). The encoders are the independent ones in
    ``tests/pcapgen.py``, so the package's reader is checked against code it does not share.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
BASE = ROOT / "sample_pcaps" / "loopback_base.pcap"
OUT = ROOT / "sample_pcaps" / "formats"
PORT4, PORT6 = 48123, 48124
# one Geneve option: class 0x0108, type 1, 4 bytes of data (length in 4-byte units)
GENEVE_OPTION = struct.pack("!HBB", 0x0108, 0x01, 1) + b"\0\0\0\x2a"


def _pcapgen() -> ModuleType:
    if "pcapgen" in sys.modules:  # already imported (by the tests)
        return sys.modules["pcapgen"]
    spec = importlib.util.spec_from_file_location("pcapgen", ROOT / "tests" / "pcapgen.py")
    assert spec is not None
    assert spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["pcapgen"] = mod
    spec.loader.exec_module(mod)
    return mod


# --------------------------------------------------------------------------- recording


def _conversation(family: socket.AddressFamily, host: str, port: int) -> None:
    """Client and server exchange a little data both ways, then close in order."""
    srv = socket.socket(family, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, port))
    srv.listen(1)

    def serve() -> None:
        conn, _ = srv.accept()
        with conn:
            buf = b""
            while not buf.endswith(b"\n"):
                buf += conn.recv(100)
            conn.sendall(b"hello client, " + buf)
            time.sleep(0.05)
            conn.sendall(b"more data from the server\n")
            while conn.recv(100):  # until the client's FIN
                pass
            # then close our side: FIN from the server

    t = threading.Thread(target=serve)
    t.start()
    cli = socket.create_connection((host, port))
    cli.sendall(b"hello server\n")
    got = b""
    while got.count(b"\n") < 2:
        got += cli.recv(200)
    cli.shutdown(socket.SHUT_WR)
    while cli.recv(100):
        pass
    cli.close()
    t.join()
    srv.close()


def record_base(out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        "tcpdump", "-U", "--immediate-mode", "-B", "65536", "-n", "-i", "lo", "-Z", "root",
        "-w", str(out), f"tcp port {PORT4} or tcp port {PORT6}",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    line = proc.stderr.readline()  # "tcpdump: listening on lo, ..."
    if "listening" not in line:
        proc.kill()
        raise SystemExit(f"tcpdump did not start: {line.strip()}")
    time.sleep(0.5)
    try:
        _conversation(socket.AF_INET, "127.0.0.1", PORT4)
        time.sleep(0.1)
        _conversation(socket.AF_INET6, "::1", PORT6)
        time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGINT)
        rest = proc.communicate(timeout=10)[1]
    print(line.strip(), rest.strip(), sep="\n")


# --------------------------------------------------------------------------- re-encoding


def read_base(path: Path) -> tuple[int, list[tuple[int, bytes]]]:
    """(link type, [(ts ns, frame)]) of a little-endian microsecond pcap, with plain struct."""
    data = path.read_bytes()
    magic, _, _, _, _, _snaplen, linktype = struct.unpack_from("<IHHiIII", data)
    if magic != 0xA1B2C3D4:
        raise SystemExit(f"{path}: expected a little-endian microsecond pcap")
    recs = []
    off = 24
    while off < len(data):
        sec, usec, caplen, _orig = struct.unpack_from("<IIII", data, off)
        recs.append((sec * 1_000_000_000 + usec * 1000, data[off + 16 : off + 16 + caplen]))
        off += 16 + caplen
    return linktype & 0xFFFF, recs


def write_formats(base: Path, out: Path) -> list[Path]:
    g = _pcapgen()
    linktype, recs = read_base(base)
    if linktype != g.LT_ETHERNET:
        raise SystemExit(f"{base}: expected Ethernet (Linux lo), got link type {linktype}")
    ips = [(ts, g.strip_ethernet(f)) for ts, f in recs]
    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():
        if old.name.startswith("base-"):
            old.unlink()
    files: dict[str, bytes] = {}

    def framed(lt: int, **kw: object) -> list[tuple[int, bytes]]:
        return [(ts, g.frame(ip, lt, **kw)) for ts, ip in ips]

    eth = framed(g.LT_ETHERNET)
    files["base-pcap-us-le.pcap"] = g.pcap(eth)
    files["base-pcap-us-be.pcap"] = g.pcap(eth, big_endian=True)
    files["base-pcap-ns-le.pcap"] = g.pcap(eth, nanos=True)
    files["base-pcap-ns-be.pcap"] = g.pcap(eth, nanos=True, big_endian=True)
    files["base-pcap-gzip.pcap.gz"] = gzip.compress(g.pcap(eth), mtime=0)
    # gzip detected by magic, not by name
    files["base-pcapng-gzip-noext.bin"] = gzip.compress(g.pcapng_single(eth), mtime=0)
    files["base-pcapng.pcapng"] = g.pcapng_single(eth)

    w = g.Pcapng(big_endian=True).section()
    w.interface(g.LT_ETHERNET)
    for ts, f in eth:
        w.epb(0, ts, f)
    files["base-pcapng-be.pcapng"] = w.bytes()

    # IPv4 on an Ethernet interface at 10^-6, IPv6 on a raw-IP interface at 10^-9, interleaved
    w = g.Pcapng().section()
    w.interface(g.LT_ETHERNET, tsresol=6)
    w.interface(g.LT_RAW, tsresol=9)
    for ts, ip in ips:
        if g.ip_version(ip) == 4:
            w.epb(0, ts, g.frame(ip, g.LT_ETHERNET))
        else:
            w.epb(1, ts, ip)
    files["base-pcapng-2if-eth-raw.pcapng"] = w.bytes()

    # IPv4-only (228) and IPv6-only (229) raw interfaces
    w = g.Pcapng().section()
    w.interface(g.LT_IPV4)
    w.interface(g.LT_IPV6)
    for ts, ip in ips:
        w.epb(0 if g.ip_version(ip) == 4 else 1, ts, ip)
    files["base-pcapng-2if-228-229.pcapng"] = w.bytes()

    # obsolete packet blocks (type 2)
    w = g.Pcapng().section()
    w.interface(g.LT_ETHERNET)
    for ts, f in eth:
        w.pb(0, ts, f)
    files["base-pcapng-obsolete-pb.pcapng"] = w.bytes()

    # 10^-7 s units and a 10^9 s if_tsoffset, on Linux cooked v2 (µs times stay exact)
    w = g.Pcapng().section()
    w.interface(g.LT_SLL2, tsresol=7, tsoffset=1_000_000_000)
    for ts, ip in ips:
        w.epb(0, ts, g.frame(ip, g.LT_SLL2))
    files["base-pcapng-tsresol7-tsoffset.pcapng"] = w.bytes()

    files["base-eth.pcap"] = g.pcap(eth)
    files["base-eth-vlan.pcap"] = g.pcap(framed(g.LT_ETHERNET, vlans=[(0x8100, 42)]))
    files["base-eth-qinq.pcap"] = g.pcap(framed(g.LT_ETHERNET, vlans=[(0x88A8, 100), (0x8100, 42)]))
    files["base-eth-padded60.pcap"] = g.pcap(framed(g.LT_ETHERNET, pad_to=60))
    files["base-raw101.pcap"] = g.pcap(framed(g.LT_RAW), g.LT_RAW)
    files["base-raw12.pcap"] = g.pcap(framed(g.LT_RAW_12), g.LT_RAW_12)
    files["base-raw14.pcap"] = g.pcap(framed(g.LT_RAW_14), g.LT_RAW_14)
    files["base-null0.pcap"] = g.pcap(framed(g.LT_NULL), g.LT_NULL)
    # NULL family in the capturing host's byte order: a big-endian host, a little-endian file
    files["base-null0-be-host.pcap"] = g.pcap(framed(g.LT_NULL, null_byteorder="big"), g.LT_NULL)
    files["base-loop108.pcap"] = g.pcap(framed(g.LT_LOOP), g.LT_LOOP)
    files["base-sll113.pcap"] = g.pcap(framed(g.LT_SLL), g.LT_SLL)
    files["base-sll2-276.pcap"] = g.pcap(framed(g.LT_SLL2), g.LT_SLL2)

    # snaplen cut right after the fixed 20-byte TCP header (options and payload lost)
    cut = []
    for ts, ip in ips:
        l3 = ((ip[0] & 15) * 4) if ip[0] >> 4 == 4 else 40
        f = g.frame(ip, g.LT_ETHERNET)
        cut.append((ts, f[: 14 + l3 + 20], len(f)))
    files["base-headers-only.pcap"] = g.pcap(cut, snaplen=14 + 40 + 20)

    # tunnels: every packet inside one (two in the last file); the reader takes the same
    # segments out of them
    def outer4(proto: int, payload: bytes) -> bytes:
        return g.ethernet(g.ipv4("192.0.2.1", "192.0.2.2", payload, proto), g.ETH_IPV4)

    def ethertype(ip: bytes) -> int:
        return g.ETH_IPV4 if g.ip_version(ip) == 4 else g.ETH_IPV6

    def tunnelled(wrap: Callable[[bytes], bytes]) -> bytes:
        return g.pcap([(ts, wrap(ip)) for ts, ip in ips])

    files["base-tun-vxlan-vlan.pcap"] = tunnelled(
        lambda ip: outer4(
            17, g.udp(51000, g.PORT_VXLAN, g.vxlan(g.frame(ip, g.LT_ETHERNET, vlans=[(0x8100, 7)])))
        )
    )
    files["base-tun-geneve.pcap"] = tunnelled(
        lambda ip: outer4(
            17, g.udp(49153, g.PORT_GENEVE, g.geneve(g.frame(ip, g.LT_ETHERNET), options=GENEVE_OPTION))
        )
    )
    # a sequence number and a PDU session container extension header, as 5G cores send
    files["base-tun-gtpu.pcap"] = tunnelled(
        lambda ip: outer4(
            17, g.udp(g.PORT_GTP_U, g.PORT_GTP_U, g.gtp_u(ip, 0x1234, seq=7, ext=[(0x85, b"\x00\x09")]))
        )
    )
    files["base-tun-gre-ipv6.pcap"] = tunnelled(
        lambda ip: g.ethernet(
            g.ipv6("2001:db8::1", "2001:db8::2", g.gre(ip, ethertype(ip), key=5, seq=9), g.PROTO_GRE),
            g.ETH_IPV6,
        )
    )
    files["base-tun-ipip.pcap"] = tunnelled(
        lambda ip: outer4(g.PROTO_IPIP if g.ip_version(ip) == 4 else g.PROTO_IPV6, ip)
    )
    files["base-tun-gre-vxlan.pcap"] = tunnelled(
        lambda ip: outer4(
            g.PROTO_GRE,
            g.gre(
                g.ethernet(
                    g.ipv4(
                        "10.9.0.1",
                        "10.9.0.2",
                        g.udp(49154, g.PORT_VXLAN, g.vxlan(g.frame(ip, g.LT_ETHERNET))),
                        17,
                    ),
                    g.ETH_IPV4,
                ),
                g.ETH_BRIDGE,
            ),
        )
    )

    paths = []
    for name, data in files.items():
        p = out / name
        p.write_bytes(data)
        paths.append(p)
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", nargs="?", default="formats", choices=["formats", "record-base"])
    ap.add_argument("--base", type=Path, default=BASE)
    ap.add_argument("--out", type=Path, default=OUT)
    a = ap.parse_args()
    if a.command == "record-base":
        record_base(a.base)
    else:
        paths = write_formats(a.base, a.out)
        total = sum(p.stat().st_size for p in paths)
        print(f"wrote {len(paths)} files, {total} bytes, in {a.out}")


if __name__ == "__main__":
    main()
