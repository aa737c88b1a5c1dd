"""Mangle captures the ways they get mangled in transit, for the fuzz tests and scripts/fuzz.py.

Two families of mutations, both driven only by the ``random.Random`` passed in (the same seed
always gives the same bytes):

* **bytes** (:func:`mutate_bytes`): bit flips, cuts, absurd 32-bit fields, duplicated,
  swapped or zeroed chunks, garbage appended. Blind to the format.
* **structure** (:func:`mutate_structure`): the file is parsed into its records (pcap, any
  magic and byte order) or blocks (pcapng, every section in its own byte order), then records
  are duplicated, reordered, dropped, emptied, their length fields set to 0, 1, huge,
  2^32-1 or off by a few; the file header's snaplen, link type and magic are changed;
  timestamps go backwards or far into the past or future; the file is cut inside a record
  header or inside record data; the IP / TCP headers inside packets are corrupted (IHL,
  total length, fragment bits, protocol, data offset, flags, ports, seq / ack, options).

A gzip file is mutated as compressed bytes, or decompressed, mutated and then written back
plain, recompressed (one or several members, zero padding) or recompressed and damaged.

:func:`mutate` picks a family; :func:`make_case` builds one reproducible fuzz case from a
seed (shared by the test suite and the fuzz scripts), :func:`time_budget` turns a hang into
an exception, and :func:`check_error`, :func:`check_analysis` and :func:`engine_differences`
say what is wrong with an outcome.
"""

from __future__ import annotations

import gzip
import io
import random
import signal
import struct
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from types import FrameType
from typing import Any

SAMPLES = Path(__file__).resolve().parent.parent / "sample_pcaps"

SEEDS = sorted(p for p in SAMPLES.rglob("*") if p.suffix in (".pcap", ".pcapng", ".gz", ".bin"))

#: the mutation families :func:`mutate` can be limited to
FAMILIES = ("bytes", "structure", "packet", "gzip")

Log = list[str]

# --------------------------------------------------------------------------- byte level


def mutate_bytes(data: bytes, rng: random.Random, log: Log | None = None) -> bytes:
    """One of the ways captures get mangled in transit or by tools, blind to the format."""
    b = bytearray(data)
    if not b:
        _note(log, "bytes: random bytes for an empty input")
        return bytes(rng.randbytes(rng.randint(0, 40)))
    kind = rng.randrange(7)
    if kind == 0:  # bit flips anywhere
        n = rng.randint(1, 20)
        for _ in range(n):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
        _note(log, f"bytes: {n} bit flips")
    elif kind == 1:  # cut anywhere
        at = rng.randrange(len(b))
        del b[at:]
        _note(log, f"bytes: cut at {at}")
    elif kind == 2:  # a record length (or any 32-bit field) set to something absurd
        i = rng.randrange(max(len(b) - 4, 1))
        v = rng.choice([0, 1, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, rng.getrandbits(32)])
        b[i : i + 4] = struct.pack("<I", v)
        _note(log, f"bytes: u32 at {i} = {v:#x}")
    elif kind == 3:  # a chunk duplicated
        i = rng.randrange(len(b))
        j = min(len(b), i + rng.randint(1, 200))
        b[j:j] = b[i:j]
        _note(log, f"bytes: [{i}:{j}] duplicated")
    elif kind == 4:  # two chunks swapped (records reordered)
        i, j = sorted(rng.randrange(len(b)) for _ in range(2))
        k = min(j - i, rng.randint(1, 300))
        b[i : i + k], b[j : j + k] = b[j : j + k], b[i : i + k]
        _note(log, f"bytes: {k} bytes at {i} and {j} swapped")
    elif kind == 5:  # garbage appended
        n = rng.randint(1, 500)
        b += rng.randbytes(n)
        _note(log, f"bytes: {n} garbage bytes appended")
    else:  # a chunk zeroed
        i = rng.randrange(len(b))
        b[i : i + rng.randint(1, 64)] = bytes(min(64, len(b) - i))
        _note(log, f"bytes: zeroed from {i}")
    return bytes(b)


def _note(log: Log | None, what: str) -> None:
    if log is not None:
        log.append(what)


# --------------------------------------------------------------------------- parsing

_PCAP_MAGICS: dict[bytes, tuple[str, int]] = {  # first 4 bytes -> (byte order, record header size)
    b"\xd4\xc3\xb2\xa1": ("<", 16),
    b"\xa1\xb2\xc3\xd4": (">", 16),
    b"\x4d\x3c\xb2\xa1": ("<", 16),
    b"\xa1\xb2\x3c\x4d": (">", 16),
    b"\x34\xcd\xb2\xa1": ("<", 24),
    b"\xa1\xb2\xcd\x34": (">", 24),
}
_MAGIC_VALUES = (0xA1B2C3D4, 0xA1B23C4D, 0xA1B2CD34)  # µs, ns, modified (Kuznetzov)
_SHB_TYPE = b"\x0a\x0d\x0d\x0a"
_SHB, _IDB, _PB, _SPB, _ISB, _EPB = 0x0A0D0D0A, 1, 2, 3, 5, 6

#: 32-bit values that break length fields: 0, 1, huge, 2^32-1 (off by a few is added per field)
ABSURD: tuple[int, ...] = (0, 1, 2, 3, 4, 0xFFFF, 65536, 262144, 262145, 1 << 24, (1 << 24) + 4, 0x7FFFFFFF)
ABSURD += (0x80000000, 0xFFFFFFFC, 0xFFFFFFFE, 0xFFFFFFFF)


@dataclass
class Unit:
    """One pcap record or pcapng block, as mutable bytes with what is known about it."""

    kind: str  # "rec" (pcap record) or a pcapng block: "shb", "idb", "epb", "pb", "spb", "other"
    raw: bytearray
    bo: str  # byte order of the numbers in it ("<" or ">")
    linktype: int | None = None  # link type of the packet in it, when known
    data_off: int = 0  # where the packet bytes start in ``raw`` (0 for non-packets)

    @property
    def packet(self) -> bool:
        return self.kind in ("rec", "epb", "pb", "spb")

    def u32(self, off: int) -> int:
        v: int = struct.unpack_from(self.bo + "I", self.raw, off)[0]
        return v

    def set_u32(self, off: int, value: int) -> None:
        struct.pack_into(self.bo + "I", self.raw, off, value & 0xFFFFFFFF)

    @property
    def data(self) -> bytes:
        """The packet bytes (up to the captured length, or the block's end)."""
        if not self.packet:
            return b""
        if self.kind == "rec":
            return bytes(self.raw[self.data_off :])
        if self.kind == "spb":
            return bytes(self.raw[self.data_off : len(self.raw) - 4])
        cap = self.u32(20)
        return bytes(self.raw[self.data_off : min(self.data_off + cap, len(self.raw) - 4)])

    def set_data(self, data: bytes) -> None:
        """New packet bytes, with every length field made consistent."""
        d = self.data_off
        if self.kind == "rec":
            self.raw[d:] = data
            self.set_u32(8, len(data))
            return
        pad = b"\0" * (-len(data) % 4)
        self.raw[d:] = data + pad + b"\0\0\0\0"
        if self.kind in ("epb", "pb"):
            self.set_u32(20, len(data))
        n = len(self.raw)
        self.set_u32(4, n)
        self.set_u32(n - 4, n)

    @property
    def ts_offs(self) -> tuple[int, int] | None:
        """Offsets of the two 32-bit timestamp words (pcap: seconds, fraction; pcapng: high, low)."""
        if self.kind == "rec":
            return 0, 4
        if self.kind in ("epb", "pb"):
            return 12, 16
        return None


@dataclass
class Parsed:
    """A capture split into units; ``bytes()`` of it is the file again."""

    fmt: str  # "pcap" or "pcapng"
    head: bytearray  # pcap: the 24-byte file header; pcapng: empty (the SHB is a unit)
    units: list[Unit] = field(default_factory=list)
    tail: bytes = b""  # what could not be parsed (kept as is)
    bo: str = "<"
    hdr_len: int = 16  # pcap record header size

    def __bytes__(self) -> bytes:
        return bytes(self.head) + b"".join(bytes(u.raw) for u in self.units) + self.tail

    def packets(self) -> list[int]:
        return [i for i, u in enumerate(self.units) if u.packet]


def parse(data: bytes) -> Parsed | None:
    """Split a (plain, not gzipped) pcap or pcapng file into units; None for anything else."""
    magic = data[:4]
    if magic in _PCAP_MAGICS and len(data) >= 24:
        return _parse_pcap(data)
    if magic == _SHB_TYPE and len(data) >= 28:
        return _parse_pcapng(data)
    return None


def _parse_pcap(data: bytes) -> Parsed:
    bo, hdr = _PCAP_MAGICS[data[:4]]
    lt = struct.unpack_from(bo + "I", data, 20)[0] & 0xFFFF
    p = Parsed("pcap", bytearray(data[:24]), bo=bo, hdr_len=hdr)
    off, n = 24, len(data)
    while off + hdr <= n:
        (cap,) = struct.unpack_from(bo + "I", data, off + 8)
        end = off + hdr + cap
        if end > n:
            break
        p.units.append(Unit("rec", bytearray(data[off:end]), bo, lt, hdr))
        off = end
    p.tail = data[off:]
    return p


def _parse_pcapng(data: bytes) -> Parsed:
    p = Parsed("pcapng", bytearray())
    off, n = 0, len(data)
    bo = "<"
    ifaces: list[int] = []
    while off + 12 <= n:
        if data[off : off + 4] == _SHB_TYPE:
            bom = data[off + 8 : off + 12]
            if bom == b"\x4d\x3c\x2b\x1a":
                bo = "<"
            elif bom == b"\x1a\x2b\x3c\x4d":
                bo = ">"
            else:
                break
            ifaces = []
        btype, blen = struct.unpack_from(bo + "II", data, off)
        if blen < 12 or blen % 4 or off + blen > n:
            break
        raw = bytearray(data[off : off + blen])
        if btype == _SHB:
            u = Unit("shb", raw, bo)
        elif btype == _IDB and blen >= 20:
            (lt,) = struct.unpack_from(bo + "H", raw, 8)
            ifaces.append(lt)
            u = Unit("idb", raw, bo, lt)
        elif btype == _EPB and blen >= 32:
            (iface,) = struct.unpack_from(bo + "I", raw, 8)
            u = Unit("epb", raw, bo, ifaces[iface] if iface < len(ifaces) else None, 28)
        elif btype == _PB and blen >= 32:
            (iface,) = struct.unpack_from(bo + "H", raw, 8)
            u = Unit("pb", raw, bo, ifaces[iface] if iface < len(ifaces) else None, 28)
        elif btype == _SPB and blen >= 16:
            u = Unit("spb", raw, bo, ifaces[0] if ifaces else None, 12)
        else:
            u = Unit("other", raw, bo)
        p.units.append(u)
        off += blen
    p.tail = data[off:]
    if p.units:
        p.bo = p.units[0].bo
    return p


# --------------------------------------------------------------------------- packet headers


def ip_offset(linktype: int | None, data: bytes) -> int | None:
    """Where the IP header starts in a captured packet of ``linktype`` (None if not IP)."""
    n = len(data)
    if linktype in (1, 113, 276):
        hl, et_at = {1: (14, 12), 113: (16, 14), 276: (20, 0)}[linktype]
        if n < hl:
            return None
        off = hl
        et = int.from_bytes(data[et_at : et_at + 2], "big")
        while et in (0x8100, 0x88A8, 0x9100) and off + 4 <= n:
            et = int.from_bytes(data[off + 2 : off + 4], "big")
            off += 4
        return off if et in (0x0800, 0x86DD) and off < n else None
    if linktype in (0, 108):
        return 4 if n > 4 else None
    if linktype in (12, 14, 101, 228, 229):
        return 0 if n > 0 else None
    return None


def tcp_offset(data: bytes, ip: int) -> int | None:
    """Where the TCP header starts, given the IP header's offset (None if not TCP)."""
    n = len(data)
    version = data[ip] >> 4
    if version == 4 and ip + 20 <= n:
        ihl = (data[ip] & 15) * 4
        return ip + ihl if data[ip + 9] == 6 and ihl >= 20 and ip + ihl + 20 <= n else None
    if version == 6 and ip + 40 <= n:
        nh, at = data[ip + 6], ip + 40
        for _ in range(8):
            if nh not in (0, 43, 60) or at + 8 > n:
                break
            nh, at = data[at], at + (data[at + 1] + 1) * 8
        return at if nh == 6 and at + 20 <= n else None
    return None


def _u16_choice(rng: random.Random, cur: int) -> int:
    return rng.choice([0, 1, 19, 20, 39, 40, 0xFFFF, rng.getrandbits(16), max(cur - rng.randint(1, 8), 0)])


def _corrupt_packet(data: bytearray, linktype: int | None, rng: random.Random) -> str:
    """Damage one field of the link, IP or TCP header of one packet, in place."""
    ip = ip_offset(linktype, bytes(data))
    if ip is None:
        if data:
            i = rng.randrange(min(len(data), 64))
            data[i] = rng.getrandbits(8)
            return f"link byte {i} = {data[i]:#x}"
        return "empty packet left alone"
    tcp = tcp_offset(bytes(data), ip)
    v6 = data[ip] >> 4 == 6
    have = len(data) - ip  # bytes of IP header there are
    choices: list[str] = ["version", "ethertype" if ip else "version"]
    if not v6 and have >= 20:
        choices += ["length", "ihl", "ihl", "frag", "proto"]
    elif v6 and have >= 40:
        choices += ["length", "nexthdr"]
    if tcp is not None:
        choices += ["doff", "doff", "flags", "flags", "ports", "seq", "ack", "win", "options"]
    what = rng.choice(choices)
    if what == "version":
        data[ip] = (rng.choice([0, 5, 6, 4, 15]) << 4) | (data[ip] & 15)
        return f"IP version nibble {data[ip] >> 4}"
    if what == "ethertype":
        et_at = ip - 2 if linktype in (1, 113) else None
        if et_at is None or et_at < 0:
            data[ip] = rng.getrandbits(8)
            return "IP first byte random"
        struct.pack_into("!H", data, et_at, rng.choice([0x8100, 0x88A8, 0x86DD, 0x0800, 0x0806, 0]))
        return "ethertype changed"
    if what == "ihl":
        data[ip] = 0x40 | rng.choice([0, 1, 4, 6, 15, rng.randrange(16)])
        return f"IHL {data[ip] & 15}"
    if what == "length":
        if v6:
            cur = int.from_bytes(data[ip + 4 : ip + 6], "big")
            struct.pack_into("!H", data, ip + 4, _u16_choice(rng, cur))
            return "IPv6 payload length"
        cur = int.from_bytes(data[ip + 2 : ip + 4], "big")
        new = _u16_choice(rng, cur)
        struct.pack_into("!H", data, ip + 2, new)
        return f"IPv4 total length {cur} -> {new}"
    if what == "frag":
        struct.pack_into("!H", data, ip + 6, rng.choice([0x2000, 0x0001, 0x3FFF, 0x8000, 0x4000, 0]))
        return "IPv4 fragment field"
    if what == "proto":
        data[ip + 9] = rng.choice([0, 1, 17, 41, 255])
        return f"IP protocol {data[ip + 9]}"
    if what == "nexthdr":
        data[ip + 6] = rng.choice([0, 43, 44, 51, 59, 60, 17])
        return f"IPv6 next header {data[ip + 6]}"
    assert tcp is not None
    if what == "doff":
        data[tcp + 12] = (rng.choice([0, 1, 4, 6, 15, rng.randrange(16)]) << 4) | (data[tcp + 12] & 15)
        return f"TCP data offset {data[tcp + 12] >> 4}"
    if what == "flags":
        data[tcp + 13] = rng.choice([0, 0xFF, 0x03, 0x06, 0x05, 0x04, 0x14, 0x29, 0x02, rng.getrandbits(8)])
        return f"TCP flags {data[tcp + 13]:#04x}"
    if what == "ports":
        struct.pack_into("!HH", data, tcp, rng.choice([0, 0xFFFF, 80]), rng.choice([0, 0xFFFF, 80, 443]))
        return "TCP ports"
    if what in ("seq", "ack"):
        at = tcp + (4 if what == "seq" else 8)
        cur = int.from_bytes(data[at : at + 4], "big")
        new = rng.choice(
            [0, 0xFFFFFFFF, 0x80000000, cur + 0x80000000, cur - rng.randint(1, 3000), rng.getrandbits(32)]
        )
        struct.pack_into("!I", data, at, new & 0xFFFFFFFF)
        return f"TCP {what} {cur} -> {new & 0xFFFFFFFF}"
    if what == "win":
        struct.pack_into("!H", data, tcp + 14, rng.choice([0, 1, 0xFFFF]))
        return "TCP window"
    # options: whatever lies after the fixed TCP header becomes kind/length garbage
    n = min(len(data) - tcp - 20, 40)
    if n <= 0:
        data[tcp + 12] = 0xF0 | (data[tcp + 12] & 15)
        return "TCP data offset 15 without options"
    for i in range(tcp + 20, tcp + 20 + n):
        data[i] = rng.choice([0, 1, 2, 3, 4, 5, 8, 34, 254, 255, rng.getrandbits(8)])
    return f"{n} bytes of TCP option garbage"


# --------------------------------------------------------------------------- structure level

_Mutation = Callable[[Parsed, random.Random], str]


def _pick(rng: random.Random, items: list[int]) -> int | None:
    return rng.choice(items) if items else None


def _absurd(rng: random.Random, cur: int) -> int:
    if rng.random() < 0.3:
        return max(0, cur + rng.choice([-8, -4, -3, -2, -1, 1, 2, 3, 4, 8]))
    return rng.choice(ABSURD)


def _m_duplicate(p: Parsed, rng: random.Random) -> str:
    pk = p.packets()
    i = _pick(rng, pk or list(range(len(p.units))))
    if i is None:
        return "nothing to duplicate"
    k = rng.randint(1, 4)
    run = [Unit(u.kind, bytearray(u.raw), u.bo, u.linktype, u.data_off) for u in p.units[i : i + k]]
    at = i + len(run) if rng.random() < 0.5 else rng.randrange(len(p.units) + 1)
    if rng.random() < 0.2:
        run *= rng.randint(2, 20)  # a burst of copies
    p.units[at:at] = run
    return f"{len(run)} record(s) from {i} duplicated at {at}"


def _m_swap(p: Parsed, rng: random.Random) -> str:
    pk = p.packets()
    if len(pk) < 2:
        return "too few records to swap"
    i, j = rng.sample(pk, 2)
    p.units[i], p.units[j] = p.units[j], p.units[i]
    return f"records {i} and {j} swapped"


def _m_shuffle(p: Parsed, rng: random.Random) -> str:
    if len(p.units) < 2:
        return "too few records to shuffle"
    first = 1 if p.fmt == "pcapng" and rng.random() < 0.9 else 0  # mostly keep the section header first
    if len(p.units) - first < 2:
        return "too few records to shuffle"
    i = rng.randrange(first, len(p.units) - 1)
    j = min(len(p.units), i + rng.randint(2, 10))
    window = p.units[i:j]
    if rng.random() < 0.3:
        window.reverse()
    else:
        rng.shuffle(window)
    p.units[i:j] = window
    return f"records {i}:{j} reordered"


def _m_drop(p: Parsed, rng: random.Random) -> str:
    if not p.units:
        return "nothing to drop"
    i = rng.randrange(len(p.units))  # any unit: a dropped IDB leaves packets on no interface
    k = rng.randint(1, 3)
    del p.units[i : i + k]
    return f"records {i}:{i + k} dropped"


def _m_length(p: Parsed, rng: random.Random) -> str:
    """A length field set to 0, 1, huge, 2^32-1 or off by a few, the bytes left as they are."""
    if not p.units:
        return "no records"
    u = rng.choice(p.units)
    n = len(u.raw)
    if u.kind == "rec":
        at = rng.choice([8, 8, 12])
    elif u.kind in ("epb", "pb"):
        at = rng.choice([4, n - 4, 20, 20, 24])
    elif u.kind == "spb":
        at = rng.choice([4, n - 4, 8])
    elif u.kind == "idb":
        at = rng.choice([4, n - 4, 12])  # block length or snaplen
    else:
        at = rng.choice([4, n - 4])
    if u.kind != "rec" and at in (4, n - 4) and rng.random() < 0.3:  # both copies agree
        v = _absurd(rng, n)
        u.set_u32(4, v)
        u.set_u32(n - 4, v)
        return f"{u.kind} block length {n} -> {v} (both copies)"
    cur = u.u32(at)
    v = _absurd(rng, cur)
    u.set_u32(at, v)
    return f"{u.kind} u32 at +{at}: {cur} -> {v}"


def _m_zero_length(p: Parsed, rng: random.Random) -> str:
    i = _pick(rng, p.packets())
    if i is None:
        return "no packet to empty"
    u = p.units[i]
    u.set_data(b"")
    if u.kind != "spb" and rng.random() < 0.5:
        u.set_u32(12 if u.kind == "rec" else 24, 0)  # original length 0 too
    return f"record {i} emptied"


def _m_resize(p: Parsed, rng: random.Random) -> str:
    """A record's data cut or grown, its lengths kept consistent (snaplen cuts, padding)."""
    i = _pick(rng, p.packets())
    if i is None:
        return "no packet to resize"
    u = p.units[i]
    data = u.data
    if rng.random() < 0.6 and data:
        k = rng.randrange(len(data))
        u.set_data(data[:k])
        return f"record {i} cut to {k} of {len(data)} bytes"
    extra = rng.choice([1, 3, 4, 60, 1000, rng.randint(1, 3000)])
    u.set_data(data + rng.randbytes(extra))
    return f"record {i} grown by {extra} bytes"


def _m_caplen_vs_origlen(p: Parsed, rng: random.Random) -> str:
    i = _pick(rng, [k for k in p.packets() if p.units[k].kind != "spb"])
    if i is None:
        return "no record with an original length"
    u = p.units[i]
    at = 12 if u.kind == "rec" else 24
    cap = len(u.data)
    v = rng.choice([0, 1, max(cap - 1, 0), cap // 2, cap + 1, 0xFFFFFFFF])
    u.set_u32(at, v)
    return f"record {i} original length {v} (captured {cap})"


def _m_header(p: Parsed, rng: random.Random) -> str:
    """The file header (pcap) or an interface description (pcapng): snaplen, link type, magic."""
    if p.fmt == "pcap":
        what = rng.choice(["snaplen", "snaplen", "linktype", "magic", "version"])
        if what == "snaplen":
            v = rng.choice([0, 0xFFFFFFFF, 1, 14, 40, 54, 65535, 262144, 262145, 0x7FFFFFFF])
            struct.pack_into(p.bo + "I", p.head, 16, v)
            return f"pcap snaplen {v}"
        if what == "linktype":
            v = rng.choice([0, 1, 12, 101, 108, 113, 228, 229, 276, 147, 0xFFFF, 0x10000 | 1, 0xFFFFFFFF])
            struct.pack_into(p.bo + "I", p.head, 20, v)
            return f"pcap link type {v:#x}"
        if what == "magic":
            v = rng.choice(_MAGIC_VALUES)
            struct.pack_into(p.bo + "I", p.head, 0, v)
            return f"pcap magic {v:#x}"
        struct.pack_into(p.bo + "HHiI", p.head, 4, rng.getrandbits(16), rng.getrandbits(16), -1, 0xFFFFFFFF)
        return "pcap version / thiszone / sigfigs"
    idbs = [i for i, u in enumerate(p.units) if u.kind == "idb"]
    shbs = [i for i, u in enumerate(p.units) if u.kind == "shb"]
    what = rng.choice(["snaplen", "linktype", "tsresol", "tsresol", "bom", "shb_dup"])
    if what == "bom" and shbs:
        u = p.units[rng.choice(shbs)]
        u.raw[8:12] = rng.choice([b"\0\0\0\0", b"\x4d\x3c\x2b\x1b", u.raw[8:12][::-1]])
        return "pcapng byte-order magic"
    if what == "shb_dup" and shbs:
        shb = p.units[rng.choice(shbs)]
        at = rng.randrange(1, len(p.units) + 1)
        p.units.insert(at, Unit("shb", bytearray(shb.raw), shb.bo))
        return f"pcapng section header repeated at {at} (interfaces reset)"
    if not idbs:
        return "pcapng without interfaces"
    i = rng.choice(idbs)
    u = p.units[i]
    if what == "snaplen":
        v = rng.choice([0, 0xFFFFFFFF, 1, 40, 65535])
        u.set_u32(12, v)
        return f"interface {i} snaplen {v}"
    if what == "linktype":
        v = rng.choice([0, 1, 12, 101, 108, 113, 228, 229, 276, 147, 0xFFFF])
        struct.pack_into(u.bo + "H", u.raw, 8, v)
        return f"interface {i} link type {v}"
    tsresol = rng.choice([0, 3, 6, 9, 10, 19, 20, 127, 0x80, 0x80 | 30, 0x80 | 64, 0xFF])
    offset = rng.choice([0, 1, -1, 1 << 40, (1 << 62), -(1 << 63), rng.getrandbits(63)])
    lt, _, snap = struct.unpack_from(u.bo + "HHI", u.raw, 8)
    opts = struct.pack(u.bo + "HH", 9, 1) + bytes([tsresol]) + b"\0\0\0"
    opts += struct.pack(u.bo + "HHq", 14, 8, offset) + struct.pack(u.bo + "HH", 0, 0)
    body = struct.pack(u.bo + "HHI", lt, 0, snap) + opts
    n = len(body) + 12
    u.raw = bytearray(struct.pack(u.bo + "II", _IDB, n) + body + struct.pack(u.bo + "I", n))
    return f"interface {i} if_tsresol {tsresol:#x}, if_tsoffset {offset}"


def _m_timestamps(p: Parsed, rng: random.Random) -> str:
    """Time going backwards: swapped, reversed, far in the past or future, negative-looking."""
    pk = [i for i in p.packets() if p.units[i].ts_offs is not None]
    if not pk:
        return "no timestamps"
    what = rng.choice(["swap", "swap", "reverse", "one", "one", "frac", "all_same"])
    if what == "swap" and len(pk) >= 2:
        i, j = rng.sample(pk, 2)
        a, b = p.units[i], p.units[j]
        ta, tb = _get_ts(a), _get_ts(b)
        _put_ts(a, tb)
        _put_ts(b, ta)
        return f"timestamps of records {i} and {j} swapped"
    if what == "reverse":
        i = rng.randrange(len(pk))
        sel = pk[i : i + rng.randint(2, 30)]
        stamps = [_get_ts(p.units[k]) for k in sel]
        for k, t in zip(sel, reversed(stamps), strict=True):
            _put_ts(p.units[k], t)
        return f"timestamps of {len(sel)} records reversed"
    if what == "all_same":
        t = _get_ts(p.units[pk[0]])
        for k in pk:
            _put_ts(p.units[k], t)
        return "every record at the same time"
    i = rng.choice(pk)
    u = p.units[i]
    hi_off, lo_off = u.ts_offs or (0, 4)
    if what == "frac":  # a fraction that does not fit (>= 1 s worth of µs or ns)
        v = rng.choice([999_999, 1_000_000, 999_999_999, 1_000_000_000, 0xFFFFFFFF])
        u.set_u32(lo_off, v)
        return f"record {i} fraction {v}"
    v = rng.choice([0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFF00, u.u32(hi_off) - 86400 * 365])
    u.set_u32(hi_off, v)
    return f"record {i} time word {v & 0xFFFFFFFF:#x}"


def _get_ts(u: Unit) -> tuple[int, int]:
    hi, lo = u.ts_offs or (0, 4)
    return u.u32(hi), u.u32(lo)


def _put_ts(u: Unit, t: tuple[int, int]) -> None:
    hi, lo = u.ts_offs or (0, 4)
    u.set_u32(hi, t[0])
    u.set_u32(lo, t[1])


def _m_iface(p: Parsed, rng: random.Random) -> str:
    """pcapng: a packet names an interface that does not exist, or another one."""
    i = _pick(rng, [k for k in p.packets() if p.units[k].kind in ("epb", "pb")])
    if i is None:
        return "no packet with an interface"
    u = p.units[i]
    v = rng.choice([1, 2, 7, 0xFFFF, 0xFFFFFFFF])
    if u.kind == "pb":
        struct.pack_into(u.bo + "H", u.raw, 8, v & 0xFFFF)
    else:
        u.set_u32(8, v)
    return f"record {i} on interface {v}"


def _m_foreign_block(p: Parsed, rng: random.Random) -> str:
    """pcapng: an unknown, custom or statistics block (or a stray section header) inserted."""
    bo = p.bo
    btype = rng.choice([_ISB, 4, 0xBAD, 0x40000BAD, 0x80000001, _SPB, _SHB, 0xFFFFFFFF])
    body = rng.randbytes(rng.choice([0, 4, 8, 16, 64]))
    if btype == _SHB:
        body = struct.pack(bo + "IHHq", 0x1A2B3C4D, 1, 0, -1) + body
    n = len(body) + 12
    at = rng.randrange(1, len(p.units) + 1) if p.units else 0
    raw = bytearray(struct.pack(bo + "II", btype, n) + body + struct.pack(bo + "I", n))
    p.units.insert(at, Unit("other", raw, bo))
    return f"block type {btype:#x} inserted at {at}"


def _m_packet(p: Parsed, rng: random.Random) -> str:
    """The link / IP / TCP headers of one to three packets corrupted."""
    pk = p.packets()
    if not pk:
        return "no packets"
    out = []
    for _ in range(rng.randint(1, 3)):
        i = rng.choice(pk)
        u = p.units[i]
        data = bytearray(u.data)
        what = _corrupt_packet(data, u.linktype, rng)
        end = u.data_off + len(data)
        u.raw[u.data_off : end] = data
        out.append(f"record {i}: {what}")
    return "; ".join(out)


def _m_overlap(p: Parsed, rng: random.Random) -> str:
    """A copy of a data segment with its sequence number moved back or forth (overlapping data)."""
    cands = []
    for i in p.packets():
        u = p.units[i]
        data = u.data
        ip = ip_offset(u.linktype, data)
        tcp = tcp_offset(data, ip) if ip is not None else None
        if tcp is not None:
            cands.append((i, tcp))
    if not cands:
        return "no TCP segment to overlap"
    i, tcp = rng.choice(cands)
    u = p.units[i]
    copy = Unit(u.kind, bytearray(u.raw), u.bo, u.linktype, u.data_off)
    at = u.data_off + tcp + 4
    seq = struct.unpack_from("!I", copy.raw, at)[0]
    delta = rng.choice([-1, 1, -50, 50, -1000, 1000, 1 << 31])
    struct.pack_into("!I", copy.raw, at, (seq + delta) & 0xFFFFFFFF)
    where = i + rng.randint(1, 5)
    p.units.insert(min(where, len(p.units)), copy)
    return f"record {i} copied with seq {delta:+d}"


def _m_cut(p: Parsed, rng: random.Random) -> str:
    """Cut the file inside a record header, inside record data, or inside the file header."""
    pk = p.packets()
    where = rng.choice(["header", "data", "data", "file"]) if pk else "file"
    p.tail = b""
    if where == "file":
        if p.fmt == "pcap":
            n = rng.randrange(24)
            p.head = p.head[:n]
            p.units = []
        else:
            u = p.units[0] if p.units else Unit("other", bytearray(), "<")
            n = rng.randrange(max(len(u.raw), 1))
            u.raw = u.raw[:n]
            p.units = [u]
        return f"cut inside the file header ({n} bytes kept)"
    i = rng.choice(pk)
    u = p.units[i]
    del p.units[i + 1 :]
    if where == "header":
        k = rng.randrange(1, max(u.data_off, 2))
    else:
        k = rng.randrange(u.data_off, max(len(u.raw), u.data_off + 1))
    u.raw = u.raw[:k]
    return f"cut inside record {i}'s {where} ({k} of its bytes kept)"


_STRUCTURE: list[tuple[_Mutation, int]] = [  # (mutation, weight)
    (_m_duplicate, 3),
    (_m_swap, 3),
    (_m_shuffle, 2),
    (_m_drop, 3),
    (_m_length, 5),
    (_m_zero_length, 2),
    (_m_resize, 2),
    (_m_caplen_vs_origlen, 2),
    (_m_header, 3),
    (_m_timestamps, 4),
    (_m_overlap, 2),
    (_m_cut, 3),
]
_PCAPNG_ONLY: list[tuple[_Mutation, int]] = [(_m_iface, 2), (_m_foreign_block, 2)]


def mutate_structure(data: bytes, rng: random.Random, log: Log | None = None) -> bytes:
    """One structure-aware mutation of a plain pcap / pcapng file (bytes-level if unparsable)."""
    p = parse(data)
    if p is None:
        return mutate_bytes(data, rng, log)
    table = _STRUCTURE + (_PCAPNG_ONLY if p.fmt == "pcapng" else [])
    fn = rng.choices([m for m, _ in table], weights=[w for _, w in table])[0]
    _note(log, f"{p.fmt}: {fn(p, rng)}")
    return bytes(p)


def mutate_packets(data: bytes, rng: random.Random, log: Log | None = None) -> bytes:
    """Corrupt IP / TCP header fields inside the packets of a plain pcap / pcapng file."""
    p = parse(data)
    if p is None:
        return mutate_bytes(data, rng, log)
    _note(log, f"{p.fmt}: {_m_packet(p, rng)}")
    return bytes(p)


# --------------------------------------------------------------------------- gzip

_GZ_LIMIT = 16 << 20


def gunzip(data: bytes) -> bytes | None:
    """The decompressed bytes of a gzip file (all members), or None if it does not decompress."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as f:
            return f.read(_GZ_LIMIT)
    except (OSError, EOFError, zlib.error):
        return None


def mutate_gzip(data: bytes, rng: random.Random, log: Log | None = None) -> bytes:
    """Mutate a gzip file: its compressed bytes, or its contents (then recompressed or not)."""
    inner = gunzip(data) if data[:2] == b"\x1f\x8b" else None
    if inner is None or rng.random() < 0.25:
        _note(log, "gzip: compressed bytes")
        return mutate_bytes(data, rng, log)
    r = rng.random()
    if r < 0.45:
        inner = mutate_structure(inner, rng, log)
    elif r < 0.75:
        inner = mutate_packets(inner, rng, log)
    else:
        inner = mutate_bytes(inner, rng, log)
    how = rng.randrange(7)
    if how == 0:
        _note(log, "gzip: written back uncompressed")
        return inner
    if how == 1:
        cut = rng.randrange(len(inner) + 1)
        _note(log, f"gzip: recompressed as two members split at {cut}")
        return gzip.compress(inner[:cut], mtime=0) + gzip.compress(inner[cut:], mtime=0)
    if how == 2:
        _note(log, "gzip: recompressed with zero padding")
        return gzip.compress(inner, mtime=0) + bytes(rng.randint(1, 600))
    z = gzip.compress(inner, compresslevel=rng.choice([1, 6, 9]), mtime=0)
    if how == 3:
        at = rng.randrange(2, max(len(z), 3))
        _note(log, f"gzip: recompressed and cut at {at} of {len(z)}")
        return z[:at]
    if how == 4:
        _note(log, "gzip: recompressed, then its compressed bytes mutated")
        return mutate_bytes(z, rng, log)
    if how == 5:
        _note(log, "gzip: recompressed with garbage after the stream")
        return z + rng.randbytes(rng.randint(1, 100))
    _note(log, "gzip: recompressed")
    return z


# --------------------------------------------------------------------------- entry points


def mutate(
    data: bytes, rng: random.Random, log: Log | None = None, families: tuple[str, ...] = FAMILIES
) -> bytes:
    """One mutation from one of ``families`` (a gzip input gets the gzip family when allowed)."""
    if data[:2] == b"\x1f\x8b" and "gzip" in families:
        return mutate_gzip(data, rng, log)
    plain = [f for f in families if f != "gzip"] or ["bytes"]
    family = rng.choice(plain)
    if family == "structure":
        return mutate_structure(data, rng, log)
    if family == "packet":
        return mutate_packets(data, rng, log)
    return mutate_bytes(data, rng, log)


@dataclass
class Case:
    """One reproducible fuzz case: which samples were mutated how into which files."""

    seed: int
    sources: list[Path]
    files: list[bytes]
    steps: list[str]

    def describe(self) -> str:
        names = " + ".join(s.name for s in self.sources)
        return f"seed {self.seed} ({names}): " + " | ".join(self.steps)

    def write(self, folder: Path) -> list[Path]:
        out = []
        for k, (src, data) in enumerate(zip(self.sources, self.files, strict=True)):
            p = folder / f"case{self.seed}-{k}{src.suffix}"
            p.write_bytes(data)
            out.append(p)
        return out


def make_case(
    seed: int,
    families: tuple[str, ...] = FAMILIES,
    sources: list[Path] | None = None,
    max_size: int | None = None,
    merge_every: int = 8,
) -> Case:
    """The case for ``seed``: a sample (two, merged, one seed in ``merge_every``) mutated 1-3 times.

    ``max_size`` limits the samples drawn from (in bytes); everything comes from ``random.Random(seed)``.
    """
    rng = random.Random(seed)
    pool = list(sources if sources is not None else SEEDS)
    if max_size is not None:
        pool = [p for p in pool if p.stat().st_size <= max_size] or pool
    count = 2 if merge_every and rng.randrange(merge_every) == 0 else 1
    picked = [rng.choice(pool) for _ in range(count)]
    files, steps = [], []
    for k, src in enumerate(picked):
        data = src.read_bytes()
        log: Log = []
        for _ in range(rng.randint(1, 3)):
            data = mutate(data, rng, log, families)
        files.append(data)
        steps += [f"[{k}] {s}" for s in log] if count > 1 else log
    return Case(seed, picked, files, steps)


# --------------------------------------------------------------------------- hard time budget


class Hang(BaseException):
    """Raised by :func:`time_budget` when the code under it runs out of time."""


@contextmanager
def time_budget(seconds: float, what: str) -> Iterator[None]:
    """Raise :class:`Hang` (naming ``what``) if the block runs longer than ``seconds``.

    Uses ``SIGALRM`` (main thread, POSIX). A ``BaseException`` so that the reader's
    ``except Exception`` guards cannot turn the timeout into a warning.
    """

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        raise Hang(f"{what}: still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# --------------------------------------------------------------------------- what a result must satisfy


def check_error(message: str, paths: list[Path]) -> list[str]:
    """What is wrong with a ``CaptureError`` message (empty if nothing): one line, names a file."""
    problems = []
    if "\n" in message or "\r" in message:
        problems.append(f"CaptureError message is not one line: {message!r}")
    if not any(str(p) in message for p in paths):
        problems.append(f"CaptureError message names none of the files: {message!r}")
    return problems


def check_analysis(a: Any) -> list[str]:
    """What is wrong with an ``Analysis`` of hostile input (empty if nothing).

    Every view builds, and the counts add up: each record is either a segment or skipped for
    exactly one reason, each segment belongs to exactly one connection, frames are 1-based
    positions among the records, warnings are single lines.
    """
    problems = []
    _ = (a.flows, a.anomalies, a.transitions)
    s = a.summary
    st = a.stats
    skipped = dict(st.skipped)
    if s["segments"] > s["packets"]:
        problems.append(f"{s['segments']} segments out of {s['packets']} packets")
    if any(v < 0 for v in skipped.values()) or any(v <= 0 for v in s["skipped"].values()):
        problems.append(f"negative skip count: {skipped}")
    if s["segments"] + sum(skipped.values()) != s["packets"]:
        problems.append(f"{s['packets']} packets != {s['segments']} segments + skipped {skipped}")
    if sum(f["packets"] for f in a.flow_records) != s["segments"]:
        problems.append("the connections' packets do not add up to the segments")
    if s["connections"] != len(a.flow_records) or len(a.flows) != len(a.flow_records):
        problems.append("connection count differs between the summary, the records and the frame")
    ids = [f["flow_id"] for f in a.flow_records]
    if any(b <= a for a, b in pairwise(ids)) or (
        ids and not 1 <= ids[0] <= ids[-1] <= max(s["packets"], len(ids))
    ):
        problems.append(f"flow ids are not unique, increasing and within 1..packets: {ids[:20]}")
    if s["first_ts"] is not None and s["first_ts"] > s["last_ts"]:
        problems.append("summary first_ts after last_ts")
    if (s["first_ts"] is None) != (s["packets"] == 0):
        problems.append("first_ts missing with packets, or present without")
    for r in (*a.anomaly_records, *a.transition_records):
        if r["frame"] is not None and not 1 <= r["frame"] <= s["packets"]:
            problems.append(f"frame {r['frame']} outside 1..{s['packets']}")
            break
    if s["truncated"] and not s["warnings"]:
        problems.append("truncated without a warning")
    if any("\n" in w for w in s["warnings"]):
        problems.append("a warning of several lines")
    if s["anomalies_not_listed"] < 0 or s["transitions_not_listed"] < 0:
        problems.append("negative not-listed counts")
    if sum(s["anomalies"].values()) != len(a.anomaly_records) + s["anomalies_not_listed"]:
        problems.append("anomaly counts do not add up")
    return problems


def engine_differences(paths: list[Path], engines: tuple[str, str] = ("fast", "reference")) -> list[str]:
    """Where two of analyze()'s engines disagree on the same input (empty if they agree).

    The engines promise the same records in the same order, whatever the input; a
    ``CaptureError`` must be the same from both.
    """
    import tcptrace_sm

    results: list[tuple[str, Any]] = []
    for engine in engines:
        try:
            a = tcptrace_sm.analyze(paths if len(paths) > 1 else paths[0], engine=engine)
        except tcptrace_sm.CaptureError as e:
            results.append(("error", str(e)))
            continue
        summary = {k: v for k, v in a.summary.items() if k != "options"}
        results.append(
            ("analysis", {"flows": a.flow_records, "anomalies": a.anomaly_records,
                          "transitions": a.transition_records, "summary": summary})
        )  # fmt: skip
    (ka, va), (kb, vb) = results
    if ka != kb or ka == "error":
        return [] if va == vb else [f"{engines[0]}: {ka} {str(va)[:200]}; {engines[1]}: {kb} {str(vb)[:200]}"]
    out = []
    for name in va:
        x, y = va[name], vb[name]
        if x == y:
            continue
        if isinstance(x, list):
            if len(x) != len(y):
                out.append(f"{name}: {len(x)} records from {engines[0]}, {len(y)} from {engines[1]}")
                continue
            i = next(k for k, (r, q) in enumerate(zip(x, y, strict=True)) if r != q)
            diff = {k: (x[i].get(k), y[i].get(k)) for k in x[i] if x[i].get(k) != y[i].get(k)}
            out.append(f"{name}[{i}] (flow {x[i].get('flow_id')}) differs: {diff}")
        else:
            keys = [k for k in x if x[k] != y.get(k)]
            out.append(f"{name} differs: " + ", ".join(f"{k}: {x[k]!r} vs {y.get(k)!r}" for k in keys))
    return out
