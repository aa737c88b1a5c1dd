#!/usr/bin/env python3
"""Record small real captures of Linux kernel TCP behaviour, each with the kernel's own answer.

Usage (as root, stdlib only)::

    python3 scripts/record_kernel.py [--out sample_pcaps/kernel] [--tries N] [SCENARIO ...]
    python3 scripts/record_kernel.py --list
    python3 scripts/record_kernel.py cleanup

For every scenario this writes ``<out>/<scenario>.pcap`` and ``<out>/<scenario>.json`` (the states
that ``ss`` reported for both endpoints of every connection at the end of the capture), then
regenerates ``<out>/README.md`` from all JSON files in ``<out>``.

Topology (fresh for every attempt of every scenario)::

    netns tsm-rk-<pid>-c                         netns tsm-rk-<pid>-s
    veth0 02:77:00:00:00:01  <--- veth pair ---> veth1 02:77:00:00:00:02
    10.77.0.1/24, fd77::1/64 (nodad)              10.77.0.2/24, fd77::2/64 (nodad)

Both namespaces have ``lo`` up and permanent neighbour entries for each other (no ARP/ND on the
wire and no resolution delay in timing-sensitive scenarios). tcpdump runs in the client namespace
on veth0 with the filter ``tcp or udp port 9``, so the capture point is always the client's veth.

Client and server code run inside this one process: a socket belongs to the network namespace
that the creating thread was in when it was created, so the script enters a namespace with
setns(2) (via ctypes), creates the socket, and returns to its own namespace. Every step of a
scenario is therefore a plain sequential call, which keeps the recordings deterministic. The two
scenarios that need two things to happen within microseconds (simultaneous close and
simultaneous open) fork a child, pin parent and child to different CPUs and let both busy-wait on
CLOCK_MONOTONIC for the same instant.

End of capture: ``ss -tanoi`` in both namespaces, ONE UDP datagram from the client to port 9 of
the server (the marker; its pcap timestamp is ``marker_ts``), ``ss -tanoi`` again, then SIGINT to
tcpdump. Only after that are the sockets closed and the namespaces deleted, so the sockets are
still in the reported state when the capture ends. An attempt is repeated (``--tries``) when the
two ``ss`` snapshots disagree, when anything follows the marker in the pcap, or when the pcap or
the kernel's answer does not match what the scenario is meant to show.

Pitfalls learned the hard way (see also shared/RECORDING.md):
- tcpdump needs ``-U --immediate-mode -B 65536 -Z root`` or packets get lost/unwritten; wait for
  its "listening on" line before generating traffic.
- The capture is taken on the sending host: outgoing TCP checksums are left to offload (they look
  wrong in the pcap).
- Closing a socket that still has unread data sends RST instead of FIN, so every scenario reads
  everything the peer sent before closing.
- A FIN-WAIT-2 socket whose application closed shows a ``timewait`` timer in ss but is still
  FIN-WAIT-2; a socket that ss does not list is CLOSED (also one the application still holds after
  an RST).
- ss timer values and -i counters change between the two snapshots; only state and addresses are
  compared.
- ``ip netns exec`` and setns only change the namespace of the calling thread, so the script never
  runs threads, and it always returns to its original namespace (``netns()`` context manager)
  before running ip/ss/tcpdump.

Namespaces are deleted in ``finally`` blocks; ``cleanup`` removes any left over (prefix tsm-rk-),
killing only the processes that live inside them.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

PREFIX = "tsm-rk-"
CLONE_NEWNET = 0x40000000
CLIENT_IF, SERVER_IF = "veth0", "veth1"
CLIENT_MAC, SERVER_MAC = "02:77:00:00:00:01", "02:77:00:00:00:02"
BOGUS_MAC = "02:77:00:00:00:99"
CLIENT4, SERVER4, UNUSED4 = "10.77.0.1", "10.77.0.2", "10.77.0.3"
CLIENT6, SERVER6 = "fd77::1", "fd77::2"
SERVER_PORT = 8080
MARKER_PORT = 9
MARKER_PAYLOAD = b"tcptrace_sm end-of-capture marker"
STUCK_SECONDS = 2.0
CAPTURE_FILTER = "tcp or udp port 9"

# ss state name -> RFC 9293 spelling
SS_STATES = {
    "ESTAB": "ESTABLISHED",
    "SYN-SENT": "SYN-SENT",
    "SYN-RECV": "SYN-RECEIVED",
    "FIN-WAIT-1": "FIN-WAIT-1",
    "FIN-WAIT-2": "FIN-WAIT-2",
    "CLOSE-WAIT": "CLOSE-WAIT",
    "CLOSING": "CLOSING",
    "LAST-ACK": "LAST-ACK",
    "TIME-WAIT": "TIME-WAIT",
    "UNCONN": "CLOSED",
    "CLOSE": "CLOSED",
}

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


class RecordError(RuntimeError):
    """An attempt did not produce a usable recording (it is retried)."""


# --------------------------------------------------------------------------------------------
# small helpers


def run(*argv: str, check: bool = True) -> str:
    """Run a command in the script's own namespace and return its stdout."""
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


_libc = ctypes.CDLL(None, use_errno=True)
_home_ns: int | None = None


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@contextlib.contextmanager
def netns(name: str) -> Iterator[None]:
    """Enter network namespace ``name`` for the duration of the block (calling thread only)."""
    global _home_ns  # noqa: PLW0603 - opened once, kept for the life of the process
    if _home_ns is None:
        _home_ns = os.open("/proc/self/ns/net", os.O_RDONLY)
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        _setns(fd)
    finally:
        os.close(fd)
    try:
        yield
    finally:
        _setns(_home_ns)


def addr_str(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise RecordError(f"EOF after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


def recv_to_eof(sock: socket.socket) -> bytes:
    buf = b""
    while chunk := sock.recv(65536):
        buf += chunk
    return buf


def expect_eof(sock: socket.socket) -> None:
    rest = sock.recv(65536)
    if rest:
        raise RecordError(f"expected EOF, got {len(rest)} bytes")


def payload(tag: str, n: int) -> bytes:
    text = (f"{tag} " * (n // (len(tag) + 1) + 1)).encode()
    return text[:n]


def linger0(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def fire_together(first: Callable[[], object], second: Callable[[], object]) -> None:
    """Run ``first`` here and ``second`` in a forked child at the same CLOCK_MONOTONIC instant."""
    cpus = sorted(os.sched_getaffinity(0))
    target = time.monotonic_ns() + 50_000_000
    pid = os.fork()
    if pid == 0:  # child: never return into the caller's try/finally blocks
        code = 0
        try:
            if len(cpus) > 1:
                os.sched_setaffinity(0, {cpus[1]})
            while time.monotonic_ns() < target:
                pass
            second()
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    try:
        if len(cpus) > 1:
            os.sched_setaffinity(0, {cpus[0]})
        while time.monotonic_ns() < target:
            pass
        first()
    finally:
        _, status = os.waitpid(pid, 0)
        os.sched_setaffinity(0, cpus)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RecordError("forked half of fire_together failed")


# --------------------------------------------------------------------------------------------
# pcap reading (stdlib only)


@dataclass(frozen=True)
class Pkt:
    ts: float
    proto: str  # "tcp" | "udp"
    src: str  # "ip:port" / "[ip6]:port"
    dst: str
    flags: int = 0
    seq: int = 0
    ack: int = 0
    plen: int = 0

    def flag_str(self) -> str:
        return "".join(
            c for bit, c in ((SYN, "S"), (FIN, "F"), (RST, "R"), (PSH, "P"), (ACK, "A")) if self.flags & bit
        )


def read_pcap(path: Path) -> list[Pkt]:
    data = path.read_bytes()
    if len(data) < 24:
        raise RecordError(f"{path}: no pcap header")
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        raise RecordError(f"{path}: not a pcap file")
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    if linktype != 1:
        raise RecordError(f"{path}: unexpected link type {linktype}")
    pkts: list[Pkt] = []
    off = 24
    while off + 16 <= len(data):
        sec, frac, incl, _orig = struct.unpack(endian + "IIII", data[off : off + 16])
        frame = data[off + 16 : off + 16 + incl]
        off += 16 + incl
        ts = sec + frac / (1e9 if nano else 1e6)
        pkt = _parse_frame(ts, frame)
        if pkt is not None:
            pkts.append(pkt)
    return pkts


def _parse_frame(ts: float, frame: bytes) -> Pkt | None:
    ethertype = struct.unpack("!H", frame[12:14])[0]
    l3 = frame[14:]
    if ethertype == 0x0800:
        ihl = (l3[0] & 0x0F) * 4
        total = struct.unpack("!H", l3[2:4])[0]
        proto = l3[9]
        src_ip = socket.inet_ntop(socket.AF_INET, l3[12:16])
        dst_ip = socket.inet_ntop(socket.AF_INET, l3[16:20])
        l4, l4len = l3[ihl:total], total - ihl
    elif ethertype == 0x86DD:
        plen = struct.unpack("!H", l3[4:6])[0]
        proto = l3[6]
        src_ip = socket.inet_ntop(socket.AF_INET6, l3[8:24])
        dst_ip = socket.inet_ntop(socket.AF_INET6, l3[24:40])
        l4, l4len = l3[40 : 40 + plen], plen
    else:
        return None
    sport, dport = struct.unpack("!HH", l4[:4])
    src, dst = addr_str(src_ip, sport), addr_str(dst_ip, dport)
    if proto == 17:
        return Pkt(ts, "udp", src, dst, plen=l4len - 8)
    if proto != 6:
        return None
    seq, ack = struct.unpack("!II", l4[4:12])
    doff = (l4[12] >> 4) * 4
    flags = l4[13]
    return Pkt(ts, "tcp", src, dst, flags=flags, seq=seq, ack=ack, plen=l4len - doff)


# --------------------------------------------------------------------------------------------
# ss


@dataclass
class SsEntry:
    state: str  # RFC spelling
    local: str
    peer: str
    raw: str


def parse_ss(text: str) -> list[SsEntry]:
    entries: list[SsEntry] = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("State"):
            continue
        if line[0].isspace():
            if entries:
                entries[-1].raw += "\n" + line.rstrip()
            continue
        fields = line.split()
        state = SS_STATES.get(fields[0], fields[0])
        entries.append(SsEntry(state, fields[3], fields[4], line.rstrip()))
    return entries


def ss_key(entries: list[SsEntry]) -> list[tuple[str, str, str]]:
    return sorted((e.state, e.local, e.peer) for e in entries)


# --------------------------------------------------------------------------------------------
# the lab: namespaces, veth, capture, sockets


@dataclass
class Conn:
    client: str
    server: str


@dataclass
class Lab:
    out_pcap: Path
    ipv6: bool = False
    cns: str = field(default_factory=lambda: f"{PREFIX}{os.getpid()}-c")
    sns: str = field(default_factory=lambda: f"{PREFIX}{os.getpid()}-s")
    conns: list[Conn] = field(default_factory=list)
    sockets: list[socket.socket] = field(default_factory=list)
    tcpdump: subprocess.Popen[bytes] | None = None
    errlog: Path | None = None  # tcpdump's stderr
    ss_before: dict[str, str] = field(default_factory=dict)
    ss_after: dict[str, str] = field(default_factory=dict)
    sysctls: dict[str, str] = field(default_factory=dict)

    @property
    def family(self) -> socket.AddressFamily:
        return socket.AF_INET6 if self.ipv6 else socket.AF_INET

    @property
    def client_ip(self) -> str:
        return CLIENT6 if self.ipv6 else CLIENT4

    @property
    def server_ip(self) -> str:
        return SERVER6 if self.ipv6 else SERVER4

    # -- topology
    def setup(self) -> None:
        teardown_ns(self.cns)
        teardown_ns(self.sns)
        run("ip", "netns", "add", self.cns)
        run("ip", "netns", "add", self.sns)
        run(
            "ip",
            "-n",
            self.cns,
            "link",
            "add",
            CLIENT_IF,
            "address",
            CLIENT_MAC,
            "type",
            "veth",
            "peer",
            "name",
            SERVER_IF,
            "address",
            SERVER_MAC,
            "netns",
            self.sns,
        )
        for ns, ifname, ip4, ip6, peer4, peer6, peer_mac in (
            (self.cns, CLIENT_IF, CLIENT4, CLIENT6, SERVER4, SERVER6, SERVER_MAC),
            (self.sns, SERVER_IF, SERVER4, SERVER6, CLIENT4, CLIENT6, CLIENT_MAC),
        ):
            run("ip", "-n", ns, "link", "set", "lo", "up")
            run("ip", "-n", ns, "addr", "add", f"{ip4}/24", "dev", ifname)
            run("ip", "-n", ns, "-6", "addr", "add", f"{ip6}/64", "dev", ifname, "nodad")
            run("ip", "-n", ns, "link", "set", ifname, "up")
            run(
                "ip",
                "-n",
                ns,
                "neigh",
                "replace",
                peer4,
                "lladdr",
                peer_mac,
                "dev",
                ifname,
                "nud",
                "permanent",
            )
            run(
                "ip",
                "-n",
                ns,
                "-6",
                "neigh",
                "replace",
                peer6,
                "lladdr",
                peer_mac,
                "dev",
                ifname,
                "nud",
                "permanent",
            )
        for key, value in self.sysctls.items():
            for ns in (self.cns, self.sns):
                run("ip", "netns", "exec", ns, "sysctl", "-q", "-w", f"{key}={value}")

    def teardown(self) -> None:
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.close()
        self.sockets.clear()
        self.stop_capture()
        teardown_ns(self.cns)
        teardown_ns(self.sns)

    # -- capture
    def start_capture(self) -> None:
        self.out_pcap.unlink(missing_ok=True)
        fd, name = tempfile.mkstemp(prefix="tsm-rk-tcpdump-", suffix=".log")
        self.errlog = Path(name)
        try:
            self.tcpdump = subprocess.Popen(
                [
                    "ip",
                    "netns",
                    "exec",
                    self.cns,
                    "tcpdump",
                    "-U",
                    "--immediate-mode",
                    "-B",
                    "65536",
                    "-n",
                    "-i",
                    CLIENT_IF,
                    "-Z",
                    "root",
                    "-w",
                    str(self.out_pcap),
                    CAPTURE_FILTER,
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=fd,
            )
        finally:
            os.close(fd)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if b"listening on" in self.errlog.read_bytes():
                time.sleep(0.2)
                return
            if self.tcpdump.poll() is not None:
                break
            time.sleep(0.02)
        raise RuntimeError(f"tcpdump did not start: {self.errlog.read_text(errors='replace')}")

    def stop_capture(self) -> None:
        if self.tcpdump is None:
            return
        if self.tcpdump.poll() is None:
            self.tcpdump.send_signal(signal.SIGINT)
            try:
                self.tcpdump.wait(10)
            except subprocess.TimeoutExpired:
                self.tcpdump.kill()
                self.tcpdump.wait()
        self.tcpdump = None
        if self.errlog is not None:
            self.errlog.unlink(missing_ok=True)
            self.errlog = None

    # -- sockets
    def make_socket(self, side: str, kind: socket.SocketKind = socket.SOCK_STREAM) -> socket.socket:
        with netns(self.cns if side == "client" else self.sns):
            sock = socket.socket(self.family, kind)
        self.sockets.append(sock)
        sock.settimeout(10)
        return sock

    def listen(self, port: int = SERVER_PORT) -> socket.socket:
        sock = self.make_socket("server")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.server_ip, port))
        sock.listen(8)
        return sock

    def client(self, port: int, *, reuse: bool = False) -> socket.socket:
        sock = self.make_socket("client")
        if reuse:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.client_ip, port))
        return sock

    def register(self, client_port: int, server_ip: str, server_port: int) -> None:
        self.conns.append(Conn(addr_str(self.client_ip, client_port), addr_str(server_ip, server_port)))

    def open(
        self,
        listener: socket.socket,
        client_port: int,
        *,
        reuse: bool = False,
    ) -> tuple[socket.socket, socket.socket]:
        """Connect a client bound to ``client_port`` to ``listener``; return (client, server)."""
        cli = self.client(client_port, reuse=reuse)
        server_port = listener.getsockname()[1]
        self.register(client_port, self.server_ip, server_port)
        cli.connect((self.server_ip, server_port))
        srv, _ = listener.accept()
        self.sockets.append(srv)
        srv.settimeout(10)
        return cli, srv

    # -- end of capture
    def ss(self) -> dict[str, str]:
        return {ns: run("ip", "netns", "exec", ns, "ss", "-tanoi") for ns in (self.cns, self.sns)}

    def finish(self) -> None:
        """ss, UDP marker, ss, stop tcpdump -- sockets stay open until teardown()."""
        self.ss_before = self.ss()
        marker = self.make_socket("client", socket.SOCK_DGRAM)
        marker.sendto(MARKER_PAYLOAD, (self.server_ip, MARKER_PORT))
        self.ss_after = self.ss()
        time.sleep(0.05)
        self.stop_capture()


def teardown_ns(name: str) -> None:
    """Kill the processes living in namespace ``name`` (by pid) and delete it."""
    if not Path(f"/run/netns/{name}").exists():
        return
    for pid in run("ip", "netns", "pids", name, check=False).split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)
    run("ip", "netns", "del", name, check=False)


def cleanup() -> int:
    names = [line.split()[0] for line in run("ip", "netns", "list").splitlines() if line.strip()]
    mine = [n for n in names if n.startswith(PREFIX)]
    for name in mine:
        teardown_ns(name)
    print(f"removed {len(mine)} namespace(s): {' '.join(mine) or '-'}")
    return 0


# --------------------------------------------------------------------------------------------
# scenarios


REQ, RESP = 300, 600


def exchange(cli: socket.socket, srv: socket.socket, req: int = REQ, resp: int = RESP) -> None:
    cli.sendall(payload("GET", req))
    recv_exact(srv, req)
    srv.sendall(payload("OK", resp))
    recv_exact(cli, resp)


def sc_orderly_client_close(lab: Lab) -> None:
    cli, srv = lab.open(lab.listen(), 40001)
    exchange(cli, srv)
    time.sleep(0.1)
    cli.close()
    expect_eof(srv)
    time.sleep(0.1)
    srv.close()
    time.sleep(0.5)


def sc_orderly_server_close(lab: Lab) -> None:
    cli, srv = lab.open(lab.listen(), 40001)
    exchange(cli, srv)
    time.sleep(0.1)
    srv.close()
    expect_eof(cli)
    time.sleep(0.1)
    cli.close()
    time.sleep(0.5)


def sc_close_wait_leak(lab: Lab) -> None:
    cli, srv = lab.open(lab.listen(), 40001)
    exchange(cli, srv)
    time.sleep(0.1)
    cli.close()
    expect_eof(srv)  # the server application sees EOF ... and never closes
    time.sleep(3.0)


def sc_refused(lab: Lab) -> None:
    lab.listen()  # something listens on 8080, but the client asks for 8081
    cli = lab.client(40001)
    lab.register(40001, lab.server_ip, SERVER_PORT + 1)
    try:
        cli.connect((lab.server_ip, SERVER_PORT + 1))
    except ConnectionRefusedError:
        pass
    else:
        raise RecordError("connect to a closed port succeeded")
    time.sleep(0.5)


def sc_abort_client(lab: Lab) -> None:
    cli, srv = lab.open(lab.listen(), 40001)
    exchange(cli, srv)
    time.sleep(0.1)
    linger0(cli)
    cli.close()
    time.sleep(0.5)


def sc_abort_server(lab: Lab) -> None:
    cli, srv = lab.open(lab.listen(), 40001)
    exchange(cli, srv)
    time.sleep(0.1)
    linger0(srv)
    srv.close()
    time.sleep(0.5)


def _half_close_start(lab: Lab) -> tuple[socket.socket, socket.socket]:
    cli, srv = lab.open(lab.listen(), 40001)
    cli.sendall(payload("GET", REQ))
    cli.shutdown(socket.SHUT_WR)
    if len(recv_to_eof(srv)) != REQ:
        raise RecordError("server did not get the whole request")
    return cli, srv


def sc_half_close(lab: Lab) -> None:
    cli, srv = _half_close_start(lab)
    for i in range(5):
        time.sleep(0.25)
        srv.sendall(payload(f"part{i}", 400))
        recv_exact(cli, 400)
    time.sleep(0.1)
    srv.close()
    expect_eof(cli)
    cli.close()
    time.sleep(0.5)


def sc_half_close_open(lab: Lab) -> None:
    cli, srv = _half_close_start(lab)
    for i in range(6):
        time.sleep(0.25)
        srv.sendall(payload(f"part{i}", 400))
        recv_exact(cli, 400)
    time.sleep(0.15)  # the capture ends between two server sends


def sc_simultaneous_close(lab: Lab) -> None:
    cli, srv = lab.open(lab.listen(), 40001)
    exchange(cli, srv)
    time.sleep(0.1)
    fire_together(lambda: cli.shutdown(socket.SHUT_WR), lambda: srv.shutdown(socket.SHUT_WR))
    time.sleep(0.2)
    expect_eof(cli)
    expect_eof(srv)
    time.sleep(0.3)


def sc_rst_after_fin(lab: Lab) -> None:
    cli, srv = _half_close_start(lab)
    srv.sendall(payload("OK", RESP))
    recv_exact(cli, RESP)
    time.sleep(0.2)
    linger0(srv)
    srv.close()
    time.sleep(0.5)


def sc_reuse_after_time_wait(lab: Lab) -> None:
    listener = lab.listen()
    cli, srv = lab.open(listener, 40001)
    exchange(cli, srv)
    time.sleep(0.1)
    srv.close()  # the server ends in TIME-WAIT
    expect_eof(cli)
    cli.close()
    time.sleep(0.5)
    cli2, srv2 = lab.open(listener, 40001, reuse=True)  # same 4-tuple, SYN hits the TIME-WAIT
    exchange(cli2, srv2)
    time.sleep(0.1)
    cli2.close()  # this time the client closes first
    expect_eof(srv2)
    time.sleep(0.1)
    srv2.close()
    time.sleep(0.5)


def sc_unanswered(lab: Lab, wait: float = 3.5) -> None:
    # 10.77.0.3 is on the veth subnet, has a static neighbour entry pointing at the server's MAC,
    # but no namespace owns it: the server namespace (no forwarding) drops the SYNs silently.
    run(
        "ip",
        "-n",
        lab.cns,
        "neigh",
        "replace",
        UNUSED4,
        "lladdr",
        SERVER_MAC,
        "dev",
        CLIENT_IF,
        "nud",
        "permanent",
    )
    cli = lab.client(40001)
    lab.register(40001, UNUSED4, SERVER_PORT)
    cli.setblocking(False)
    with contextlib.suppress(BlockingIOError):
        cli.connect((UNUSED4, SERVER_PORT))
    time.sleep(wait)  # SYN at 0 s, retransmissions at 1, 2, 3 s (tcp_syn_linear_timeouts=4)


def sc_unanswered_backoff(lab: Lab) -> None:
    sc_unanswered(lab, wait=21.0)  # retransmissions 1 s apart five times, then 2, 4 and 8 s


def sc_stuck_syn_recv(lab: Lab) -> None:
    lab.listen()  # never accept()ed
    cli = lab.client(40001)
    # TCP_DEFER_ACCEPT on a *connecting* socket makes Linux delay the handshake's final ACK by
    # ~200 ms (it hopes to piggyback it on data).  connect() returns as soon as the SYN-ACK is in,
    # so there is time to point the client's neighbour entry for the server at a MAC nobody has:
    # the ACK is then sent (and captured on the client's veth) but the server drops the frame.
    cli.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, 1)
    lab.register(40001, lab.server_ip, SERVER_PORT)
    cli.connect((lab.server_ip, SERVER_PORT))
    run(
        "ip",
        "-n",
        lab.cns,
        "neigh",
        "replace",
        lab.server_ip,
        "lladdr",
        BOGUS_MAC,
        "dev",
        CLIENT_IF,
        "nud",
        "permanent",
    )
    time.sleep(2.0)  # the server retransmits its SYN-ACK at 1 s (next at 3 s)


def sc_simultaneous_open(lab: Lab) -> None:
    peer_port = 40002
    a = lab.client(40001)
    b = lab.make_socket("server")
    b.bind((lab.server_ip, peer_port))
    lab.register(40001, lab.server_ip, peer_port)
    for sock in (a, b):
        sock.setblocking(False)

    def connect(sock: socket.socket, dst: tuple[str, int]) -> None:
        with contextlib.suppress(BlockingIOError):
            sock.connect(dst)

    fire_together(lambda: connect(a, (lab.server_ip, peer_port)), lambda: connect(b, (lab.client_ip, 40001)))
    for sock in (a, b):
        select.select([], [sock], [], 5)
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            raise RecordError(f"simultaneous open failed: {os.strerror(err)}")
        sock.settimeout(10)
    exchange(a, b)
    time.sleep(0.5)


# --------------------------------------------------------------------------------------------
# what a connection looks like on the wire


@dataclass
class Wire:
    pkts: list[tuple[str, Pkt]] = field(default_factory=list)  # ("client"|"server", packet)

    def by(self, side: str) -> list[Pkt]:
        return [p for s, p in self.pkts if s == side]

    def first(self, side: str, bit: int) -> Pkt | None:
        return next((p for p in self.by(side) if p.flags & bit), None)

    def close_kind(self) -> str:
        rsts = [p for _, p in self.pkts if p.flags & RST]
        synack = any(p.flags & SYN and p.flags & ACK for p in self.by("server"))
        if rsts:
            first_rst_side = next(s for s, p in self.pkts if p.flags & RST)
            if not synack and first_rst_side == "server" and self.by("client"):
                return "refused"
            return "rst"
        fins = [side for side in ("client", "server") if self.first(side, FIN)]
        if len(fins) == 2:
            return "fin"
        if fins:
            return "half"
        if not self.by("server"):
            return "unanswered"
        return "open"

    def rst_by(self) -> str | None:
        return next((s for s, p in self.pkts if p.flags & RST), None)

    def stuck_close_wait(self, marker_ts: float) -> str | None:
        if self.rst_by() is not None:
            return None
        for side, peer in (("client", "server"), ("server", "client")):
            peer_fin = self.first(peer, FIN)
            if peer_fin is None or self.first(side, FIN) is not None:
                continue
            quiet_since = max([peer_fin.ts] + [p.ts for p in self.by(side)])
            if marker_ts - quiet_since >= STUCK_SECONDS:
                return side
        return None


def split_connections(pkts: list[Pkt], conns: list[Conn]) -> list[Wire]:
    """Assign TCP packets to connections; a new client ISN on a reused 4-tuple starts the next."""
    wires = [Wire() for _ in conns]
    by_tuple: dict[tuple[str, str], list[int]] = {}
    for i, conn in enumerate(conns):
        by_tuple.setdefault((conn.client, conn.server), []).append(i)
    current: dict[tuple[str, str], int] = {}
    isn: dict[int, int] = {}
    for pkt in pkts:
        if pkt.proto != "tcp":
            continue
        if (pkt.src, pkt.dst) in by_tuple:
            key, side = (pkt.src, pkt.dst), "client"
        elif (pkt.dst, pkt.src) in by_tuple:
            key, side = (pkt.dst, pkt.src), "server"
        else:
            raise RecordError(f"packet of an unknown connection {pkt.src} -> {pkt.dst}")
        pos = current.setdefault(key, 0)
        idx = by_tuple[key][pos]
        if side == "client" and pkt.flags & (SYN | ACK) == SYN:
            if idx in isn and isn[idx] != pkt.seq and pos + 1 < len(by_tuple[key]):
                pos += 1
                current[key] = pos
                idx = by_tuple[key][pos]
            isn.setdefault(idx, pkt.seq)
        wires[idx].pkts.append((side, pkt))
    return wires


# --------------------------------------------------------------------------------------------
# scenario table


@dataclass(frozen=True)
class Expect:
    client_state: str | None  # None: record whatever the kernel says
    server_state: str | None
    close: str
    rst_by: str | None = None
    stuck: str | None = None


Check = Callable[[list[Wire]], str | None]


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    run: Callable[[Lab], None]
    expect: tuple[Expect, ...]
    check: Check | None = None
    ipv6: bool = False
    sysctls: tuple[tuple[str, str], ...] = ()
    tries: int = 5


def flags_seq(wire: Wire) -> list[str]:
    return [("C:" if s == "client" else "S:") + p.flag_str() for s, p in wire.pkts]


def check_refused(wires: list[Wire]) -> str | None:
    seq = flags_seq(wires[0])
    return None if seq == ["C:S", "S:RA"] else f"expected SYN then RST+ACK, got {seq}"


def check_abort(side: str) -> Check:
    def check(wires: list[Wire]) -> str | None:
        w = wires[0]
        if w.first("client", FIN) or w.first("server", FIN):
            return "a FIN was sent before the abort"
        if sum(p.plen for p in w.by("server")) != RESP or sum(p.plen for p in w.by("client")) != REQ:
            return "data exchange incomplete"
        last_side, last = w.pkts[-1]
        return None if last.flags & RST and last_side == side else f"last packet is not {side}'s RST"

    return check


def check_close_wait(wires: list[Wire]) -> str | None:
    w = wires[0]
    fin = w.first("client", FIN)
    assert fin is not None
    late = [
        p
        for p in w.by("server")
        if p.ts > fin.ts and (p.plen or p.flags & (FIN | RST) or p.ts > fin.ts + 0.5)
    ]
    return (
        f"server sent {len(late)} packets (other than the FIN's ACK) after the client's FIN" if late else None
    )


def data_after_client_fin(w: Wire) -> list[Pkt]:
    fin = w.first("client", FIN)
    return [] if fin is None else [p for p in w.by("server") if p.ts > fin.ts and p.plen > 0]


def check_half_close(segments: int) -> Check:
    def check(wires: list[Wire]) -> str | None:
        n = len(data_after_client_fin(wires[0]))
        return None if n >= segments else f"only {n} server data segments after the client's FIN"

    return check


def check_fin_order(first: str) -> Check:
    def check(wires: list[Wire]) -> str | None:
        w = wires[0]
        second = "server" if first == "client" else "client"
        f1, f2 = w.first(first, FIN), w.first(second, FIN)
        if f1 is None or f2 is None or f2.ts < f1.ts:
            return f"expected the {first}'s FIN first"
        if (f2.ack - (f1.seq + f1.plen + 1)) % 2**32 != 0:
            return f"the {second}'s FIN does not acknowledge the {first}'s FIN"
        return None

    return check


def check_crossing_fins(wires: list[Wire]) -> str | None:
    w = wires[0]
    cfin, sfin = w.first("client", FIN), w.first("server", FIN)
    if cfin is None or sfin is None:
        return "missing FIN"
    crossed = (sfin.ack - (cfin.seq + cfin.plen)) % 2**32 == 0 and (
        cfin.ack - (sfin.seq + sfin.plen)
    ) % 2**32 == 0
    return None if crossed else "FINs did not cross (one FIN acknowledges the other)"


def check_rst_after_fin(wires: list[Wire]) -> str | None:
    w = wires[0]
    fin, rst = w.first("client", FIN), w.first("server", RST)
    if fin is None or rst is None or rst.ts < fin.ts:
        return "expected the client's FIN before the server's RST"
    return "server sent a FIN" if w.first("server", FIN) else None


def check_reuse(wires: list[Wire]) -> str | None:
    isns = []
    for w in wires:
        syn = next((p for p in w.by("client") if p.flags & (SYN | ACK) == SYN), None)
        synack = next((p for p in w.by("server") if p.flags & (SYN | ACK) == SYN | ACK), None)
        if syn is None or synack is None:
            return "each connection needs SYN and SYN-ACK"
        isns.append(syn.seq)
    return None if isns[0] != isns[1] else "second connection reused the ISN"


def check_unanswered(wires: list[Wire]) -> str | None:
    w = wires[0]
    syns = [p for p in w.by("client") if p.flags == SYN]
    if w.by("server") or len(syns) < 3 or len(syns) != len(w.pkts):
        return f"expected >=3 lone SYNs, got {flags_seq(w)}"
    return None


def check_unanswered_backoff(wires: list[Wire]) -> str | None:
    bad = check_unanswered(wires)
    if bad:
        return bad
    ts = [p.ts for _side, p in wires[0].pkts]
    gaps = [b - a for a, b in pairwise(ts)]
    return None if max(gaps) >= 5.0 else f"expected a silence of 5 s or more, gaps {gaps}"


def check_stuck_syn_recv(wires: list[Wire]) -> str | None:
    w = wires[0]
    synacks = [p for p in w.by("server") if p.flags & (SYN | ACK) == SYN | ACK]
    acks = [p for p in w.by("client") if p.flags == ACK]
    if len(synacks) < 2 or not acks:
        return f"expected a retransmitted SYN-ACK and client ACKs, got {flags_seq(w)}"
    if acks[0].ts - synacks[0].ts < 0.1:
        return "the client's ACK was not delayed"
    return None


def check_simultaneous_open(wires: list[Wire]) -> str | None:
    seq = flags_seq(wires[0])
    if seq[:2] not in (["C:S", "S:S"], ["S:S", "C:S"]) or seq[2:4] not in (
        ["C:SA", "S:SA"],
        ["S:SA", "C:SA"],
    ):
        return f"SYNs did not cross: {seq[:4]}"
    return None


ORDERLY_CLIENT = Expect("TIME-WAIT", "CLOSED", "fin")

SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "orderly_client_close",
        "Request/response of a few hundred bytes, the client closes first, then the server.",
        sc_orderly_client_close,
        (ORDERLY_CLIENT,),
        check_fin_order("client"),
    ),
    Scenario(
        "orderly_server_close",
        "Request/response, the server closes first, then the client.",
        sc_orderly_server_close,
        (Expect("CLOSED", "TIME-WAIT", "fin"),),
        check_fin_order("server"),
    ),
    Scenario(
        "close_wait_leak",
        "Request/response, the client closes; the server reads EOF but never closes "
        "(3 s of silence before the marker).",
        sc_close_wait_leak,
        (Expect("FIN-WAIT-2", "CLOSE-WAIT", "half", stuck="server"),),
        check_close_wait,
    ),
    Scenario(
        "refused",
        "The client connects to a port with no listener and gets RST+ACK.",
        sc_refused,
        (Expect("CLOSED", "CLOSED", "refused", "server"),),
        check_refused,
    ),
    Scenario(
        "abort_client",
        "Request/response, then the client closes with SO_LINGER {on, 0}: RST from the client.",
        sc_abort_client,
        (Expect("CLOSED", "CLOSED", "rst", "client"),),
        check_abort("client"),
    ),
    Scenario(
        "abort_server",
        "Request/response, then the server closes with SO_LINGER {on, 0}: RST from the server.",
        sc_abort_server,
        (Expect("CLOSED", "CLOSED", "rst", "server"),),
        check_abort("server"),
    ),
    Scenario(
        "half_close",
        "The client sends its request and shutdown(SHUT_WR); the server sends 5 more segments "
        "over ~1.25 s, then closes.",
        sc_half_close,
        (ORDERLY_CLIENT,),
        check_half_close(5),
    ),
    Scenario(
        "half_close_open",
        "The client sends its request and shutdown(SHUT_WR); the server is still sending "
        "(a segment every 0.25 s) when the capture ends.",
        sc_half_close_open,
        (Expect("FIN-WAIT-2", "CLOSE-WAIT", "half"),),
        check_half_close(6),
    ),
    Scenario(
        "simultaneous_close",
        "Request/response, then both sides shutdown(SHUT_WR) at the same instant so the FINs "
        "cross on the wire (both pass through CLOSING).",
        sc_simultaneous_close,
        (Expect("TIME-WAIT", "TIME-WAIT", "fin"),),
        check_crossing_fins,
        tries=12,
    ),
    Scenario(
        "rst_after_fin",
        "The client sends its request and shutdown(SHUT_WR); the server answers, then aborts "
        "with SO_LINGER {on, 0} instead of closing.",
        sc_rst_after_fin,
        (Expect(None, None, "rst", "server"),),
        check_rst_after_fin,
    ),
    Scenario(
        "reuse_after_time_wait",
        "The server closes first and holds TIME-WAIT; 0.5 s later the client connects again "
        "from the same port, the server's TIME-WAIT accepts the SYN; the client closes the "
        "second connection first.",
        sc_reuse_after_time_wait,
        (Expect("CLOSED", "CLOSED", "fin"), ORDERLY_CLIENT),
        check_reuse,
    ),
    Scenario(
        "ipv6_orderly",
        "orderly_client_close over IPv6 (fd77::1 -> fd77::2).",
        sc_orderly_client_close,
        (ORDERLY_CLIENT,),
        check_fin_order("client"),
        ipv6=True,
    ),
    Scenario(
        "unanswered",
        "The client SYNs an on-link address nobody owns (10.77.0.3, static neighbour entry); "
        "3.5 s of SYN retransmissions, no answer.",
        sc_unanswered,
        (Expect("SYN-SENT", "CLOSED", "unanswered"),),
        check_unanswered,
    ),
    Scenario(
        "unanswered_backoff",
        "As unanswered, for 21 s: after five retransmissions 1 s apart the kernel backs off "
        "(2, 4, 8 s), so the last silence is longer than Zeek's 5 s attempt timer.",
        sc_unanswered_backoff,
        (Expect("SYN-SENT", "CLOSED", "unanswered"),),
        check_unanswered_backoff,
    ),
    Scenario(
        "stuck_syn_recv",
        "The server answers the SYN but the client's (delayed) ACK is lost between the capture "
        "point and the server; the server retransmits its SYN-ACK and stays SYN-RECEIVED.",
        sc_stuck_syn_recv,
        (Expect("ESTABLISHED", "SYN-RECEIVED", "open"),),
        check_stuck_syn_recv,
    ),
    Scenario(
        "simultaneous_open",
        "Two sockets bound to fixed ports connect() to each other at the same instant; the "
        "SYNs cross, both answer SYN-ACK; request/response, left open.",
        sc_simultaneous_open,
        (Expect("ESTABLISHED", "ESTABLISHED", "open"),),
        check_simultaneous_open,
        tries=12,
    ),
)
BY_NAME = {s.name: s for s in SCENARIOS}


# --------------------------------------------------------------------------------------------
# recording


def endpoint_lines(snapshot: str, local: str, peer: str) -> list[SsEntry]:
    return [e for e in parse_ss(snapshot) if e.local == local and e.peer == peer and e.state != "LISTEN"]


def attempt(sc: Scenario, pcap: Path) -> dict[str, object]:
    """One try: record into ``pcap``, check it, return the JSON answer or raise RecordError."""
    lab = Lab(out_pcap=pcap, ipv6=sc.ipv6, sysctls=dict(sc.sysctls))
    try:
        lab.setup()
        lab.start_capture()
        sc.run(lab)
        lab.finish()
    finally:
        lab.teardown()

    for ns in (lab.cns, lab.sns):
        if ss_key(parse_ss(lab.ss_before[ns])) != ss_key(parse_ss(lab.ss_after[ns])):
            raise RecordError("the two ss snapshots differ")
    pkts = read_pcap(pcap)
    markers = [i for i, p in enumerate(pkts) if p.proto == "udp"]
    if len(markers) != 1 or markers[0] != len(pkts) - 1:
        raise RecordError(f"marker is not the one last packet (udp at {markers} of {len(pkts)})")
    marker_ts = pkts[-1].ts
    wires = split_connections(pkts, lab.conns)

    connections: list[dict[str, object]] = []
    problems: list[str] = []
    for i, (conn, wire) in enumerate(zip(lab.conns, wires, strict=True)):
        later_same = any(c.client == conn.client and c.server == conn.server for c in lab.conns[i + 1 :])
        sides: dict[str, tuple[str, str]] = {}
        for side, ns, local, peer in (
            ("client", lab.cns, conn.client, conn.server),
            ("server", lab.sns, conn.server, conn.client),
        ):
            entries = [] if later_same else endpoint_lines(lab.ss_after[ns], local, peer)
            if len(entries) > 1:
                raise RecordError(f"ss lists {len(entries)} sockets for {side} {local}")
            state = entries[0].state if entries else "CLOSED"
            sides[side] = (state, entries[0].raw if entries else "")
        record: dict[str, object] = {
            "client": conn.client,
            "server": conn.server,
            "client_state": sides["client"][0],
            "server_state": sides["server"][0],
            "close": wire.close_kind(),
            "rst_by": wire.rst_by(),
            "stuck_close_wait": wire.stuck_close_wait(marker_ts),
            "ss": {"client": sides["client"][1], "server": sides["server"][1]},
        }
        connections.append(record)
        exp = sc.expect[i]
        got = (
            record["client_state"],
            record["server_state"],
            record["close"],
            record["rst_by"],
            record["stuck_close_wait"],
        )
        want = (exp.client_state or got[0], exp.server_state or got[1], exp.close, exp.rst_by, exp.stuck)
        if got != want:
            problems.append(f"connection {i + 1}: got {got}, expected {want}")
    if sc.check is not None and (msg := sc.check(wires)):
        problems.append(msg)
    if problems:
        raise RecordError("; ".join(problems))
    return {
        "scenario": sc.name,
        "description": sc.description,
        "kernel": os.uname().release,
        "sysctls": dict(sc.sysctls),
        "capture_point": "client veth",
        "marker_ts": round(marker_ts, 6),
        "connections": connections,
    }


def record(sc: Scenario, out: Path, tries: int | None) -> bool:
    """Record ``sc``; only a successful attempt replaces ``<name>.pcap`` and ``<name>.json``."""
    budget = tries or sc.tries
    partial = out / f".{sc.name}.partial.pcap"
    try:
        for n in range(1, budget + 1):
            try:
                result = attempt(sc, partial)
            except RecordError as exc:
                print(f"  {sc.name}: attempt {n}/{budget} rejected: {exc}", flush=True)
                continue
            size = partial.stat().st_size
            os.replace(partial, out / f"{sc.name}.pcap")
            (out / f"{sc.name}.json").write_text(json.dumps(result, indent=2) + "\n")
            conns: list[dict[str, object]] = result["connections"]  # type: ignore[assignment]
            states = ", ".join(f"{c['client_state']}/{c['server_state']} ({c['close']})" for c in conns)
            print(f"  {sc.name}: ok after {n} attempt(s), {size} bytes; client/server: {states}", flush=True)
            return True
    finally:
        partial.unlink(missing_ok=True)
    print(f"  {sc.name}: FAILED after {budget} attempts (previous recording left as it was)", flush=True)
    return False


# --------------------------------------------------------------------------------------------
# README

README_HEAD = """\
# Real Linux kernel TCP captures with the kernel's own answer

Each `<scenario>.pcap` is a capture taken on the **client's veth** (client namespace 10.77.0.1 /
fd77::1, server namespace 10.77.0.2 / fd77::2, joined by a veth pair; filter `{filter}`).
Each `<scenario>.json` holds what `ss -tanoi` reported in both namespaces at the end of the
capture, for every connection in the order it was opened. The last packet of every pcap is one
UDP datagram from the client to port 9 of the server (`marker_ts`): `ss` ran right before and
right after it, and both snapshots agreed. ss state names are given in RFC 9293 spelling; a
socket that `ss` did not list is `CLOSED`. Client ports are fixed (40001, 40002, ...), the
server listens on 8080.

Recorded on kernel `{kernel}`. No sysctl was changed unless the table says so.

JSON fields: `scenario`, `description`, `kernel` (uname -r), `sysctls` (only those changed, set
in both namespaces), `capture_point`, `marker_ts` (pcap timestamp of the marker, epoch seconds),
and `connections`, each with `client` / `server` (`ip:port`, `[ip6]:port`), `client_state` /
`server_state` (never LISTEN), `close` (`fin` both sides sent FIN, `half` only one did, `rst`,
`refused` SYN answered by RST, `unanswered`, `open`), `rst_by` (who sent the first RST),
`stuck_close_wait` (a side that received a FIN, sent no FIN itself and then sent nothing for at
least 2 s up to the marker) and `ss` (the raw `ss -tanoi` lines of each endpoint, taken after
the marker; empty when CLOSED). `close`, `rst_by` and `stuck_close_wait` are computed from the
pcap by the recorder; the states come from `ss`.

| scenario | what happens | client | server | close | rst_by | stuck CLOSE-WAIT | packets |
| --- | --- | --- | --- | --- | --- | --- | --- |
"""

README_TAIL = """
## Notes on what the kernel did

- `stuck_syn_recv`: Linux delays the final ACK of the handshake by ~200 ms when the connecting
  socket has `TCP_DEFER_ACCEPT` set; in that gap the client's neighbour entry for the server is
  pointed at a MAC nobody owns, so the ACK is on the wire (in the capture) but never reaches the
  server, which stays SYN-RECEIVED and retransmits its SYN-ACK; the client (ESTABLISHED) answers
  the retransmission with an ACK that is lost the same way. A capture on the client side cannot
  tell this apart from a completed handshake: only the retransmitted SYN-ACK gives it away.
- `reuse_after_time_wait`: the server's TIME-WAIT socket accepted the new SYN (higher ISN) and
  was recycled: in the end `ss` lists no TIME-WAIT on the server for that 4-tuple, so the first
  connection is CLOSED on both sides. The server's new ISN is the old SND.NXT + 65537.
- `simultaneous_close`: the FINs cross (each FIN's ACK field does not cover the other FIN), both
  sides pass through CLOSING and end in TIME-WAIT. Needs the two shutdown() calls within a few
  microseconds (forked process, busy-wait on CLOCK_MONOTONIC); attempts whose FINs did not cross
  are discarded.
- `simultaneous_open`: both SYNs are sent before either arrives; each side answers the other's
  SYN with a SYN-ACK (repeating its own ISN), then each answers the other's SYN-ACK with an ACK
  carrying a D-SACK block for the duplicate SYN (`sack 1 {0:1}`).
- `close_wait_leak` / `half_close_open`: the client application closed (close_wait_leak) or only
  shut down writing (half_close_open); an orphaned FIN-WAIT-2 socket shows a `timewait` timer in
  `ss` but its state is FIN-WAIT-2.
- `rst_after_fin`: an RST aborts the FIN-WAIT-2 client: both endpoints CLOSED.
- `unanswered`: Linux 6.x retransmits the SYN at 1 s intervals first (`tcp_syn_linear_timeouts`
  defaults to 4) before backing off exponentially.
- Checksums: veth hands checksum-offloaded (CHECKSUM_PARTIAL) packets across namespaces, so
  on this capture point almost every TCP segment **in both directions** and the UDP marker carry
  a "wrong" checksum (only the pseudo-header sum). Segments the kernel builds without a full
  socket (the RST answering a SYN to a closed port, the last ACK sent from TIME-WAIT) have
  correct checksums.
- TCP timestamps, SACK and window scaling are on (defaults); the default congestion control of
  this machine is `bbr`, visible in the raw `ss` lines.

## Re-recording

As root (needs `ip`, `ss`, `tcpdump`; creates and deletes namespaces `tsm-rk-<pid>-c/-s`):

    python3 scripts/record_kernel.py                        # all scenarios into sample_pcaps/kernel
    python3 scripts/record_kernel.py refused half_close     # only some
    python3 scripts/record_kernel.py --list
    python3 scripts/record_kernel.py cleanup                # remove leftover tsm-rk-* namespaces

An attempt whose `ss` snapshots differ, whose marker is not the last packet, or whose capture or
kernel answer does not show what the scenario is about is discarded and retried. This README is
regenerated from the JSON files after every run.
"""


def write_readme(out: Path) -> None:
    rows: list[str] = []
    kernel = "?"
    for sc in SCENARIOS:
        jpath, ppath = out / f"{sc.name}.json", out / f"{sc.name}.pcap"
        if not jpath.exists() or not ppath.exists():
            continue
        data = json.loads(jpath.read_text())
        kernel = data["kernel"]
        npkts = len(read_pcap(ppath))
        what = data["description"]
        if data["sysctls"]:
            what += " sysctls: " + ", ".join(f"`{k}={v}`" for k, v in data["sysctls"].items())
        for i, c in enumerate(data["connections"]):
            name = f"`{sc.name}`" if len(data["connections"]) == 1 else f"`{sc.name}` #{i + 1}"
            rows.append(
                f"| {name} | {what if i == 0 else '(same 4-tuple again)'} | "
                f"{c['client_state']} | {c['server_state']} | {c['close']} | "
                f"{c['rst_by'] or '-'} | {c['stuck_close_wait'] or '-'} | {npkts} |"
            )
    text = README_HEAD.format(filter=CAPTURE_FILTER, kernel=kernel) + "\n".join(rows) + "\n" + README_TAIL
    (out / "README.md").write_text(text)


# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("sample_pcaps/kernel"))
    parser.add_argument("--list", action="store_true", help="list scenarios and exit")
    parser.add_argument("--tries", type=int, default=None, help="attempts per scenario")
    parser.add_argument(
        "scenarios", nargs="*", metavar="SCENARIO", help="scenario names (default: all), or 'cleanup'"
    )
    args = parser.parse_args(argv)
    if args.list:
        for sc in SCENARIOS:
            print(f"{sc.name:24} {sc.description}")
        return 0
    if args.scenarios == ["cleanup"]:
        return cleanup()
    unknown = [n for n in args.scenarios if n not in BY_NAME]
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)} (see --list)")
    if os.geteuid() != 0:
        parser.error("must run as root (network namespaces, tcpdump)")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks (cleanup)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    chosen = [BY_NAME[n] for n in args.scenarios] if args.scenarios else list(SCENARIOS)
    failed = []
    try:
        for sc in chosen:
            print(f"{sc.name}:", flush=True)
            if not record(sc, out, args.tries):
                failed.append(sc.name)
    finally:
        write_readme(out)
    if failed:
        print(f"failed: {' '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
