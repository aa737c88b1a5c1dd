#!/usr/bin/env python3
"""Record real kernel TCP over a lossy path, and under forged resets, with the kernel's answer.

Usage (as root, stdlib only)::

    python3 scripts/record_lossy.py [--out sample_pcaps/lossy] [--tries N] [SCENARIO ...]
    python3 scripts/record_lossy.py --list

It reuses the topology, capture, ``ss`` answer and checks of ``record_kernel.py`` (a client and
a server namespace joined by a veth pair, tcpdump on the client's veth, a UDP marker between two
identical ``ss`` snapshots); read that script's docstring first.

How segments get lost *after* the capture point, in either direction, without netem or
iptables: tcpdump runs in promiscuous mode on the client's veth, so it records every frame that
crosses it. Pointing one side's neighbour entry for its peer at a MAC address nobody has makes
that side's frames arrive with the wrong destination: captured, then dropped by the receiving
stack. The switch takes effect at once and is undone the same way.

Forged resets are built by hand (IPv4 + TCP headers with correct checksums) and sent from a raw
socket in the client namespace, in the client's name; the sequence number is taken from the
capture so far (tcpdump writes every packet at once).
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import struct
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import record_kernel as rk  # a sibling script, not a package

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "sample_pcaps" / "lossy"


def lose(lab: rk.Lab, direction: str, *, lost: bool = True) -> None:
    """From now on frames towards ``direction`` ("server" or "client") are lost after capture."""
    ns, ip, ifname, mac = (
        (lab.cns, lab.server_ip, rk.CLIENT_IF, rk.SERVER_MAC)
        if direction == "server"
        else (lab.sns, lab.client_ip, rk.SERVER_IF, rk.CLIENT_MAC)
    )
    rk.run("ip", "-n", ns, "neigh", "replace", ip, "lladdr", rk.BOGUS_MAC if lost else mac, "dev", ifname,
           "nud", "permanent")  # fmt: skip


def client_next_seq(lab: rk.Lab, client_port: int) -> int:
    """SND.NXT of the client, from the capture so far."""
    best = None
    me = rk.addr_str(lab.client_ip, client_port)
    for p in rk.read_pcap(lab.out_pcap):
        if p.proto == "tcp" and p.src == me and not p.flags & rk.RST:
            best = (p.seq + p.plen + (1 if p.flags & (rk.SYN | rk.FIN) else 0)) & 0xFFFFFFFF
    if best is None:
        raise rk.RecordError("no client segment captured yet")
    return best


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def forge_rst(lab: rk.Lab, client_port: int, seq: int) -> None:
    """Send an RST in the client's name from a raw socket in the client namespace."""
    src, dst = socket.inet_aton(lab.client_ip), socket.inet_aton(lab.server_ip)
    tcp = struct.pack("!HHIIBBHHH", client_port, rk.SERVER_PORT, seq & 0xFFFFFFFF, 0, 5 << 4, rk.RST, 0, 0, 0)
    pseudo = src + dst + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", _checksum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0x7A7A, 0, 64, socket.IPPROTO_TCP, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    with rk.netns(lab.cns):
        raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    try:
        raw.sendto(ip + tcp, (lab.server_ip, 0))
    finally:
        raw.close()


def sc_fin_lost_closing(lab: rk.Lab) -> None:
    cli, srv = lab.open(lab.listen(), 40001)
    rk.exchange(cli, srv)
    time.sleep(0.1)
    lose(lab, "server")  # everything the client sends from now on is lost
    cli.shutdown(socket.SHUT_WR)  # its FIN ...
    time.sleep(0.05)
    srv.shutdown(socket.SHUT_WR)  # ... has not arrived when the server closes too
    time.sleep(1.6)  # the client retransmits its FIN; neither end's FIN is acknowledged


def sc_ack_of_fin_lost(lab: rk.Lab) -> None:
    cli, srv = lab.open(lab.listen(), 40001)
    rk.exchange(cli, srv)
    time.sleep(0.1)
    lose(lab, "client")  # everything the server sends from now on is lost
    cli.close()  # the FIN arrives; the server's ACKs of it do not
    rk.expect_eof(srv)
    time.sleep(1.6)


def sc_rst_lost_second_rst(lab: rk.Lab) -> None:
    cli, srv = lab.open(lab.listen(), 40001)
    rk.exchange(cli, srv)
    time.sleep(0.1)
    lose(lab, "server")
    rk.linger0(cli)
    cli.close()  # the RST is lost
    time.sleep(0.1)
    lose(lab, "server", lost=False)
    srv.sendall(rk.payload("LATE", 200))  # the client's kernel answers with a second RST
    time.sleep(0.5)


def _spoofed(lab: rk.Lab, offset: int) -> None:
    cli, srv = lab.open(lab.listen(), 40001)
    rk.exchange(cli, srv)
    time.sleep(0.1)
    forge_rst(lab, 40001, client_next_seq(lab, 40001) + offset)
    time.sleep(0.2)
    with contextlib.suppress(OSError):
        rk.exchange(cli, srv, 100, 100)  # still alive?
    time.sleep(0.5)


def sc_spoofed_rst_out_of_window(lab: rk.Lab) -> None:
    _spoofed(lab, 50_000_000)


def sc_spoofed_rst_in_window(lab: rk.Lab) -> None:
    _spoofed(lab, 100)


def sc_spoofed_rst_exact(lab: rk.Lab) -> None:
    cli, srv = lab.open(lab.listen(), 40001)
    rk.exchange(cli, srv)
    time.sleep(0.1)
    forge_rst(lab, 40001, client_next_seq(lab, 40001))  # the server is reset ...
    time.sleep(0.2)
    cli.sendall(rk.payload("MORE", 100))  # ... the client learns it from the server's RST
    time.sleep(0.5)


def sc_fastopen(lab: rk.Lab) -> None:
    """Two TCP Fast Open connections: the first fetches a cookie, the second carries data on its SYN."""
    listener = lab.listen()
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_FASTOPEN, 8)
    for port in (40001, 40002):
        cli = lab.client(port)
        lab.register(port, lab.server_ip, rk.SERVER_PORT)
        cli.settimeout(None)  # a socket with a timeout is non-blocking inside: EINPROGRESS
        cli.sendto(rk.payload("GET", rk.REQ), socket.MSG_FASTOPEN, (lab.server_ip, rk.SERVER_PORT))
        cli.settimeout(10)
        srv, _ = listener.accept()
        lab.sockets.append(srv)
        srv.settimeout(10)
        rk.recv_exact(srv, rk.REQ)
        srv.sendall(rk.payload("OK", rk.RESP))
        rk.recv_exact(cli, rk.RESP)
        time.sleep(0.1)
        cli.close()
        rk.expect_eof(srv)
        srv.close()
        time.sleep(0.2)


def _any(close: str, rst_by: str | None = None) -> rk.Expect:
    return rk.Expect(None, None, close, rst_by)


SCENARIOS: tuple[rk.Scenario, ...] = (
    rk.Scenario(
        "fin_lost_closing",
        "The client's FIN (and all it sends after) is lost after the capture point; the server "
        "closes too: the client ends in CLOSING, the server in FIN-WAIT-1.",
        sc_fin_lost_closing,
        (_any("fin"),),
    ),
    rk.Scenario(
        "ack_of_fin_lost",
        "The client closes; the server's ACKs of its FIN are lost after the capture point, so "
        "the client keeps retransmitting its FIN.",
        sc_ack_of_fin_lost,
        (_any("half"),),
    ),
    rk.Scenario(
        "rst_lost_second_rst",
        "The client aborts but its RST is lost; the server then sends data and the client's "
        "kernel answers with a second RST, which arrives.",
        sc_rst_lost_second_rst,
        (_any("rst", "client"),),
    ),
    rk.Scenario(
        "spoofed_rst_out_of_window",
        "An RST forged in the client's name, 50 MB outside the server's window: ignored; the "
        "connection carries on.",
        sc_spoofed_rst_out_of_window,
        (_any("rst", "client"),),
    ),
    rk.Scenario(
        "spoofed_rst_in_window",
        "An RST forged in the client's name, inside the server's window but not at RCV.NXT: "
        "the server answers with a challenge ACK and carries on.",
        sc_spoofed_rst_in_window,
        (_any("rst", "client"),),
    ),
    rk.Scenario(
        "spoofed_rst_exact",
        "An RST forged in the client's name exactly at RCV.NXT resets the server; the real "
        "client's next data draws an RST from the server.",
        sc_spoofed_rst_exact,
        (_any("rst", "client"),),
    ),
    rk.Scenario(
        "fastopen",
        "TCP Fast Open (net.ipv4.tcp_fastopen=3): the first connection gets a cookie, the second "
        "sends its request on the SYN; both close in order.",
        sc_fastopen,
        (_any("fin"), _any("fin")),
        sysctls=(("net.ipv4.tcp_fastopen", "3"),),
    ),
)
BY_NAME = {s.name: s for s in SCENARIOS}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenarios", nargs="*", metavar="SCENARIO")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--tries", type=int, default=None)
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args(argv)
    if args.list:
        for sc in SCENARIOS:
            print(f"{sc.name}: {sc.description}")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    chosen = [BY_NAME[n] for n in args.scenarios] if args.scenarios else list(SCENARIOS)
    results = [rk.record(sc, args.out, args.tries) for sc in chosen]  # every one, even after a failure
    return 0 if all(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
