"""Zeek's SSH length limits, the one application-layer rule that writes a ``history`` letter.

Zeek's SSH analyzer reads the clear-text start of an SSH connection: each side's version line,
then the binary packets of the key exchange, until that side's ``NEWKEYS`` (SSH-2; SSH-1: the
client's ``SESSION_KEY``) turns on encryption. When the script options
``SSH::max_packet_length`` or ``SSH::max_string_length`` are set (0 means no limit), a packet
whose length field is larger, or a ``KEXINIT`` name-list that is longer, adds ``X`` to the
connection's history, once per connection and always in upper case.

Timing decides where the ``X`` falls among the other letters, and it follows Zeek's parser: the
packet length is checked as soon as its four bytes arrive, the name-lists only when the whole
packet has arrived. Bytes reach the parser in sequence order, as Zeek's reassembler delivers
them: a segment that fills a hole delivers what was held behind it.

Not emulated: the other SSH strings (host keys, DH values, signatures), which Zeek also caps,
and the ``SSH::max_kexinit_*`` counts of names. A side whose bytes were not all captured (a
snaplen, a gap) stops being parsed.
"""

from __future__ import annotations

from typing import Final

#: Bytes a side may hold while waiting for the rest of a packet, or for a version line, before
#: the parser gives up on that side (a stream that is not SSH, or a limit far above any real
#: key-exchange packet).
MAX_HELD: Final = 1 << 18
#: Out-of-order pieces a side keeps while waiting for the bytes before them.
MAX_PIECES: Final = 64

_KEXINIT, _NEWKEYS = 20, 21
_SSH1_SESSION_KEY = 3
_NAME_LISTS = 10
_WAIT, _TAKEN, _FLAGGED = 0, 1, 2  # what parsing one packet came to


class _Side:
    """One direction's byte stream and where its parser stands."""

    __slots__ = ("buf", "done", "next", "pieces", "version")

    def __init__(self) -> None:
        self.buf = bytearray()
        self.next = 1  # relative sequence number of the next byte to deliver (the first is 1)
        self.pieces: dict[int, bytes] = {}  # held out of order, by relative sequence number
        self.version: bytes | None = None
        self.done = False

    def stop(self) -> None:
        """No more parsing on this side: what it held goes."""
        self.done = True
        self.buf = bytearray()
        self.pieces = {}


class SshLimits:
    """The SSH parser of one Zeek connection; :meth:`deliver` says when to write the ``X``."""

    __slots__ = ("_major", "client", "flagged", "max_packet", "max_string", "server")

    def __init__(self, max_packet: int, max_string: int) -> None:
        self.max_packet = max_packet
        self.max_string = max_string
        self.client = _Side()
        self.server = _Side()
        self._major: int | None = None  # 1 or 2 once both versions are known
        self.flagged = False

    def deliver(self, from_client: bool, rel: int, data: bytes, length: int) -> bool:
        """Bytes ``data`` of a segment of ``length`` payload bytes at relative sequence number
        ``rel``; True when a limit is exceeded for the first time (the ``X`` goes now)."""
        if self.flagged:
            return False
        side = self.client if from_client else self.server
        if side.done:
            return False
        if len(data) < length:  # not all captured: Zeek would see a gap here
            side.stop()
            return False
        end = rel + length
        if end <= side.next:
            return False  # a retransmission of delivered bytes
        if rel > side.next:
            if len(side.pieces) >= MAX_PIECES:
                side.stop()
            else:
                side.pieces[rel] = data
            return False
        side.buf += data[side.next - rel :]
        side.next = end
        while side.pieces:  # what the hole held back
            fits = [k for k in side.pieces if k <= side.next]
            if not fits:
                break
            for k in sorted(fits):
                piece = side.pieces.pop(k)
                if k + len(piece) > side.next:
                    side.buf += piece[side.next - k :]
                    side.next = k + len(piece)
        return self._parse(from_client)

    def _parse(self, from_client: bool) -> bool:
        side, other = (self.client, self.server) if from_client else (self.server, self.client)
        if side.version is None and not self._version(side):
            return False
        if self._major is None:
            if other.version is None:  # the key exchange needs both versions
                return self._hold(side)
            self._major = _major(self.client.version or b"", self.server.version or b"")
            if self._packets(other, not from_client):  # what waited for this version
                return True
        return self._packets(side, from_client)

    @staticmethod
    def _version(side: _Side) -> bool:
        """Take the version line (a server may send other lines before it)."""
        while True:
            nl = side.buf.find(b"\n")
            if nl < 0:
                if len(side.buf) > MAX_HELD:
                    side.stop()
                return False
            line = bytes(side.buf[:nl]).rstrip(b"\r")
            del side.buf[: nl + 1]
            if line.startswith(b"SSH-"):
                side.version = line
                return True

    @staticmethod
    def _hold(side: _Side) -> bool:
        if len(side.buf) > MAX_HELD:
            side.stop()
        return False

    def _packets(self, side: _Side, from_client: bool) -> bool:
        """Parse every whole packet held; True when a limit is exceeded."""
        while not side.done:
            got = self._packet(side, from_client)
            if got == _FLAGGED:
                self.flagged = True
                return True
            if got == _WAIT:
                return self._hold(side)
        return False

    def _packet(self, side: _Side, from_client: bool) -> int:
        """Check the next packet's length, and its contents once it has all arrived (then it is
        consumed)."""
        buf = side.buf
        if len(buf) < 4:
            return _WAIT
        length = int.from_bytes(buf[:4], "big")
        if self.max_packet and length > self.max_packet:
            return _FLAGGED
        if self._major == 1:
            pad = 8 - length % 8
            size = 4 + pad + length
            if len(buf) < size:
                return _WAIT
            if from_client and length and buf[4 + pad] == _SSH1_SESSION_KEY:
                self.client.stop()  # encrypted from here on
                self.server.stop()
            del buf[:size]
            return _TAKEN
        size = 4 + length
        if len(buf) < size:
            return _WAIT
        kind = buf[5] if length >= 2 else -1
        packet = bytes(buf[:size])
        del buf[:size]
        if kind == _NEWKEYS:
            side.stop()  # encrypted from here on
        elif kind == _KEXINIT and self.max_string and self._long_name_list(packet):
            return _FLAGGED
        return _TAKEN

    def _long_name_list(self, packet: bytes) -> bool:
        at = 4 + 1 + 1 + 16  # length, padding length, message type, cookie
        for _ in range(_NAME_LISTS):
            if at + 4 > len(packet):
                return False
            n = int.from_bytes(packet[at : at + 4], "big")
            if n > self.max_string:
                return True
            at += 4 + n
        return False


def _major(client: bytes, server: bytes) -> int:
    """The protocol both sides speak: the server's, or the client's when the server offers
    both (``SSH-1.99``)."""
    proto = server[4:].split(b"-", 1)[0]
    if proto == b"1.99":
        proto = client[4:].split(b"-", 1)[0]
    return 1 if proto.startswith(b"1.") and proto != b"1.99" else 2
