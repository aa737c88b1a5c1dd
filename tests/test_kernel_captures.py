"""Real Linux sockets: the analysis must agree with what `ss` reported for each of them.

Each capture in sample_pcaps/kernel/ was recorded by scripts/record_kernel.py in network
namespaces; its JSON holds, per connection, each socket's state as `ss` showed it at the
instant of the capture's last packet (a UDP marker), plus how the connection ended on the wire.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import SAMPLES

import tcptrace_sm

KERNEL = SAMPLES / "kernel"
CASES = sorted(KERNEL.glob("*.json"))


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _endpoint(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def test_there_are_kernel_captures() -> None:
    assert len(CASES) >= 12


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_final_states_match_the_kernel(case: Path) -> None:
    expected = _load(case)
    a = tcptrace_sm.analyze(case.with_suffix(".pcap"))
    flows = a.flow_records
    assert len(flows) == len(expected["connections"])
    marker_ns = round(expected["marker_ts"] * 1e9)
    assert abs(a.stats.last_ts - marker_ns) < 1000  # the answer was read at the capture's end
    for flow, want in zip(flows, expected["connections"], strict=True):
        got = (
            _endpoint(flow["client_ip"], flow["client_port"]),
            _endpoint(flow["server_ip"], flow["server_port"]),
        )
        assert got == (want["client"], want["server"])
        assert (flow["client_state"], flow["server_state"]) == (want["client_state"], want["server_state"])
        assert flow["close"] == want["close"]
        assert flow["rst_by"] == want["rst_by"]
        stuck = [
            r["side"]
            for r in a.anomaly_records
            if r["flow_id"] == flow["flow_id"] and r["code"] == "stuck_close_wait"
        ]
        assert stuck == ([want["stuck_close_wait"]] if want["stuck_close_wait"] else [])
        violations = [
            r["code"]
            for r in a.anomaly_records
            if r["flow_id"] == flow["flow_id"] and r["category"] == "violation"
        ]
        assert violations == []  # real kernels on a clean path break no rule
