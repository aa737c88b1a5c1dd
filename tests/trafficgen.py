"""Generated TCP traffic with ground truth of intent, for engine-equivalence and scale tests.

``traffic(seed, connections)`` returns segments of many interleaved connections as
``(ts_ns, src, sport, dst, dport, seq, ack, flags, win, payload_len, options)`` tuples in time
order; ``write_pcap(path, segments)`` writes them as an Ethernet pcap (µs). Connections take
random paths on purpose: orderly closes by either side (with or without a combined FIN-ACK),
half closes, resets, refusals, unanswered SYNs, retransmissions, zero windows, data beyond a
small window, lost and repeated FINs, keep-alives, segments long after the close, 4-tuple
reuse, IPv6, sequence numbers that wrap. Both engines must agree on every one of them.
"""

from __future__ import annotations

import random
from pathlib import Path

from pcapgen import ACK, FIN, LT_ETHERNET, PSH, RST, SYN, frame, pcap, tcp4, tcp6

Seg = tuple[int, str, int, str, int, int, int, int, int, int, bytes]

_MS = 1_000_000
_S = 1_000_000_000
_SYN_OPTS = b"\x02\x04\x05\xb4\x04\x02\x08\x0a\x00\x00\x00\x01\x00\x00\x00\x00\x01\x03\x03\x07"
_SYN_OPTS_NOWS = b"\x02\x04\x05\xb4\x04\x02\x08\x0a\x00\x00\x00\x01\x00\x00\x00\x00"
_M = 0xFFFFFFFF


class _Conn:
    def __init__(self, rng: random.Random, t0: int, i: int, ports: dict[tuple[str, str, int], int]) -> None:
        self.rng = rng
        self.t = t0
        self.out: list[Seg] = []
        v6 = rng.random() < 0.15
        reuse = rng.random() < 0.04 and ports
        if reuse:
            (self.c, self.s, self.sp), self.cp = rng.choice(sorted(ports.items()))
        else:
            self.c = (
                f"2001:db8::{i % 5000 + 1:x}"
                if v6
                else f"10.{i // 60000 % 200}.{i // 250 % 240}.{i % 250 + 1}"
            )
            self.s = "2001:db8:ffff::1" if ":" in self.c else f"192.0.2.{1 + i % 3}"
            self.sp = rng.choice((80, 443, 8080))
            self.cp = 1024 + (i * 7919) % 60000
        ports[(self.c, self.s, self.sp)] = self.cp
        self.ci = rng.choice((rng.getrandbits(32), 0xFFFFFFFF - rng.randrange(5000)))
        self.si = rng.getrandbits(32)
        self.cn = (self.ci + 1) & _M
        self.sn = (self.si + 1) & _M
        self.ws = rng.random() < 0.8

    def step(self, lo: float = 0.05, hi: float = 3.0) -> None:
        self.t += int(self.rng.uniform(lo, hi) * _MS)

    def seg(
        self,
        client: bool,
        flags: int,
        length: int = 0,
        *,
        seq: int | None = None,
        ack: int | None = None,
        win: int = 500,
        opts: bytes = b"",
    ) -> None:
        if client:
            s = self.cn if seq is None else seq
            a = self.sn if ack is None else ack
            self.out.append((self.t, self.c, self.cp, self.s, self.sp, s, a, flags, win, length, opts))
        else:
            s = self.sn if seq is None else seq
            a = self.cn if ack is None else ack
            self.out.append((self.t, self.s, self.sp, self.c, self.cp, s, a, flags, win, length, opts))

    def data(self, client: bool, n: int, win: int = 500) -> None:
        self.seg(client, ACK | PSH, n, win=win)
        if client:
            self.cn = (self.cn + n) & _M
        else:
            self.sn = (self.sn + n) & _M

    def run(self) -> list[Seg]:
        r = self.rng
        kind = r.choices(
            ["normal", "refused", "unanswered", "reset", "half", "open", "odd"], [60, 5, 5, 8, 6, 6, 10]
        )[0]
        opts = _SYN_OPTS if self.ws else _SYN_OPTS_NOWS
        self.seg(True, SYN, seq=self.ci, ack=0, win=64240, opts=opts)
        if kind == "unanswered":
            for k in range(r.randrange(0, 3)):
                self.t += (1 << k) * _S
                self.seg(True, SYN, seq=self.ci, ack=0, win=64240, opts=opts)
            return self.out
        self.step()
        if kind == "refused":
            self.seg(False, RST | ACK, seq=0, ack=(self.ci + 1) & _M, win=0)
            return self.out
        self.seg(False, SYN | ACK, seq=self.si, ack=self.cn, win=65160, opts=opts)
        self.step()
        first = r.random() < 0.7
        if first:
            self.seg(True, ACK)
            self.step()
        # exchanges
        small = r.random() < 0.2  # a small window, so data goes "beyond" it for a while
        for _ in range(r.randrange(1, 6)):
            self.data(True, r.randrange(1, 400), win=200 if small else 500)
            self.step()
            if r.random() < 0.5:
                self.seg(False, ACK)
                self.step()
            for _k in range(r.randrange(1, 4)):
                self.data(False, r.choice((100, 1448, 700)), win=500)
                self.step()
            self.seg(True, ACK, win=0 if r.random() < 0.05 else 500)
            self.step()
            if kind == "odd":
                self.odd_middle()
        if kind == "open":
            return self.out
        if kind == "reset":
            who = r.random() < 0.7
            self.seg(who, RST | ACK, win=0)
            if r.random() < 0.2:  # the peer had data in flight
                self.step()
                self.data(not who, 50)
            return self.out
        cfirst = r.random() < 0.6
        self.close(cfirst, half=kind == "half")
        if kind == "odd":
            self.odd_end(cfirst)
        return self.out

    def close(self, cfirst: bool, half: bool) -> None:
        r = self.rng
        self.seg(cfirst, FIN | ACK)
        if cfirst:
            self.cn = (self.cn + 1) & _M
        else:
            self.sn = (self.sn + 1) & _M
        self.step()
        combined = r.random() < 0.4 and not half
        if not combined:
            self.seg(not cfirst, ACK)
            self.step()
        if half:
            for _ in range(r.randrange(0, 3)):
                self.data(not cfirst, 300)
                self.step()
                self.seg(cfirst, ACK)
                self.step()
            if r.random() < 0.5:
                return
            self.t += int(r.uniform(0, 2.5) * _S)
        self.seg(not cfirst, FIN | ACK)
        if cfirst:
            self.sn = (self.sn + 1) & _M
        else:
            self.cn = (self.cn + 1) & _M
        self.step()
        self.seg(cfirst, ACK)

    def odd_middle(self) -> None:
        r = self.rng
        x = r.randrange(6)
        if x == 0:  # a retransmission of the last data
            self.seg(True, ACK | PSH, 50, seq=(self.cn - 50) & _M)
        elif x == 1:  # keep-alive
            self.seg(True, ACK, seq=(self.cn - 1) & _M)
        elif x == 2:  # a pause long enough for Zeek's timers
            self.t += 6 * _S
            self.seg(False, ACK)
        elif x == 3:  # an ACK of data never sent
            self.seg(False, ACK, ack=(self.cn + 1000) & _M)
        elif x == 4:  # data after a hole (a lost segment)
            self.cn = (self.cn + 100) & _M
            self.data(True, 10)
        else:  # an out-of-window RST that does nothing
            self.seg(False, RST, seq=(self.sn + 10_000_000) & _M)
        self.step()

    def odd_end(self, cfirst: bool) -> None:
        r = self.rng
        x = r.randrange(5)
        if x == 0:  # the last FIN again (its ACK was lost), soon
            self.step(1, 200)
            self.seg(not cfirst, FIN | ACK, seq=(self.sn - 1 if cfirst else self.cn - 1) & _M)
        elif x == 1:  # the same, long after Zeek forgot the connection
            self.t += int(r.uniform(5.5, 20) * _S)
            self.seg(not cfirst, FIN | ACK, seq=(self.sn - 1 if cfirst else self.cn - 1) & _M)
            self.step()
            self.seg(cfirst, ACK)
        elif x == 2:  # a stray RST long after
            self.t += int(r.uniform(5.5, 20) * _S)
            self.seg(cfirst, RST, win=0)
        elif x == 3:  # data long after the close
            self.t += int(r.uniform(5.5, 20) * _S)
            self.data(cfirst, 10)
        else:  # a new connection on the same 4-tuple a little later (SYN into TIME-WAIT)
            self.t += int(r.uniform(0.5, 8) * _S)
            self.ci = (self.ci + 100_000) & _M
            self.cn = (self.ci + 1) & _M
            self.seg(True, SYN, seq=self.ci, ack=0, win=64240, opts=_SYN_OPTS)


def traffic(seed: int, connections: int, *, span_s: float = 30.0) -> list[Seg]:
    """Segments of ``connections`` connections starting over ``span_s`` seconds, time-ordered."""
    rng = random.Random(seed)
    t0 = 1_700_000_000 * _S
    ports: dict[tuple[str, str, int], int] = {}
    out: list[Seg] = []
    for i in range(connections):
        start = t0 + int(rng.uniform(0, span_s) * _S)
        out.extend(_Conn(rng, start, i, ports).run())
    out.sort(key=lambda s: s[0])
    return out


def write_pcap(path: Path, segments: list[Seg], *, snaplen: int | None = None) -> Path:
    """The segments as an Ethernet pcap; with ``snaplen``, every frame cut to that many bytes
    (as ``tcpdump -s``), its original length kept."""
    records = []
    for ts, src, sp, dst, dp, seq, ack, flags, win, n, opts in segments:
        build = tcp6 if ":" in src else tcp4
        pkt = build(src, dst, sp, dp, bytes(n), seq=seq, ack=ack, flags=flags, win=win, options=opts)
        f = frame(pkt, LT_ETHERNET)
        records.append((ts - ts % 1000, f[:snaplen] if snaplen else f, len(f)))
    path.write_bytes(pcap(records, snaplen=snaplen or 262144))
    return path


def reused_ports(connections: int, *, pool: int = 40, every_ms: int = 50) -> list[Seg]:
    """One client cycling through ``pool`` ports, a connection every ``every_ms``: each 4-tuple
    comes back long before 2 MSL is over, as load generators and busy proxies make it. The
    connections take turns: a close by the client, a close by the server (each leaves a
    TIME-WAIT that the next SYN ends), an unanswered SYN, a refusal, a reset."""
    out: list[Seg] = []
    c, s = "10.9.0.1", "192.0.2.80"
    for i in range(connections):
        t = 1_700_000_000 * _S + i * every_ms * _MS
        cp, kind = 40000 + i % pool, i % 5
        ci, si = (i * 2654435761) & _M, (i * 40503 + 7) & _M
        segs: list[tuple[bool, int, int, int, int]] = [(True, SYN, ci, 0, 0)]  # from client?, ...
        if kind == 3:
            segs.append((False, RST | ACK, 0, ci + 1, 0))
        elif kind != 2:
            segs += [
                (False, SYN | ACK, si, ci + 1, 0),
                (True, ACK, ci + 1, si + 1, 0),
                (True, ACK | PSH, ci + 1, si + 1, 120),
                (False, ACK | PSH, si + 1, ci + 121, 900),
                (True, ACK, ci + 121, si + 901, 0),
            ]
            if kind == 4:
                segs.append((True, RST | ACK, ci + 121, si + 901, 0))
            else:
                a = kind == 0  # the client closes first
                an, bn = (ci + 121, si + 901) if a else (si + 901, ci + 121)
                segs += [
                    (a, FIN | ACK, an, bn, 0),
                    (not a, ACK, bn, an + 1, 0),
                    (not a, FIN | ACK, bn, an + 1, 0),
                    (a, ACK, an + 1, bn + 1, 0),
                ]
        _script(out, t, _MS // 10, (c, cp, s, 80), segs, 502)
    out.sort(key=lambda x: x[0])
    return out


def _script(
    out: list[Seg],
    t: int,
    step: int,
    ends: tuple[str, int, str, int],
    segs: list[tuple[bool, int, int, int, int]],
    win: int,
) -> None:
    """One connection's ``(from the client?, flags, seq, ack, payload length)`` steps as
    segments, ``step`` ns apart from ``t``, between ``ends`` (client ip, port, server ip, port)."""
    c, cp, s, sp = ends
    for k, (client, flags, seq, ack, n) in enumerate(segs):
        four = (c, cp, s, sp) if client else (s, sp, c, cp)
        out.append((t + k * step, *four, seq & _M, ack & _M, flags, win, n, b""))


def _client(i: int, net: int, port0: int = 30000) -> tuple[str, int, int, int]:
    """Connection ``i``'s client address and port (one per connection, in 10.``net``/16) and
    the two ISNs, spread over the sequence space."""
    return f"10.{net}.{i // 250 % 250}.{i % 250 + 1}", port0 + i, (i * 2654435761) & _M, (i * 40503 + 7) & _M


def _opening(ci: int, si: int, request: int) -> list[tuple[bool, int, int, int, int]]:
    """The handshake and a request of ``request`` bytes, as :func:`_script` steps."""
    return [
        (True, SYN, ci, 0, 0),
        (False, SYN | ACK, si, ci + 1, 0),
        (True, ACK, ci + 1, si + 1, 0),
        (True, ACK | PSH, ci + 1, si + 1, request),
    ]


def keepalive(connections: int, *, pause_s: float, every_ms: int = 3) -> list[Seg]:
    """Connections kept open between two request/response exchanges: a silence of ``pause_s``
    in the middle, while both sides are established, then a close by the client."""
    out: list[Seg] = []
    s = "192.0.2.81"
    pause = int(pause_s * _S)
    for i in range(connections):
        t = 1_700_000_000 * _S + i * every_ms * _MS
        c, cp, ci, si = _client(i, 7, 20000)
        first: list[tuple[bool, int, int, int, int]] = [
            (True, SYN, ci, 0, 0),
            (False, SYN | ACK, si, ci + 1, 0),
            (True, ACK, ci + 1, si + 1, 0),
            (True, ACK | PSH, ci + 1, si + 1, 50),
            (False, ACK | PSH, si + 1, ci + 51, 400),
            (True, ACK, ci + 51, si + 401, 0),
        ]
        then: list[tuple[bool, int, int, int, int]] = [
            (True, ACK | PSH, ci + 51, si + 401, 50),
            (False, ACK | PSH, si + 401, ci + 101, 400),
            (True, FIN | ACK, ci + 101, si + 801, 0),
            (False, FIN | ACK, si + 801, ci + 102, 0),
            (True, ACK, ci + 102, si + 802, 0),
        ]
        _script(out, t, _MS // 5, (c, cp, s, 80), first, 1024)
        _script(out, t + pause, _MS // 5, (c, cp, s, 80), then, 1024)
    out.sort(key=lambda x: x[0])
    return out


def syn_retries(
    connections: int, *, gaps_s: tuple[float, ...], answer: str = "none", every_ms: int = 3
) -> list[Seg]:
    """Connection attempts whose SYN is sent again after each of ``gaps_s`` (Linux backs off
    1, 2, 4, 8, 16, 32 s), then ``answer``ed 10 ms after the last one: ``"none"``, ``"refused"``
    (RST+ACK) or ``"synack"`` (a handshake, a request, a response, a close by the client)."""
    out: list[Seg] = []
    s = "192.0.2.83"
    for i in range(connections):
        t = 1_700_000_000 * _S + i * every_ms * _MS
        c, cp, ci, si = _client(i, 8)
        at = t
        for gap in (0.0, *gaps_s):
            at += int(gap * _S)
            _script(out, at, 0, (c, cp, s, 80), [(True, SYN, ci, 0, 0)], 64240)
        reply: list[tuple[bool, int, int, int, int]] = []
        if answer == "refused":
            reply = [(False, RST | ACK, 0, ci + 1, 0)]
        elif answer == "synack":
            reply = [
                (False, SYN | ACK, si, ci + 1, 0),
                (True, ACK, ci + 1, si + 1, 0),
                (True, ACK | PSH, ci + 1, si + 1, 80),
                (False, ACK | PSH, si + 1, ci + 81, 300),
                (True, FIN | ACK, ci + 81, si + 301, 0),
                (False, FIN | ACK, si + 301, ci + 82, 0),
                (True, ACK, ci + 82, si + 302, 0),
            ]
        _script(out, at + 10 * _MS, _MS // 5, (c, cp, s, 80), reply, 1024)
    out.sort(key=lambda x: x[0])
    return out


def resets_after_fin(connections: int, *, every_ms: int = 3, rst_after_s: float = 0.0) -> list[Seg]:
    """Connections ended by an RST after one or both sides sent a FIN, the ways applications
    abort a close (SO_LINGER 0, data arriving at a closed socket), in turns: the client's RST
    instead of its last ACK (from TIME-WAIT, the server in LAST-ACK); the server's RST after
    ACKing the client's FIN; the client's RST after the server's data crossed its FIN; the
    client's RST after ACKing the server's FIN, and before; the server's RST from LAST-ACK into
    the client's TIME-WAIT; the client's RST one below SND.NXT (its FIN's own number, which
    Linux takes once it has the FIN); the client's RST inside the window, not at RCV.NXT. The
    RST comes ``rst_after_s`` after the segment before it (a CLOSE-WAIT it ends that lasted the
    close-wait timeout is a stuck one)."""
    out: list[Seg] = []
    s = "192.0.2.84"
    for i in range(connections):
        t = 1_700_000_000 * _S + i * every_ms * _MS
        c, cp, ci, si = _client(i, 6)
        a, b = ci + 81, si + 301  # each side's SND.NXT after the exchange
        segs = [
            *_opening(ci, si, 80),
            (False, ACK | PSH, si + 1, a, 300),
            (True, ACK, a, b, 0),
        ]
        kind = i % 8
        if kind == 0:
            segs += [
                (True, FIN | ACK, a, b, 0),
                (False, FIN | ACK, b, a + 1, 0),
                (True, RST | ACK, a + 1, b + 1, 0),
            ]
        elif kind == 1:
            segs += [(True, FIN | ACK, a, b, 0), (False, ACK, b, a + 1, 0), (False, RST | ACK, b, a + 1, 0)]
        elif kind == 2:
            segs += [(True, FIN | ACK, a, b, 0), (False, ACK | PSH, b, a + 1, 200), (True, RST, a + 1, 0, 0)]
        elif kind == 3:
            segs += [(False, FIN | ACK, b, a, 0), (True, ACK, a, b + 1, 0), (True, RST | ACK, a, b + 1, 0)]
        elif kind == 4:
            segs += [(False, FIN | ACK, b, a, 0), (True, RST | ACK, a, b + 1, 0)]
        elif kind == 5:
            segs += [
                (True, FIN | ACK, a, b, 0),
                (False, FIN | ACK, b, a + 1, 0),
                (False, RST | ACK, b + 1, a + 1, 0),
            ]
        elif kind == 6:
            segs += [
                (True, FIN | ACK, a, b, 0),
                (False, FIN | ACK, b, a + 1, 0),
                (True, RST | ACK, a, b + 1, 0),
            ]
        else:
            segs += [(True, FIN | ACK, a, b, 0), (False, ACK, b, a + 1, 0), (True, RST | ACK, a + 9, b, 0)]
        _script(out, t, _MS // 5, (c, cp, s, 80), segs[:-1], 1024)
        last = t + (len(segs) - 1) * (_MS // 5) + int(rst_after_s * _S)
        _script(out, last, 0, (c, cp, s, 80), segs[-1:], 1024)
    out.sort(key=lambda x: x[0])
    return out


def syn_scan(ports: int, *, every_ms: int = 1) -> list[Seg]:
    """A SYN scan of one host, port after port, in turns: open (SYN-ACK, then the scanner's
    kernel resets: a bare RST at ISN+1), open with an RST+ACK of the SYN-ACK, closed (RST+ACK
    refusal), filtered (no answer); and the scanner's RST at another sequence number, an RST
    acknowledging more than the SYN-ACK, and the server's RST after its own SYN-ACK."""
    out: list[Seg] = []
    c, s = "10.5.0.1", "192.0.2.85"
    for i in range(ports):
        t = 1_700_000_000 * _S + i * every_ms * _MS
        ci, si = (i * 2654435761) & _M, (i * 40503 + 7) & _M
        synack: tuple[bool, int, int, int, int] = (False, SYN | ACK, si, ci + 1, 0)
        segs: list[tuple[bool, int, int, int, int]] = [(True, SYN, ci, 0, 0)]
        segs += [
            [synack, (True, RST, ci + 1, 0, 0)],
            [synack, (True, RST | ACK, ci + 1, si + 1, 0)],
            [(False, RST | ACK, 0, ci + 1, 0)],
            [],
            [synack, (True, RST, ci + 5, 0, 0)],
            [synack, (True, RST | ACK, ci + 1, si + 2, 0)],
            [synack, (False, RST, si + 1, 0, 0)],
        ][i % 7]
        _script(out, t, _MS // 4, (c, 50000, s, 1 + i), segs, 1024)
    out.sort(key=lambda x: x[0])
    return out


def close_waits(connections: int, *, silent_s: float, every_us: int = 100) -> list[Seg]:
    """Connections the client closes and the server never does: each server sits in
    CLOSE-WAIT (every other one sends a last response 0.5 s after the client's FIN) until the
    capture ends, ``silent_s`` after the last segment (an unanswered SYN from elsewhere marks
    the end): the silent servers are silent for ``silent_s`` + 0.5 s, the others ``silent_s``."""
    out: list[Seg] = []
    s = "192.0.2.86"
    for i in range(connections):
        t = 1_700_000_000 * _S + i * every_us * 1000
        c, cp, ci, si = _client(i, 4)
        segs = [
            *_opening(ci, si, 80),
            (False, ACK | PSH, si + 1, ci + 81, 300),
            (True, FIN | ACK, ci + 81, si + 301, 0),
            (False, ACK, si + 301, ci + 82, 0),
        ]
        _script(out, t, _MS // 5, (c, cp, s, 80), segs, 1024)
        if i % 2:
            late = [(False, ACK | PSH, si + 301, ci + 82, 200), (True, ACK, ci + 82, si + 501, 0)]
            _script(out, t + _S // 2, _MS // 5, (c, cp, s, 80), late, 1024)
    last = max(x[0] for x in out)
    _script(out, last + int(silent_s * _S), 0, ("10.4.255.1", 999, s, 81), [(True, SYN, 7, 0, 0)], 1024)
    out.sort(key=lambda x: x[0])
    return out


def lossy_downloads(
    connections: int, *, segments: int = 60, lost_every: int = 17, every_ms: int = 1
) -> list[Seg]:
    """Downloads captured at the client while the path loses segments: every ``lost_every``-th
    full-size segment from the server is missing from the capture. In odd connections it was
    lost on the way (the client sends duplicate ACKs, the server sends it again two segments
    later, out of order); in even ones the capture dropped it but the client got it (its ACKs
    cover bytes the capture never saw: Zeek's content gap). A close by the client."""
    out: list[Seg] = []
    s = "192.0.2.87"
    for i in range(connections):
        t = 1_700_000_000 * _S + i * every_ms * _MS
        c, cp, ci, si = _client(i, 3)
        segs = _opening(ci, si, 30)
        cn, base = ci + 31, si + 1
        resend: list[int] = []  # lost segments' numbers, sent again later
        hole: int | None = None  # the first byte the client has not got (retransmission case)
        for k in range(segments):
            seq = base + 1448 * k
            lost = k % lost_every == lost_every - 1
            if not lost:
                segs.append((False, ACK, seq, cn, 1448))
            if lost and i % 2:
                resend.append(k)
                hole = seq if hole is None else hole
            if hole is not None:
                segs.append((True, ACK, cn, hole, 0))  # a duplicate ACK, stuck at the hole
            elif k % 2:
                segs.append((True, ACK, cn, seq + 1448, 0))
            if resend and k == resend[0] + 2:  # the retransmission, out of order
                r = resend.pop(0)
                segs.append((False, ACK, base + 1448 * r, cn, 1448))
                hole = None
                segs.append((True, ACK, cn, base + 1448 * (k + 1), 0))
        sn = base + 1448 * segments
        segs += [
            (True, ACK, cn, sn, 0),
            (True, FIN | ACK, cn, sn, 0),
            (False, FIN | ACK, sn, cn + 1, 0),
            (True, ACK, cn + 1, sn + 1, 0),
        ]
        _script(out, t, _MS // 5, (c, cp, s, 443), segs, 65535)
    out.sort(key=lambda x: x[0])
    return out


def bulk_transfers(connections: int, *, segments: int = 40, every_ms: int = 1) -> list[Seg]:
    """Downloads as a bulk benchmark makes them, overlapping: a short request, ``segments``
    full-size segments from the server (ACKed every second one), then a short last one, and
    a close by the client. Under a small snaplen the full-size payload is cut but the request
    and the last segment are whole: Zeek's reassembler holds that last one (above the cut one
    before it, not acknowledged) until the ACK of both."""
    out: list[Seg] = []
    s = "192.0.2.80"
    for i in range(connections):
        t = 1_700_000_000 * _S + i * every_ms * _MS
        c, cp, ci, si = _client(i, 8)
        segs = _opening(ci, si, 30)
        sn, cn = si + 1, ci + 31
        for k in range(segments + 1):
            n = 1448 if k < segments else 20 + i % 10
            segs.append((False, ACK, sn, cn, n))
            sn += n
            if (k % 2 and k < segments - 1) or k == segments:  # the one before the last waits
                segs.append((True, ACK, cn, sn, 0))
        segs += [
            (True, FIN | ACK, cn, sn, 0),
            (False, FIN | ACK, sn, cn + 1, 0),
            (True, ACK, cn + 1, sn + 1, 0),
        ]
        _script(out, t, _MS // 5, (c, cp, s, 443), segs, 1024)
    out.sort(key=lambda x: x[0])
    return out
