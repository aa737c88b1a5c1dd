"""Build packet captures byte by byte for tests, the sample-data script and the benchmark.

Plain ``struct`` code with no dependency on the package under test, so that the reader is
checked against an independent encoder. Everything here returns ``bytes``:

* packet builders: :func:`tcp_header`, :func:`ipv4`, :func:`ipv6`, :func:`tcp4`, :func:`tcp6`;
* link-layer framing for every link type the reader supports: :func:`frame`;
* tunnels: :func:`udp` and the UDP tunnel payloads :func:`vxlan`, :func:`geneve`,
  :func:`gtp_u`, :func:`teredo`; :func:`gre` (a GRE header and payload for IP protocol 47);
* capture writers: :func:`pcap` (classic, µs or ns, either byte order) and :class:`Pcapng`
  (several sections and interfaces, EPB/SPB/obsolete PB, any byte order).
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

# Link types (https://www.tcpdump.org/linktypes.html)
LT_NULL = 0
LT_ETHERNET = 1
LT_RAW_12 = 12
LT_RAW_14 = 14
LT_RAW = 101
LT_LOOP = 108
LT_SLL = 113
LT_IPV4 = 228
LT_IPV6 = 229
LT_SLL2 = 276

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
ETH_ARP = 0x0806

# TCP flags
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


def addr(ip: str) -> bytes:
    return ipaddress.ip_address(ip).packed


def checksum(data: bytes) -> int:
    """RFC 1071 Internet checksum of ``data`` (the value to store in the header)."""
    if len(data) % 2:
        data += b"\0"
    s: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def tcp_header(
    sport: int,
    dport: int,
    seq: int = 0,
    ack: int = 0,
    flags: int = ACK,
    win: int = 65535,
    options: bytes = b"",
    payload: bytes = b"",
    *,
    src: str | None = None,
    dst: str | None = None,
    data_offset: int | None = None,
    csum: int | None = None,
    urg: int = 0,
) -> bytes:
    """A TCP segment (header + options + payload).

    The checksum is computed over the pseudo-header when ``src`` and ``dst`` are given (and
    ``csum`` is None); otherwise ``csum`` (default 0) is stored as is. Options are padded with
    zero bytes (EOL) to a multiple of 4; ``data_offset`` overrides the computed header length.
    """
    opts = options + b"\0" * (-len(options) % 4)
    doff = data_offset if data_offset is not None else 5 + len(opts) // 4
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, doff << 4, flags, win, 0, urg) + opts
    seg = hdr + payload
    if csum is None:
        if src is not None and dst is not None:
            s, d = addr(src), addr(dst)
            if len(s) == 4:
                pseudo = s + d + struct.pack("!BBH", 0, 6, len(seg))
            else:
                pseudo = s + d + struct.pack("!IxxxB", len(seg), 6)
            csum = checksum(pseudo + seg)
        else:
            csum = 0
    return seg[:16] + struct.pack("!H", csum) + seg[18:]


def ipv4(
    src: str,
    dst: str,
    payload: bytes,
    proto: int = 6,
    *,
    options: bytes = b"",
    ident: int = 1,
    ttl: int = 64,
    df: bool = True,
    mf: bool = False,
    frag_offset: int = 0,
    total_length: int | None = None,
    ihl: int | None = None,
    version: int = 4,
    csum: int | None = None,
) -> bytes:
    opts = options + b"\0" * (-len(options) % 4)
    hl = ihl if ihl is not None else 5 + len(opts) // 4
    tot = total_length if total_length is not None else 20 + len(opts) + len(payload)
    ff = (0x4000 if df else 0) | (0x2000 if mf else 0) | (frag_offset & 0x1FFF)
    hdr = struct.pack(
        "!BBHHHBBH4s4s", (version << 4) | hl, 0, tot, ident, ff, ttl, proto, 0, addr(src), addr(dst)
    )
    hdr += opts
    if csum is None:
        csum = checksum(hdr)
    return hdr[:10] + struct.pack("!H", csum) + hdr[12:] + payload


def ext_header(next_header: int, body: bytes) -> bytes:
    """A generic IPv6 extension header (hop-by-hop, routing, destination options), padded."""
    raw = body + b"\0" * (-(len(body) + 2) % 8)
    return struct.pack("!BB", next_header, (len(raw) + 2) // 8 - 1) + raw


def ipv6(
    src: str,
    dst: str,
    payload: bytes,
    next_header: int = 6,
    *,
    ext: Sequence[tuple[int, bytes]] = (),
    hop_limit: int = 64,
    payload_length: int | None = None,
    version: int = 6,
) -> bytes:
    """IPv6 packet. ``ext`` is a list of ``(header type, body)`` inserted in order before the
    upper-layer ``payload``; fragment headers (44) take an 6-byte body (offset/flags + id)."""
    chain = b""
    types = [t for t, _ in ext] + [next_header]
    for i, (_t, body) in enumerate(ext):
        nh = types[i + 1]
        if _t == 44:
            chain += struct.pack("!BB", nh, 0) + body.ljust(6, b"\0")[:6]
        elif _t == 51:  # authentication header: at least 12 bytes, length in 4-byte units - 2
            raw = body.ljust(10, b"\0")
            raw += b"\0" * (-(len(raw) + 2) % 4)
            chain += struct.pack("!BB", nh, (len(raw) + 2) // 4 - 2) + raw
        else:
            chain += ext_header(nh, body)
    body = chain + payload
    first = types[0]
    plen = payload_length if payload_length is not None else len(body)
    return struct.pack("!IHBB16s16s", version << 28, plen, first, hop_limit, addr(src), addr(dst)) + body


def tcp4(src: str, dst: str, sport: int, dport: int, payload: bytes = b"", **kw: object) -> bytes:
    """IPv4 + TCP with correct checksums; keyword arguments go to :func:`tcp_header`."""
    seg = tcp_header(sport, dport, payload=payload, src=src, dst=dst, **kw)  # type: ignore[arg-type]
    return ipv4(src, dst, seg)


def tcp6(src: str, dst: str, sport: int, dport: int, payload: bytes = b"", **kw: object) -> bytes:
    seg = tcp_header(sport, dport, payload=payload, src=src, dst=dst, **kw)  # type: ignore[arg-type]
    return ipv6(src, dst, seg)


# --------------------------------------------------------------------------- link layers

VLAN_TPIDS = {"802.1Q": 0x8100, "802.1ad": 0x88A8, "QinQ-old": 0x9100}


def ethernet(
    payload: bytes,
    ethertype: int,
    *,
    vlans: Sequence[tuple[int, int]] = (),
    src_mac: bytes = b"\x02\0\0\0\0\x01",
    dst_mac: bytes = b"\x02\0\0\0\0\x02",
    pad_to: int = 0,
) -> bytes:
    """Ethernet II frame; ``vlans`` is a list of (TPID, VLAN id), outermost first."""
    tags = b"".join(struct.pack("!HH", tpid, vid) for tpid, vid in vlans)
    out = dst_mac + src_mac + tags + struct.pack("!H", ethertype) + payload
    return out.ljust(pad_to, b"\0")


def ip_version(packet: bytes) -> int:
    return packet[0] >> 4


def frame(
    ip_packet: bytes,
    linktype: int,
    *,
    vlans: Sequence[tuple[int, int]] = (),
    pad_to: int = 0,
    null_byteorder: str = "little",
    null_v6_family: int = 30,
) -> bytes:
    """Wrap an IP packet for ``linktype`` (every link type the reader supports)."""
    v6 = ip_version(ip_packet) == 6
    et = ETH_IPV6 if v6 else ETH_IPV4
    if linktype == LT_ETHERNET:
        return ethernet(ip_packet, et, vlans=vlans, pad_to=pad_to)
    if linktype in (LT_RAW, LT_RAW_12, LT_RAW_14, LT_IPV4, LT_IPV6):
        return ip_packet
    if linktype == LT_NULL:
        fam = null_v6_family if v6 else 2
        return fam.to_bytes(4, null_byteorder) + ip_packet  # type: ignore[arg-type]
    if linktype == LT_LOOP:
        return struct.pack("!I", 24 if v6 else 2) + ip_packet
    if linktype == LT_SLL:
        # packet type 0 (to us), ARPHRD_ETHER, address length 6, address padded to 8
        return struct.pack("!HHH8sH", 0, 1, 6, b"\x02\0\0\0\0\x01", et) + ip_packet
    if linktype == LT_SLL2:
        # protocol, reserved, ifindex, ARPHRD_ETHER, packet type, addr len, addr
        return struct.pack("!HHIHBB8s", et, 0, 1, 1, 0, 6, b"\x02\0\0\0\0\x01") + ip_packet
    raise ValueError(f"no framing for link type {linktype}")


def strip_ethernet(eth_frame: bytes) -> bytes:
    """The IP packet inside an untagged Ethernet frame (as tcpdump records on Linux ``lo``)."""
    return eth_frame[14:]


# --------------------------------------------------------------------------- tunnels

PROTO_IPIP, PROTO_UDP, PROTO_IPV6, PROTO_GRE = 4, 17, 41, 47
PORT_VXLAN, PORT_GENEVE, PORT_GTP_U, PORT_TEREDO = 4789, 6081, 2152, 3544
ETH_BRIDGE = 0x6558  # transparent Ethernet bridging (GRE, Geneve)


def udp(sport: int, dport: int, payload: bytes, *, length: int | None = None, csum: int = 0) -> bytes:
    """A UDP datagram; the checksum is stored as given (0: none, as tunnels send)."""
    n = length if length is not None else 8 + len(payload)
    return struct.pack("!HHHH", sport, dport, n, csum) + payload


def vxlan(inner_frame: bytes, vni: int = 42, *, flags: int = 0x08) -> bytes:
    """VXLAN header (RFC 7348) and the inner Ethernet frame (the UDP payload for port 4789)."""
    return struct.pack("!B3sI", flags, b"\0\0\0", vni << 8) + inner_frame


def geneve(
    inner: bytes, protocol: int = ETH_BRIDGE, vni: int = 42, *, options: bytes = b"", version: int = 0
) -> bytes:
    """Geneve header (RFC 8926) with ``options`` (a multiple of 4 bytes) and the inner packet."""
    if len(options) % 4:
        raise ValueError("Geneve options are a multiple of 4 bytes")
    first = (version << 6) | (len(options) // 4)
    return struct.pack("!BBHI", first, 0, protocol, vni << 8) + options + inner


def gtp_u(
    inner_ip: bytes,
    teid: int = 1,
    *,
    seq: int | None = None,
    npdu: int | None = None,
    ext: Sequence[tuple[int, bytes]] = (),
    msg_type: int = 255,
    version: int = 1,
    length: int | None = None,
) -> bytes:
    """GTPv1-U (3GPP TS 29.281) G-PDU. ``ext`` is a list of (extension header type, content);
    the 4 optional bytes are present when a sequence number, N-PDU number or extension is."""
    flags = (version << 5) | 0x10
    opt = b""
    if seq is not None or npdu is not None or ext:
        flags |= (0x04 if ext else 0) | (0x02 if seq is not None else 0) | (0x01 if npdu is not None else 0)
        opt = struct.pack("!HBB", seq or 0, npdu or 0, ext[0][0] if ext else 0)
        for i, (_t, content) in enumerate(ext):
            nxt = ext[i + 1][0] if i + 1 < len(ext) else 0
            body = content + b"\0" * (-(len(content) + 2) % 4)
            opt += bytes([(len(body) + 2) // 4]) + body + bytes([nxt])
    body = opt + inner_ip
    n = length if length is not None else len(body)
    return struct.pack("!BBHI", flags, msg_type, n, teid) + body


def teredo(
    inner_ip6: bytes, *, origin: tuple[int, str] | None = None, auth: tuple[bytes, bytes] | None = None
) -> bytes:
    """Teredo (RFC 4380): an optional authentication header (client id, authentication value),
    an optional origin indication (port, IPv4 address: stored obfuscated), then IPv6."""
    out = b""
    if auth is not None:
        cid, value = auth
        out += struct.pack("!HBB", 1, len(cid), len(value)) + cid + value + b"\x01" * 8 + b"\0"
    if origin is not None:
        port, ip4 = origin
        out += struct.pack("!HH", 0, port ^ 0xFFFF) + bytes(b ^ 0xFF for b in addr(ip4))
    return out + inner_ip6


def gre(
    payload: bytes,
    protocol: int = ETH_IPV4,
    *,
    checksum_present: bool = False,
    key: int | None = None,
    seq: int | None = None,
    ack: int | None = None,
    version: int = 0,
    routing: bool = False,
) -> bytes:
    """A GRE header (RFC 2784 / 2890; version 1 is PPTP's, RFC 2637) and its payload."""
    flags = (
        (0x8000 if checksum_present else 0)
        | (0x4000 if routing else 0)
        | (0x2000 if key is not None else 0)
        | (0x1000 if seq is not None else 0)
        | (0x0080 if ack is not None else 0)
        | version
    )
    out = struct.pack("!HH", flags, protocol)
    if checksum_present or routing:
        out += b"\0\0\0\0"
    for value in (key, seq, ack):
        if value is not None:
            out += struct.pack("!I", value)
    if checksum_present:
        c = checksum(out + payload)
        out = out[:4] + struct.pack("!H", c) + out[6:]
    return out + payload


# --------------------------------------------------------------------------- writers

Record = tuple[int, bytes] | tuple[int, bytes, int]  # (ts ns, captured bytes[, original length])


def pcap(
    records: Iterable[Record],
    linktype: int = LT_ETHERNET,
    *,
    nanos: bool = False,
    big_endian: bool = False,
    snaplen: int = 262144,
    magic: int | None = None,
) -> bytes:
    """A classic pcap file. Timestamps are ns; with ``nanos=False`` they must be whole µs."""
    bo = ">" if big_endian else "<"
    if magic is None:
        magic = 0xA1B23C4D if nanos else 0xA1B2C3D4
    out = [struct.pack(bo + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    rec = struct.Struct(bo + "IIII")
    for r in records:
        ts, data = r[0], r[1]
        orig = r[2] if len(r) > 2 else len(data)
        sec, ns = divmod(ts, 1_000_000_000)
        if nanos:
            frac = ns
        else:
            if ns % 1000:
                raise ValueError("timestamp not a whole microsecond")
            frac = ns // 1000
        out.append(rec.pack(sec, frac, len(data), orig))
        out.append(data)
    return b"".join(out)


def _opt(code: int, value: bytes, bo: str) -> bytes:
    return struct.pack(bo + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


@dataclass
class Interface:
    linktype: int
    tsresol: int = 6  # pcapng if_tsresol byte: 0..127 = 10^-n, 0x80|n = 2^-n
    tsoffset: int = 0  # seconds
    snaplen: int = 0


@dataclass
class Pcapng:
    """Incremental pcapng builder: ``section()``, ``interface()``, then packet blocks."""

    big_endian: bool = False
    blocks: list[bytes] = field(default_factory=list)
    interfaces: list[Interface] = field(default_factory=list)

    @property
    def bo(self) -> str:
        return ">" if self.big_endian else "<"

    def block(self, btype: int, body: bytes) -> None:
        body += b"\0" * (-len(body) % 4)
        n = len(body) + 12
        self.blocks.append(struct.pack(self.bo + "II", btype, n) + body + struct.pack(self.bo + "I", n))

    def section(self, big_endian: bool | None = None, options: bytes = b"") -> Pcapng:
        if big_endian is not None:
            self.big_endian = big_endian
        self.interfaces = []
        self.block(0x0A0D0D0A, struct.pack(self.bo + "IHHq", 0x1A2B3C4D, 1, 0, -1) + options)
        return self

    def interface(self, linktype: int, tsresol: int = 6, tsoffset: int = 0, snaplen: int = 0) -> int:
        opts = b""
        if tsresol != 6:
            opts += _opt(9, bytes([tsresol]), self.bo)
        if tsoffset:
            opts += _opt(14, struct.pack(self.bo + "q", tsoffset), self.bo)
        opts += _opt(2, b"eth-test", self.bo)
        if opts:
            opts += struct.pack(self.bo + "HH", 0, 0)
        self.block(1, struct.pack(self.bo + "HHI", linktype, 0, snaplen) + opts)
        self.interfaces.append(Interface(linktype, tsresol, tsoffset, snaplen))
        return len(self.interfaces) - 1

    def units(self, iface: int, ts_ns: int) -> int:
        """Timestamp in the interface's units; must be exactly representable."""
        i = self.interfaces[iface]
        ns = ts_ns - i.tsoffset * 1_000_000_000
        if i.tsresol & 0x80:
            num, den = ns << (i.tsresol & 0x7F), 1_000_000_000
        else:
            num, den = ns * 10**i.tsresol, 1_000_000_000
        q, r = divmod(num, den)
        if r:
            raise ValueError(f"{ts_ns} ns not representable at tsresol {i.tsresol:#x}")
        return q

    def epb(
        self, iface: int, ts_ns: int, data: bytes, orig_len: int | None = None, units: int | None = None
    ) -> None:
        u = self.units(iface, ts_ns) if units is None else units
        orig = len(data) if orig_len is None else orig_len
        body = struct.pack(self.bo + "IIIII", iface, u >> 32, u & 0xFFFFFFFF, len(data), orig) + data
        self.block(6, body)

    def pb(self, iface: int, ts_ns: int, data: bytes) -> None:
        u = self.units(iface, ts_ns)
        body = struct.pack(self.bo + "HHIIII", iface, 0, u >> 32, u & 0xFFFFFFFF, len(data), len(data)) + data
        self.block(2, body)

    def spb(self, data: bytes, orig_len: int | None = None) -> None:
        self.block(3, struct.pack(self.bo + "I", len(data) if orig_len is None else orig_len) + data)

    def other(self, btype: int = 5, body: bytes = b"\0" * 8) -> None:
        """An unrelated block (interface statistics by default) that readers must skip."""
        self.block(btype, body)

    def bytes(self) -> bytes:
        return b"".join(self.blocks)


def pcapng_single(records: Iterable[tuple[int, bytes]], linktype: int = LT_ETHERNET, **kw: int) -> bytes:
    w = Pcapng().section()
    w.interface(linktype, **kw)
    for ts, data in records:
        w.epb(0, ts, data)
    return w.bytes()


# --------------------------------------------------------------------------- hostile input

PcapField = tuple[int, int, int, int, bytes]  # (seconds, fraction, caplen field, origlen field, bytes)


def pcap_header(
    linktype: int = LT_ETHERNET,
    *,
    snaplen: int = 262144,
    big_endian: bool = False,
    magic: int = 0xA1B2C3D4,
    version: tuple[int, int] = (2, 4),
) -> bytes:
    """The 24-byte pcap file header, every field as given (``linktype`` may carry FCS bits)."""
    bo = ">" if big_endian else "<"
    return struct.pack(bo + "IHHiIII", magic, version[0], version[1], 0, 0, snaplen, linktype)


def pcap_record(
    sec: int,
    frac: int,
    caplen: int,
    origlen: int,
    data: bytes,
    *,
    big_endian: bool = False,
    modified: bool = False,
) -> bytes:
    """One pcap record with its header fields exactly as given (they need not match ``data``).

    ``modified`` writes the 24-byte record header of the modified (Kuznetzov) format.
    """
    bo = ">" if big_endian else "<"
    hdr = struct.pack(bo + "IIII", sec, frac, caplen, origlen)
    if modified:
        hdr += struct.pack(bo + "IHBB", 1, 0x0800, 0, 0)
    return hdr + data


def pcap_fields(
    records: Iterable[PcapField],
    linktype: int = LT_ETHERNET,
    *,
    snaplen: int = 262144,
    big_endian: bool = False,
    magic: int = 0xA1B2C3D4,
) -> bytes:
    """A pcap file whose record headers say whatever ``records`` says (for hostile input)."""
    modified = magic == 0xA1B2CD34
    out = [pcap_header(linktype, snaplen=snaplen, big_endian=big_endian, magic=magic)]
    for sec, frac, cap, orig, data in records:
        out.append(pcap_record(sec, frac, cap, orig, data, big_endian=big_endian, modified=modified))
    return b"".join(out)


def pcapng_block(
    btype: int,
    body: bytes,
    *,
    big_endian: bool = False,
    length: int | None = None,
    trailer: int | None = None,
) -> bytes:
    """A pcapng block with the leading / trailing lengths given (default: the true, padded length)."""
    bo = ">" if big_endian else "<"
    body += b"\0" * (-len(body) % 4)
    n = len(body) + 12
    lead = n if length is None else length
    trail = lead if trailer is None else trailer
    return struct.pack(bo + "II", btype, lead) + body + struct.pack(bo + "I", trail)


def epb_fields(
    iface: int,
    units: int,
    caplen: int,
    origlen: int,
    data: bytes,
    *,
    big_endian: bool = False,
    length: int | None = None,
    trailer: int | None = None,
) -> bytes:
    """An enhanced packet block with its fields as given (block lengths as :func:`pcapng_block`)."""
    bo = ">" if big_endian else "<"
    body = struct.pack(bo + "IIIII", iface, (units >> 32) & 0xFFFFFFFF, units & 0xFFFFFFFF, caplen, origlen)
    return pcapng_block(6, body + data, big_endian=big_endian, length=length, trailer=trailer)
