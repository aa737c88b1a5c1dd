#!/usr/bin/env python3
"""End-to-end speed, memory and correctness of ``tcpsm analyze`` against ``tcptrace -n``.

One run generates (once; cached in ``bench/out/``) deterministic captures, times both tools on
each of them side by side, checks tcpsm's flow classification against the generator's ground
truth and prints ratios with a PASS/FAIL verdict per target.

Captures
========

All are Ethernet pcap files (microsecond timestamps, snaplen 96) as tcpdump writes them on a
busy server: ~90 % IPv4 and ~10 % IPv6, clients spread over 128 Ki IPv4 and many IPv6
addresses with Linux ephemeral ports (every client address:port is used by one connection only),
a few server ports, a few hundred connections in flight at any time, timestamps strictly
increasing with small gaps. Segments look like Linux's: SYN and SYN-ACK carry MSS, SACK-permitted,
timestamps and window scale (the 20-byte Linux layout); every later segment carries the
timestamp option (TSval on a per-connection millisecond clock, TSecr echoing the peer's latest),
except the RST that refuses a connection. ISNs are random; 5 % sit just below 2**32 so that the
sequence numbers wrap inside the connection. Payloads are zeros; checksums are correct as if the
bytes beyond the snap length were zeros too.

``short`` (``--packets``, default 1,000,000)
    Mostly short request/response connections of ~12 packets: handshake, a request, the
    server's ACK, a response of one to three segments, the client's ACKs (every second
    segment), a FIN close by either side (half of them with the passive side's FIN combined
    with its ACK of the first FIN); 12 % have a second request on the same connection.
    About 3 % are refused (SYN answered by RST+ACK), 3 % unanswered (the SYN retransmitted
    1-3 times after 1, 3 and 7 s with the same ISN), 2 % reset by the client (RST+ACK) after
    receiving the response.
``bulk`` (``--packets``, default 1,000,000)
    Long transfers of ~500 packets: one side (the server 80 % of the time) sends MSS-sized
    segments paced by the RTT, the other ACKs every second segment, then a FIN close; the same
    3 % refused and 3 % unanswered.
``synflood`` (``--syns``, default 1,000,000)
    Distinct SYNs from random addresses and ports to one server port, none answered: one
    unanswered connection per packet, which an engine must keep (or summarise) until the end.

The packet counts are exact: the last connections are sized to fit. A capture's file name
carries the generator version and a hash of its parameters, so a change to either makes a new
file. Next to it, ``*.truth.npz`` keeps the ground truth: the number of connections and of
each kind (fin, rst, refused, unanswered), and every connection's client address, port and kind.

Measurement
===========

For every capture, in the same run, the script starts ``tcptrace -n FILE`` (stdout to
/dev/null) and ``tcpsm analyze FILE --format csv -o OUT.csv --quiet`` (with ``--jobs 1`` when
``tcpsm analyze --help`` offers ``--jobs``: the single-core comparison; ``--jobs-also`` adds a
run with tcpsm's default jobs setting). Each command is a ``subprocess.Popen`` reaped with
``os.wait4``: wall time from just before the start to the reaping, peak RSS from the child's
``ru_maxrss`` (KiB on Linux). That figure is the largest resident set of the command and of any
descendants it waited for -- a max, not a sum: parallel workers that run at the same time count
once, as the largest of them. Because a forked child's ``ru_maxrss`` also covers the image it
was forked from, the commands are started by a small fresh Python launcher (~11 MB, the floor
of the figure), not by this process, which holds the generated captures. tcptrace is skipped
(and says so) on a capture for which it would need more than 70 % of the available memory (it
keeps ~8 KiB per connection: 8 GB for the SYN flood). Each command runs ``--repeat`` times
(default 3), the tools alternating (A B, B A, A B, ...) so that they share the machine's
noise; the best time and the largest peak count. tcptrace runs once more, untimed, with its
stdout kept, for its connection count.

Correctness: tcpsm's CSV (byte-identical across the repeats and the jobs settings, else that is
a failure too) must have exactly the generator's number of connections and of ``close`` kinds
refused, unanswered, rst and fin. The script also prints a truth-by-``close`` table (flows
matched on client address and port), the state pairs and anomaly codes tcpsm reported per
kind, and tcptrace's connection count for comparison.

Targets (ratio = tcptrace seconds / tcpsm seconds; above 1 means tcpsm is faster)
=================================================================================

* short: ratio > 1.0
* bulk: ratio >= 1.5
* memory, short and bulk, judged when ``--packets`` is at least 5,000,000 (the 5M point; the
  script then also measures the 1M capture of the same scenario): peak <= 300 MB and
  <= 1.5 x the 1M peak
* synflood: peak <= 1 GB
* correctness on every capture (above)

MB is 2**20 bytes. Exit status 0 when every check and every target that applies passed, 1
otherwise (a speed target that cannot be judged because tcptrace is missing fails); everything is
printed either way, and ``--json FILE`` writes all measurements.

Usage::

    python bench/bench_analyze.py                      # short, bulk, synflood at 1M packets
    python bench/bench_analyze.py --only short --packets 5000000 --repeat 1   # the 5M memory point
    python bench/bench_analyze.py --packets 100000 --syns 100000 --repeat 1   # a quick look
"""

from __future__ import annotations

import argparse
import array
import csv
import hashlib
import heapq
import json
import math
import os
import platform
import random
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"

#: Bump whenever the generator's output changes for the same parameters.
GEN_VERSION = 1
SNAPLEN = 96
MASK32 = 0xFFFFFFFF
MB = 1 << 20

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
C, S = 0, 1  # direction of a segment: client to server, server to client
OPT_NONE, OPT_TS, OPT_SYN = 0, 1, 2  # no options; NOP NOP TS; MSS SACK-permitted TS NOP WS
OPT_LEN = np.array([0, 12, 20], dtype=np.int64)
KINDS = ("fin", "rst", "refused", "unanswered")
CLOSE_KINDS = ("fin", "half", "rst", "refused", "unanswered", "open")
SERVER_PORTS = (443, 80, 8443, 8080)
SERVER_PORT_WEIGHTS = (0.55, 0.25, 0.1, 0.1)
SPEED_TARGETS = {"short": (">", 1.0), "bulk": (">=", 1.5)}
MEM_POINT = 5_000_000
MEM_ABS_MB = 300.0
MEM_GROWTH = 1.5
SYNFLOOD_MB = 1024.0
#: tcptrace keeps ~8 KiB per connection (8.1 GB for the 1M-SYN flood): it is skipped on a capture
#: whose estimate exceeds this share of the machine's available memory.
TCPTRACE_KIB_PER_CONN = 8.5
TCPTRACE_MEM_SHARE = 0.7

I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]
Bool = npt.NDArray[np.bool_]


# --- parameters and cache names ----------------------------------------------------------------


@dataclass(frozen=True)
class Params:
    """Everything a capture depends on; its hash is part of the file name."""

    scenario: str
    packets: int
    seed: int
    concurrency: int = 300
    refused: float = 0.03
    unanswered: float = 0.03
    rst: float = 0.02
    v6: float = 0.10
    wrap: float = 0.05  # share of ISNs placed so that the sequence numbers wrap
    second_request: float = 0.12
    rtt_us: tuple[int, int] = (200, 80_000)  # log-uniform

    def stem(self) -> str:
        blob = json.dumps({"gen": GEN_VERSION, "snaplen": SNAPLEN, **asdict(self)}, sort_keys=True)
        digest = hashlib.sha256(blob.encode()).hexdigest()[:8]
        return f"analyze-{self.scenario}-g{GEN_VERSION}-{self.packets}p-seed{self.seed}-{digest}"


def scenario_params(name: str, packets: int, syns: int, seed: int) -> Params:
    if name == "short":
        return Params("short", packets, seed)
    if name == "bulk":
        return Params("bulk", packets, seed, concurrency=200, rst=0.0)
    if name == "synflood":
        return Params("synflood", syns, seed, concurrency=0, refused=0.0, unanswered=1.0, rst=0.0)
    raise ValueError(name)


@dataclass
class Truth:
    """The generator's ground truth for one capture."""

    packets: int
    connections: int
    kinds: dict[str, int]
    gen_seconds: float
    # per connection, in start order
    kind: npt.NDArray[np.int8] = field(repr=False)
    v6: Bool = field(repr=False)
    caddr: U8 = field(repr=False)  # (n, 16); IPv4 in the first 4 bytes
    cport: I64 = field(repr=False)

    def save(self, path: Path) -> None:
        meta = {
            "packets": self.packets,
            "connections": self.connections,
            "kinds": self.kinds,
            "gen_seconds": self.gen_seconds,
        }
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(
            tmp,
            meta=np.array(json.dumps(meta)),
            kind=self.kind,
            v6=self.v6,
            caddr=self.caddr,
            cport=self.cport,
        )
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> Truth:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            return cls(
                meta["packets"],
                meta["connections"],
                meta["kinds"],
                meta["gen_seconds"],
                z["kind"],
                z["v6"],
                z["caddr"],
                z["cport"],
            )

    def by_client(self) -> dict[tuple[str, int], str]:
        """Client ``(address, port)`` -> kind, addresses spelled as tcpsm writes them."""
        ntop = socket.inet_ntop
        out: dict[tuple[str, int], str] = {}
        raw = self.caddr.tobytes()
        cols = zip(self.v6.tolist(), self.cport.tolist(), self.kind.tolist(), strict=True)
        for i, (v6, port, k) in enumerate(cols):
            a = raw[16 * i : 16 * i + 16]
            ip = ntop(socket.AF_INET6, a) if v6 else ntop(socket.AF_INET, a[:4])
            out[ip, port] = KINDS[k]
        return out


# --- connection scripts ------------------------------------------------------------------------


class _Script:
    """One connection's segments as ``(t_us, dir, flags, rel_seq, rel_ack, payload, option)``.

    Sequence numbers are relative to the sender's ISN and acknowledgment numbers to the
    receiver's (the ISN itself is 0); -1 means a literal 0 in the header (the ack field of a
    SYN, the sequence number of an RST answering a SYN). By default a segment takes the
    sender's next sequence number and acknowledges everything the peer has sent so far.
    """

    __slots__ = ("nxt", "rows")

    def __init__(self) -> None:
        self.rows: list[tuple[int, int, int, int, int, int, int]] = []
        self.nxt = [0, 0]

    def add(
        self,
        t: int,
        d: int,
        flags: int,
        plen: int = 0,
        *,
        opt: int = OPT_TS,
        seq: int | None = None,
        ack: int | None = None,
    ) -> None:
        s = self.nxt[d] if seq is None else seq
        a = (self.nxt[1 - d] if ack is None else ack) if flags & ACK else -1
        self.rows.append((t, d, flags, s, a, plen, opt))
        if not flags & RST:
            end = s + plen + (1 if flags & SYN else 0) + (1 if flags & FIN else 0)
            self.nxt[d] = max(self.nxt[d], end)

    def sorted_rows(self) -> list[tuple[int, int, int, int, int, int, int]]:
        self.rows.sort(key=lambda r: r[0])  # stable: equal times keep their order
        return self.rows


def _srv(rnd: random.Random) -> int:
    """The server's reaction time as the capture (taken on the server) sees it."""
    return rnd.randrange(10, 80)


def _failed_open(rnd: random.Random, sc: _Script, kind: str, syns: int = 0) -> None:
    sc.add(0, C, SYN, opt=OPT_SYN)
    if kind == "refused":
        sc.add(_srv(rnd), S, RST | ACK, opt=OPT_NONE, seq=-1, ack=1)
        return
    t = 0
    for k in range((syns or rnd.randint(2, 4)) - 1):  # retransmitted 1-3 times
        t += (1_000_000 << k) + rnd.randrange(0, 3000)  # Linux: after 1 s, then 2 s, 4 s
        sc.add(t, C, SYN, opt=OPT_SYN, seq=0)


def _handshake(rnd: random.Random, sc: _Script, rtt: int) -> int:
    sc.add(0, C, SYN, opt=OPT_SYN)
    t = _srv(rnd)
    sc.add(t, S, SYN | ACK, opt=OPT_SYN)
    t += rtt
    sc.add(t, C, ACK)
    return t


def _fin_close(rnd: random.Random, sc: _Script, t: int, closer: int, rtt: int) -> None:
    """FIN from ``closer``, the peer's ACK and FIN (combined half of the time), the last ACK."""
    peer = 1 - closer
    sc.add(t, closer, FIN | ACK)
    t += rtt if peer == C else _srv(rnd)
    if rnd.random() < 0.5:
        sc.add(t, peer, FIN | ACK)
    else:
        sc.add(t, peer, ACK)
        t += rnd.randrange(10, 3000)
        sc.add(t, peer, FIN | ACK)
    sc.add(t + (rtt if closer == C else _srv(rnd)), closer, ACK)


def _short(
    rnd: random.Random,
    sc: _Script,
    kind: str,
    rtt: int,
    mss: int,
    p: Params,
    *,
    segments: int = 0,
    close: int = 0,
) -> None:
    """A request/response connection; ``segments`` and ``close`` (3 or 4 packets) force its size."""
    t = _handshake(rnd, sc, rtt)
    rounds = 1 if segments or rnd.random() >= p.second_request else 2
    for r in range(rounds):
        t += rnd.randrange(5, 60) if r == 0 else rnd.randrange(1000, 200_000)
        sc.add(t, C, PSH | ACK, rnd.randrange(60, 900))
        sc.add(t + _srv(rnd), S, ACK)
        k = segments or rnd.choices((1, 2, 3), (5, 3, 2))[0]
        gap = rnd.randrange(3, 30) if k <= 3 else max(12, rtt // 20)  # big ones are window-paced
        t += rnd.randrange(50, 5000)
        ends: list[tuple[int, int]] = []
        for i in range(k):
            if i:
                t += gap
            last = i == k - 1
            sc.add(t, S, ACK | (PSH if last else 0), rnd.randrange(40, mss + 1) if last else mss)
            ends.append((t, sc.nxt[S]))
        if kind == "rst" and r == rounds - 1:
            sc.add(t + rtt, C, RST | ACK)
            return
        for i, (ti, e) in enumerate(ends):
            if i % 2 == 1 or i == k - 1:
                sc.add(ti + rtt, C, ACK, ack=e)
        t += rtt
    closer = C if rnd.random() < 0.6 else S
    t += rnd.randrange(20, 3000) if closer == C else rnd.randrange(10, 500)
    if close:  # 3 packets: FIN, FIN+ACK, ACK; 4: FIN, ACK, FIN, ACK
        peer = 1 - closer
        sc.add(t, closer, FIN | ACK)
        t += rtt if peer == C else _srv(rnd)
        if close == 4:
            sc.add(t, peer, ACK)
            t += rnd.randrange(10, 3000)
        sc.add(t, peer, FIN | ACK)
        sc.add(t + (rtt if closer == C else _srv(rnd)), closer, ACK)
    else:
        _fin_close(rnd, sc, t, closer, rtt)


def _short_exact(rnd: random.Random, sc: _Script, rtt: int, mss: int, p: Params, n: int) -> None:
    """A FIN-closed request/response connection of exactly ``n`` >= 10 packets.

    It has 5 + f(k) + close packets, f(k) = k + ceil(k / 2) for k response segments (every
    value but those = 1 mod 3) and a close of 3 or 4 packets: one of n - 8, n - 9 fits.
    """
    for close in (3, 4):
        v = n - 5 - close
        if v >= 2 and v % 3 != 1:
            k = 2 * v // 3 if v % 3 == 0 else (2 * v - 1) // 3
            _short(rnd, sc, "fin", rtt, mss, p, segments=k, close=close)
            return
    raise AssertionError(n)


def _bulk(rnd: random.Random, sc: _Script, rtt: int, mss: int) -> None:
    download = rnd.random() < 0.8
    snd, rcv = (S, C) if download else (C, S)
    t = _handshake(rnd, sc, rtt)
    if download:
        t += rnd.randrange(5, 60)
        sc.add(t, C, PSH | ACK, rnd.randrange(80, 400))
        t += rnd.randrange(50, 2000)
    else:
        t += rnd.randrange(5, 60)
    to_rcv = rtt if rcv == C else _srv(rnd)  # from the capture point to the receiver and back
    to_snd = rtt if snd == C else _srv(rnd)
    nseg = rnd.randrange(250, 400)
    gap = max(12, rtt // rnd.randrange(16, 40))  # about a window (16-40 segments) per RTT
    acks: list[tuple[int, int]] = []
    ti = t
    for i in range(nseg):
        ti = t + i * gap + rnd.randrange(0, gap // 4 + 1)
        last = i == nseg - 1
        flags = ACK | (PSH if last or rnd.random() < 0.05 else 0)
        sc.add(ti, snd, flags, rnd.randrange(1, mss + 1) if last else mss)
        if i % 2 == 1 or last:
            acks.append((ti + to_rcv + rnd.randrange(0, 20), sc.nxt[snd]))
    for ta, a in acks:
        sc.add(ta, rcv, ACK, ack=a)
    t_fin = ti + rnd.randrange(5, 50)
    sc.add(t_fin, snd, FIN | ACK)
    t = max(t_fin + to_rcv, acks[-1][0] + 1)
    if rnd.random() < 0.5:
        sc.add(t, rcv, FIN | ACK)
    else:
        sc.add(t, rcv, ACK)
        t += rnd.randrange(10, 3000)
        sc.add(t, rcv, FIN | ACK)
    sc.add(t + to_snd, snd, ACK)


# --- generation --------------------------------------------------------------------------------


@dataclass
class _Conns:
    """Per-connection columns, then per-packet ones, ready for :func:`_write_pcap`."""

    v6: Bool
    caddr: U8  # (n, 16)
    saddr: U8
    cport: I64
    sport: I64
    ttl: I64  # of the client's packets as the server sees them
    # per packet, in capture order
    ts_us: I64
    conn: I64
    d: I64
    flags: I64
    seq: I64
    ack: I64
    win: I64
    opt: I64
    tsval: I64
    tsecr: I64
    plen: I64


def _v4(a: str) -> int:
    return int.from_bytes(socket.inet_aton(a), "big") << 96


def _v6(a: str) -> int:
    return int.from_bytes(socket.inet_pton(socket.AF_INET6, a), "big")


def _addr_array(ints: list[int]) -> U8:
    return np.frombuffer(b"".join(x.to_bytes(16, "big") for x in ints), dtype=np.uint8).reshape(-1, 16)


def _generate_flows(p: Params) -> tuple[_Conns, Truth]:
    """The short and bulk captures: connections as scripts, interleaved by time."""
    t0 = time.perf_counter()
    rnd = random.Random(f"bench_analyze-{p.scenario}-{p.seed}")
    v4_net = _v4("198.18.0.0")  # RFC 2544 benchmarking range, 198.18.0.0/15
    v6_net = _v6("2001:db8::")
    servers4 = [_v4("192.0.2.10"), _v4("192.0.2.11")]
    servers6 = [_v6("2001:db8:ffff::10"), _v6("2001:db8:ffff::11")]
    lrtt = (math.log(p.rtt_us[0]), math.log(p.rtt_us[1]))

    rows = array.array("q")
    lens: list[int] = []
    start: list[int] = []
    kinds: list[int] = []
    v6s: list[bool] = []
    caddr: list[int] = []
    saddr: list[int] = []
    cport: list[int] = []
    sport: list[int] = []
    isn: list[int] = []  # client, server interleaved
    win: list[int] = []
    tsoff: list[int] = []
    ttl: list[int] = []
    used: set[tuple[int, int]] = set()
    heap = [rnd.randrange(0, 50_000) for _ in range(p.concurrency)]  # when each "slot" frees up
    heapq.heapify(heap)
    remaining = p.packets
    while remaining > 0:
        begin = heapq.heappop(heap) + rnd.randrange(0, 2000)
        x = rnd.random()
        if x < p.refused:
            kind = "refused"
        elif x < p.refused + p.unanswered:
            kind = "unanswered"
        elif x < p.refused + p.unanswered + p.rst:
            kind = "rst"
        else:
            kind = "fin"
        v6 = rnd.random() < p.v6
        mss = 1440 if v6 else 1460
        payload = mss - 12  # less the timestamp option
        rtt = int(math.exp(rnd.uniform(*lrtt)))
        sc = _Script()
        if kind in ("refused", "unanswered"):
            _failed_open(rnd, sc, kind)
        elif p.scenario == "bulk" and kind == "fin":
            _bulk(rnd, sc, rtt, payload)
        else:
            _short(rnd, sc, kind, rtt, payload, p)
        if len(sc.rows) > remaining:  # the last connections: exactly fill the capture
            sc = _Script()
            if remaining >= 10:
                kind = "fin"
                _short_exact(rnd, sc, rtt, payload, p, remaining)
            elif remaining >= 2:
                kind = "refused"
                _failed_open(rnd, sc, kind)
            else:
                kind = "unanswered"
                _failed_open(rnd, sc, kind, syns=1)
        script = sc.sorted_rows()
        # a failed attempt does not hold a slot: the next connection starts right away
        hold = script[-1][0] if kind in ("fin", "rst") else rnd.randrange(100, 3000)
        heapq.heappush(heap, begin + hold)
        for r in script:
            rows.extend(r)
        lens.append(len(script))
        remaining -= len(script)
        start.append(begin)
        kinds.append(KINDS.index(kind))
        while True:
            host = rnd.getrandbits(17) if not v6 else rnd.getrandbits(64) | (rnd.randrange(1, 4096) << 64)
            port = rnd.randrange(32768, 61000)
            if (host << 1 | v6, port) not in used:
                used.add((host << 1 | v6, port))
                break
        v6s.append(v6)
        caddr.append((v6_net | host) if v6 else (v4_net + (host << 96)))
        j = rnd.randrange(2)
        saddr.append(servers6[j] if v6 else servers4[j])
        sport.append(rnd.choices(SERVER_PORTS, SERVER_PORT_WEIGHTS)[0])
        cport.append(port)
        for side in (C, S):
            sent = sc.nxt[side]
            if rnd.random() < p.wrap:
                isn.append((1 << 32) - rnd.randrange(1, max(2, sent)))
            else:
                isn.append(rnd.getrandbits(32))
            win.append(rnd.randrange(500, 3000))
            tsoff.append(rnd.getrandbits(32))
        ttl.append(64 - rnd.randrange(3, 20))

    n = len(lens)
    pk = np.frombuffer(rows, dtype=np.int64).reshape(-1, 7)
    assert len(pk) == p.packets, (len(pk), p.packets)
    t_rel, d, flags, rseq, rack, plen, opt = (pk[:, i].copy() for i in range(7))
    del pk, rows
    conn = np.repeat(np.arange(n, dtype=np.int64), np.array(lens, dtype=np.int64))
    # capture order: by time; strictly increasing (at least 1 us apart), order kept on ties
    t_abs = np.array(start, dtype=np.int64)[conn] + t_rel
    order = np.argsort(t_abs, kind="stable")
    ramp = np.arange(len(order), dtype=np.int64)
    ts_sorted = np.maximum.accumulate(t_abs[order] - ramp) + ramp + 1_700_000_000_000_000
    ts = np.empty_like(ts_sorted)
    ts[order] = ts_sorted  # in script order: each connection's packets are contiguous
    isn_a = np.array(isn, dtype=np.int64).reshape(-1, 2)
    win_a = np.array(win, dtype=np.int64).reshape(-1, 2)
    tsoff_a = np.array(tsoff, dtype=np.int64).reshape(-1, 2)
    v6_a = np.array(v6s, dtype=bool)
    seq = np.where(rseq < 0, 0, (isn_a[conn, d] + rseq) & MASK32)
    ack = np.where(rack < 0, 0, (isn_a[conn, 1 - d] + rack) & MASK32)
    tsval = (tsoff_a[conn, d] + ts // 1000) & MASK32
    # TSecr: the TSval of the peer's latest segment in the same connection, 0 before there is one
    pos = np.arange(len(d), dtype=np.int64)
    last = [np.maximum.accumulate(np.where(d == k, pos, -1)) for k in (C, S)]
    peer = np.where(d == C, last[S], last[C])
    ok = peer >= 0
    peer = np.maximum(peer, 0)
    ok &= conn[peer] == conn
    tsecr = np.where(ok, tsval[peer], 0)
    syn = (flags & SYN) != 0
    synwin = np.where(v6_a[conn], 64800, np.where(flags & ACK, 65160, 64240))
    win_p = np.where(syn, synwin, np.where(flags & RST & (opt == OPT_NONE), 0, win_a[conn, d]))
    conns = _Conns(
        v6=v6_a,
        caddr=_addr_array(caddr),
        saddr=_addr_array(saddr),
        cport=np.array(cport, dtype=np.int64),
        sport=np.array(sport, dtype=np.int64),
        ttl=np.array(ttl, dtype=np.int64),
        ts_us=ts_sorted,
        conn=conn[order],
        d=d[order],
        flags=flags[order],
        seq=seq[order],
        ack=ack[order],
        win=win_p[order],
        opt=opt[order],
        tsval=tsval[order],
        tsecr=tsecr[order],
        plen=plen[order],
    )
    kind_a = np.array(kinds, dtype=np.int8)
    truth = Truth(
        packets=p.packets,
        connections=n,
        kinds={k: int((kind_a == i).sum()) for i, k in enumerate(KINDS)},
        gen_seconds=time.perf_counter() - t0,
        kind=kind_a,
        v6=v6_a,
        caddr=conns.caddr,
        cport=conns.cport,
    )
    return conns, truth


def _generate_synflood(p: Params) -> tuple[_Conns, Truth]:
    """Distinct SYNs (one per random client address:port) to one server port."""
    t0 = time.perf_counter()
    rng = np.random.default_rng([p.seed, 0x5F1D])
    n = p.packets
    # unique (address, port) keys, in random order
    space = (1 << 32) * 64512
    keys = np.empty(0, dtype=np.int64)
    extra = n // 100 + 100
    while len(keys) < n:
        cand = rng.integers(0, space, size=n + extra, dtype=np.int64)
        _, first = np.unique(cand, return_index=True)
        keys = cand[np.sort(first)]
        extra *= 2
    keys = keys[:n]
    port = 1024 + keys % 64512
    host = keys // 64512  # 32 bits
    v6 = rng.random(n) < p.v6
    caddr = np.zeros((n, 16), dtype=np.uint8)
    h4 = host.astype(">u4").view(np.uint8).reshape(n, 4)
    caddr[~v6, :4] = h4[~v6]
    # 2001:db8:<random 64 bits>:<host 32 bits>... with the key's host part last: still unique
    caddr[v6, 0:4] = np.array([0x20, 0x01, 0x0D, 0xB8], dtype=np.uint8)
    caddr[v6, 4:12] = rng.integers(0, 256, size=(int(v6.sum()), 8), dtype=np.uint8)
    caddr[v6, 12:16] = h4[v6]
    saddr = np.zeros((n, 16), dtype=np.uint8)
    saddr[~v6, :4] = np.frombuffer(socket.inet_aton("192.0.2.10"), dtype=np.uint8)
    saddr[v6] = np.frombuffer(socket.inet_pton(socket.AF_INET6, "2001:db8:ffff::10"), dtype=np.uint8)
    ts = 1_700_000_000_000_000 + np.cumsum(rng.integers(1, 20, size=n, dtype=np.int64))
    zeros = np.zeros(n, dtype=np.int64)
    conns = _Conns(
        v6=v6,
        caddr=caddr,
        saddr=saddr,
        cport=port,
        sport=np.full(n, 443, dtype=np.int64),
        ttl=rng.integers(40, 64, size=n, dtype=np.int64),
        ts_us=ts,
        conn=np.arange(n, dtype=np.int64),
        d=zeros,
        flags=np.full(n, SYN, dtype=np.int64),
        seq=rng.integers(0, 1 << 32, size=n, dtype=np.int64),
        ack=zeros,
        win=np.where(v6, 64800, 64240),
        opt=np.full(n, OPT_SYN, dtype=np.int64),
        tsval=rng.integers(0, 1 << 32, size=n, dtype=np.int64),
        tsecr=zeros,
        plen=zeros,
    )
    truth = Truth(
        packets=n,
        connections=n,
        kinds={"fin": 0, "rst": 0, "refused": 0, "unanswered": n},
        gen_seconds=time.perf_counter() - t0,
        kind=np.full(n, KINDS.index("unanswered"), dtype=np.int8),
        v6=v6,
        caddr=caddr,
        cport=port,
    )
    return conns, truth


# --- pcap writing (vectorised) ---------------------------------------------------------------

_ETH_C2S = np.frombuffer(bytes.fromhex("020000000002020000000001"), dtype=np.uint8)  # to the server
_ETH_S2C = np.frombuffer(bytes.fromhex("020000000001020000000002"), dtype=np.uint8)
_CHUNK = 1 << 18


def _fold(s: I64) -> I64:
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def _frames(c: _Conns, sel: I64, v6: bool, rng: np.random.Generator) -> tuple[U8, I64]:
    """Records (16-byte pcap header + captured frame, zero-padded to 16 + SNAPLEN) of the
    packets ``sel``, all of one IP version, and their record lengths."""
    n = len(sel)
    width = 16 + SNAPLEN
    a = np.zeros((n, width), dtype=np.uint8)
    h = a.view(">u2")  # big-endian 16-bit words: every field below starts at an even offset
    conn, d = c.conn[sel], c.d[sel]
    opt, plen = c.opt[sel], c.plen[sel]
    fwd = d == C
    ip_off, ip_len = 30, (40 if v6 else 20)
    t = ip_off + ip_len  # TCP header offset in the record
    tcp_len = 20 + OPT_LEN[opt]
    frame_len = 14 + ip_len + tcp_len + plen
    caplen = np.minimum(frame_len, SNAPLEN)
    ts = c.ts_us[sel]
    le = a.view("<u4")
    le[:, 0] = ts // 1_000_000
    le[:, 1] = ts % 1_000_000
    le[:, 2] = caplen
    le[:, 3] = frame_len
    a[fwd, 16:28] = _ETH_C2S
    a[~fwd, 16:28] = _ETH_S2C
    src = np.where(fwd[:, None], c.caddr[conn], c.saddr[conn])
    dst = np.where(fwd[:, None], c.saddr[conn], c.caddr[conn])
    hop = np.where(fwd, c.ttl[conn], 64)
    if v6:
        h[:, 14] = 0x86DD
        flow = (conn * 2654435761) & 0xFFFFF
        h[:, 15] = 0x6000 | (flow >> 16)
        h[:, 16] = flow & 0xFFFF
        h[:, 17] = tcp_len + plen
        h[:, 18] = 0x0600 | hop
        a[:, 38:54] = src
        a[:, 54:70] = dst
        pseudo = h[:, 19:35].astype(np.int64).sum(axis=1)
    else:
        h[:, 14] = 0x0800
        h[:, 15] = 0x4500
        h[:, 16] = 20 + tcp_len + plen
        h[:, 17] = rng.integers(0, 1 << 16, size=n, dtype=np.int64)  # IP ID
        h[:, 18] = 0x4000  # DF
        h[:, 19] = (hop << 8) | 6
        a[:, 42:46] = src[:, :4]
        a[:, 46:50] = dst[:, :4]
        h[:, 20] = _fold(h[:, 15:25].astype(np.int64).sum(axis=1))
        pseudo = h[:, 21:25].astype(np.int64).sum(axis=1)
    w = t // 2
    h[:, w] = np.where(fwd, c.cport[conn], c.sport[conn])
    h[:, w + 1] = np.where(fwd, c.sport[conn], c.cport[conn])
    seq, ack = c.seq[sel], c.ack[sel]
    h[:, w + 2] = seq >> 16
    h[:, w + 3] = seq & 0xFFFF
    h[:, w + 4] = ack >> 16
    h[:, w + 5] = ack & 0xFFFF
    h[:, w + 6] = ((tcp_len // 4) << 12) | c.flags[sel]
    h[:, w + 7] = c.win[sel]
    tsval, tsecr = c.tsval[sel], c.tsecr[sel]
    o = w + 10
    m = opt == OPT_TS
    h[m, o] = 0x0101
    h[m, o + 1] = 0x080A
    h[m, o + 2] = tsval[m] >> 16
    h[m, o + 3] = tsval[m] & 0xFFFF
    h[m, o + 4] = tsecr[m] >> 16
    h[m, o + 5] = tsecr[m] & 0xFFFF
    m = opt == OPT_SYN
    h[m, o] = 0x0204
    h[m, o + 1] = 1440 if v6 else 1460
    h[m, o + 2] = 0x0402
    h[m, o + 3] = 0x080A
    h[m, o + 4] = tsval[m] >> 16
    h[m, o + 5] = tsval[m] & 0xFFFF
    h[m, o + 6] = tsecr[m] >> 16
    h[m, o + 7] = tsecr[m] & 0xFFFF
    h[m, o + 8] = 0x0103
    h[m, o + 9] = 0x0307  # window scale 7
    # the rest of the row is zeros: the captured payload and anything past the frame
    tcp_sum = h[:, w:].astype(np.int64).sum(axis=1) + pseudo + 6 + tcp_len + plen
    h[:, w + 8] = _fold(tcp_sum)
    return a, 16 + caplen


def _write_pcap(path: Path, c: _Conns, seed: int) -> None:
    rng = np.random.default_rng([seed, 0x1D])
    tmp = path.with_name(path.name + ".tmp")
    width = 16 + SNAPLEN
    col = np.arange(width)[None, :]
    v6p = c.v6[c.conn]
    with tmp.open("wb") as f:
        f.write(np.array([0xA1B2C3D4, 0x00040002, 0, 0, SNAPLEN, 1], dtype="<u4").tobytes())
        for i0 in range(0, len(c.conn), _CHUNK):
            idx = np.arange(i0, min(i0 + _CHUNK, len(c.conn)), dtype=np.int64)
            recs = np.zeros((len(idx), width), dtype=np.uint8)
            reclen = np.zeros(len(idx), dtype=np.int64)
            for v6 in (False, True):
                m = v6p[idx] == v6
                if m.any():
                    recs[m], reclen[m] = _frames(c, idx[m], v6, rng)
            f.write(recs[col < reclen[:, None]].tobytes())
    os.replace(tmp, path)


def ensure_capture(p: Params, out: Path, regen: bool) -> tuple[Path, Truth, bool]:
    """The cached capture and its truth, generated first when missing (or ``regen``)."""
    pcap = out / f"{p.stem()}.pcap"
    truth_path = out / f"{p.stem()}.truth.npz"
    if pcap.exists() and truth_path.exists() and not regen:
        return pcap, Truth.load(truth_path), False
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    conns, truth = _generate_synflood(p) if p.scenario == "synflood" else _generate_flows(p)
    _write_pcap(pcap, conns, p.seed)
    truth.gen_seconds = time.perf_counter() - t0
    truth.save(truth_path)
    return pcap, truth, True


# --- running the tools -------------------------------------------------------------------------


@dataclass
class Run:
    seconds: float
    peak_mb: float
    rc: int
    stderr: str


#: Runs one command and reports its wall time and rusage. The commands are started from this
#: small, fresh interpreter and not from the benchmark itself: on Linux a child's ru_maxrss
#: includes the memory image it was forked from (fork copies it; exec records its high-water
#: mark), so a child of the benchmark process, which holds the generated captures, would report
#: at least the benchmark's own size.
_LAUNCHER = r"""
import json, os, subprocess, sys, time
argv, out, err = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
with open(out, "wb") as o, open(err, "wb") as e:
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=o, stderr=e, stdin=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
proc.returncode = os.waitstatus_to_exitcode(status)
print(json.dumps({"seconds": seconds, "maxrss_kib": usage.ru_maxrss, "rc": proc.returncode}))
"""


def run_measured(argv: Sequence[str], stdout: Path | None = None) -> Run:
    """Run ``argv`` to completion: wall time and ``ru_maxrss`` (KiB on Linux) from ``os.wait4``
    on a ``subprocess.Popen``, in a small launcher (see :data:`_LAUNCHER`)."""
    err_path = OUT / ".bench_analyze.stderr"
    out = os.devnull if stdout is None else str(stdout)
    launcher = [sys.executable, "-I", "-S", "-c", _LAUNCHER, json.dumps(list(argv)), out, str(err_path)]
    done = subprocess.run(launcher, capture_output=True, text=True, check=False)
    text = err_path.read_text(errors="replace") if err_path.exists() else ""
    err_path.unlink(missing_ok=True)
    if done.returncode != 0:
        return Run(math.nan, math.nan, 127, f"launcher failed: {done.stderr.strip()[-1000:]}")
    r = json.loads(done.stdout)
    return Run(r["seconds"], r["maxrss_kib"] / 1024, r["rc"], text)


@dataclass
class Tool:
    name: str
    argv: list[str]  # the capture path and the output are appended per capture
    kind: str  # "tcptrace" or "tcpsm"
    extra: list[str] = field(default_factory=list)  # after tcpsm's own arguments
    runs: list[Run] = field(default_factory=list)
    csv_hashes: list[str] = field(default_factory=list)

    def csv(self, pcap: Path, out: Path) -> Path:
        slug = re.sub(r"[^A-Za-z0-9]+", "_", self.name).strip("_")
        return out / f"{pcap.stem}.{slug}.csv"

    def best(self) -> float:
        ok = [r.seconds for r in self.runs if r.rc == 0]
        return min(ok) if ok else math.nan

    def peak(self) -> float:
        """The largest peak of the successful runs (a crash's peak proves nothing)."""
        return max((r.peak_mb for r in self.runs if r.rc == 0), default=math.nan)

    def failed(self) -> bool:
        return any(r.rc != 0 for r in self.runs)


def find_tcpsm(spec: str | None) -> list[str]:
    if spec:
        return shlex.split(spec)
    here = Path(sys.executable).parent / "tcpsm"
    if here.exists():
        return [str(here)]
    found = shutil.which("tcpsm")
    if not found:
        sys.exit("tcpsm not found: activate the venv (. /tmp/civenv/bin/activate) or pass --tcpsm")
    return [found]


def prepare_tcpsm(tcpsm: list[str]) -> str:
    """Byte-compile tcpsm's package as an install would (an editable checkout under
    ``PYTHONDONTWRITEBYTECODE`` would otherwise compile it again on every run, ~0.15 s), and
    say whether its compiled helpers (reader and engine) are in use."""
    python = Path(tcpsm[0]).parent / "python"
    if not python.exists():
        return "unknown (no python beside tcpsm)"
    code = (
        "import compileall, os, tcptrace_sm; from tcptrace_sm import capture; "
        "compileall.compile_dir(os.path.dirname(tcptrace_sm.__file__), quiet=1); "
        "print(capture.COMPILED)"
    )
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False)
    return {"True": "yes", "False": "NO (numpy reader, about four times as slow)"}.get(
        out.stdout.strip(), f"unknown ({out.stderr.strip()[-200:]})"
    )


def tcpsm_has_jobs(tcpsm: list[str]) -> bool:
    out = subprocess.run([*tcpsm, "analyze", "--help"], capture_output=True, text=True, check=False)
    return re.search(r"--jobs\b", out.stdout) is not None


def mem_available_mb() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return math.inf


def _json_safe(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_json_safe(v) for v in x]
    return x


def tcptrace_connections(pcap: Path, tcptrace: str, out: Path) -> dict[str, int]:
    """tcptrace's view, from one untimed run: connections, and those it calls complete / reset."""
    listing = out / f"{pcap.stem}.tcptrace.txt"
    r = run_measured([tcptrace, "-n", str(pcap)], stdout=listing)
    text = listing.read_text(errors="replace")
    lines = [ln for ln in text.splitlines() if re.match(r"\s*\d+: ", ln)]
    m = re.search(r"(\d+) TCP connections? traced", text)
    return {
        "rc": r.rc,
        "connections": int(m.group(1)) if m else len(lines),
        "listed": len(lines),
        "complete": sum("(complete)" in ln for ln in lines),
        "reset": sum("(reset)" in ln for ln in lines),
    }


# --- correctness -------------------------------------------------------------------------------


def check_csv(csv_path: Path, truth: Truth) -> dict[str, Any]:
    """tcpsm's flows against the ground truth."""
    expected = truth.by_client()
    closes: Counter[str] = Counter()
    matrix: Counter[tuple[str, str]] = Counter()
    states: dict[str, Counter[str]] = {k: Counter() for k in (*KINDS, "unmatched")}
    anomalies: dict[str, Counter[str]] = {k: Counter() for k in (*KINDS, "unmatched")}
    rows = 0
    with csv_path.open(newline="") as f:
        reader = csv.reader(f)
        head = next(reader)
        col = {name: i for i, name in enumerate(head)}
        ci, cp, cl = col["client_ip"], col["client_port"], col["close"]
        cs, ss, an = col["client_state"], col["server_state"], col["anomalies"]
        for row in reader:
            rows += 1
            close = row[cl]
            closes[close] += 1
            kind = expected.pop((row[ci], int(row[cp])), "unmatched")
            matrix[kind, close] += 1
            states[kind][f"{row[cs]}/{row[ss]}"] += 1
            for code in filter(None, re.split(r"[;, ]+", row[an])):
                anomalies[kind][code] += 1
    missing: Counter[str] = Counter(expected.values())
    mismatches = []
    if rows != truth.connections:
        mismatches.append(f"connections: tcpsm {rows:,}, generated {truth.connections:,}")
    for k in ("refused", "unanswered", "rst", "fin"):
        if closes[k] != truth.kinds[k]:
            mismatches.append(f"close={k}: tcpsm {closes[k]:,}, generated {truth.kinds[k]:,}")
    return {
        "connections": rows,
        "close": dict(closes),
        "matrix": {f"{k}->{c}": v for (k, c), v in sorted(matrix.items())},
        "missing": dict(missing),
        "states": {k: dict(v.most_common(4)) for k, v in states.items() if v},
        "anomalies": {k: dict(v.most_common(6)) for k, v in anomalies.items() if v},
        "mismatches": mismatches,
    }


def print_check(chk: dict[str, Any], truth: Truth) -> None:
    print("  correctness (tcpsm CSV vs generator):")
    for k in ("refused", "unanswered", "rst", "fin"):
        got, want = chk["close"].get(k, 0), truth.kinds[k]
        print(f"    close={k:<11} {got:>10,}  expected {want:>10,}  {'ok' if got == want else 'MISMATCH'}")
    print(
        f"    {'connections':<17} {chk['connections']:>10,}  expected {truth.connections:>10,}  "
        f"{'ok' if chk['connections'] == truth.connections else 'MISMATCH'}"
    )
    others = {k: v for k, v in chk["close"].items() if k not in ("refused", "unanswered", "rst", "fin")}
    if others:
        print("    other close kinds: " + ", ".join(f"{k} {v:,}" for k, v in sorted(others.items())))
    print("    truth -> tcpsm close: " + ", ".join(f"{k} {v:,}" for k, v in chk["matrix"].items()))
    if chk["missing"]:
        print("    generated but not in the CSV (by client addr:port): " + _fmt_counts(chk["missing"]))
    for k, st in chk["states"].items():
        an = chk["anomalies"].get(k)
        print(f"    {k:<10} states {_fmt_counts(st)}" + (f"; anomalies {_fmt_counts(an)}" if an else ""))


def _fmt_counts(d: dict[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in d.items())


# --- the benchmark -----------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    ok: bool | None  # None: could not be judged
    detail: str
    applies: bool = True

    def verdict(self) -> str:
        if not self.applies:
            return "info"
        return "PASS" if self.ok else ("FAIL" if self.ok is False else "FAIL (not judged)")


def bench_capture(pcap: Path, tools: list[Tool], repeat: int, out: Path) -> None:
    """Alternate the tools ``repeat`` times over one capture."""
    for r in range(repeat):
        for tool in tools if r % 2 == 0 else tools[::-1]:
            csv_path = tool.csv(pcap, out)
            if tool.kind == "tcpsm":
                argv = [*tool.argv, "analyze", str(pcap), "--format", "csv", "-o", str(csv_path), "--quiet"]
                argv += tool.extra
            else:
                argv = [*tool.argv, "-n", str(pcap)]
            run = run_measured(argv)
            tool.runs.append(run)
            if tool.kind == "tcpsm":
                digest = hashlib.sha256(csv_path.read_bytes()).hexdigest() if csv_path.exists() else "-"
                tool.csv_hashes.append(digest)
            last = (run.stderr.strip().splitlines() or [""])[-1]
            status = "" if run.rc == 0 else f"  EXIT {run.rc}: {last[-200:]}"
            print(f"    run {r + 1} {tool.name:<22} {run.seconds:7.2f} s  {run.peak_mb:7.1f} MB{status}")
            sys.stdout.flush()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--packets", type=int, default=1_000_000, help="packets of short and bulk")
    ap.add_argument("--syns", type=int, default=1_000_000, help="SYNs of synflood")
    ap.add_argument("--only", default="short,bulk,synflood", help="comma-separated scenarios")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per tool; the best counts")
    ap.add_argument("--jobs-also", action="store_true", help="also time tcpsm's default jobs setting")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--tcpsm", help="command to run tcpsm (default: the venv's tcpsm)")
    ap.add_argument("--regen", action="store_true", help="regenerate the captures even if cached")
    ap.add_argument("--gen-only", action="store_true", help="generate the captures and stop")
    ap.add_argument("--json", type=Path, help="write every measurement there")
    a = ap.parse_args()
    scenarios = [s.strip() for s in a.only.split(",") if s.strip()]
    for s in scenarios:
        if s not in ("short", "bulk", "synflood"):
            ap.error(f"unknown scenario {s!r}")

    OUT.mkdir(parents=True, exist_ok=True)
    tcpsm = find_tcpsm(a.tcpsm)
    tcptrace = shutil.which("tcptrace")
    jobs = tcpsm_has_jobs(tcpsm)
    compiled = prepare_tcpsm(tcpsm)
    print(
        f"tcpsm: {' '.join(tcpsm)} ({'--jobs 1' if jobs else 'no --jobs option'}; compiled helpers: "
        f"{compiled}); "
        f"tcptrace: {tcptrace or 'MISSING'}; Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, {platform.machine()}"
    )
    if not tcptrace:
        print("tcptrace is not installed: `apt-get install tcptrace`; its runs are skipped")
    print(
        "peak MB = ru_maxrss from os.wait4: the largest resident set of the command or of any "
        "descendant it waited for (a max over them, not a sum; floor ~11 MB, the launcher's size)"
    )
    results: dict[str, Any] = {
        "meta": {
            "generator_version": GEN_VERSION,
            "snaplen": SNAPLEN,
            "tcpsm": tcpsm,
            "tcpsm_jobs_option": jobs,
            "tcpsm_compiled_reader": compiled,
            "tcptrace": tcptrace,
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "repeat": a.repeat,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
        "scenarios": {},
    }
    targets: list[Target] = []
    checks_ok = True

    captures: list[tuple[str, Params, Path, Truth]] = []
    for s in scenarios:
        p = scenario_params(s, a.packets, a.syns, a.seed)
        pcap, truth, made = ensure_capture(p, OUT, a.regen)
        size = pcap.stat().st_size / 1e6
        how = f"generated in {truth.gen_seconds:.1f} s" if made else "cached"
        print(f"{s}: {pcap.name} ({size:.1f} MB, {how})")
        captures.append((s, p, pcap, truth))
    if a.gen_only:
        return 0

    for s, p, pcap, truth in captures:
        print()
        kinds = ", ".join(f"{k} {truth.kinds[k]:,}" for k in KINDS)
        print(f"== {s}: {truth.packets:,} packets, {truth.connections:,} connections ({kinds})")
        tools: list[Tool] = []
        need = truth.connections * TCPTRACE_KIB_PER_CONN / 1024 + 50
        trace = tcptrace
        if trace and need > TCPTRACE_MEM_SHARE * mem_available_mb():
            print(
                f"  tcptrace skipped: it would need ~{need:,.0f} MB, {mem_available_mb():,.0f} MB available"
            )
            trace = None
        if trace:
            tools.append(Tool("tcptrace -n", [trace], "tcptrace"))
        tools.append(
            Tool("tcpsm --jobs 1" if jobs else "tcpsm", tcpsm, "tcpsm", ["--jobs", "1"] if jobs else [])
        )
        if a.jobs_also:
            if jobs:
                tools.append(Tool("tcpsm default jobs", tcpsm, "tcpsm"))
            else:
                print("  --jobs-also: tcpsm has no --jobs option, nothing more to run")
        bench_capture(pcap, tools, a.repeat, OUT)
        trace_info = tcptrace_connections(pcap, trace, OUT) if trace else None

        ref = tools[0] if trace else None
        main_sm = next(t for t in tools if t.kind == "tcpsm")
        print(f"  {'tool':<22} {'seconds':>8} {'packets/s':>11} {'peak MB':>8} {'tcptrace/tool':>14}")
        for t in tools:
            best = t.best()
            pps = truth.packets / best if best > 0 else math.nan
            ratio = (ref.best() / best) if ref and t is not ref else math.nan
            rs = f"{'':>14}" if math.isnan(ratio) else f"{ratio:14.2f}"
            print(f"  {t.name:<22} {best:8.2f} {pps / 1000:9.0f} k {t.peak():8.1f} {rs}")
        ratio = ref.best() / main_sm.best() if ref else math.nan

        sres: dict[str, Any] = {
            "capture": str(pcap),
            "params": asdict(p),
            "truth": {"packets": truth.packets, "connections": truth.connections, "kinds": truth.kinds},
            "gen_seconds": truth.gen_seconds,
            "tools": {
                t.name: {
                    "argv": t.argv,
                    "runs": [asdict(r) | {"stderr": r.stderr[-2000:]} for r in t.runs],
                    "best_seconds": t.best(),
                    "peak_mb": t.peak(),
                    "packets_per_second": truth.packets / t.best(),
                }
                for t in tools
            },
            "ratio_tcptrace_over_tcpsm": ratio,
            "tcptrace_connections": trace_info,
        }

        # correctness, on every tcpsm variant
        sres["correctness"] = {}
        first_hash = None
        for t in tools:
            if t.kind != "tcpsm":
                continue
            bad = [r for r in t.runs if r.rc != 0]
            csv_path = t.csv(pcap, OUT)
            if bad or not csv_path.exists():
                print(f"  {t.name}: FAILED ({len(bad)} runs exited non-zero); no correctness check")
                checks_ok = False
                sres["correctness"][t.name] = {"error": bad[0].stderr[-2000:] if bad else "no CSV"}
                continue
            chk = check_csv(csv_path, truth)
            if len(set(t.csv_hashes)) > 1:
                chk["mismatches"].append(f"{t.name}: the CSV differs between repeats")
            if first_hash is None:
                first_hash = t.csv_hashes[-1]
            elif t.csv_hashes[-1] != first_hash:
                evicted = any("flow_evicted" in a for a in chk["anomalies"].values())
                if evicted:  # each worker caps max_flows / workers: documented, not an error
                    print(f"  [{t.name}] differs from --jobs 1; connections were evicted (per worker)")
                else:
                    chk["mismatches"].append(f"{t.name}: the CSV differs from the --jobs 1 one")
            if t is main_sm or chk["mismatches"]:
                print(f"  [{t.name}]")
                print_check(chk, truth)
            for msg in chk["mismatches"]:
                print(f"    MISMATCH {msg}")
            checks_ok &= not chk["mismatches"]
            sres["correctness"][t.name] = chk
        if trace_info:
            print(
                f"  tcptrace: {trace_info['connections']:,} connections "
                f"({trace_info['complete']:,} complete, {trace_info['reset']:,} reset; "
                f"generated {truth.connections:,})"
            )

        # targets; a tcpsm that exited non-zero on any run fails them all
        sound = not main_sm.failed()
        note = "" if sound else "; tcpsm exited non-zero"
        if s in SPEED_TARGETS:
            op, limit = SPEED_TARGETS[s]
            if ref is None:
                targets.append(Target(f"{s} speed", None, f"ratio {op} {limit}: tcptrace not run"))
            else:
                ok = sound and (ratio > limit if op == ">" else ratio >= limit)
                targets.append(
                    Target(
                        f"{s} speed",
                        ok,
                        f"tcptrace {ref.best():.2f} s / tcpsm {main_sm.best():.2f} s = {ratio:.2f} "
                        f"(target {op} {limit}){note}",
                    )
                )
        if s in ("short", "bulk"):
            peak = main_sm.peak()
            if p.packets >= MEM_POINT:
                base_p = scenario_params(s, 1_000_000, a.syns, a.seed)
                base_pcap, base_truth, made = ensure_capture(base_p, OUT, False)
                if made:
                    print(f"  generated {base_pcap.name} for the 1M memory baseline")
                base_tool = Tool(main_sm.name, main_sm.argv, "tcpsm", main_sm.extra)
                print("  1M baseline for the memory growth:")
                bench_capture(base_pcap, [base_tool], 1, OUT)
                base_peak = base_tool.peak()
                base_csv = base_tool.csv(base_pcap, OUT)
                if base_tool.failed() or not base_csv.exists():
                    checks_ok = sound = False
                    note = "; tcpsm exited non-zero"
                else:
                    base_chk = check_csv(base_csv, base_truth)
                    for msg in base_chk["mismatches"]:
                        print(f"    MISMATCH (1M baseline) {msg}")
                    checks_ok &= not base_chk["mismatches"]
                    sres["memory_baseline_1M_correctness"] = base_chk
                sres["memory_baseline_1M_peak_mb"] = base_peak
                ok = sound and peak <= MEM_ABS_MB and peak <= MEM_GROWTH * base_peak
                targets.append(
                    Target(
                        f"{s} memory",
                        ok,
                        f"{p.packets / 1e6:g}M peak {peak:.1f} MB (<= {MEM_ABS_MB:g}), 1M peak "
                        f"{base_peak:.1f} MB: x{peak / base_peak:.2f} (<= {MEM_GROWTH}){note}",
                    )
                )
            else:
                targets.append(
                    Target(
                        f"{s} memory",
                        peak <= MEM_ABS_MB,
                        f"peak {peak:.1f} MB at {p.packets / 1e6:g}M; judged at --packets {MEM_POINT} "
                        f"(<= {MEM_ABS_MB:g} MB and <= {MEM_GROWTH} x the 1M peak){note}",
                        applies=False,
                    )
                )
        if s == "synflood":
            peak = main_sm.peak()
            targets.append(
                Target(
                    "synflood memory",
                    sound and peak <= SYNFLOOD_MB,
                    f"{truth.packets:,} SYNs: peak {peak:.1f} MB (target <= {SYNFLOOD_MB:g} MB){note}",
                )
            )
        results["scenarios"][s] = sres

    print()
    print("== targets")
    for tg in targets:
        print(f"  {tg.verdict():<18} {tg.name:<16} {tg.detail}")
    print(f"  {'PASS' if checks_ok else 'FAIL':<18} {'correctness':<16} flow counts and close kinds")
    passed = checks_ok and all(tg.ok for tg in targets if tg.applies)
    print(f"overall: {'PASS' if passed else 'FAIL'}")
    results["targets"] = [asdict(tg) | {"verdict": tg.verdict()} for tg in targets]
    results["correctness_ok"] = checks_ok
    results["passed"] = passed
    if a.json:
        a.json.write_text(json.dumps(_json_safe(results), indent=2) + "\n")
        print(f"measurements written to {a.json}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
