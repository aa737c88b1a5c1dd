"""Zeek's SSH length limits: the parser on its own, the 'X' in a history, and the reader
keeping payload bytes for the ports asked for."""

from __future__ import annotations

import struct
from pathlib import Path

import dpkt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tcptrace_sm.capture import read_columns, read_segments
from tcptrace_sm.model import ACK, FIN, PSH, SYN, Segment
from tcptrace_sm.zeek import ZeekConfig, ZeekSummary
from tcptrace_sm.zeek_ssh import MAX_HELD, MAX_PIECES, SshLimits

ROOT = Path(__file__).resolve().parent.parent


def packet(kind: int, body: bytes) -> bytes:
    """An SSH-2 binary packet: length, padding length, type, body, 4 bytes of padding."""
    payload = bytes([kind]) + body
    return struct.pack("!IB", len(payload) + 1 + 4, 4) + payload + b"\0" * 4


def kexinit(*names: int) -> bytes:
    """A KEXINIT whose ten name-lists have these lengths (the rest empty)."""
    lists = list(names) + [0] * (10 - len(names))
    body = b"\x11" * 16 + b"".join(struct.pack("!I", n) + b"a" * n for n in lists) + b"\0" + b"\0" * 4
    return packet(20, body)


NEWKEYS = packet(21, b"")
CLIENT_V = b"SSH-2.0-OpenSSH_9.6\r\n"
SERVER_V = b"SSH-2.0-OpenSSH_9.2p1\r\n"


def feed(limits: SshLimits, *steps: tuple[bool, bytes]) -> list[bool]:
    """Deliver each (from client, bytes) in order, each side's bytes back to back; what each
    delivery returned."""
    at = {True: 1, False: 1}
    out = []
    for from_client, data in steps:
        out.append(limits.deliver(from_client, at[from_client], data, len(data)))
        at[from_client] += len(data)
    return out


# ---- the parser, table-driven: (limits, deliveries, which delivery flags)

CASES = {
    "small key exchange, no limit hit": (
        (1000, 200),
        [(False, SERVER_V), (True, CLIENT_V), (True, kexinit(100, 50)), (False, kexinit(150))],
        None,
    ),
    "packet length over the limit, at its header": (
        (1000, 0),
        [(False, SERVER_V), (True, CLIENT_V), (True, kexinit(1200)[:4]), (True, kexinit(1200)[4:])],
        2,
    ),
    "a name-list over the limit, once the packet is whole": (
        (0, 200),
        [(False, SERVER_V), (True, CLIENT_V), (True, kexinit(300)[:40]), (True, kexinit(300)[40:])],
        3,
    ),
    "the first limit hit flags, later ones do not": (
        (0, 200),
        [(False, SERVER_V), (True, CLIENT_V), (True, kexinit(300)), (False, kexinit(400))],
        2,
    ),
    "limits 0 mean none": (
        (0, 0),
        [(False, SERVER_V), (True, CLIENT_V), (True, kexinit(5000))],
        None,
    ),
    "nothing after NEWKEYS is parsed (encrypted)": (
        (1000, 0),
        [(False, SERVER_V), (True, CLIENT_V), (True, NEWKEYS), (True, b"\xff" * 64)],
        None,
    ),
    "the client's KEXINIT waits for the server's version": (
        (1000, 0),
        [(True, CLIENT_V + kexinit(2000)), (False, b"banner line\r\n"), (False, SERVER_V)],
        2,
    ),
    "SSH-1 (a 1.5 client to a 1.99 server) has no name-list limit": (
        (0, 200),
        [(False, b"SSH-1.99-OpenSSH_6.6\n"), (True, b"SSH-1.5-OpenSSH_6.2\n"), (True, b"\0" * 300)],
        None,
    ),
    "SSH-2 (a 2.0 client to a 1.99 server)": (
        (0, 200),
        [(False, b"SSH-1.99-OpenSSH_6.6\n"), (True, CLIENT_V), (True, kexinit(300))],
        2,
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_ssh_limits(name: str) -> None:
    (max_packet, max_string), steps, flagged_at = CASES[name]
    got = feed(SshLimits(max_packet, max_string), *steps)
    assert got == [i == flagged_at for i in range(len(steps))]


def test_ssh1_session_key_ends_the_clear_text() -> None:
    lim = SshLimits(1000, 0)
    session_key = struct.pack("!I", 12) + b"\0" * 4 + bytes([3]) + b"\0" * 11  # 4 padding bytes
    got = feed(
        lim,
        (False, b"SSH-1.5-srv\n"),
        (True, b"SSH-1.5-cli\n"),
        (True, session_key),
        (False, b"\xff" * 16),  # encrypted: a "length" far over the limit, not parsed
    )
    assert got == [False] * 4


def test_ssh_bytes_out_of_order_are_delivered_when_the_hole_fills() -> None:
    lim = SshLimits(1000, 0)
    big = kexinit(1500)
    assert not lim.deliver(False, 1, SERVER_V, len(SERVER_V))
    start = len(CLIENT_V) + 1
    assert not lim.deliver(True, start, big[:10], 10)  # ahead of the version line: held
    assert not lim.deliver(True, start + 10, big[10:], len(big) - 10)
    assert lim.deliver(True, 1, CLIENT_V, len(CLIENT_V))  # the hole fills: all of it parsed


def test_ssh_retransmissions_and_short_captures() -> None:
    lim = SshLimits(1000, 0)
    assert not lim.deliver(False, 1, SERVER_V, len(SERVER_V))
    assert not lim.deliver(True, 1, CLIENT_V, len(CLIENT_V))
    assert not lim.deliver(True, 1, CLIENT_V, len(CLIENT_V))  # delivered already
    big = kexinit(1500)
    # the payload was cut by the snaplen: that side is no longer parsed
    assert not lim.deliver(True, 1 + len(CLIENT_V), big[:2], len(big))
    assert not lim.deliver(True, 1 + len(CLIENT_V) + len(big), big, len(big))


def test_ssh_out_of_order_pieces_are_bounded() -> None:
    lim = SshLimits(1000, 0)
    for k in range(MAX_PIECES + 1):
        lim.deliver(True, 1000 + 10 * k, b"x" * 5, 5)
    assert lim.client.done
    assert not lim.client.pieces


def test_a_stream_that_is_not_ssh_is_given_up() -> None:
    lim = SshLimits(1000, 200)
    chunk = b"x" * 65536
    for k in range(5):
        assert not lim.deliver(True, 1 + k * len(chunk), chunk, len(chunk))
    assert lim.client.done
    assert not lim.client.buf  # what it held is gone


# ---- in a Zeek history


def _segs(client_kex: bytes) -> list[Segment]:
    c, s = ("10.0.0.1", 50000), ("10.0.0.2", 22)
    t = 1_700_000_000 * 10**9
    out: list[Segment] = []

    def emit(src: tuple[str, int], dst: tuple[str, int], seq: int, ack: int, flags: int, data: bytes) -> None:
        out.append(
            Segment(
                len(out) + 1, t + len(out) * 1000, *src, *dst, seq, ack, flags, 65535, len(data), b"", data
            )
        )

    ci, si = 1000, 5000
    emit(c, s, ci, 0, SYN, b"")
    emit(s, c, si, ci + 1, SYN | ACK, b"")
    emit(c, s, ci + 1, si + 1, ACK, b"")
    emit(s, c, si + 1, ci + 1, ACK | PSH, SERVER_V)
    emit(c, s, ci + 1, si + 1 + len(SERVER_V), ACK | PSH, CLIENT_V)
    emit(s, c, si + 1 + len(SERVER_V), ci + 1 + len(CLIENT_V), ACK, b"")
    emit(c, s, ci + 1 + len(CLIENT_V), si + 1 + len(SERVER_V), ACK | PSH, client_kex)
    cn, sn = ci + 1 + len(CLIENT_V) + len(client_kex), si + 1 + len(SERVER_V)
    emit(c, s, cn, sn, FIN | ACK, b"")
    emit(s, c, sn, cn + 1, FIN | ACK, b"")
    emit(c, s, cn + 1, sn + 1, ACK, b"")
    return out


def _history(segs: list[Segment], config: ZeekConfig) -> str:
    z = ZeekSummary(segs[0], config=config)
    for seg in segs:
        z.update(seg)
    return z.history


@pytest.mark.parametrize(
    ("config", "kex", "history"),
    [
        (ZeekConfig(), kexinit(2000), "ShAdDaFf"),  # Zeek's defaults here: no limit
        (ZeekConfig(ssh_max_packet_length=1000), kexinit(2000), "ShAdDaXFf"),
        (ZeekConfig(ssh_max_packet_length=1000), kexinit(100), "ShAdDaFf"),
        (ZeekConfig(ssh_max_string_length=200), kexinit(300), "ShAdDaXFf"),
        (ZeekConfig(ssh_max_string_length=200, ssh_ports=frozenset({2222})), kexinit(300), "ShAdDaFf"),
    ],
)
def test_x_in_the_history(config: ZeekConfig, kex: bytes, history: str) -> None:
    assert _history(_segs(kex), config) == history


# ---- the reader keeps payload only for the ports asked for


def test_the_reader_keeps_payload_for_the_ports_asked_for() -> None:
    path = ROOT / "sample_pcaps" / "loopback_base.pcap"
    with open(path, "rb") as f:
        want = []
        for _ts, buf in dpkt.pcap.Reader(f):
            tcp = dpkt.ethernet.Ethernet(buf).data.data
            want.append((tcp.sport, tcp.dport, bytes(tcp.data)))
    port = next(sp for sp, dp, data in want if data)
    plain = list(read_segments(path))
    kept = list(read_segments(path, payload_ports={port}))
    assert [s.payload for s in plain] == [b""] * len(plain)
    assert [s._replace(payload=b"") for s in kept] == plain
    assert [s.payload for s in kept] == [d if port in (sp, dp) else b"" for sp, dp, d in want]
    assert any(s.payload for s in kept)
    cols = next(read_columns(path, payload_ports={port}))
    rows = cols.take(cols.length.nonzero()[0][::-1])  # take and concat keep the bytes with their rows
    assert cols.concat([rows, rows]).payloads() == rows.payloads() * 2 != []


# ---- hostile bytes


@given(
    st.lists(
        st.tuples(st.booleans(), st.integers(0, 3000), st.binary(max_size=600), st.integers(0, 40)),
        max_size=40,
    ),
    st.sampled_from([(0, 0), (1000, 0), (0, 200), (1000, 200), (8, 1)]),
)
@settings(max_examples=300, deadline=None)
def test_ssh_limits_never_fail_on_any_bytes(
    steps: list[tuple[bool, int, bytes, int]], limits: tuple[int, int]
) -> None:
    """Whatever bytes come, in whatever order (or cut short), the parser answers and holds
    at most its bounds."""
    lim = SshLimits(*limits)
    prefix = {True: CLIENT_V, False: SERVER_V}
    for from_client, rel, data, cut in steps:
        raw = (prefix[from_client] + data) if rel == 0 else data
        lim.deliver(from_client, max(rel, 1), raw[: max(len(raw) - cut, 0)], len(raw))
        for side in (lim.client, lim.server):
            assert len(side.buf) <= MAX_HELD + 600 + len(CLIENT_V) + len(SERVER_V)
            assert len(side.pieces) <= MAX_PIECES
