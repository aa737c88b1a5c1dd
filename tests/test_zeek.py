"""Zeek's conn_state and history, driven by segment scripts (one case per code)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from segscript import Wire

from tcptrace_sm.model import FIN, RST, SYN
from tcptrace_sm.zeek import ZeekSummary


def zeek(w: Wire) -> tuple[str, str]:
    z = ZeekSummary(w.segments[0])
    for seg in w.segments:
        z.update(seg)
    return z.conn_state, z.history


def _s0(w: Wire) -> None:
    w.c.syn()
    w.c.syn(seq=1000, advance=False)


def _s1(w: Wire) -> None:
    w.handshake()
    w.c.data(10)
    w.s.data(10)


def _sf(w: Wire) -> None:
    _s1(w)
    w.c.fin()
    w.s.fin()
    w.c.ack()


def _rej(w: Wire) -> None:
    w.c.syn()
    w.s.rst(seq=0)


def _s2(w: Wire) -> None:
    _s1(w)
    w.c.fin()
    w.s.ack()


def _s3(w: Wire) -> None:
    _s1(w)
    w.s.fin()
    w.c.ack()


def _rsto(w: Wire) -> None:
    _s1(w)
    w.c.rst()


def _rstr(w: Wire) -> None:
    _s1(w)
    w.s.rst()


def _rstos0(w: Wire) -> None:
    w.c.syn()
    w.c.rst(with_ack=False)


def _rstrh(w: Wire) -> None:
    w.c.nxt += 1
    w.s.synack()
    w.s.rst()


def _sh(w: Wire) -> None:
    w.c.syn()
    w.c.fin()


def _shr(w: Wire) -> None:
    w.c.nxt += 1
    w.s.synack()
    w.s.fin()


def _oth(w: Wire) -> None:
    w.c.data(10)
    w.s.data(10)
    w.c.ack()


def _retransmissions(w: Wire) -> None:
    _s1(w)
    for _ in range(12):
        w.c.data(10, seq=1001, advance=False)


CASES: list[tuple[Callable[[Wire], None], str, str]] = [
    (_s0, "S0", "S"),
    (_s1, "S1", "ShADd"),
    (_sf, "SF", "ShADdFf"),
    (_rej, "REJ", "Sr"),
    (_s2, "S2", "ShADdFa"),
    (_s3, "S3", "ShADdf"),
    (_rsto, "RSTO", "ShADdR"),
    (_rstr, "RSTR", "ShADdr"),
    (_rstos0, "RSTOS0", "SR"),
    (_rstrh, "RSTRH", "^hr"),
    (_sh, "SH", "SF"),
    (_shr, "SHR", "^hf"),
    (_oth, "OTH", "DdA"),
    (_retransmissions, "S1", "ShADdTT"),  # the 1st and the 10th retransmission
]


@pytest.mark.parametrize(
    ("script", "state", "history"), CASES, ids=[c[1] + "-" + c[0].__name__ for c in CASES]
)
def test_conn_state_and_history(script: Callable[[Wire], None], state: str, history: str) -> None:
    w = Wire()
    script(w)
    assert zeek(w) == (state, history)


def test_midstream_from_a_server_port_flips_roles() -> None:
    w = Wire()
    w.s.data(10)  # first packet from port 80 to 40000
    w.c.ack()
    assert zeek(w) == ("OTH", "^dA")


def test_multi_flag_segments() -> None:
    w = Wire()
    w.handshake()
    w.c.raw(SYN | FIN)
    w.c.raw(FIN | RST)
    assert zeek(w)[1] == "ShAQI"


def test_flow_records_carry_the_zeek_fields() -> None:
    from conftest import SAMPLES

    import tcptrace_sm

    a = tcptrace_sm.analyze(SAMPLES / "kernel" / "refused.pcap")
    assert (a.flow_records[0]["conn_state"], a.flow_records[0]["history"]) == ("REJ", "Sr")
