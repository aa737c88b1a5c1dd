"""Real kernels over a lossy path and under forged resets: final states as `ss` reported them.

sample_pcaps/lossy/ was recorded by scripts/record_lossy.py: segments are lost *after* the
capture point (so the capture shows what the receiver never got), and RSTs are forged in the
client's name from a raw socket. The JSON's `close`/`rst_by` describe the wire (an RST was
seen), so only the endpoints' states and the conclusions are compared here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SAMPLES

import tcptrace_sm

LOSSY = SAMPLES / "lossy"
CASES = sorted(LOSSY.glob("*.json"))

#: what the analysis must also conclude, per connection, beyond the states
CONCLUSIONS: dict[str, list[tuple[set[str], str | None]]] = {
    "fin_lost_closing": [({"simultaneous_close"}, None)],
    "ack_of_fin_lost": [({"stuck_close_wait"}, None)],
    "rst_lost_second_rst": [({"rst_not_received", "rst_terminated"}, "client")],
    "spoofed_rst_out_of_window": [({"rst_out_of_window"}, None)],
    "spoofed_rst_in_window": [({"rst_in_window"}, None)],
    "spoofed_rst_exact": [({"rst_injected", "rst_terminated"}, "server")],
    "fastopen": [(set(), None), ({"syn_with_data"}, None)],
}


def test_every_recording_has_its_conclusions() -> None:
    assert {c.stem for c in CASES} == set(CONCLUSIONS)


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_states_match_the_kernel_despite_loss_and_forgery(case: Path) -> None:
    expected = json.loads(case.read_text(encoding="utf-8"))
    a = tcptrace_sm.analyze(case.with_suffix(".pcap"))
    conclusions = CONCLUSIONS[case.stem]
    assert len(a.flow_records) == len(expected["connections"]) == len(conclusions)
    for flow, want, (codes, rst_by) in zip(a.flow_records, expected["connections"], conclusions, strict=True):
        assert (flow["client_state"], flow["server_state"]) == (want["client_state"], want["server_state"])
        assert set(flow["anomalies"]) == codes
        assert flow["rst_by"] == rst_by
    assert not [r for r in a.anomaly_records if r["category"] == "violation"]


@pytest.mark.parametrize("direction", ["client", "server"])
def test_one_direction_of_real_traffic_shows_no_violation(direction: str) -> None:
    """A capture of one direction only (asymmetric routing, a SPAN port on one side)."""
    from tcptrace_sm.capture import read_segments
    from tcptrace_sm.flows import FlowTable

    for pcap in sorted((SAMPLES / "kernel").glob("*.pcap")):
        table = FlowTable()
        last = 0
        for seg in read_segments(pcap):
            last = seg.ts
            if (seg.sport == 40001) == (direction == "client"):
                table.observe(seg)
        for conn in table.finish(last):
            bad = [a.code for a in conn.anomalies if a.kind.category.value == "violation"]
            assert bad == [], (pcap.name, bad)
