"""Segments whose TCP checksum fails (``verify_checksums``): counted, reported, ignored.

A receiver drops a segment whose checksum fails, so such a segment must change no endpoint's
state; it is still counted in the flow and reported as ``bad_checksum``, and Zeek's history
records it as ``C``/``c`` (Zeek verifies checksums unless run with ``-C``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pcapgen as g
import pytest
from conftest import ROOT

import tcptrace_sm
from tcptrace_sm.model import ACK, FIN, SYN

C, S = "10.1.0.1", "10.1.0.2"
T0 = 1_700_000_000_000_000_000


def seg(src: str, dst: str, sp: int, dp: int, *, bad: bool = False, **kw: Any) -> bytes:
    tcp = g.tcp_header(sp, dp, src=src, dst=dst, csum=0xBAD0 if bad else None, **kw)
    return g.ethernet(g.ipv4(src, dst, tcp, 6), 0x0800)


def handshake_with_a_damaged_synack(tmp_path: Path) -> Path:
    frames = [
        seg(C, S, 40000, 80, seq=100, flags=SYN),
        seg(S, C, 80, 40000, seq=500, ack=101, flags=SYN | ACK, bad=True),  # damaged on the way
        seg(S, C, 80, 40000, seq=500, ack=101, flags=SYN | ACK),  # the retransmission
        seg(C, S, 40000, 80, seq=101, ack=501, flags=ACK),
        seg(C, S, 40000, 80, seq=101, ack=501, flags=FIN | ACK, bad=True),  # damaged: not a close
    ]
    path = tmp_path / "damaged.pcap"
    path.write_bytes(g.pcap([(T0 + i * 1_000_000, f) for i, f in enumerate(frames)]))
    return path


@pytest.mark.parametrize("engine", ["fast", "reference"])
def test_a_damaged_segment_changes_no_state_and_is_reported(tmp_path: Path, engine: str) -> None:
    path = handshake_with_a_damaged_synack(tmp_path)
    a = tcptrace_sm.analyze(path, verify_checksums=True, engine=engine)
    (flow,) = a.flow_records
    assert (flow["client_state"], flow["server_state"]) == ("ESTABLISHED", "ESTABLISHED")
    assert (flow["client_packets"], flow["server_packets"]) == (3, 2)  # counted all the same
    assert flow["close"] == "open"
    bad = [(r["side"], r["frame"]) for r in a.anomaly_records if r["code"] == "bad_checksum"]
    assert bad == [("server", 2), ("client", 5)]
    # the client got the SYN-ACK of frame 3, not the damaged one of frame 2
    client = [(t["frame"], t["to_state"]) for t in a.transition_records if t["side"] == "client"]
    assert client == [(1, "SYN-SENT"), (3, "ESTABLISHED")]
    assert flow["history"] == "SchAC"  # Zeek's letters: the damaged ones are c and C, no F


def test_without_verifying_the_same_segments_count_as_good(tmp_path: Path) -> None:
    a = tcptrace_sm.analyze(handshake_with_a_damaged_synack(tmp_path))
    (flow,) = a.flow_records
    assert not [r for r in a.anomaly_records if r["code"] == "bad_checksum"]
    client = [(t["frame"], t["to_state"]) for t in a.transition_records if t["side"] == "client"]
    assert client[:2] == [(1, "SYN-SENT"), (2, "ESTABLISHED")]
    assert flow["client_state"] == "FIN-WAIT-1"


def test_a_lone_damaged_syn_is_a_flow_with_nothing_established(tmp_path: Path) -> None:
    path = tmp_path / "syn.pcap"
    path.write_bytes(g.pcap([(T0, seg(C, S, 40000, 80, seq=7, flags=SYN, bad=True))]))
    a = tcptrace_sm.analyze(path, verify_checksums=True)
    (flow,) = a.flow_records
    assert flow["packets"] == 1
    assert sorted(r["code"] for r in a.anomaly_records) == ["bad_checksum", "one_direction_only"]
    assert not a.transition_records  # the SYN never left a trace in any state
    assert flow["history"] == "C"


def test_loopback_offload_shows_as_bad_checksums_through_the_cli() -> None:
    # Linux lo leaves TCP checksums to "hardware": with --verify-checksums every segment of a
    # loopback capture fails, and the report says so instead of showing nothing
    out = subprocess.run(
        [sys.executable, "-m", "tcptrace_sm", "analyze", str(ROOT / "sample_pcaps" / "loopback_base.pcap"),
         "--verify-checksums", "--records", "anomalies", "-f", "json"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    codes = {r["code"] for r in json.loads(out.stdout)["anomalies"]}
    assert codes == {"bad_checksum"}
