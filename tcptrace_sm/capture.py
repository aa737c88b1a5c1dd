"""Capture reader: pcap / pcapng / gzip files (or stdin) in, :class:`~tcptrace_sm.model.Segment` out.

The only module of the package that parses capture files (it needs numpy, not dpkt).

Public API
    ``read_segments(paths, *, verify_checksums=False, stats=None, decapsulate=True,
    payload_ports=()) -> Iterator[Segment]``
    ``read_batches(...) -> Iterator[list[Segment]]``: the same segments, one list per chunk
    ``read_columns(...) -> Iterator[Columns]``: the same, as numpy columns
    ``parse_options(raw) -> TcpOptions``
    ``CaptureError`` (a ``ValueError`` whose ``str()`` is one line naming the file)
    ``ReadStats`` (the contract's fields plus ``formats``, one description per file, and
    ``decapsulated``, packets taken out of each kind of tunnel); these two are defined in
    :mod:`tcptrace_sm.common` (no numpy: the command imports them at start-up), the same objects
    ``SUPPORTED_LINKTYPES`` (number -> name), ``SKIP_REASONS``, ``CHUNK``, ``MAX_CAPLEN``,
    ``MAX_BLOCK``, ``TUNNELS``, ``TUNNEL_PORTS``, ``MAX_TUNNEL_DEPTH``

Design
    *Layers.* A file, or ``sys.stdin.buffer`` for ``"-"`` (read with ``read1`` so that a live
    pipe is not held up), sits under a look-ahead buffer. The first bytes decide the format:
    gzip (``1f 8b``, whatever the name) inserts a streaming ``zlib`` layer (multi-member,
    zero padding allowed, output bounded per call, damage reported as a cut after keeping
    everything decodable before it); then the pcap or pcapng magic is read from the
    decompressed bytes. Nothing seeks, so pipes work.

    *Records.* Input is consumed in chunks of :data:`CHUNK` bytes. A tight ``struct`` loop
    walks the record (pcap) or block (pcapng) headers of a chunk and only collects offsets;
    everything else is gathered from the chunk with numpy fancy indexing: record header
    fields, the link header, the IPv4 / IPv6 header and the fixed TCP header (each as one
    structured row per packet). VLAN tags (any depth) and IPv6 extension headers are walked
    by vectorised loops, so no packet takes a per-packet Python path except the optional
    checksum check and the slicing of TCP option bytes. A chunk becomes one batch: the
    timestamps of all its records, plus Python lists of its TCP segments' fields, turned
    into ``Segment`` tuples in one ``map`` (with the cyclic GC paused: the tuples cannot
    form cycles, and collections would otherwise cost more than the decoding).

    *Tunnels.* Non-TCP IP packets that may carry a tunnel (IP protocols 4, 41 and 47, and UDP
    to or from port 4789, 6081, 2152 or 3544) are set aside while a layer is decoded; only
    those rows cost anything more than the ``not_tcp`` mask. Their tunnel headers are parsed
    by vectorised steps per kind of tunnel, and the inner packets (Ethernet or raw IP) go
    through the same link and IP decoding as a new layer, up to :data:`MAX_TUNNEL_DEPTH`
    layers. An inner segment keeps its record's index, hence its frame number and timestamp,
    and the layers' segments are put back in record order by one stable sort.

    *Merging.* A single file is emitted batch by batch. Several files are merged with exactly
    the semantics of ``heapq.merge`` keyed on the timestamp (ties: the earlier file, then
    record order), a slice at a time: while every pending batch is time-ordered, everything
    before the earliest batch end is merged at once by a stable numpy sort on (timestamp,
    file); otherwise one run is taken (the file with the smallest head gives all following
    records that still sort before every other head). Rotated captures (tcpdump ``-C`` /
    ``-G``) thus merge whole chunks at a time. Frame numbers are 1-based positions in the
    merged record stream (every record counts, TCP or not).

    *Memory* stays bounded by a few chunks per open file, whatever the capture size.

Decisions on the corners
    * ``read_segments`` / ``read_batches`` open every file and check its header when they
      are *called*: a ``CaptureError`` comes before any segment, and the returned iterator
      never raises it. Files are closed when the iterator ends or is dropped.
    * A file cut inside its file header (pcap global header, first pcapng section header) is
      not a usable capture: ``CaptureError``. A cut or corrupt record after that ends the
      file with ``stats.truncated = True`` and a one-line warning, keeping what came before.
      Corrupt means: a pcap record longer than :data:`MAX_CAPLEN` (or 64 KiB above a
      smaller snaplen), a pcapng block whose length is not a multiple of 4, below the
      block's minimum, above :data:`MAX_BLOCK` or not repeated at its end, a gzip or read
      error, or anything else that fails while decoding (never an exception to the caller).
    * pcapng: every interface keeps its own link type, ``if_tsresol`` (power of 10 or 2)
      and ``if_tsoffset``; a new section (either byte order) resets the interfaces. If no
      interface described before the first packet has a supported link type the file is
      rejected with ``CaptureError``; otherwise packets on an unsupported interface count as
      ``not_ip``, with one warning per interface. A packet naming an undefined interface
      counts as ``malformed``. Simple packet blocks have no timestamp and take the previous
      packet's; an EPB whose captured length exceeds its block is clamped to the block.
    * Skip reasons, in the order checked: ``truncated_header`` (also for a cut link header or
      VLAN tag), ``not_ip``, ``malformed`` (bad IP version / IHL / TCP data offset, lengths
      that do not add up, more than 16 VLAN tags or IPv6 extension headers), ``fragment``
      (an IP fragment that did not complete its datagram, whatever it carries: a completed
      one is analysed whole, as the record of its last piece; a fragment inside a tunnel or
      inside a reassembled datagram), ``not_tcp``, then ``bad_checksum`` (an
      IPv4 header checksum that fails, with ``verify_checksums``). A segment whose TCP checksum
      fails is not skipped: it comes as a :class:`~tcptrace_sm.model.BadChecksumSegment`
      (``Columns.mark``), which the observer counts, reports and otherwise ignores. A segment
      whose payload the snaplen cut comes as a :class:`~tcptrace_sm.model.TruncatedSegment`:
      the endpoints' states do not care, Zeek's history does (``G``).
    * ``length`` comes from the IP header. An IPv4 total length (or IPv6 payload length) of 0,
      as written for TSO / jumbo packets, falls back to the captured length; such packets'
      checksums are not checked (they are offloaded), nor is the TCP checksum of a packet
      cut by the snaplen. The IPv4 header checksum is checked whenever it is there.
    * NULL (0) link headers are in the capturing host's byte order: a family value above
      0xFFFF is read byte-swapped. Raw link types (12, 14, 101, 228, 229) dispatch on the IP
      version nibble.
    * Tunnels (``decapsulate=True``, the default; Zeek's rules): IP-in-IP (IPv4 / IPv6 in
      IPv4 / IPv6); GRE version 0 with IPv4, IPv6, Ethernet (0x6558) or ERSPAN II / III
      inside, and version 1 (PPTP) with PPP; VXLAN (I flag set) and Geneve (version 0; an
      Ethernet frame, IPv4 or IPv6) carrying Ethernet with any VLAN tags; GTP-U G-PDUs
      (version 1, any optional fields and extension headers; never GTP in GTP) carrying IPv4
      or IPv6; Teredo (optional authentication and origin indication, then IPv6), and on
      other ports too when a datagram is exactly an IPv6 packet from or to a Teredo address
      (2001:0::/32). The UDP tunnels are recognised by either port (the destination's first).
      A segment is keyed by its inner 4-tuple, and its length comes from the inner IP header;
      the inner packet ends where the captured bytes or an enclosing length (IP, UDP, GTP) end.
      ``verify_checksums`` checks the innermost IPv4 header and TCP checksum only (never a UDP
      checksum). Skip reasons: a tunnel or inner header cut short is ``truncated_header``; a
      tunnel header that is not one this reader opens (wrong version or flags, another GTP
      message, an unknown payload type), an empty tunnel or a non-TCP (or non-IP) inner packet
      is ``not_tcp``, as without decapsulation; an inner IP version other than its tunnel
      names, a GTP extension header of length 0, more than 16 of them, or a tunnel nested more
      than :data:`MAX_TUNNEL_DEPTH` deep is ``malformed``. ``stats.decapsulated`` counts the
      packets taken out of each kind of tunnel, whatever they carried.
    * ``stats.first_ts`` / ``last_ts`` are the smallest / largest record timestamp, which for
      a time-ordered capture are the first and the last record's. Stats are complete once
      the iterator is exhausted; skip counts are added per decoded chunk.
"""

from __future__ import annotations

import gc
import os
import socket
import struct
import sys
import zlib
from bisect import bisect_left
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from itertools import chain, pairwise
from typing import IO, Any, ClassVar, Final, Protocol

import numpy as np
import numpy.typing as npt

from tcptrace_sm.common import CaptureError, ReadStats
from tcptrace_sm.model import BadChecksumSegment, Segment, TcpOptions, TruncatedSegment

#: Whether the compiled helpers (``tcptrace_sm._scan``, built at install time where a C compiler
#: is present: the pcap / pcapng record walks, header rows, plain TCP records, SYN options,
#: CSV cells) are in use; without them the same answers come from numpy and Python loops,
#: reading about four times as slowly. ``TCPSM_PURE_PYTHON=1`` in the environment turns them
#: off. Every caller checks it when called, so tests can switch it.
COMPILED = False
if not os.environ.get("TCPSM_PURE_PYTHON"):
    try:
        from tcptrace_sm import _scan

        COMPILED = True
    except ImportError:  # installed without a C compiler: the Python loop, same answers
        pass

__all__ = [
    "CHUNK",
    "MAX_BLOCK",
    "MAX_CAPLEN",
    "MAX_TUNNEL_DEPTH",
    "NAMES",
    "SKIP_REASONS",
    "SUPPORTED_LINKTYPES",
    "TUNNELS",
    "TUNNEL_PORTS",
    "CaptureError",
    "Columns",
    "ReadStats",
    "make_segments",
    "new_segment",
    "parse_options",
    "read_batches",
    "read_columns",
    "read_segments",
    "segments_of",
]

I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]
Rows = npt.NDArray[np.void]

#: Bytes requested from the (decompressed) input at a time; one chunk becomes one batch.
CHUNK: Final = 2 << 20
#: Largest plausible captured length of one pcap record (libpcap's maximum snaplen).
MAX_CAPLEN: Final = 262144
#: Largest plausible pcapng block.
MAX_BLOCK: Final = 16 << 20
_GZ_IN: Final = 1 << 20

SKIP_REASONS: Final = ("not_ip", "not_tcp", "fragment", "truncated_header", "malformed", "bad_checksum")

SUPPORTED_LINKTYPES: Final[dict[int, str]] = {
    0: "NULL",
    1: "ETHERNET",
    12: "RAW",
    14: "RAW",
    101: "RAW",
    108: "LOOP",
    113: "LINUX_SLL",
    228: "IPV4",
    229: "IPV6",
    276: "LINUX_SLL2",
}
_OTHER_LINKTYPES: Final[dict[int, str]] = {
    6: "IEEE802_5",
    9: "PPP",
    10: "FDDI",
    50: "PPP_HDLC",
    51: "PPP_ETHER",
    104: "C_HDLC",
    105: "IEEE802_11",
    107: "FRELAY",
    119: "IEEE802_11_PRISM",
    127: "IEEE802_11_RADIOTAP",
    143: "DOCSIS",
    147: "USER0",
    187: "BLUETOOTH_HCI_H4",
    189: "USB_LINUX",
    192: "PPI",
    195: "IEEE802_15_4",
    201: "BLUETOOTH_HCI_H4_WITH_PHDR",
    220: "USB_LINUX_MMAPPED",
    227: "CAN_SOCKETCAN",
    249: "USBPCAP",
    253: "NETLINK",
    254: "BLUETOOTH_LINUX_MONITOR",
}

_LT_NULL, _LT_ETH, _LT_LOOP, _LT_SLL, _LT_SLL2 = 0, 1, 108, 113, 276
_RAW_LTS: Final = frozenset({12, 14, 101, 228, 229})
# link types with an ethertype: (header length, ethertype offset)
_ETHERTYPE_LINKS: Final[dict[int, tuple[int, int]]] = {
    _LT_ETH: (14, 12),
    _LT_SLL: (16, 14),
    _LT_SLL2: (20, 0),
}
_VLAN_TPIDS: Final = (0x8100, 0x88A8, 0x9100)
_MAX_NEST: Final = 16
_IP6_EXT: Final = (0, 43, 60, 51, 135, 139, 140)  # 44 (fragment) is handled on its own

#: Tunnels opened inside one another at most (Zeek's ``Tunnel::max_depth``); a packet nested
#: deeper counts as ``malformed``.
MAX_TUNNEL_DEPTH: Final = 4
#: The kinds of tunnel the reader opens: the keys of ``ReadStats.decapsulated``.
TUNNELS: Final = ("ip-in-ip", "gre", "vxlan", "geneve", "gtp-u", "teredo")
# internal kinds of tunnel: IP-in-IP with an IPv4 / IPv6 inside, GRE, the UDP tunnels, and
# Teredo recognised by its contents on some other port (already parsed when found)
_T_IP4, _T_IP6, _T_GRE, _T_VXLAN, _T_GENEVE, _T_GTP, _T_TEREDO, _T_TEREDO_SEEN = range(8)
_T_NAMES: Final = ("ip-in-ip", "ip-in-ip", "gre", "vxlan", "geneve", "gtp-u", "teredo", "teredo")
#: Well-known UDP ports of the UDP tunnels (either port of a datagram; the destination wins).
TUNNEL_PORTS: Final[dict[int, str]] = {4789: "vxlan", 6081: "geneve", 2152: "gtp-u", 3544: "teredo"}
_PORT_KIND: Final = np.full(65536, -1, dtype=np.int64)
_PORT_KIND[[4789, 6081, 2152, 3544]] = [_T_VXLAN, _T_GENEVE, _T_GTP, _T_TEREDO]
_CARRIER: Final = np.zeros(256, dtype=np.bool_)  # IP protocols that may carry a tunnel
_CARRIER[[4, 17, 41, 47]] = True  # IPv4, UDP, IPv6, GRE
_LT_RAW_IP: Final = 101
# why a tunnel was not opened (0: it was)
_OPENED, _CUT, _NOT_TCP, _MALFORMED = 0, 1, 2, 3
_WHY: Final = ("", "truncated_header", "not_tcp", "malformed")

_PCAP_MAGICS: Final[dict[bytes, tuple[str, int, int, str]]] = {
    # first four bytes -> (byte order, ns per fraction unit, record header size, description)
    b"\xd4\xc3\xb2\xa1": ("<", 1000, 16, "pcap (µs, little-endian)"),
    b"\xa1\xb2\xc3\xd4": (">", 1000, 16, "pcap (µs, big-endian)"),
    b"\x4d\x3c\xb2\xa1": ("<", 1, 16, "pcap (ns, little-endian)"),
    b"\xa1\xb2\x3c\x4d": (">", 1, 16, "pcap (ns, big-endian)"),
    b"\x34\xcd\xb2\xa1": ("<", 1000, 24, "pcap (modified/Kuznetzov, little-endian)"),
    b"\xa1\xb2\xcd\x34": (">", 1000, 24, "pcap (modified/Kuznetzov, big-endian)"),
}
_SHB: Final = 0x0A0D0D0A
_BOM: Final = 0x1A2B3C4D
_IDB, _PB, _SPB, _EPB = 1, 2, 3, 6

_TCP_DT: Final = np.dtype(
    [("sport", ">u2"), ("dport", ">u2"), ("seq", ">u4"), ("ack", ">u4"), ("off", "u1"), ("flags", "u1"),
     ("win", ">u2"), ("sum", ">u2"), ("urp", ">u2")]
)  # fmt: skip
_IP4_DT: Final = np.dtype(
    [("vhl", "u1"), ("tos", "u1"), ("len", ">u2"), ("id", ">u2"), ("frag", ">u2"), ("ttl", "u1"),
     ("proto", "u1"), ("sum", ">u2"), ("src", ">u4"), ("dst", ">u4")]
)  # fmt: skip
_IP6_DT: Final = np.dtype(
    [("vtf", ">u4"), ("plen", ">u2"), ("nh", "u1"), ("hlim", "u1"), ("src", "V16"), ("dst", "V16")]
)
_SPAN: Final = {w: np.arange(w, dtype=np.int64) for w in (2, 4, 8, 20, 40)}
_V16: Final = np.dtype("V16")


def _v4_as_16(addr: npt.NDArray[Any]) -> npt.NDArray[np.void]:
    """IPv4 addresses (big-endian u4) as 16-byte values, the address in the last four bytes."""
    out = np.zeros((len(addr), 4), dtype=">u4")
    out[:, 3] = addr
    v: npt.NDArray[np.void] = out.view(_V16).ravel()
    return v


class _Corrupt(Exception):
    """Input that cannot be read past this point (reported as a cut, never raised to users)."""


# --------------------------------------------------------------------------- byte sources


class _Readable(Protocol):
    def read(self, n: int) -> bytes: ...


class _RawInput:
    """A file or stdin; counts the bytes taken from it."""

    def __init__(self, f: IO[bytes], own: bool, stream: bool) -> None:
        self.f = f
        self.own = own
        read1 = getattr(f, "read1", None)
        self._read: Callable[[int], bytes] = read1 if stream and read1 is not None else f.read
        self.count = 0

    def read(self, n: int) -> bytes:
        try:
            data = self._read(n)
        except OSError as e:
            raise _Corrupt(f"read error ({e.strerror or e})") from e
        self.count += len(data)
        return data

    def close(self) -> None:
        if self.own:
            self.f.close()


class _Ahead:
    """Look-ahead over a byte source: ``peek`` without consuming, then ``read`` pieces."""

    def __init__(self, src: _Readable) -> None:
        self._src = src
        self._buf = b""

    def peek(self, n: int) -> bytes:
        while len(self._buf) < n:
            data = self._src.read(max(n - len(self._buf), 65536))
            if not data:
                break
            self._buf += data
        return self._buf[:n]

    def read(self, n: int) -> bytes:
        if self._buf:
            out, self._buf = self._buf, b""
            return out
        return self._src.read(n)


class _Gunzip:
    """Streaming gzip decoder: multi-member, zero padding allowed, bounded output per call."""

    def __init__(self, src: _Readable) -> None:
        self._src = src
        self._d = zlib.decompressobj(31)
        self._pending = b""
        self._done = False
        self._error: _Corrupt | None = None

    def _more(self) -> bytes:
        data = self._pending or self._src.read(_GZ_IN)
        self._pending = b""
        return data

    def read(self, n: int) -> bytes:
        while not self._done:
            if self._d.eof:
                rest = self._d.unused_data.lstrip(b"\0")
                while not rest:
                    data = self._src.read(_GZ_IN)
                    if not data:
                        self._done = True
                        return b""
                    rest = data.lstrip(b"\0")
                if len(rest) < 2:
                    rest += self._src.read(_GZ_IN)
                if rest[:2] != b"\x1f\x8b":
                    raise _Corrupt("data after the end of the gzip stream is not gzip")
                self._d = zlib.decompressobj(31)
                self._pending = rest
            if self._error is not None:
                raise self._error
            data = self._more()
            if not data:
                raise _Corrupt("gzip stream cut before its end")
            before = self._d.copy()
            try:
                out = self._d.decompress(data, n)
            except zlib.error as e:
                # zlib drops the output of a failing call: redo it in small steps to keep
                # everything before the damage, and report the damage on the next read
                self._error = _Corrupt(f"gzip data corrupt ({e})")
                out = self._salvage(before, data, n)
                if not out:
                    raise self._error from e
                return out
            self._pending = self._d.unconsumed_tail
            if out:
                return out
        return b""

    def _salvage(self, d: Any, data: bytes, n: int) -> bytes:
        out = []
        size = 0
        try:
            for i in range(0, len(data), 64):
                piece = d.decompress(data[i : i + 64], n - size)
                out.append(piece)
                size += len(piece)
                if d.unconsumed_tail or d.eof or size >= n:
                    break
        except zlib.error:
            pass
        return b"".join(out)


# --------------------------------------------------------------------------- address strings


#: Address strings kept at most (about 8 MB); the cache starts over when full.
_NAMES_KEPT: Final = 1 << 16


class _V4Names(dict[int, str]):
    def __missing__(self, key: int) -> str:
        if len(self) >= _NAMES_KEPT:
            self.clear()
        s = self[key] = socket.inet_ntop(socket.AF_INET, key.to_bytes(4, "big"))
        return s


class _V6Names(dict[bytes, str]):
    def __missing__(self, key: bytes) -> str:
        if len(self) >= _NAMES_KEPT:
            self.clear()
        s = self[key] = socket.inet_ntop(socket.AF_INET6, key)
        return s


# --------------------------------------------------------------------------- vectorised decoding


def _rows(u8: U8, pos: I64, width: int, dt: np.dtype[Any]) -> Rows:
    """``width`` bytes at each position, viewed as one structured row per position."""
    if COMPILED:
        out: Rows = np.empty(len(pos), dtype=dt)
        _scan.gather(u8, np.ascontiguousarray(pos, dtype=np.int64), width, out)
        return out
    rows: Rows = u8[pos[:, None] + _SPAN[width]].view(dt).ravel()
    return rows


def _be16(u8: U8, pos: I64) -> I64:
    return (u8[pos].astype(np.int64) << 8) | u8[pos + 1]


def _u32(u8: U8, pos: I64, big: bool) -> I64:
    out: I64 = _rows(u8, pos, 4, _U32_DT[big]).astype(np.int64)
    return out


def _u16(u8: U8, pos: I64, big: bool) -> I64:
    out: I64 = _rows(u8, pos, 2, _U16_DT[big]).astype(np.int64)
    return out


_U32_DT: Final = {False: np.dtype("<u4"), True: np.dtype(">u4")}
_U16_DT: Final = {False: np.dtype("<u2"), True: np.dtype(">u2")}


def _gather(buf: U8, off: I64, idx: npt.NDArray[np.intp] | I64) -> tuple[U8, I64]:
    """The variable-length slices ``idx`` of ``buf`` (bounds in ``off``), packed: (bytes, bounds)."""
    starts = off[:-1][idx]
    lens = off[1:][idx] - starts
    bounds = np.zeros(len(lens) + 1, dtype=np.int64)
    np.cumsum(lens, out=bounds[1:])
    total = int(bounds[-1])
    if not total:
        return np.empty(0, dtype=np.uint8), bounds
    pos = np.repeat(starts - bounds[:-1], lens) + np.arange(total, dtype=np.int64)
    return buf[pos], bounds


#: ``Columns.mark``: the segment's TCP checksum failed.
BAD_CHECKSUM: Final = 1
#: ``Columns.mark``: the capture cut the segment's payload (its snaplen is shorter).
TRUNCATED: Final = 2


@dataclass(slots=True)
class Columns:
    """TCP segments as numpy columns (one row per segment), the reader's native output.

    ``fam`` is 4 or 6; ``src`` / ``dst`` are 16-byte addresses (an IPv4 address in the last four
    bytes); ``opt`` holds every segment's raw TCP option bytes back to back, row ``i`` owning
    ``opt[ooff[i]:ooff[i + 1]]``. ``frame`` and ``ts`` are filled when a batch is emitted.
    ``pay`` / ``poff`` hold the captured payload bytes the same way, for the rows whose ports
    the reader was asked to keep them for (``payload_ports``); the others own none.
    """

    fam: U8
    src: Rows
    dst: Rows
    sport: I64
    dport: I64
    seq: I64
    ack: I64
    flags: I64
    win: I64
    length: I64
    opt: U8
    ooff: I64
    frame: I64 = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    ts: I64 = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    #: :data:`BAD_CHECKSUM` where the TCP checksum failed (with ``verify_checksums``),
    #: :data:`TRUNCATED` where the capture cut the payload, else 0
    mark: U8 = field(default_factory=lambda: np.empty(0, dtype=np.uint8))
    pay: U8 = field(default_factory=lambda: np.empty(0, dtype=np.uint8))
    poff: I64 = field(default_factory=lambda: np.empty(0, dtype=np.int64))

    NUMERIC: ClassVar[tuple[str, ...]] = (
        "fam", "src", "dst", "sport", "dport", "seq", "ack", "flags", "win", "length", "mark",
    )  # fmt: skip

    def __post_init__(self) -> None:
        if len(self.mark) != len(self.seq):
            self.mark = np.zeros(len(self.seq), dtype=np.uint8)
        if len(self.poff) != len(self.seq) + 1:
            self.poff = np.zeros(len(self.seq) + 1, dtype=np.int64)

    @classmethod
    def empty(cls) -> Columns:
        e = np.empty(0, dtype=np.int64)
        v = np.empty(0, dtype=_V16)
        return cls(
            fam=np.empty(0, dtype=np.uint8), src=v, dst=v, sport=e, dport=e, seq=e, ack=e, flags=e,
            win=e, length=e, opt=np.empty(0, dtype=np.uint8), ooff=np.zeros(1, dtype=np.int64),
        )  # fmt: skip

    def __len__(self) -> int:
        return len(self.seq)

    def take(self, idx: npt.NDArray[np.intp] | I64) -> Columns:
        """The rows ``idx``, in that order."""
        out: dict[str, Any] = {name: getattr(self, name)[idx] for name in self.NUMERIC}
        out["opt"], out["ooff"] = _gather(self.opt, self.ooff, idx)
        if len(self.pay):
            out["pay"], out["poff"] = _gather(self.pay, self.poff, idx)
        if len(self.frame) == len(self.seq):
            out["frame"] = self.frame[idx]
            out["ts"] = self.ts[idx]
        return Columns(**out)

    @classmethod
    def concat(cls, parts: Sequence[Columns]) -> Columns:
        if len(parts) == 1:
            return parts[0]
        if not parts:
            return cls.empty()
        out: dict[str, Any] = {
            name: np.concatenate([getattr(p, name) for p in parts]) for name in cls.NUMERIC
        }
        out["opt"] = np.concatenate([p.opt for p in parts])
        shift = np.cumsum([0] + [int(p.ooff[-1]) for p in parts[:-1]])
        out["ooff"] = np.concatenate(
            [parts[0].ooff[:1]] + [p.ooff[1:] + k for p, k in zip(parts, shift.tolist(), strict=True)]
        )
        if any(len(p.pay) for p in parts):
            out["pay"] = np.concatenate([p.pay for p in parts])
            pshift = np.cumsum([0] + [int(p.poff[-1]) for p in parts[:-1]])
            out["poff"] = np.concatenate(
                [parts[0].poff[:1]] + [p.poff[1:] + k for p, k in zip(parts, pshift.tolist(), strict=True)]
            )
        if all(len(p.frame) == len(p.seq) for p in parts):
            out["frame"] = np.concatenate([p.frame for p in parts])
            out["ts"] = np.concatenate([p.ts for p in parts])
        return Columns(**out)

    def options(self) -> list[bytes]:
        """Every row's raw option bytes."""
        raw = self.opt.tobytes()
        b = self.ooff.tolist()
        return [raw[x:y] for x, y in pairwise(b)]

    def payloads(self) -> list[bytes]:
        """Every row's kept payload bytes (empty where none were kept)."""
        if not len(self.pay):
            return [b""] * len(self)
        raw = self.pay.tobytes()
        return [raw[x:y] for x, y in pairwise(self.poff.tolist())]


def _drop(
    skip: dict[str, int],
    reason: str,
    bad: npt.NDArray[np.bool_],
    *arrays: Any,
    also: npt.NDArray[np.bool_] | None = None,
) -> list[Any]:
    """Count ``bad`` rows under ``reason`` and return the arrays without them (nor the rows
    ``also``, which are not counted)."""
    nbad = int(np.count_nonzero(bad))
    if nbad:
        skip[reason] = skip.get(reason, 0) + nbad
    if also is not None:
        bad = bad | also
    elif not nbad:
        return list(arrays)
    keep = ~bad
    return [a[keep] for a in arrays]


# --------------------------------------------------------------------------- tunnels


class _Carried:
    """Tunnel packets met while decoding one layer of a chunk, waiting to be opened: per packet
    its record, the kind of tunnel, where the tunnel header starts and where the packet ends
    (the captured end, or an enclosing length if that comes first)."""

    __slots__ = ("parts",)

    def __init__(self) -> None:
        self.parts: list[tuple[I64, I64, I64, I64]] = []

    def add(self, rec: I64, kind: I64 | int, pos: I64, end: I64) -> None:
        if len(rec):
            kinds = np.full(len(rec), kind, dtype=np.int64) if isinstance(kind, int) else kind
            self.parts.append((rec, kinds, pos, end))

    def __bool__(self) -> bool:
        return bool(self.parts)

    def arrays(self) -> tuple[I64, I64, I64, I64]:
        if len(self.parts) == 1:
            return self.parts[0]
        rec, kind, pos, end = (np.concatenate([p[i] for p in self.parts]) for i in range(4))
        return rec, kind, pos, end

    def offer(
        self, u8: U8, proto: I64, rec: I64, pay: I64, lim: I64, via: I64 | None
    ) -> npt.NDArray[np.bool_]:
        """Take the tunnels among non-TCP IP packets (IP protocol ``proto``, payload from
        ``pay`` to ``lim``); returns which were taken. ``via`` gives, per record, the kind of
        tunnel the packets came out of (None at the outermost layer)."""
        lim = np.maximum(lim, pay)
        taken = np.zeros(len(rec), dtype=np.bool_)
        for number, tkind in ((4, _T_IP4), (41, _T_IP6), (47, _T_GRE)):
            sel = proto == number
            if sel.any():
                taken |= sel
                self.add(rec[sel], tkind, pay[sel], lim[sel])
        u = np.flatnonzero((proto == 17) & (lim - pay >= 8))
        if not len(u):
            return taken
        at = pay[u]
        kind = _PORT_KIND[_be16(u8, at + 2)]
        kind = np.where(kind < 0, _PORT_KIND[_be16(u8, at)], kind)
        if via is not None:  # GTP is never carried in GTP: a G-PDU to port 2152 is user data
            kind[(kind == _T_GTP) & (via[rec[u]] == _T_GTP)] = -1
        ulen = _be16(u8, at + 4)
        decl = np.where(ulen >= 8, at + ulen, lim[u])  # the datagram's end by its own length
        end = np.minimum(lim[u], decl)
        port = kind >= 0
        if port.any():
            taken[u[port]] = True
            self.add(rec[u[port]], kind[port], at[port] + 8, end[port])
        if port.all():
            return taken
        other = np.flatnonzero(~port)
        seen, inner = _teredo_by_content(u8, at[other] + 8, end[other], decl[other])
        if len(seen):
            k = other[seen]
            taken[u[k]] = True
            self.add(rec[u[k]], _T_TEREDO_SEEN, inner, end[k])
        return taken


class _Open:
    """The parse of tunnel headers over some packets, one row each: why not opened (0: it
    was), where the inner packet starts (``q``) and ends, its link type (Ethernet or raw IP),
    and the IP version it must have (0: any). ``live`` lists the rows still being parsed."""

    __slots__ = ("code", "end", "live", "lt", "q", "want")

    def __init__(self, pos: I64, end: I64) -> None:
        n = len(pos)
        self.q: I64 = pos.copy()
        self.end: I64 = end.copy()
        self.code: I64 = np.zeros(n, dtype=np.int64)
        self.lt: I64 = np.full(n, _LT_RAW_IP, dtype=np.int64)
        self.want: I64 = np.zeros(n, dtype=np.int64)
        self.live: I64 = np.arange(n, dtype=np.int64)

    def fail(self, bad: npt.NDArray[np.bool_], why: int) -> I64:
        """The live rows where ``bad`` (one value per row) holds stop with ``why``; returns
        the rows still live."""
        b = bad[self.live]
        if b.any():
            self.code[self.live[b]] = why
            self.live = self.live[~b]
        return self.live

    def need(self, nbytes: int | I64) -> I64:
        """Live rows without ``nbytes`` (one value per row, or for all) at ``q`` are cut."""
        return self.fail(self.end - self.q < nbytes, _CUT)

    def alive(self, rows: I64) -> I64:
        """Those of ``rows`` still live."""
        out: I64 = rows[self.code[rows] == _OPENED]
        return out

    def ethertype(self, rows: I64, et: I64) -> None:
        """Rows whose inner packet is named by an ethertype: Ethernet, IPv4 or IPv6."""
        e = et[rows]
        self.lt[rows] = np.where(e == 0x6558, _LT_ETH, _LT_RAW_IP)
        self.want[rows] = np.where(e == 0x0800, 4, np.where(e == 0x86DD, 6, 0))
        bad = np.zeros(len(self.q), dtype=np.bool_)
        bad[rows] = ~np.isin(e, (0x6558, 0x0800, 0x86DD))
        self.fail(bad, _NOT_TCP)


def _zeros(n: int) -> I64:
    return np.zeros(n, dtype=np.int64)


def _open_vxlan(u8: U8, t: _Open) -> None:
    """VXLAN (RFC 7348): 8 bytes, the I flag set, then an Ethernet frame."""
    k = t.need(8)
    flags = _zeros(len(t.q))
    flags[k] = u8[t.q[k]]
    k = t.fail((flags & 0x08) == 0, _NOT_TCP)
    t.q[k] += 8
    t.lt[k] = _LT_ETH


def _open_geneve(u8: U8, t: _Open) -> None:
    """Geneve (RFC 8926): version 0, 8 bytes plus options, then the packet its protocol names."""
    n = len(t.q)
    k = t.need(8)
    b0 = _zeros(n)
    b0[k] = u8[t.q[k]]
    k = t.fail((b0 >> 6) != 0, _NOT_TCP)
    k = t.need(8 + (b0 & 0x3F) * 4)
    et = _zeros(n)
    et[k] = _be16(u8, t.q[k] + 2)
    t.q[k] += 8 + (b0[k] & 0x3F) * 4
    t.ethertype(k, et)


def _open_gtp(u8: U8, t: _Open) -> None:
    """GTP-U (3GPP TS 29.281): version 1 G-PDU (type 255); 4 more bytes when any of E / S / PN
    is set, then the extension headers the E flag chains; the message length bounds the packet."""
    n = len(t.q)
    q = t.q
    k = t.need(8)
    b0 = _zeros(n)
    mtype = _zeros(n)
    b0[k] = u8[q[k]]
    mtype[k] = u8[q[k] + 1]
    k = t.fail(((b0 >> 5) != 1) | ((b0 & 0x10) == 0) | (mtype != 255), _NOT_TCP)
    t.end[k] = np.minimum(t.end[k], q[k] + 8 + _be16(u8, q[k] + 2))
    opt = (b0 & 0x07) != 0
    k = t.need(np.where(opt, 12, 8))
    nxt = _zeros(n)
    e = k[(b0[k] & 0x04) != 0]
    nxt[e] = u8[q[e] + 11]
    q[k] += np.where(opt[k], 12, 8)
    for _ in range(_MAX_NEST):
        e = t.live[nxt[t.live] != 0]
        if not len(e):
            break
        wanted = _zeros(n)
        wanted[e] = 1
        t.need(wanted)
        e = t.alive(e)
        ln = _zeros(n)
        ln[e] = u8[q[e]].astype(np.int64) * 4  # in 4-byte units, this byte and the next type's included
        t.fail(nxt.astype(np.bool_) & (ln == 0), _MALFORMED)
        e = t.alive(e)
        t.need(np.where(nxt != 0, ln, 0))
        e = t.alive(e)
        nxt[e] = u8[q[e] + ln[e] - 1]
        q[e] += ln[e]
    else:
        t.fail(nxt != 0, _MALFORMED)


def _open_teredo(u8: U8, t: _Open) -> None:
    """Teredo (RFC 4380): an optional authentication header (type 1), an optional origin
    indication (type 0, not before the authentication), then an IPv6 packet."""
    n = len(t.q)
    q = t.q
    k = t.need(2)
    tag = np.full(n, -1, dtype=np.int64)
    tag[k] = _be16(u8, q[k])
    a = k[tag[k] == 1]
    if len(a):
        t.need(np.where(tag == 1, 4, 0))
        a = t.alive(a)
        ln = _zeros(n)
        ln[a] = 13 + u8[q[a] + 2].astype(np.int64) + u8[q[a] + 3]  # ids, nonce, confirmation byte
        t.need(ln)
        a = t.alive(a)
        q[a] += ln[a]
        t.need(np.where(tag == 1, 2, 0))
        a = t.alive(a)
        tag[a] = _be16(u8, q[a])
        t.fail(tag == 1, _NOT_TCP)
    o = t.live[tag[t.live] == 0]
    if len(o):
        t.need(np.where(tag == 0, 8, 0))
        o = t.alive(o)
        q[o] += 8
    k = t.need(1)
    version = _zeros(n)
    version[k] = u8[q[k]] >> 4
    t.fail(version != 6, _NOT_TCP)


def _teredo_by_content(u8: U8, pos: I64, end: I64, decl: I64) -> tuple[I64, I64]:
    """Teredo on a port other than 3544, recognised by its contents as Zeek does: a Teredo
    encapsulation holding a whole IPv6 packet (its payload length fits the datagram exactly)
    from or to a Teredo address (2001:0::/32). Returns the rows and their inner positions."""
    none = np.empty(0, dtype=np.int64)
    k = np.flatnonzero(end - pos >= 40)
    if not len(k):
        return none, none
    b0 = u8[pos[k]]
    k = k[((b0 >> 4) == 6) | ((b0 == 0) & (u8[pos[k] + 1] <= 1))]
    if not len(k):
        return none, none
    t = _Open(pos[k], end[k])
    _open_teredo(u8, t)
    r = t.need(40)
    if not len(r):
        return none, none
    q = t.q[r]
    prefix = np.array([0x20, 0x01, 0x00, 0x00], dtype=np.uint8)
    src = (u8[q[:, None] + (8 + _SPAN[4])] == prefix).all(axis=1)
    dst = (u8[q[:, None] + (24 + _SPAN[4])] == prefix).all(axis=1)
    whole = q + 40 + _be16(u8, q + 4) == decl[k[r]]
    ok = (src | dst) & whole
    return k[r[ok]], q[ok]


def _open_gre(u8: U8, t: _Open) -> None:
    """GRE (RFC 2784 / 2890): version 0 carrying IPv4, IPv6, Ethernet (0x6558) or ERSPAN
    type II / III mirrored frames, or version 1 (PPTP, RFC 2637) carrying PPP with IPv4 / IPv6.
    The deprecated routing field and unknown flags are not decoded."""
    n = len(t.q)
    q = t.q
    k = t.need(4)
    fv = _zeros(n)
    et = _zeros(n)
    fv[k] = _be16(u8, q[k])
    et[k] = _be16(u8, q[k] + 2)
    ver = fv & 0x0007
    v0 = ver == 0
    known = np.isin(et, (0x0800, 0x86DD, 0x6558, 0x88BE, 0x22EB))
    t.fail(((ver > 1) | ((fv & 0x4078) != 0) | (v0 & ~known) | (~v0 & (et != 0x880B))), _NOT_TCP)
    # checksum, key, sequence number, acknowledgment (PPTP): 4 bytes each when flagged
    hl = 4 + 4 * (((fv >> 15) & 1) + ((fv >> 13) & 1) + ((fv >> 12) & 1) + ((fv >> 7) & 1))
    k = t.need(hl)
    q[k] += hl[k]
    # ERSPAN: type II (0x88BE with a sequence number) has 8 bytes, type III 12 plus 8 optional
    two = (et == 0x88BE) & ((fv & 0x1000) != 0)
    k = t.need(np.where(two, 8, np.where(et == 0x22EB, 12, 0)))
    three = k[et[k] == 0x22EB]
    extra = np.where(two, 8, 0)
    extra[three] = 12 + 8 * (u8[q[three] + 11] & 1)
    k = t.need(extra)
    q[k] += extra[k]
    erspan = (et == 0x88BE) | (et == 0x22EB)
    t.ethertype(k[v0[k] & ~erspan[k]], et)
    e = k[erspan[k]]
    t.lt[e] = _LT_ETH
    # PPTP: nothing after the header is an acknowledgment alone; PPP may omit FF 03
    ppp = t.alive(k[~v0[k]])
    if not len(ppp):
        return
    t.fail(~v0 & (t.end <= q), _NOT_TCP)
    t.need(np.where(v0, 0, 2))
    ppp = t.alive(ppp)
    hdlc = ppp[(u8[q[ppp]] == 0xFF) & (u8[q[ppp] + 1] == 0x03)]
    q[hdlc] += 2
    t.need(np.where(v0, 0, 2))
    ppp = t.alive(ppp)
    proto = _zeros(n)
    proto[ppp] = _be16(u8, q[ppp])
    q[ppp] += 2
    t.want[ppp] = np.where(proto[ppp] == 0x0021, 4, 6)
    t.fail(~v0 & (proto != 0x0021) & (proto != 0x0057), _NOT_TCP)


_OPENERS: Final[dict[int, Callable[[U8, _Open], None]]] = {
    _T_GRE: _open_gre,
    _T_VXLAN: _open_vxlan,
    _T_GENEVE: _open_geneve,
    _T_GTP: _open_gtp,
    _T_TEREDO: _open_teredo,
}


def _open_tunnels(
    u8: U8, kind: I64, pos: I64, end: I64, skip: dict[str, int], counts: dict[str, int]
) -> tuple[I64, I64, I64, I64]:
    """Parse the tunnel headers: (rows opened, inner start, inner end, inner link type). The
    others are counted in ``skip``; the opened ones in ``counts``, by kind of tunnel."""
    t = _Open(pos, end)
    live = t.fail(t.end <= t.q, _NOT_TCP)  # nothing inside
    t.want[kind == _T_IP4] = 4
    t.want[kind == _T_IP6] = 6
    present = np.flatnonzero(np.bincount(kind[live], minlength=len(_T_NAMES))).tolist()
    for tkind in present:
        opener = _OPENERS.get(tkind)
        if opener is not None:  # it parses the live rows only: those of its kind
            t.live = live if len(present) == 1 else live[kind[live] == tkind]
            opener(u8, t)
    t.live = np.flatnonzero(t.code == _OPENED)
    k = t.fail(t.end <= t.q, _NOT_TCP)
    # an inner IP packet of the version its tunnel names (4 for IPv4-in-IP, ...)
    version = _zeros(len(t.q))
    version[k] = u8[t.q[k]] >> 4
    k = t.fail((t.want != 0) & (version != t.want), _MALFORMED)
    why = np.bincount(t.code, minlength=len(_WHY))
    for code in (_CUT, _NOT_TCP, _MALFORMED):
        if why[code]:
            skip[_WHY[code]] = skip.get(_WHY[code], 0) + int(why[code])
    for kk, c in enumerate(np.bincount(kind[k], minlength=len(_T_NAMES)).tolist()):
        if c:
            counts[_T_NAMES[kk]] = counts.get(_T_NAMES[kk], 0) + c
    return k, t.q[k], t.end[k], t.lt[k]


#: One decoded IP layer: (record index, TCP header position, TCP segment length, captured end,
#: family, source, destination) per segment.
_L4 = tuple[I64, I64, I64, I64, U8, Rows, Rows, U8]


#: IPv4 datagrams held in pieces at most (the oldest goes first), and bytes per datagram.
MAX_FRAGMENTED: Final = 4096
_MAX_DATAGRAM: Final = 65535


class _Datagram:
    """The fragments of one IPv4 datagram seen so far."""

    __slots__ = ("header", "pieces", "size", "total")

    def __init__(self) -> None:
        self.header: bytes | None = None  # the first fragment's IP header
        self.pieces: dict[int, bytes] = {}  # payload by offset
        self.size = 0
        self.total: int | None = None  # payload length, once the last fragment came

    def add(self, offset: int, data: bytes, last: bool, header: bytes | None) -> bool:
        """Add a fragment; False if it contradicts what came before (the datagram is lost)."""
        old = self.pieces.get(offset)
        if old is not None and old != data:
            return False
        end = offset + len(data)
        if last:
            if self.total is not None and self.total != end:
                return False
            if any(o + len(d) > end for o, d in self.pieces.items()):
                return False
            self.total = end
        elif self.total is not None and end > self.total:
            return False
        if old is None:
            self.pieces[offset] = data
            self.size += len(data)
        if header is not None:
            self.header = header
        return self.size <= _MAX_DATAGRAM

    def whole(self) -> bytes | None:
        """The reassembled payload, once every byte is there (None also where overlapping
        fragments disagree: the datagram is lost)."""
        if self.total is None or self.header is None or self.size < self.total:
            return None
        out = np.zeros(self.total, dtype=np.uint8)
        have = np.zeros(self.total, dtype=np.bool_)
        for o, d in self.pieces.items():
            piece = np.frombuffer(d, dtype=np.uint8)
            placed = have[o : o + len(d)]
            if (out[o : o + len(d)][placed] != piece[placed]).any():
                self.total = -1  # never whole
                return None
            out[o : o + len(d)] = piece
            placed[:] = True
        return out.tobytes() if have.all() else None


class _Fragments:
    """IP reassembly across chunks, as Zeek (and the receiving host) does: a datagram comes
    out whole, as its completing fragment's record; the other fragments count as skipped
    (``fragment``)."""

    def __init__(self) -> None:
        self.pending: dict[tuple[int, bytes, bytes, int, int], _Datagram] = {}
        # this chunk's: records, IP header positions, fragment header positions (IPv6; -1 for
        # IPv4), ends
        self.rows: list[tuple[I64, I64, I64, I64]] = []

    def offer(self, idx: I64, p: I64, end: I64, q: I64 | None = None) -> None:
        if len(idx):
            self.rows.append((idx, p, np.full(len(idx), -1, dtype=np.int64) if q is None else q, end))

    def _datagram(self, key: tuple[int, bytes, bytes, int, int]) -> _Datagram:
        dg = self.pending.get(key)
        if dg is None:
            if len(self.pending) >= MAX_FRAGMENTED:
                del self.pending[next(iter(self.pending))]
            dg = self.pending[key] = _Datagram()
        return dg

    def reassemble(
        self, buf: bytes, skip: dict[str, int], verify: bool
    ) -> tuple[list[tuple[int, int, bytes]], int]:
        """This chunk's fragments into the table: per completed datagram (its completing
        record, 4 or 6, the whole packet), in record order. With ``verify``, an IPv4 fragment
        whose header checksum fails is skipped as ``bad_checksum`` (the host drops it)."""
        if not self.rows:
            return [], 0
        idx, pos, fq, end = (np.concatenate([r[k] for r in self.rows]) for k in range(4))
        self.rows = []
        order = np.argsort(idx, kind="stable")
        done: list[tuple[int, int, bytes]] = []
        lost = 0
        for rec, a, q, e in zip(*(x[order].tolist() for x in (idx, pos, fq, end)), strict=True):
            if q < 0:
                hl = (buf[a] & 15) * 4
                if verify and _ip_checksum(buf[a : a + hl]):
                    skip["bad_checksum"] = skip.get("bad_checksum", 0) + 1
                    continue
                tot, ident, frag = struct.unpack_from("!HHH", buf, a + 2)
                key = (4, buf[a + 12 : a + 16], buf[a + 16 : a + 20], buf[a + 9], ident)
                start, stop, offset, last = a + hl, a + tot, (frag & 0x1FFF) * 8, not frag & 0x2000
                head = buf[a : a + hl]
            else:
                plen = struct.unpack_from("!H", buf, a + 4)[0]
                nh, off_m, ident = struct.unpack_from("!BxHI", buf, q)
                key = (6, buf[a + 8 : a + 24], buf[a + 24 : a + 40], 0, ident)
                start, stop, offset, last = q + 8, a + 40 + plen, off_m & 0xFFF8, not off_m & 1
                head = _unfragmentable(buf, a, q, nh)
            data = buf[start : min(e, stop)]
            dg = self._datagram(key)
            whole = stop >= start and len(data) == stop - start
            if not whole or not dg.add(offset, data, last, head if not offset else None):
                del self.pending[key]  # cut by the snaplen, or contradicting: lost
                lost += 1
                continue
            payload = dg.whole()
            if payload is None:
                if dg.total == -1:
                    del self.pending[key]
                lost += 1
                continue
            del self.pending[key]
            header = bytearray(dg.header or b"")
            if key[0] == 4:
                struct.pack_into("!HHH", header, 2, len(header) + len(payload), key[4], 0)
                struct.pack_into("!H", header, 10, 0)
                struct.pack_into("!H", header, 10, _ip_checksum(bytes(header)))
            else:
                struct.pack_into("!H", header, 4, len(header) - 40 + len(payload))
            done.append((rec, key[0], bytes(header) + payload))
        return done, lost


def _unfragmentable(buf: bytes, a: int, q: int, nh: int) -> bytes:
    """The IPv6 header and the extension headers before the fragment header at ``q``, the
    one that named the fragment header now naming what the fragments carry (``nh``)."""
    out = bytearray(buf[a:q])
    field, kind, pos = 6, buf[a + 6], a + 40
    while pos < q:  # (the decoder walked these already: they end at q)
        field = pos - a  # an extension header starts with its own "next header"
        step = (buf[pos + 1] + 2) * 4 if kind == 51 else (buf[pos + 1] + 1) * 8
        kind = buf[pos]
        pos += step
    out[field] = nh
    return bytes(out)


def _ip_checksum(header: bytes) -> int:
    total = int(sum(struct.unpack(f"!{len(header) // 2}H", header)))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


class _Decoder:
    """Turns the records of one chunk into segment columns (shared by all files of a call)."""

    def __init__(
        self,
        verify: bool,
        decapsulate: bool = True,
        counts: dict[str, int] | None = None,
        payload_ports: Collection[int] = (),
    ) -> None:
        self.verify = verify
        self.decapsulate = decapsulate
        self.counts: dict[str, int] = counts if counts is not None else {}
        self.payload_ports = np.array(sorted(set(payload_ports)), dtype=np.int64)
        self.fragments = _Fragments()
        self.reassembling = False  # decoding reassembled datagrams: pieces inside stay pieces

    def link(self, u8: U8, d: I64, end: I64, lt: int, skip: dict[str, int]) -> tuple[I64, I64, I64, I64]:
        """Row indices (into ``d`` / ``end``) and network-header positions of the IPv4 and the
        IPv6 packets."""
        n = len(d)
        if lt in _ETHERTYPE_LINKS:
            hl, etoff = _ETHERTYPE_LINKS[lt]
            idx = np.arange(n, dtype=np.int64)
            (idx,) = _drop(skip, "truncated_header", end - d < hl, idx)
            start = d[idx]
            l3 = start + hl
            et = _be16(u8, start + etoff)
            for _ in range(_MAX_NEST):
                tag = (et == 0x8100) | (et == 0x88A8) | (et == 0x9100)
                if not tag.any():
                    break
                t = np.flatnonzero(tag)
                short = end[idx[t]] < l3[t] + 4
                if short.any():
                    bad = np.zeros(len(idx), dtype=np.bool_)
                    bad[t[short]] = True
                    idx, l3, et = _drop(skip, "truncated_header", bad, idx, l3, et)
                    t = np.flatnonzero((et == 0x8100) | (et == 0x88A8) | (et == 0x9100))
                et[t] = _be16(u8, l3[t] + 2)
                l3[t] += 4
            else:
                tag = (et == 0x8100) | (et == 0x88A8) | (et == 0x9100)
                idx, l3, et = _drop(skip, "malformed", tag, idx, l3, et)
            is4 = et == 0x0800
            is6 = et == 0x86DD
        elif lt in (_LT_NULL, _LT_LOOP):
            idx = np.arange(n, dtype=np.int64)
            (idx,) = _drop(skip, "truncated_header", end - d < 4, idx)
            l3 = d[idx] + 4
            fam = _u32(u8, d[idx], lt == _LT_LOOP)
            if lt == _LT_NULL:  # host byte order of the capturing machine: either one
                swapped = fam > 0xFFFF
                if swapped.any():
                    fam = np.where(swapped, fam.astype(np.uint32).byteswap().astype(np.int64), fam)
            is4 = fam == 2
            is6 = (fam == 24) | (fam == 28) | (fam == 30)
        elif lt in _RAW_LTS:
            idx = np.arange(n, dtype=np.int64)
            (idx,) = _drop(skip, "truncated_header", end - d < 1, idx)
            l3 = d[idx]
            nib = u8[l3] >> 4
            is4 = nib == 4
            is6 = nib == 6
        else:  # unsupported interface of a pcapng file
            skip["not_ip"] = skip.get("not_ip", 0) + n
            e = np.empty(0, dtype=np.int64)
            return e, e, e, e
        other = ~(is4 | is6)
        if other.any():
            skip["not_ip"] = skip.get("not_ip", 0) + int(np.count_nonzero(other))
        return idx[is4], l3[is4], idx[is6], l3[is6]

    def decode(
        self, buf: bytes, u8: U8, d: I64, cap: I64, lt: int, skip: dict[str, int]
    ) -> tuple[I64, Columns]:
        """Segments of the records at ``d`` (captured lengths ``cap``), all of link type ``lt``.

        Returns the record index of every segment (ascending) and their columns.
        """
        if (
            COMPILED
            and len(d)
            and not self.verify
            and not len(self.payload_ports)
            and (lt in _ETHERTYPE_LINKS or lt in _RAW_LTS)
        ):
            return self._decode_compiled(buf, u8, d, cap, lt, skip)
        return self._decode(buf, u8, d, cap, lt, skip)

    def _decode_compiled(
        self, buf: bytes, u8: U8, d: I64, cap: I64, lt: int, skip: dict[str, int]
    ) -> tuple[I64, Columns]:
        """:meth:`decode` with the plain TCP records decoded by the compiled helper; the rest
        (anything that is skipped, fragmented, tunnelled, ...) by the numpy decoder."""
        n = len(d)
        hl, etoff = _ETHERTYPE_LINKS.get(lt, (0, 0))
        rec, slow = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
        fam = np.empty(n, dtype=np.uint8)
        src, dst = np.empty(n, dtype=_V16), np.empty(n, dtype=_V16)
        sport, dport, seq, ack, flags, win, length = (np.empty(n, dtype=np.int64) for _ in range(7))
        mark = np.empty(n, dtype=np.uint8)
        ooff = np.empty(n + 1, dtype=np.int64)
        opt = np.empty(n * 40, dtype=np.uint8)
        c = np.ascontiguousarray
        nf, ns = _scan.decode_tcp(
            u8, c(d, dtype=np.int64), c(cap, dtype=np.int64), hl, etoff, lt in _RAW_LTS,
            rec, slow, fam, src, dst, sport, dport, seq, ack, flags, win, length, mark, ooff, opt,
        )  # fmt: skip
        cols = Columns(
            fam=fam[:nf], src=src[:nf], dst=dst[:nf], sport=sport[:nf], dport=dport[:nf], seq=seq[:nf],
            ack=ack[:nf], flags=flags[:nf], win=win[:nf], length=length[:nf],
            opt=opt[: ooff[nf]].copy(), ooff=ooff[: nf + 1], mark=mark[:nf],
        )  # fmt: skip
        rec = rec[:nf]
        if not ns:
            return rec, cols
        s = slow[:ns]
        srec, scols = self._decode(buf, u8, d[s], cap[s], lt, skip)
        if not len(srec):
            return rec, cols
        both = np.concatenate([rec, s[srec]])
        order = np.argsort(both, kind="stable")
        return both[order], Columns.concat([cols, scols]).take(order)

    def _decode(
        self, buf: bytes, u8: U8, d: I64, cap: I64, lt: int, skip: dict[str, int]
    ) -> tuple[I64, Columns]:
        """:meth:`decode` with numpy, every record."""
        end = d + cap
        parts: list[_L4] = []
        carried = _Carried() if self.decapsulate else None
        i4, p4, i6, p6 = self.link(u8, d, end, lt, skip)
        self._network(buf, u8, i4, p4, end[i4], i6, p6, end[i6], skip, parts, carried, None)
        done, lost = self.fragments.reassemble(buf, skip, self.verify)
        if lost:
            skip["fragment"] = skip.get("fragment", 0) + lost
        if done:
            # the reassembled datagrams go after the chunk's bytes, and through the same layers
            at = np.cumsum([len(buf)] + [len(x) for _r, _f, x in done]).astype(np.int64)
            buf = buf + b"".join(x for _r, _f, x in done)
            u8 = np.frombuffer(buf, dtype=np.uint8)
            rec = np.array([r for r, _f, _x in done], dtype=np.int64)
            v4 = np.array([f == 4 for _r, f, _x in done], dtype=np.bool_)
            lo, hi = at[:-1], at[1:]
            self.reassembling = True
            try:
                self._network(
                    buf, u8, rec[v4], lo[v4], hi[v4], rec[~v4], lo[~v4], hi[~v4], skip, parts, carried, None
                )
            finally:
                self.reassembling = False
        opened = bool(carried) or bool(done)
        depth = 0
        while carried:
            rec, kind, pos, tend = carried.arrays()
            depth += 1
            if depth > MAX_TUNNEL_DEPTH:
                skip["malformed"] = skip.get("malformed", 0) + len(rec)
                break
            k, pos, tend, ilt = _open_tunnels(u8, kind, pos, tend, skip, self.counts)
            rec, kind = rec[k], kind[k]
            via = np.full(len(d), -1, dtype=np.int64)
            via[rec] = kind
            carried = _Carried()
            inner: dict[str, int] = {}
            eth = ilt == _LT_ETH
            for group, sel in ((_LT_ETH, eth), (_LT_RAW_IP, ~eth)):
                if not sel.any():
                    continue
                r, e = rec[sel], tend[sel]
                j4, q4, j6, q6 = self.link(u8, pos[sel], e, group, inner)
                self._network(buf, u8, r[j4], q4, e[j4], r[j6], q6, e[j6], skip, parts, carried, via)
            # what a tunnel carries that is not IP is not TCP either
            inner["not_tcp"] = inner.get("not_tcp", 0) + inner.pop("not_ip", 0)
            for reason, count in inner.items():
                if count:
                    skip[reason] = skip.get(reason, 0) + count
        if opened:
            parts = [p for p in parts if len(p[0])]
        if not parts:
            return np.empty(0, dtype=np.int64), Columns.empty()
        if len(parts) == 1 and not opened:
            return self._tcp(u8, *parts[0], skip)
        # several families or layers (tunnels come out in the order they were met): one TCP
        # pass over the union, in record order (a record gives one segment at most)
        idx = np.concatenate([p[0] for p in parts])
        order = np.argsort(idx, kind="stable")
        cat = [np.concatenate([p[k] for p in parts])[order] for k in range(1, 8)]
        tcp, seglen, end, fam, src, dst, mark = cat
        return self._tcp(u8, idx[order], tcp, seglen, end, fam, src, dst, mark, skip)

    def _network(
        self,
        buf: bytes,
        u8: U8,
        i4: I64,
        p4: I64,
        e4: I64,
        i6: I64,
        p6: I64,
        e6: I64,
        skip: dict[str, int],
        parts: list[_L4],
        carried: _Carried | None,
        via: I64 | None,
    ) -> None:
        """Decode the IPv4 packets (records ``i4``, headers at ``p4``, ends ``e4``) and the IPv6
        ones into ``parts``; tunnels go to ``carried`` (None: not decapsulating)."""
        if len(i4):
            parts.append(self._ipv4(buf, u8, i4, p4, e4, skip, carried, via))
        if len(i6):
            parts.append(self._ipv6(buf, u8, i6, p6, e6, skip, carried, via))

    def _ipv4(
        self,
        buf: bytes,
        u8: U8,
        idx: I64,
        p: I64,
        end: I64,
        skip: dict[str, int],
        carried: _Carried | None = None,
        via: I64 | None = None,
    ) -> _L4:
        """IPv4 packets that carry a whole TCP header: (record index, TCP header position,
        TCP segment length from the IP header, captured end, source, destination). Tunnels
        go to ``carried`` (if given) instead of counting as ``not_tcp``."""
        idx, p, end = _drop(skip, "truncated_header", end - p < 20, idx, p, end)
        h = _rows(u8, p, 20, _IP4_DT)
        vhl = h["vhl"]
        idx, p, end, h, vhl = _drop(
            skip, "malformed", ((vhl >> 4) != 4) | ((vhl & 15) < 5), idx, p, end, h, vhl
        )
        hl = (vhl & 15).astype(np.int64) * 4
        rem = end - p
        idx, p, end, h, hl, rem = _drop(skip, "truncated_header", rem < hl, idx, p, end, h, hl, rem)
        frag = (h["frag"] & 0x3FFF) != 0
        if via is None and not self.reassembling and frag.any():  # outer: reassembled (see decode)
            self.fragments.offer(idx[frag], p[frag], end[frag])
            none = np.zeros_like(frag)  # counted once their datagram's fate is known
            idx, p, end, h, hl, rem = _drop(skip, "fragment", none, idx, p, end, h, hl, rem, also=frag)
        else:
            idx, p, end, h, hl, rem = _drop(skip, "fragment", frag, idx, p, end, h, hl, rem)
        other = h["proto"] != 6
        tunnel = None
        if carried is not None and other.any():
            c = np.flatnonzero(other)
            c = c[_CARRIER[h["proto"][c]]]
            if len(c):
                tot = h["len"][c].astype(np.int64)
                pay = p[c] + hl[c]
                lim = np.where(tot == 0, end[c], np.minimum(end[c], p[c] + tot))
                taken = carried.offer(u8, h["proto"][c].astype(np.int64), idx[c], pay, lim, via)
                tunnel = np.zeros(len(idx), dtype=np.bool_)
                tunnel[c[taken]] = True
                other &= ~tunnel
        idx, p, end, h, hl, rem = _drop(skip, "not_tcp", other, idx, p, end, h, hl, rem, also=tunnel)
        idx, p, end, h, hl, rem = _drop(skip, "truncated_header", rem < hl + 20, idx, p, end, h, hl, rem)
        tot = h["len"].astype(np.int64)
        zero = tot == 0
        tot = np.where(zero, rem, tot)
        idx, p, end, h, hl, tot, zero = _drop(skip, "malformed", tot < hl + 20, idx, p, end, h, hl, tot, zero)
        tcp = p + hl
        seglen = tot - hl
        mark = np.zeros(len(idx), dtype=np.uint8)
        if self.verify:
            bad = np.zeros(len(idx), dtype=np.bool_)
            for k, (a, ihl, t, sl, e, z) in enumerate(
                zip(
                    p.tolist(),
                    hl.tolist(),
                    tcp.tolist(),
                    seglen.tolist(),
                    end.tolist(),
                    zero.tolist(),
                    strict=True,
                )
            ):
                if z:
                    continue
                if int.from_bytes(buf[a : a + ihl], "big") % 0xFFFF:
                    bad[k] = True  # never reaches TCP: skipped
                elif t + sl <= e:
                    s = int.from_bytes(buf[t : t + sl], "big")
                    if sl & 1:
                        s <<= 8
                    if (s + int.from_bytes(buf[a + 12 : a + 20], "big") + 6 + sl) % 0xFFFF:
                        mark[k] = BAD_CHECKSUM  # a segment its receiver drops: kept, marked
            idx, tcp, seglen, end, h, mark = _drop(skip, "bad_checksum", bad, idx, tcp, seglen, end, h, mark)
        fam = np.full(len(idx), 4, dtype=np.uint8)
        return idx, tcp, seglen, end, fam, _v4_as_16(h["src"]), _v4_as_16(h["dst"]), mark

    def _ipv6(
        self,
        buf: bytes,
        u8: U8,
        idx: I64,
        p: I64,
        end: I64,
        skip: dict[str, int],
        carried: _Carried | None = None,
        via: I64 | None = None,
    ) -> _L4:
        """Like :meth:`_ipv4`, walking the extension headers."""
        idx, p, end = _drop(skip, "truncated_header", end - p < 40, idx, p, end)
        h = _rows(u8, p, 40, _IP6_DT)
        idx, p, end, h = _drop(skip, "malformed", (h["vtf"] >> 28) != 6, idx, p, end, h)
        nh = h["nh"].astype(np.int64)
        q = p + 40
        for _ in range(_MAX_NEST):
            frag = nh == 44
            if via is None and not self.reassembling and frag.any():  # outer: reassembled (see decode)
                keep = frag & (end - q >= 8)
                self.fragments.offer(idx[keep], p[keep], end[keep], q[keep])
                idx, p, end, h, nh, q = _drop(
                    skip, "fragment", frag & ~keep, idx, p, end, h, nh, q, also=keep
                )
            else:
                idx, p, end, h, nh, q = _drop(skip, "fragment", frag, idx, p, end, h, nh, q)
            ext = np.isin(nh, _IP6_EXT)
            if not ext.any():
                break
            idx, p, end, h, nh, q, ext = _drop(
                skip, "truncated_header", ext & (end - q < 8), idx, p, end, h, nh, q, ext
            )
            e = np.flatnonzero(ext)
            at = q[e]
            ln = u8[at + 1].astype(np.int64)
            q[e] = at + np.where(nh[e] == 51, (ln + 2) * 4, (ln + 1) * 8)
            nh[e] = u8[at]
        else:
            idx, p, end, h, nh, q = _drop(
                skip, "malformed", np.isin(nh, (*_IP6_EXT, 44)), idx, p, end, h, nh, q
            )
        other = nh != 6
        tunnel = None
        if carried is not None and other.any():
            c = np.flatnonzero(other)
            c = c[_CARRIER[nh[c]]]
            if len(c):
                plen = h["plen"][c].astype(np.int64)
                lim = np.where(plen == 0, end[c], np.minimum(end[c], p[c] + 40 + plen))
                taken = carried.offer(u8, nh[c], idx[c], q[c], lim, via)
                tunnel = np.zeros(len(idx), dtype=np.bool_)
                tunnel[c[taken]] = True
                other &= ~tunnel
        idx, p, end, h, q = _drop(skip, "not_tcp", other, idx, p, end, h, q, also=tunnel)
        idx, p, end, h, q = _drop(skip, "truncated_header", end - q < 20, idx, p, end, h, q)
        plen = h["plen"].astype(np.int64)
        zero = plen == 0
        plen = np.where(zero, end - p - 40, plen)
        seglen = plen - (q - p - 40)
        idx, p, end, h, q, seglen, zero = _drop(
            skip, "malformed", seglen < 20, idx, p, end, h, q, seglen, zero
        )
        mark = np.zeros(len(idx), dtype=np.uint8)
        if self.verify:
            for k, (a, t, sl, e, z) in enumerate(
                zip(p.tolist(), q.tolist(), seglen.tolist(), end.tolist(), zero.tolist(), strict=True)
            ):
                if z or t + sl > e:
                    continue
                s = int.from_bytes(buf[t : t + sl], "big")
                if sl & 1:
                    s <<= 8
                if (s + int.from_bytes(buf[a + 8 : a + 40], "big") + 6 + sl) % 0xFFFF:
                    mark[k] = BAD_CHECKSUM
        fam = np.full(len(idx), 6, dtype=np.uint8)
        return idx, q, seglen, end, fam, h["src"].copy(), h["dst"].copy(), mark

    def _tcp(
        self,
        u8: U8,
        idx: I64,
        tcp: I64,
        seglen: I64,
        end: I64,
        fam: U8,
        src: Rows,
        dst: Rows,
        mark: U8,
        skip: dict[str, int],
    ) -> tuple[I64, Columns]:
        t = _rows(u8, tcp, 20, _TCP_DT)
        hlen = (t["off"] >> 4).astype(np.int64) * 4
        length = seglen - hlen
        bad = (hlen < 20) | (length < 0)
        if bad.any():
            idx, tcp, end, t, hlen, length, fam, src, dst, mark = _drop(
                skip, "malformed", bad, idx, tcp, end, t, hlen, length, fam, src, dst, mark
            )
        # option bytes: up to the data offset, or the snaplen
        a = tcp + 20
        olen = np.maximum(np.minimum(tcp + hlen, end) - a, 0)
        ooff = np.zeros(len(a) + 1, dtype=np.int64)
        np.cumsum(olen, out=ooff[1:])
        total = int(ooff[-1])
        if total:
            pos = np.repeat(a - ooff[:-1], olen) + np.arange(total, dtype=np.int64)
            opt = u8[pos]
        else:
            opt = np.empty(0, dtype=np.uint8)
        sport, dport = t["sport"].astype(np.int64), t["dport"].astype(np.int64)
        at = tcp + hlen
        mark = mark | np.where(np.minimum(end, at + length) - at < length, TRUNCATED, 0).astype(np.uint8)
        pay, poff = self._payload(u8, at, length, end, sport, dport)
        cols = Columns(
            fam=fam,
            src=src,
            dst=dst,
            sport=sport,
            dport=dport,
            seq=t["seq"].astype(np.int64),
            ack=t["ack"].astype(np.int64),
            flags=t["flags"].astype(np.int64),
            win=t["win"].astype(np.int64),
            length=length,
            opt=opt,
            ooff=ooff,
            mark=mark,
            pay=pay,
            poff=poff,
        )
        return idx, cols

    def _payload(self, u8: U8, at: I64, length: I64, end: I64, sport: I64, dport: I64) -> tuple[U8, I64]:
        """The captured payload bytes of the segments to or from :attr:`payload_ports` (none
        for the others): (bytes, bounds), as :class:`Columns` keeps them."""
        ports = self.payload_ports
        if not len(ports):
            return np.empty(0, dtype=np.uint8), np.empty(0, dtype=np.int64)
        want = np.isin(sport, ports) | np.isin(dport, ports)
        plen = np.where(want, np.clip(np.minimum(end, at + length) - at, 0, None), 0)
        poff = np.zeros(len(at) + 1, dtype=np.int64)
        np.cumsum(plen, out=poff[1:])
        total = int(poff[-1])
        if not total:
            return np.empty(0, dtype=np.uint8), poff
        pos = np.repeat(at - poff[:-1], plen) + np.arange(total, dtype=np.int64)
        return u8[pos], poff


# --------------------------------------------------------------------------- files


@dataclass
class _Batch:
    """One decoded chunk: timestamps of all its records and the segments among them."""

    ts: I64
    rec: I64  # record index (within the batch) of every segment, ascending
    cols: Columns


@dataclass
class _Iface:
    linktype: int
    snaplen: int
    tsresol: int  # if_tsresol byte
    offset_ns: int
    warned: bool = False

    def to_ns(self, units: npt.NDArray[np.uint64]) -> I64:
        """Nanoseconds since the epoch; absurd values saturate at :data:`TS_MIN` and
        :data:`TS_MAX` (garbage stays garbage, but never wraps round, and any two times can be
        subtracted in 64 bits)."""
        r = self.tsresol
        if not r & 0x80 and r <= 9:
            mul = 10 ** (9 - r)
            limit = np.uint64(_I64_MAX // mul)
            ts = np.where(units > limit, _I64_MAX, units.astype(np.int64) * mul).astype(np.int64)
        elif not r & 0x80 and r <= 19:
            q = units // np.uint64(10 ** (r - 9))
            ts = np.minimum(q, np.uint64(_I64_MAX)).astype(np.int64)
        else:  # powers of two (and absurd powers of ten): exact integer arithmetic
            if r & 0x80:
                k = r & 0x7F
                conv = [(u * 1_000_000_000) >> k for u in units.tolist()]
            else:
                div = 10 ** (r - 9)
                conv = [u // div for u in units.tolist()]
            ts = np.array([min(max(v, _I64_MIN), _I64_MAX) for v in conv], dtype=np.int64)
        if self.offset_ns:
            off = min(max(self.offset_ns, _I64_MIN), _I64_MAX)
            if off > 0:
                ts = np.where(ts > _I64_MAX - off, _I64_MAX, ts + off)
            else:
                ts = np.where(ts < _I64_MIN - off, _I64_MIN, ts + off)
        out: I64 = np.clip(ts, TS_MIN, TS_MAX)
        return out


_I64_MAX: Final = (1 << 63) - 1
_I64_MIN: Final = -(1 << 63)
#: The earliest and the latest time a capture can give (1896 and 2116; a pcap's lie between
#: 1970 and 2106): any difference of two fits in 64 bits.
TS_MIN: Final = -(1 << 61)
TS_MAX: Final = 1 << 62


def _pcapng_walk(buf: bytes, pos: int, big: bool) -> tuple[I64, list[int], int, str]:
    """The packet blocks (enhanced, simple, obsolete) of a pcapng section from ``pos``: their
    offsets, the indices among them of the simple and obsolete ones, where the walk stopped,
    and why: ``"meta"`` (a section header or interface description block), ``"corrupt"`` (a
    block length below its type's minimum, not a multiple of 4 or above :data:`MAX_BLOCK`) or
    ``""`` (the end of the data, or a block that does not fit in it)."""
    if COMPILED:
        raw, rawodd, end, why = _scan.pcapng_walk(buf, pos, big, MAX_BLOCK)
        return (
            np.frombuffer(raw, dtype=np.int64),
            np.frombuffer(rawodd, dtype=np.int64).tolist(),
            end,
            ("", "corrupt", "meta")[why],
        )
    hdr = struct.Struct((">" if big else "<") + "II").unpack_from
    n = len(buf)
    offs: list[int] = []
    odd: list[int] = []
    app = offs.append
    off = pos
    stop = ""
    while off + 8 <= n:
        btype, blen = hdr(buf, off)
        if btype == _EPB:
            if blen < 32 or blen & 3 or blen > MAX_BLOCK:
                stop = "corrupt"
                break
            if off + blen > n:
                break
            app(off)
        elif btype in (_SHB, _IDB):
            stop = "meta"
            break
        elif btype in (_SPB, _PB):
            if blen < (16 if btype == _SPB else 32) or blen & 3 or blen > MAX_BLOCK:
                stop = "corrupt"
                break
            if off + blen > n:
                break
            odd.append(len(offs))
            app(off)
        else:
            if blen < 12 or blen & 3 or blen > MAX_BLOCK:
                stop = "corrupt"
                break
            if off + blen > n:
                break
        off += blen
    return np.array(offs, dtype=np.int64), odd, off, stop


def _pcap_walk(buf: bytes, pos: int, hdr: int, big: bool) -> tuple[I64, int]:
    """Offsets of the pcap records that lie wholly in ``buf`` from ``pos`` on (record headers
    ``hdr`` bytes long, captured length at +8), and the offset just past the last of them.
    Compiled where it was built (:data:`COMPILED`), else a Python loop with the same answers."""
    if COMPILED:
        raw, end = _scan.pcap_walk(buf, pos, hdr, big)
        return np.frombuffer(raw, dtype=np.int64), end
    caplen_at = struct.Struct((">" if big else "<") + "8xI").unpack_from
    n = len(buf)
    offs: list[int] = []
    app = offs.append
    off = pos
    last = n - hdr
    while off <= last:
        nxt = off + hdr + caplen_at(buf, off)[0]
        if nxt > n:
            break
        app(off)
        off = nxt
    return np.array(offs, dtype=np.int64), off


def _linktype_name(lt: int) -> str:
    name = SUPPORTED_LINKTYPES.get(lt) or _OTHER_LINKTYPES.get(lt)
    return f"{lt} ({name})" if name else str(lt)


def _unsupported(name: str, lt: int) -> CaptureError:
    return CaptureError(
        f"{name}: unsupported link type {_linktype_name(lt)}; supported: ETHERNET (1), RAW (101, 12, 14, "
        "228, 229), NULL (0), LOOP (108), LINUX_SLL (113), LINUX_SLL2 (276)"
    )


class _File:
    """One opened capture: format detection at open time, then batches on demand."""

    def __init__(self, path: str | os.PathLike[str], decoder: _Decoder, stats: ReadStats) -> None:
        self.raw: _RawInput | None = None
        self.name = "-" if path == "-" else os.fspath(path)
        self.dec = decoder
        self.stats = stats
        self.records = 0
        self._counted = 0
        self.batches: Iterator[_Batch] = iter(())
        name = self.name
        if name == "-":
            self.raw = _RawInput(sys.stdin.buffer, own=False, stream=True)
        else:
            try:
                f = open(name, "rb")  # noqa: SIM115 - closed by close()
            except IsADirectoryError:
                raise CaptureError(f"{name}: is a directory, not a capture file") from None
            except FileNotFoundError:
                raise CaptureError(f"{name}: no such file") from None
            except OSError as e:
                raise CaptureError(f"{name}: cannot open ({e.strerror or e})") from None
            self.raw = _RawInput(f, own=True, stream=False)
        try:
            self._sniff()
        except BaseException:
            self.close()
            raise

    def _sniff(self) -> None:
        name = self.name
        assert self.raw is not None
        src = _Ahead(self.raw)
        try:
            head = src.peek(4)
            gz = head[:2] == b"\x1f\x8b"
            if gz:
                src = _Ahead(_Gunzip(src))
                head = src.peek(4)
        except _Corrupt as e:
            raise CaptureError(f"{name}: {e}") from None
        if not head:
            raise CaptureError(f"{name}: empty after gzip decompression" if gz else f"{name}: empty file")
        self.src = src
        self.fmt: str
        if head in _PCAP_MAGICS:
            self._open_pcap(head)
        elif head == b"\x0a\x0d\x0d\x0a":
            self._open_pcapng()
        else:
            shown = " ".join(f"{b:02x}" for b in head)
            inner = ", after gzip decompression" if gz else ""
            raise CaptureError(f"{name}: not a pcap or pcapng capture (starts with {shown}{inner})")
        self.stats.formats.append(("gzip, " if gz else "") + self.fmt)

    def _read_piece(self) -> bytes:
        return self.src.read(CHUNK)

    def _guard(self, batches: Iterator[_Batch]) -> Iterator[_Batch]:
        """Whatever goes wrong inside one file ends that file with a warning, never an exception."""
        try:
            yield from batches
        except Exception as e:  # the reader must not die on hostile input
            self._stop(f"undecodable data ({type(e).__name__}: {e})")

    # ---- classic pcap

    def _open_pcap(self, magic: bytes) -> None:
        bo, mul, hdr_len, desc = _PCAP_MAGICS[magic]
        try:
            head = self.src.peek(24)
        except _Corrupt as e:
            raise CaptureError(f"{self.name}: {e}") from None
        if len(head) < 24:
            raise CaptureError(f"{self.name}: pcap file header cut short ({len(head)} of 24 bytes)")
        snaplen, linktype = struct.unpack_from(bo + "II", head, 16)
        lt = linktype & 0xFFFF
        if lt not in SUPPORTED_LINKTYPES:
            raise _unsupported(self.name, lt)
        self.fmt = f"{desc}, {SUPPORTED_LINKTYPES[lt]}"
        self.big = bo == ">"
        self.mul = mul
        self.hdr_len = hdr_len
        self.linktype = lt
        limit = MAX_CAPLEN
        if 0 < snaplen < MAX_CAPLEN - 65536:
            limit = snaplen + 65536
        elif snaplen > MAX_CAPLEN:
            limit = min(snaplen, MAX_BLOCK)
        self.limit = limit
        self.batches = self._guard(self._pcap_batches())

    def _pcap_batches(self) -> Iterator[_Batch]:
        caplen_at = struct.Struct(("<" if not self.big else ">") + "8xI").unpack_from
        big = self.big
        hdr = self.hdr_len
        limit = self.limit
        buf = b""
        pos = 24  # skip the file header
        filepos = 0  # offset of buf[0] in the (decompressed) file
        while True:
            try:
                piece = self._read_piece()
            except _Corrupt as e:
                self._stop(f"{e}")
                return
            eof = not piece
            if piece:
                filepos += pos
                buf = buf[pos:] + piece if pos <= len(buf) else piece[pos - len(buf) :]
                pos = 0
            # walk complete records
            n = len(buf)
            offs, off = _pcap_walk(buf, pos, hdr, big)
            last = n - hdr
            # absurd lengths: the record that did not fit, or one inside the chunk
            corrupt = caplen_at(buf, off)[0] if off <= last else 0
            if corrupt <= limit:
                corrupt = 0
            if len(offs):
                batch, bad = self._pcap_batch(buf, offs)
                if bad is not None:
                    off, corrupt = offs[bad], caplen_at(buf, offs[bad])[0]
                if batch is not None:
                    yield batch
            pos = off
            if corrupt:
                self._stop(f"corrupt record header at byte {filepos + off} (captured length {corrupt})")
                return
            if eof:
                if pos < n:
                    self._cut()
                return

    def _pcap_batch(self, buf: bytes, o: I64) -> tuple[_Batch | None, int | None]:
        """The records at offsets ``o``, up to the first one with an absurd length (its index)."""
        u8 = np.frombuffer(buf, dtype=np.uint8)
        big = self.big
        cap = _u32(u8, o + 8, big)
        bad = None
        over = np.flatnonzero(cap > self.limit)
        if len(over):
            bad = int(over[0])
            if not bad:
                return None, bad
            o, cap = o[:bad], cap[:bad]
        sec = _u32(u8, o, big)
        frac = _u32(u8, o + 4, big)
        ts = sec * 1_000_000_000 + frac * self.mul
        return self._batch(buf, u8, ts, o + self.hdr_len, cap, self.linktype), bad

    def _batch(self, buf: bytes, u8: U8, ts: I64, d: I64, cap: I64, lt: int) -> _Batch:
        skip = self.stats.skipped
        rec, cols = self.dec.decode(buf, u8, d, cap, lt, skip)
        self._account(len(ts))
        return _Batch(ts, rec, cols)

    def _account(self, records: int) -> None:
        self.records += records
        if self.raw is not None:
            self.stats.bytes_read += self.raw.count - self._counted
            self._counted = self.raw.count

    def _cut(self) -> None:
        self.stats.truncated = True
        self.stats.warnings.append(
            f"{self.name}: capture cut mid-record after {self.records} packets; analysed up to the cut"
        )

    def _stop(self, why: str) -> None:
        self.stats.truncated = True
        self.stats.warnings.append(
            f"{self.name}: {why}; stopped after {self.records} packets and analysed up to there"
        )

    # ---- pcapng

    def _open_pcapng(self) -> None:
        name = self.name
        try:
            head = self.src.peek(12)
            if len(head) < 12:
                raise CaptureError(f"{name}: pcapng section header cut short ({len(head)} bytes)")
            big = self._bom(head, 0)
            if big is None:
                raise CaptureError(f"{name}: pcapng section header has no valid byte-order magic")
            (blen,) = struct.unpack_from(">I" if big else "<I", head, 4)
            if blen < 28 or blen & 3 or blen > MAX_BLOCK:
                raise CaptureError(f"{name}: pcapng section header has an invalid length ({blen})")
            look = self.src.peek(blen)
            if len(look) < blen:
                raise CaptureError(f"{name}: pcapng section header cut short ({len(look)} of {blen} bytes)")
            # link types of the interfaces described before the first packet (peeked block by
            # block, so that a live pipe is not waited on past its first packet)
            lts: list[int] = []
            off = blen
            fmt = ">" if big else "<"
            while off < 1 << 20:
                look = self.src.peek(off + 12)
                if len(look) < off + 12:
                    break
                btype, bl = struct.unpack_from(fmt + "II", look, off)
                if btype in (_EPB, _SPB, _PB, _SHB) or bl < 12 or bl & 3 or bl > MAX_BLOCK:
                    break
                if btype == _IDB and bl >= 20:
                    lts.append(struct.unpack_from(fmt + "H", look, off + 8)[0])
                off += bl
        except _Corrupt as e:
            raise CaptureError(f"{name}: {e}") from None
        if lts and not any(lt in SUPPORTED_LINKTYPES for lt in lts):
            raise _unsupported(name, lts[0])
        self.fmt = "pcapng" + (" (big-endian)" if big else "")
        if lts:
            kinds = sorted({SUPPORTED_LINKTYPES.get(lt) or _linktype_name(lt) for lt in lts})
            self.fmt += f", {len(lts)} interface{'s' if len(lts) > 1 else ''}: {', '.join(kinds)}"
        self.batches = self._guard(self._pcapng_batches())

    @staticmethod
    def _bom(buf: bytes, off: int) -> bool | None:
        """Byte order of the section header at ``off``: True for big-endian, None if invalid."""
        (bom,) = struct.unpack_from("<I", buf, off + 8)
        if bom == _BOM:
            return False
        if bom == 0x4D3C2B1A:
            return True
        return None

    def _pcapng_batches(self) -> Iterator[_Batch]:
        self.ifaces: list[_Iface] = []
        self.last_ts = 0
        big = False
        hdr = struct.Struct("<II").unpack_from
        buf = b""
        pos = 0
        filepos = 0
        while True:
            try:
                piece = self._read_piece()
            except _Corrupt as e:
                self._stop(f"{e}")
                return
            eof = not piece
            if piece:
                filepos += pos
                buf = buf[pos:] + piece
                pos = 0
            n = len(buf)
            while True:
                # walk packet blocks until a section / interface block or the end of the data
                offs, odd, off, stop = _pcapng_walk(buf, pos, big)
                if len(offs):
                    batch, bad_at = self._pcapng_batch(buf, offs, odd, big)
                    if batch is not None:
                        yield batch
                    if bad_at is not None:
                        self._stop(f"corrupt pcapng block at byte {filepos + bad_at} (lengths differ)")
                        return
                pos = off
                if stop == "corrupt":
                    self._stop(f"corrupt pcapng block at byte {filepos + off} (invalid block length)")
                    return
                if stop != "meta":
                    break
                # section header or interface description
                if off + 12 > n:
                    break
                (btype,) = struct.unpack_from("<I", buf, off)
                if btype == _SHB:
                    nbig = self._bom(buf, off)
                    if nbig is None:
                        self._stop(f"corrupt pcapng section header at byte {filepos + off}")
                        return
                    (blen,) = struct.unpack_from(">I" if nbig else "<I", buf, off + 4)
                else:
                    nbig = big
                    blen = hdr(buf, off)[1]
                if blen < (28 if btype == _SHB else 20) or blen & 3 or blen > MAX_BLOCK:
                    self._stop(f"corrupt pcapng block at byte {filepos + off} (invalid block length)")
                    return
                if off + blen > n:
                    break
                if btype == _SHB:
                    big = nbig
                    hdr = struct.Struct((">" if big else "<") + "II").unpack_from
                    self.ifaces = []
                else:
                    self.ifaces.append(self._idb(buf, off, blen, big))
                pos = off + blen
            if eof:
                if pos < n:
                    self._cut()
                return

    @staticmethod
    def _idb(buf: bytes, off: int, blen: int, big: bool) -> _Iface:
        bo = ">" if big else "<"
        lt, _, snaplen = struct.unpack_from(bo + "HHI", buf, off + 8)
        tsresol = 6
        offset = 0
        o = off + 16
        stop = off + blen - 4
        while o + 4 <= stop:
            code, ln = struct.unpack_from(bo + "HH", buf, o)
            if code == 0:
                break
            v = o + 4
            if v + ln > stop:
                break
            if code == 9 and ln >= 1:
                tsresol = buf[v]
            elif code == 14 and ln >= 8:
                (offset,) = struct.unpack_from(bo + "q", buf, v)
            o = v + ln + (-ln % 4)
        return _Iface(lt, snaplen, tsresol, offset * 1_000_000_000)

    def _pcapng_batch(
        self, buf: bytes, offs: I64, odd: list[int], big: bool
    ) -> tuple[_Batch | None, int | None]:
        u8 = np.frombuffer(buf, dtype=np.uint8)
        o = offs
        blen = _u32(u8, o + 4, big)
        bad_at = None
        mismatch = np.flatnonzero(_u32(u8, o + blen - 4, big) != blen)
        if len(mismatch):
            k = int(mismatch[0])
            bad_at = int(offs[k])
            if k == 0:
                return None, bad_at
            o, blen, offs = o[:k], blen[:k], offs[:k]
            odd = [i for i in odd if i < k]
        iface = _u32(u8, o + 8, big)
        hi = _u32(u8, o + 12, big).astype(np.uint64)
        units = (hi << np.uint64(32)) | _u32(u8, o + 16, big).astype(np.uint64)
        cap = np.minimum(_u32(u8, o + 20, big), blen - 32)
        d = o + 28
        spb: list[int] = []
        for i in odd:
            at = int(offs[i])
            if struct.unpack_from(">I" if big else "<I", buf, at)[0] == _PB:
                iface[i] = struct.unpack_from(">H" if big else "<H", buf, at + 8)[0]
            else:
                spb.append(i)
                iface[i] = 0
                units[i] = 0
                orig = struct.unpack_from(">I" if big else "<I", buf, at + 8)[0]
                c = min(orig, int(blen[i]) - 16)
                if self.ifaces and self.ifaces[0].snaplen:
                    c = min(c, self.ifaces[0].snaplen)
                cap[i] = c
                d[i] = at + 12
        ifaces = self.ifaces
        nif = len(ifaces)
        ts = np.zeros(len(o), dtype=np.int64)
        lts = np.full(len(o), -1, dtype=np.int64)
        if nif == 1 and not spb and bool((iface == 0).all()):
            ts = ifaces[0].to_ns(units)
            lts[:] = ifaces[0].linktype
        else:
            for k in np.unique(iface).tolist():
                sel = np.flatnonzero(iface == k)
                if k < nif:
                    ts[sel] = ifaces[k].to_ns(units[sel])
                    lts[sel] = ifaces[k].linktype
            for i in spb:  # simple packet blocks carry no timestamp: keep the previous one
                ts[i] = ts[i - 1] if i else self.last_ts
        self.last_ts = int(ts[-1])
        for k in np.unique(iface).tolist():
            if k < nif and ifaces[k].linktype not in SUPPORTED_LINKTYPES and not ifaces[k].warned:
                ifaces[k].warned = True
                self.stats.warnings.append(
                    f"{self.name}: interface {k} has unsupported link type "
                    f"{_linktype_name(ifaces[k].linktype)}; its packets are counted as not_ip"
                )
        groups = np.unique(lts).tolist()
        if len(groups) == 1 and groups[0] >= 0:
            return self._batch(buf, u8, ts, d, cap, groups[0]), bad_at
        # several link types in one chunk: decode each group, then restore record order
        skip = self.stats.skipped
        recs: list[I64] = []
        colparts: list[Columns] = []
        for lt in groups:
            sel = np.flatnonzero(lts == lt)
            if lt < 0:
                skip["malformed"] = skip.get("malformed", 0) + len(sel)
                continue
            r, c = self.dec.decode(buf, u8, d[sel], cap[sel], lt, skip)
            recs.append(sel[r])
            colparts.append(c)
        self._account(len(ts))
        if not recs:
            return _Batch(ts, np.empty(0, dtype=np.int64), Columns.empty()), bad_at
        rec = np.concatenate(recs)
        order = np.argsort(rec, kind="stable")
        return _Batch(ts, rec[order], Columns.concat(colparts).take(order)), bad_at

    def close(self) -> None:
        if self.raw is not None:
            self.raw.close()
            self.raw = None

    def __del__(self) -> None:
        self.close()


# --------------------------------------------------------------------------- merging


#: ``new_segment(fields)``: a :class:`Segment` from an iterable of its 13 fields, fast
new_segment = partial(tuple.__new__, Segment)


def _emit_columns(batch: _Batch, a: int, b: int, frame0: int, stats: ReadStats) -> Columns:
    """Columns of the segments among records ``a:b`` of ``batch``; record ``a`` is frame ``frame0 + 1``."""
    ts = batch.ts
    seg_ts = ts[a:b]
    if b > a:
        lo, hi = int(seg_ts.min()), int(seg_ts.max())
        if stats.first_ts is None or lo < stats.first_ts:
            stats.first_ts = lo
        if stats.last_ts is None or hi > stats.last_ts:
            stats.last_ts = hi
    stats.packets += b - a
    rec = batch.rec
    if a == 0 and b == len(ts):
        i, j = 0, len(rec)
    else:
        i = int(np.searchsorted(rec, a))
        j = int(np.searchsorted(rec, b))
    r = rec[i:j]
    cols = batch.cols if (i == 0 and j == len(rec)) else batch.cols.take(np.arange(i, j))
    cols.frame = r + (frame0 + 1 - a)
    cols.ts = ts[r]
    stats.segments += j - i
    return cols


class _Names:
    """Address strings, cached: a capture has far fewer hosts than packets."""

    def __init__(self) -> None:
        self.v4 = _V4Names()
        self.v6 = _V6Names()

    def of(self, fam: U8, addr: Rows) -> list[str]:
        addr = np.ascontiguousarray(addr)
        if COMPILED:
            return _scan.addr_names(np.ascontiguousarray(fam, dtype=np.uint8), addr.view(np.uint8))
        v4 = fam == 4
        if v4.all():
            return list(map(self.v4.__getitem__, addr.view(">u4").reshape(-1, 4)[:, 3].tolist()))
        if not v4.any():
            return list(map(self.v6.__getitem__, addr.tolist()))
        out = np.empty(len(addr), dtype=object)
        out[v4] = list(map(self.v4.__getitem__, addr[v4].view(">u4").reshape(-1, 4)[:, 3].tolist()))
        out[~v4] = list(map(self.v6.__getitem__, addr[~v4].tolist()))
        names: list[str] = out.tolist()
        return names


NAMES = _Names()


def segments_of(cols: Columns, rows: npt.NDArray[np.intp] | I64 | None = None) -> list[Segment]:
    """:class:`Segment` tuples of ``cols`` (all rows, or the rows ``rows`` in that order)."""
    if rows is not None:
        cols = cols.take(rows)
    if not len(cols):
        return []
    names = NAMES.of
    fields = [
        cols.frame.tolist(),
        cols.ts.tolist(),
        names(cols.fam, cols.src),
        cols.sport.tolist(),
        names(cols.fam, cols.dst),
        cols.dport.tolist(),
        cols.seq.tolist(),
        cols.ack.tolist(),
        cols.flags.tolist(),
        cols.win.tolist(),
        cols.length.tolist(),
        cols.options(),
        cols.payloads(),
    ]
    return make_segments(fields, cols.mark)


#: The class of a segment by its ``Columns.mark`` (a bad checksum wins over a cut payload).
_KINDS: Final = np.array([Segment, BadChecksumSegment, TruncatedSegment, BadChecksumSegment], dtype=object)


def make_segments(fields: Sequence[Sequence[Any]], mark: U8) -> list[Segment]:
    """Segments from their 13 field columns, each of the class its ``mark`` says."""
    # Building tens of thousands of tuples would trigger many collections of the cyclic
    # garbage collector (most of the cost); these tuples cannot form cycles, so pause it.
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        rows = zip(*fields, strict=True)
        if not mark.any():
            return list(map(new_segment, rows))
        return list(map(tuple.__new__, _KINDS[mark & 3].tolist(), rows))
    finally:
        if paused:
            gc.enable()


class _Head:
    """The current batch of one file in a multi-file merge."""

    __slots__ = ("batch", "cur", "file", "key", "sorted", "tl")

    def __init__(self, file: _File, key: int) -> None:
        self.file = file
        self.key = key  # file index: ties go to the earlier file
        self.batch = _Batch(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), Columns.empty())
        self.tl: list[int] = []
        self.cur = 0
        self.sorted = True

    def load(self) -> bool:
        """Next non-empty batch of the file; False at its end."""
        for b in self.file.batches:
            if len(b.ts):
                self.batch, self.tl, self.cur = b, b.ts.tolist(), 0
                self.sorted = bool((b.ts[1:] >= b.ts[:-1]).all())
                return True
        return False


def _merged_batch(heads: list[_Head], counts: list[int]) -> _Batch:
    """Records ``cur : cur + count`` of every head, as one batch in merged order.

    Only valid when each slice is sorted by time: then ``heapq.merge`` is a stable sort on
    (timestamp, file index).
    """
    ts = np.concatenate([h.batch.ts[h.cur : h.cur + c] for h, c in zip(heads, counts, strict=True)])
    key = np.concatenate([np.full(c, h.key, dtype=np.int64) for h, c in zip(heads, counts, strict=True)])
    order = np.lexsort((key, ts))
    pos = np.empty(len(ts), dtype=np.int64)
    pos[order] = np.arange(len(ts), dtype=np.int64)
    segpos: list[I64] = []
    parts: list[Columns] = []
    base = 0
    for h, c in zip(heads, counts, strict=True):
        rec = h.batch.rec
        i, j = np.searchsorted(rec, (h.cur, h.cur + c)).tolist()
        if j > i:
            segpos.append(rec[i:j] + (base - h.cur))
            parts.append(h.batch.cols.take(np.arange(i, j)))
        base += c
    if not segpos:
        return _Batch(ts[order], np.empty(0, dtype=np.int64), Columns.empty())
    merged = pos[np.concatenate(segpos)]
    sorder = np.argsort(merged)
    return _Batch(ts[order], merged[sorder], Columns.concat(parts).take(sorder))


def _merge(files: list[_File], stats: ReadStats) -> Iterator[Columns]:
    try:
        frame = 0
        if len(files) == 1:
            for batch in files[0].batches:
                n = len(batch.ts)
                if n:
                    out = _emit_columns(batch, 0, n, frame, stats)
                    frame += n
                    if len(out):
                        yield out
            return
        heads = [h for h in (_Head(f, k) for k, f in enumerate(files)) if h.load()]
        while heads:
            if len(heads) == 1:
                h = heads[0]
                while True:
                    n = len(h.tl)
                    out = _emit_columns(h.batch, h.cur, n, frame, stats)
                    frame += n - h.cur
                    if len(out):
                        yield out
                    if not h.load():
                        return
            if all(h.sorted for h in heads):
                # Everything before the earliest batch end can be merged at once: a stable
                # sort of the sorted slices on (timestamp, file) is what heapq.merge yields.
                horizon = min(h.tl[-1] for h in heads)
                counts = [bisect_left(h.tl, horizon, h.cur) - h.cur for h in heads]
                total = sum(counts)
                if total >= 32:
                    out = _emit_columns(_merged_batch(heads, counts), 0, total, frame, stats)
                    frame += total
                    for h, c in zip(heads, counts, strict=True):
                        h.cur += c
                    if len(out):
                        yield out
                    continue
            # One run: the file with the smallest head (timestamp, file index) gives every
            # following record that still sorts before all other heads (heapq.merge exactly).
            best = min(heads, key=lambda h: (h.tl[h.cur], h.key))
            bound_ts, bound_key = min((h.tl[h.cur], h.key) for h in heads if h is not best)
            tl, c = best.tl, best.cur
            e = c + 1
            n = len(tl)
            if best.key < bound_key:
                while e < n and tl[e] <= bound_ts:
                    e += 1
            else:
                while e < n and tl[e] < bound_ts:
                    e += 1
            out = _emit_columns(best.batch, c, e, frame, stats)
            frame += e - c
            if len(out):
                yield out
            best.cur = e
            if e == n and not best.load():
                heads.remove(best)
    finally:
        for f in files:
            f.close()


# --------------------------------------------------------------------------- public API


def _as_list(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
) -> list[str | os.PathLike[str]]:
    if isinstance(paths, (str, os.PathLike)):
        return [paths]
    return list(paths)


def read_columns(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    verify_checksums: bool = False,
    stats: ReadStats | None = None,
    decapsulate: bool = True,
    payload_ports: Collection[int] = (),
) -> Iterator[Columns]:
    """The segments of :func:`read_segments` as :class:`Columns`, one per decoded chunk.

    Every file is opened and its header checked now: :class:`CaptureError` is raised by this
    call, never by the iterator.
    """
    if stats is None:
        stats = ReadStats()
    for t in TUNNELS:
        stats.decapsulated.setdefault(t, 0)
    dec = _Decoder(verify_checksums, decapsulate, stats.decapsulated, payload_ports)
    files: list[_File] = []
    try:
        for p in _as_list(paths):
            files.append(_File(p, dec, stats))
    except BaseException:
        for f in files:
            f.close()
        raise
    stats.files.extend(f.name for f in files)
    for r in SKIP_REASONS:
        stats.skipped.setdefault(r, 0)
    return _merge(files, stats)


def read_batches(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    verify_checksums: bool = False,
    stats: ReadStats | None = None,
    decapsulate: bool = True,
    payload_ports: Collection[int] = (),
) -> Iterator[list[Segment]]:
    """Like :func:`read_segments`, but yields the segments in lists (one per decoded chunk).

    Every file is opened and its header checked now: :class:`CaptureError` is raised by this
    call, never by the iterator.
    """
    return map(
        segments_of,
        read_columns(
            paths,
            verify_checksums=verify_checksums,
            stats=stats,
            decapsulate=decapsulate,
            payload_ports=payload_ports,
        ),
    )


def read_segments(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    verify_checksums: bool = False,
    stats: ReadStats | None = None,
    decapsulate: bool = True,
    payload_ports: Collection[int] = (),
) -> Iterator[Segment]:
    """Every TCP segment of every capture, merged in timestamp order across files.

    Ties keep file order, then record order (``heapq.merge`` semantics). Frame numbers are
    1-based positions in the merged record stream, so for one file they are Wireshark's.
    ``"-"`` reads stdin. ``stats`` is filled as the iterator advances. Opening problems raise
    :class:`CaptureError` from this call; a cut or corrupt file ends with a warning in
    ``stats.warnings`` and ``stats.truncated`` set. TCP inside tunnels (IP-in-IP, GRE,
    VXLAN, Geneve, GTP-U, Teredo) comes out as the inner segment, unless ``decapsulate`` is
    False (then tunnel packets count as ``not_tcp``). The captured payload of the segments to
    or from ``payload_ports`` is kept in :attr:`Segment.payload` (for application-layer
    emulation, e.g. :attr:`~tcptrace_sm.zeek.ZeekConfig.ssh_max_packet_length`).
    """
    return chain.from_iterable(
        read_batches(
            paths,
            verify_checksums=verify_checksums,
            stats=stats,
            decapsulate=decapsulate,
            payload_ports=payload_ports,
        )
    )


# --------------------------------------------------------------------------- TCP options


def parse_options(raw: bytes) -> TcpOptions:
    """Decode raw TCP option bytes (RFC 9293, 7323, 2018, 7413); never raises.

    Malformed or truncated options end the decoding; what came before is kept. A repeated
    option overrides the earlier one (as Linux does). Unknown kinds are skipped.
    """
    mss = wscale = ts_val = ts_ecr = None
    sack_permitted = False
    sack: tuple[tuple[int, int], ...] = ()
    fastopen: bytes | None = None
    n = len(raw)
    i = 0
    while i < n:
        kind = raw[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        if i + 1 >= n:
            break
        ln = raw[i + 1]
        if ln < 2 or i + ln > n:
            break
        if kind == 2 and ln == 4:
            mss = (raw[i + 2] << 8) | raw[i + 3]
        elif kind == 3 and ln == 3:
            wscale = raw[i + 2]
        elif kind == 4 and ln == 2:
            sack_permitted = True
        elif kind == 5 and ln >= 10:
            nblk = (ln - 2) // 8
            sack = tuple(
                (int.from_bytes(raw[j : j + 4], "big"), int.from_bytes(raw[j + 4 : j + 8], "big"))
                for j in range(i + 2, i + 2 + 8 * nblk, 8)
            )
        elif kind == 8 and ln == 10:
            ts_val = int.from_bytes(raw[i + 2 : i + 6], "big")
            ts_ecr = int.from_bytes(raw[i + 6 : i + 10], "big")
        elif kind == 34:
            fastopen = bytes(raw[i + 2 : i + ln])
        elif kind == 254 and ln >= 4 and raw[i + 2] == 0xF9 and raw[i + 3] == 0x89:
            fastopen = bytes(raw[i + 4 : i + ln])
        i += ln
    return TcpOptions(mss, wscale, sack_permitted, sack, ts_val, ts_ecr, fastopen)
