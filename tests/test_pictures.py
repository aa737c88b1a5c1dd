"""Diagrams of the state machine: the reference one, the observed one, and ladder timelines."""

from __future__ import annotations

import re
import shutil

import pytest
from click.testing import CliRunner
from conftest import ROOT, SAMPLES
from segscript import Wire

from tcptrace_sm.analysis import anomaly_records, trace_flow, transition_records
from tcptrace_sm.cli import ExitCode, cli
from tcptrace_sm.diagram import observed_dot, observed_mermaid, reference_mermaid, timeline_mermaid

KERNEL = SAMPLES / "kernel"


def run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return r.exit_code, r.stdout, r.stderr


def test_readme_diagram_is_the_reference_output() -> None:
    code, out, _ = run("diagram", "--reference")
    assert code == 0
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "```mermaid\n" + out + "```" in readme
    assert out == reference_mermaid()


def test_reference_covers_every_state() -> None:
    out = reference_mermaid()
    for state in ("CLOSED", "LISTEN", "SYN-SENT", "SYN-RECEIVED", "ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2",
                  "CLOSE-WAIT", "CLOSING", "LAST-ACK", "TIME-WAIT"):  # fmt: skip
        assert f'"{state}"' in out


def test_observed_diagram_counts_each_edge_per_role() -> None:
    code, out, _ = run(
        "diagram", str(KERNEL / "orderly_client_close.pcap"), str(KERNEL / "orderly_server_close.pcap")
    )
    assert code == 0
    assert out.startswith("stateDiagram-v2\n")
    assert "ESTABLISHED --> FIN_WAIT_1 : sent FIN (client 1, server 1)" in out
    assert "LAST_ACK --> CLOSED : received ACK of FIN (client 1, server 1)" in out
    assert "CLOSE_WAIT" in out
    assert "CLOSING" not in out  # only what happened is drawn


def test_violations_are_drawn_apart() -> None:
    w = Wire()
    w.handshake()
    w.c.fin()
    w.c.data(10)  # data beyond its own FIN
    conn = w.run()
    transitions, anomalies = transition_records(conn), anomaly_records(conn)
    text = observed_mermaid(transitions, anomalies)
    assert 'state "violation: data_after_fin" as V_data_after_fin' in text
    assert "FIN_WAIT_1 --> V_data_after_fin : client 1" in text
    assert "class V_data_after_fin violation" in text
    assert "classDef violation" in text
    dot = observed_dot(transitions, anomalies)
    assert '"violation: data_after_fin" [shape=note' in dot
    assert 'style=dashed, color="#c62828"' in dot


def test_dot_output_is_a_digraph() -> None:
    code, out, _ = run("diagram", "-f", "dot", str(KERNEL / "refused.pcap"))
    assert code == 0
    assert out.startswith("digraph tcp_states {")
    assert '"SYN-SENT" -> "CLOSED" [label="received RST\\nclient 1"];' in out
    assert out.rstrip().endswith("}")


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_svg_via_graphviz(tmp_path: object) -> None:
    code, out, _ = run("diagram", "-f", "svg", str(KERNEL / "refused.pcap"))
    assert code == 0
    assert "<svg" in out


def test_svg_without_graphviz_is_a_clear_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    code, _, err = run("diagram", "-f", "png", str(KERNEL / "refused.pcap"))
    assert code == ExitCode.USAGE
    assert "Graphviz" in err


def test_diagram_needs_a_capture_or_reference() -> None:
    code, _, _ = run("diagram")
    assert code == ExitCode.USAGE


def test_timeline_is_a_ladder_with_states_and_anomalies() -> None:
    code, out, _ = run("timeline", str(KERNEL / "abort_server.pcap"), "--flow", "1")
    assert code == 0
    lines = out.splitlines()
    assert lines[:3] == ["sequenceDiagram", "    participant C as client", "    participant S as server"]
    arrows = [line for line in lines if "->>" in line]
    assert len(arrows) == 8  # every TCP segment of the flow
    assert arrows[0].strip() == "C->>S: #1 S seq=0 len=0"
    assert re.search(r"S->>C: #2 SA seq=0 ack=1 len=0", out)
    assert "Note left of C: SYN-SENT" in out
    assert "Note right of S: CLOSED" in out
    assert "Note over C,S: ⚠ rst_terminated" in out


def test_timeline_states_follow_the_final_conclusions() -> None:
    rows = trace_flow(KERNEL / "simultaneous_close.pcap", 1)
    by_frame = {r["frame"]: r for r in rows}
    # the server's FIN (frame 9) left before the client's arrived: never CLOSE-WAIT
    assert by_frame[8]["server_state"] == "ESTABLISHED"
    assert by_frame[9]["server_state"] == "CLOSING"
    assert "CLOSE-WAIT" not in timeline_mermaid(rows)


def test_timeline_unknown_flow_is_a_usage_error() -> None:
    code, _, err = run("timeline", str(KERNEL / "refused.pcap"), "--flow", "7")
    assert code == ExitCode.USAGE
    assert "no flow 7" in err
