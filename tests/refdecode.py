"""A plain per-packet decoder with the reader's documented rules, to check the vectorised one.

``reference(frame, lt)`` gives the fields of the TCP segment in one captured frame, or the
reason the reader must skip it. Tunnels are opened the same way (see the capture module's
docstring): IP-in-IP, GRE, and UDP to or from the VXLAN, Geneve, GTP-U and Teredo ports, or
Teredo recognised by its contents; at most ``MAX_DEPTH`` deep. Written from the formats'
specifications, one packet at a time, sharing no code with the reader.
"""

from __future__ import annotations

import socket
import struct
from typing import Any

VLAN = (0x8100, 0x88A8, 0x9100)
EXT6 = (0, 43, 60, 51, 135, 139, 140)
MAX_DEPTH = 4
LT_ETHERNET, LT_RAW = 1, 101

PORTS = {4789: "vxlan", 6081: "geneve", 2152: "gtp-u", 3544: "teredo"}
TEREDO_PREFIX = b"\x20\x01\x00\x00"

Result = tuple[Any, ...] | str
# a tunnel header parsed: (inner start, inner end, inner link type, IP version wanted or 0)
Opened = tuple[int, int, int, int] | str


def _be16(b: bytes, o: int) -> int:
    return (b[o] << 8) | b[o + 1]


def reference(
    frame: bytes,
    lt: int,
    *,
    decapsulate: bool = True,
    depth: int = 0,
    via: str | None = None,
    opened: list[str] | None = None,
    pieces: Reassembly | None = None,
) -> Result:
    """(src, sport, dst, dport, seq, ack, flags, win, length, options, payload) or a skip reason
    (``payload``: the captured payload bytes).

    ``opened`` collects the kind of every tunnel opened on the way in (outermost first).
    ``pieces`` reassembles outer IP fragments across the frames given to it, in order.
    """
    n = len(frame)
    if lt in (1, 113, 276):
        hl, eto = {1: (14, 12), 113: (16, 14), 276: (20, 0)}[lt]
        if n < hl:
            return "truncated_header"
        et, p = _be16(frame, eto), hl
        vlans = 0
        while et in VLAN:
            if vlans == 16:
                return "malformed"
            if n < p + 4:
                return "truncated_header"
            et, p, vlans = _be16(frame, p + 2), p + 4, vlans + 1
        ver = {0x0800: 4, 0x86DD: 6}.get(et)
    elif lt in (0, 108):
        if n < 4:
            return "truncated_header"
        fam = int.from_bytes(frame[:4], "big" if lt == 108 else "little")
        if lt == 0 and fam > 0xFFFF:
            fam = int.from_bytes(frame[:4], "big")
        ver = 4 if fam == 2 else 6 if fam in (24, 28, 30) else None
        p = 4
    else:
        if n < 1:
            return "truncated_header"
        ver = {4: 4, 6: 6}.get(frame[0] >> 4)
        p = 0
    if ver is None:
        return "not_ip"
    rem = n - p
    tunnel = {"decapsulate": decapsulate, "depth": depth, "via": via, "opened": opened}
    if ver == 4:
        if rem < 20:
            return "truncated_header"
        if frame[p] >> 4 != 4 or frame[p] & 15 < 5:
            return "malformed"
        hl = (frame[p] & 15) * 4
        if rem < hl:
            return "truncated_header"
        if _be16(frame, p + 6) & 0x3FFF:
            if pieces is None or depth:
                return "fragment"
            tot, ident, frag = struct.unpack_from("!HHH", frame, p + 2)
            key = (4, frame[p + 12 : p + 16], frame[p + 16 : p + 20], frame[p + 9], ident)
            whole = pieces.add(key, frame[p : p + hl], frame[p + hl : min(n, p + tot)], p + tot - (p + hl),
                               (frag & 0x1FFF) * 8, frag & 0x2000)  # fmt: skip
            return "fragment" if whole is None else _whole(whole, decapsulate, opened)
        if frame[p + 9] != 6:
            tot = _be16(frame, p + 2)
            lim = min(n, p + tot) if tot else n
            return _carried(frame, frame[p + 9], p + hl, lim, **tunnel) or "not_tcp"
        if rem < hl + 20:
            return "truncated_header"
        tot = _be16(frame, p + 2) or rem
        if tot < hl + 20:
            return "malformed"
        tcp, seglen = p + hl, tot - hl
        src, dst = (
            socket.inet_ntop(socket.AF_INET, frame[p + 12 : p + 16]),
            socket.inet_ntop(socket.AF_INET, frame[p + 16 : p + 20]),
        )
    else:
        if rem < 40:
            return "truncated_header"
        if frame[p] >> 4 != 6:
            return "malformed"
        nh, q = frame[p + 6], p + 40
        field = p + 6  # the "next header" that names the header at q
        for _ in range(16):
            if nh == 44:
                if pieces is None or depth or n - q < 8:
                    return "fragment"
                carries, off_m, ident = struct.unpack_from("!BxHI", frame, q)
                head = bytearray(frame[p:q])
                head[field - p] = carries
                key = (6, frame[p + 8 : p + 24], frame[p + 24 : p + 40], 0, ident)
                stop = p + 40 + _be16(frame, p + 4)
                data = frame[q + 8 : min(n, stop)]
                whole = pieces.add(key, bytes(head), data, stop - (q + 8), off_m & 0xFFF8, off_m & 1)
                return "fragment" if whole is None else _whole(whole, decapsulate, opened)
            if nh not in EXT6:
                break
            if n - q < 8:
                return "truncated_header"
            ln = frame[q + 1]
            field = q
            nh, q = frame[q], q + ((ln + 2) * 4 if nh == 51 else (ln + 1) * 8)
        else:
            if nh in (*EXT6, 44):
                return "malformed"
        if nh != 6:
            plen = _be16(frame, p + 4)
            lim = min(n, p + 40 + plen) if plen else n
            return _carried(frame, nh, q, lim, **tunnel) or "not_tcp"
        if n - q < 20:
            return "truncated_header"
        plen = _be16(frame, p + 4) or n - p - 40
        seglen = plen - (q - p - 40)
        if seglen < 20:
            return "malformed"
        tcp = q
        src, dst = (
            socket.inet_ntop(socket.AF_INET6, frame[p + 8 : p + 24]),
            socket.inet_ntop(socket.AF_INET6, frame[p + 24 : p + 40]),
        )
    sport, dport, seq, ack, off, flags, win = struct.unpack_from("!HHIIBBH", frame, tcp)
    thl = (off >> 4) * 4
    if thl < 20 or seglen - thl < 0:
        return "malformed"
    options = frame[tcp + 20 : min(tcp + thl, n)]
    payload = frame[tcp + thl : min(tcp + seglen, n)]
    return (src, sport, dst, dport, seq, ack, flags, win, seglen - thl, options, payload)


def _carried(
    f: bytes,
    proto: int,
    pay: int,
    lim: int,
    *,
    decapsulate: bool,
    depth: int,
    via: str | None,
    opened: list[str] | None,
) -> Result | None:
    """The answer for a non-TCP IP packet whose payload is ``f[pay:lim]``: None if it is no tunnel."""
    if not decapsulate:
        return None
    lim = max(lim, pay)
    if proto in (4, 41):
        kind, pos, end = "ip-in-ip", pay, lim
    elif proto == 47:
        kind, pos, end = "gre", pay, lim
    elif proto == 17:
        if lim - pay < 8:
            return None
        sport, dport, ulen = _be16(f, pay), _be16(f, pay + 2), _be16(f, pay + 4)
        name = PORTS.get(dport) or PORTS.get(sport)
        if name == "gtp-u" and via == "gtp-u":  # never GTP in GTP
            name = None
        decl = pay + ulen if ulen >= 8 else lim
        pos, end = pay + 8, min(lim, decl)
        if name is None:
            inner = _teredo_by_content(f, pos, end, decl)
            if inner is None:
                return None
            name, pos = "teredo*", inner
        kind = name
    else:
        return None
    if depth + 1 > MAX_DEPTH:
        return "malformed"
    if end <= pos:
        return "not_tcp"
    if kind == "ip-in-ip":
        r: Opened = (pos, end, LT_RAW, 4 if proto == 4 else 6)
    elif kind == "teredo*":
        r = (pos, end, LT_RAW, 0)
    else:
        r = OPENERS[kind](f, pos, end)
    if isinstance(r, str):
        return r
    q, end, lt, want = r
    if end <= q:
        return "not_tcp"
    if want and f[q] >> 4 != want:
        return "malformed"
    kind = kind.rstrip("*")
    if opened is not None:
        opened.append(kind)
    inner_r = reference(f[q:end], lt, depth=depth + 1, via=kind, opened=opened)
    return "not_tcp" if inner_r == "not_ip" else inner_r


def _ethertype(et: int, q: int, end: int) -> Opened:
    if et == 0x6558:
        return q, end, LT_ETHERNET, 0
    if et == 0x0800:
        return q, end, LT_RAW, 4
    if et == 0x86DD:
        return q, end, LT_RAW, 6
    return "not_tcp"


def _vxlan(f: bytes, pos: int, end: int) -> Opened:
    if end - pos < 8:
        return "truncated_header"
    if not f[pos] & 0x08:
        return "not_tcp"
    return pos + 8, end, LT_ETHERNET, 0


def _geneve(f: bytes, pos: int, end: int) -> Opened:
    if end - pos < 8:
        return "truncated_header"
    if f[pos] >> 6:
        return "not_tcp"
    hl = 8 + (f[pos] & 0x3F) * 4
    if end - pos < hl:
        return "truncated_header"
    return _ethertype(_be16(f, pos + 2), pos + hl, end)


def _gtp(f: bytes, pos: int, end: int) -> Opened:
    if end - pos < 8:
        return "truncated_header"
    b0 = f[pos]
    if b0 >> 5 != 1 or not b0 & 0x10 or f[pos + 1] != 255:
        return "not_tcp"
    end = min(end, pos + 8 + _be16(f, pos + 2))
    opt = bool(b0 & 0x07)
    if end - pos < (12 if opt else 8):
        return "truncated_header"
    nxt = f[pos + 11] if b0 & 0x04 else 0
    q = pos + (12 if opt else 8)
    for _ in range(16):
        if not nxt:
            break
        if end - q < 1:
            return "truncated_header"
        ln = f[q] * 4
        if not ln:
            return "malformed"
        if end - q < ln:
            return "truncated_header"
        nxt, q = f[q + ln - 1], q + ln
    else:
        if nxt:
            return "malformed"
    return q, end, LT_RAW, 0


def _teredo(f: bytes, pos: int, end: int) -> Opened:
    if end - pos < 2:
        return "truncated_header"
    q = pos
    tag = _be16(f, q)
    if tag == 1:  # authentication: client id, authentication value, nonce, confirmation
        if end - q < 4:
            return "truncated_header"
        ln = 13 + f[q + 2] + f[q + 3]
        if end - q < ln:
            return "truncated_header"
        q += ln
        if end - q < 2:
            return "truncated_header"
        tag = _be16(f, q)
        if tag == 1:
            return "not_tcp"
    if tag == 0:  # origin indication
        if end - q < 8:
            return "truncated_header"
        q += 8
    if end - q < 1:
        return "truncated_header"
    if f[q] >> 4 != 6:
        return "not_tcp"
    return q, end, LT_RAW, 0


def _teredo_by_content(f: bytes, pos: int, end: int, decl: int) -> int | None:
    """Teredo on another port: a whole IPv6 packet from or to a Teredo address (2001:0::/32)."""
    if end - pos < 40:
        return None
    if not (f[pos] >> 4 == 6 or (f[pos] == 0 and f[pos + 1] <= 1)):
        return None
    r = _teredo(f, pos, end)
    if isinstance(r, str):
        return None
    q = r[0]
    if end - q < 40:
        return None
    if TEREDO_PREFIX not in (f[q + 8 : q + 12], f[q + 24 : q + 28]):
        return None
    if q + 40 + _be16(f, q + 4) != decl:
        return None
    return q


def _gre(f: bytes, pos: int, end: int) -> Opened:
    if end - pos < 4:
        return "truncated_header"
    fv, et = _be16(f, pos), _be16(f, pos + 2)
    ver = fv & 7
    if ver > 1 or fv & 0x4078:
        return "not_tcp"
    if ver == 0 and et not in (0x0800, 0x86DD, 0x6558, 0x88BE, 0x22EB):
        return "not_tcp"
    if ver == 1 and et != 0x880B:
        return "not_tcp"
    hl = 4 + 4 * sum(1 for bit in (0x8000, 0x2000, 0x1000, 0x0080) if fv & bit)
    if end - pos < hl:
        return "truncated_header"
    q = pos + hl
    if ver == 0:
        if et == 0x88BE:  # ERSPAN type I, or type II with its 8-byte header (sequence flag)
            if fv & 0x1000:
                if end - q < 8:
                    return "truncated_header"
                q += 8
            return q, end, LT_ETHERNET, 0
        if et == 0x22EB:  # ERSPAN type III: 12 bytes, 8 more with the O flag
            if end - q < 12:
                return "truncated_header"
            extra = 12 + 8 * (f[q + 11] & 1)
            if end - q < extra:
                return "truncated_header"
            return q + extra, end, LT_ETHERNET, 0
        return _ethertype(et, q, end)
    if end <= q:  # PPTP acknowledgment alone
        return "not_tcp"
    if end - q < 2:
        return "truncated_header"
    if f[q] == 0xFF and f[q + 1] == 0x03:
        q += 2
    if end - q < 2:
        return "truncated_header"
    proto = _be16(f, q)
    if proto not in (0x0021, 0x0057):
        return "not_tcp"
    return q + 2, end, LT_RAW, 4 if proto == 0x0021 else 6


OPENERS = {"gre": _gre, "vxlan": _vxlan, "geneve": _geneve, "gtp-u": _gtp, "teredo": _teredo}


def _whole(packet: bytes, decapsulate: bool, opened: list[str] | None) -> Result:
    return reference(packet, LT_RAW, decapsulate=decapsulate, opened=opened)


class Reassembly:
    """Datagrams in pieces (RFC 791, RFC 8200), by key, with the reader's rules: a piece cut by
    the snaplen, a second piece at an offset with other bytes, a last piece that disagrees
    with the length so far, overlapping pieces that disagree or more than 65535 bytes lose the
    datagram; it is whole once its first and last pieces came and every byte is there."""

    def __init__(self) -> None:
        self.held: dict[tuple[Any, ...], dict[str, Any]] = {}

    def add(
        self, key: tuple[Any, ...], head: bytes, data: bytes, size: int, offset: int, more: int
    ) -> bytes | None:
        """A piece: ``data`` as captured of its ``size`` bytes at ``offset`` (``more``: not
        the last); the whole IP packet once it is complete."""
        d = self.held.setdefault(key, {"pieces": {}, "total": None, "head": None})
        end = offset + len(data)
        pieces, total = d["pieces"], d["total"]
        lost = size < 0 or len(data) < size
        lost = lost or (offset in pieces and pieces[offset] != data)
        if not more:
            lost = lost or (total is not None and total != end)
            lost = lost or any(o + len(x) > end for o, x in pieces.items())
        else:
            lost = lost or (total is not None and end > total)
        if lost:
            del self.held[key]
            return None
        pieces.setdefault(offset, data)
        if not more:
            d["total"] = total = end
        if offset == 0:
            d["head"] = head
        if sum(len(x) for x in pieces.values()) > 65535:
            del self.held[key]
            return None
        if total is None or d["head"] is None or sum(len(x) for x in pieces.values()) < total:
            return None
        out: list[int | None] = [None] * total
        for o, x in pieces.items():
            for k, byte in enumerate(x):
                if out[o + k] is not None and out[o + k] != byte:
                    del self.held[key]
                    return None
                out[o + k] = byte
        if any(b is None for b in out):
            return None
        del self.held[key]
        payload = bytes(b for b in out if b is not None)
        h = bytearray(d["head"])
        if key[0] == 4:
            struct.pack_into("!HHHH", h, 2, len(h) + len(payload), key[4], 0, _be16(h, 8))
            struct.pack_into("!H", h, 10, 0)
            struct.pack_into("!H", h, 10, _checksum(bytes(h)))
        else:
            struct.pack_into("!H", h, 4, len(h) - 40 + len(payload))
        return bytes(h) + payload


def _checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF
