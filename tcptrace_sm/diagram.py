"""Pictures of the state machine: the RFC's, generated from the core's own transition table,
and the one a capture actually went through (Mermaid and Graphviz DOT text; no I/O)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tcptrace_sm.machine import TRANSITIONS, Dir, Event, cause_of
from tcptrace_sm.model import TcpState


def _node(state: TcpState) -> str:
    return state.name


def reference_mermaid() -> str:
    """The full RFC 9293 machine as a Mermaid ``stateDiagram-v2``.

    Edges that share endpoints are merged into one label; RST edges, which lead from every
    state to CLOSED, are drawn once as a note rather than as eleven arrows.
    """
    edges: dict[tuple[TcpState, TcpState], list[str]] = {}
    for (frm, direction, event), to in TRANSITIONS.items():
        if event is Event.RST or frm is to:
            continue
        edges.setdefault((frm, to), []).append(cause_of(direction, event))
    lines = ["stateDiagram-v2"]
    for state in TcpState:
        lines.append(f'    state "{state.value}" as {_node(state)}')
    lines.append(f"    [*] --> {_node(TcpState.CLOSED)}")
    for (frm, to), causes in edges.items():
        lines.append(f"    {_node(frm)} --> {_node(to)} : {' / '.join(causes)}")
    rst = cause_of(Dir.SEND, Event.RST) + " or " + cause_of(Dir.RECV, Event.RST)
    lines.append(f"    note right of {_node(TcpState.CLOSED)} : any state except LISTEN → CLOSED on {rst}")
    return "\n".join(lines) + "\n"


# --- what a capture actually went through -----------------------------------------------------

_VIOLATION_STYLE = "fill:#fde2e1,stroke:#c62828,color:#8e0000,stroke-dasharray: 4 3"


def _state_key(name: str) -> str:
    return name.replace("-", "_")


def observed_edges(
    transitions: Iterable[Mapping[str, Any]],
) -> dict[tuple[str, str, str], Counter[str]]:
    """``(from_state, to_state, cause) -> Counter(side -> count)`` over transition records."""
    edges: dict[tuple[str, str, str], Counter[str]] = {}
    for t in transitions:
        key = (str(t["from_state"]), str(t["to_state"]), str(t["cause"]))
        edges.setdefault(key, Counter())[str(t["side"])] += 1
    return edges


def _violations(anomalies: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], Counter[str]]:
    """``(state, code) -> Counter(side -> count)`` of the protocol violations."""
    out: dict[tuple[str, str], Counter[str]] = {}
    for a in anomalies:
        if a.get("category") == "violation":
            key = (str(a.get("state") or "CLOSED"), str(a["code"]))
            out.setdefault(key, Counter())[str(a.get("side") or "?")] += 1
    return out


def _count_label(counts: Counter[str]) -> str:
    return ", ".join(f"{side} {n}" for side, n in sorted(counts.items()))


def observed_mermaid(
    transitions: Iterable[Mapping[str, Any]], anomalies: Iterable[Mapping[str, Any]] = ()
) -> str:
    """A Mermaid ``stateDiagram-v2`` of the transitions that happened, with counts per role.

    Violations hang off the state they happened in as separate, red, dashed nodes.
    """
    edges = observed_edges(transitions)
    violations = _violations(anomalies)
    states = {s for (f, t, _c) in edges for s in (f, t)} | {s for (s, _c) in violations}
    lines = ["stateDiagram-v2"]
    for state in TcpState:
        if state.value in states:
            lines.append(f'    state "{state.value}" as {_state_key(state.value)}')
    if "CLOSED" in states:
        lines.append("    [*] --> CLOSED")
    for (frm, to, cause), counts in edges.items():
        lines.append(f"    {_state_key(frm)} --> {_state_key(to)} : {cause} ({_count_label(counts)})")
    if violations:
        lines.append(f"    classDef violation {_VIOLATION_STYLE}")
    for (where, code), counts in violations.items():
        node = f"V_{code}"
        lines.append(f'    state "violation: {code}" as {node}')
        lines.append(f"    {_state_key(where)} --> {node} : {_count_label(counts)}")
        lines.append(f"    class {node} violation")
    return "\n".join(lines) + "\n"


def _dot_id(name: str) -> str:
    return '"' + name.replace('"', r"\"") + '"'


def observed_dot(
    transitions: Iterable[Mapping[str, Any]],
    anomalies: Iterable[Mapping[str, Any]] = (),
    *,
    counts: bool = True,
) -> str:
    """The same picture as :func:`observed_mermaid`, in Graphviz DOT."""
    edges = observed_edges(transitions)
    violations = _violations(anomalies)
    lines = [
        "digraph tcp_states {",
        "  rankdir=LR;",
        '  node [shape=box, style="rounded,filled", fillcolor="#eef3fb", fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=10];',
    ]
    for (frm, to, cause), per_side in edges.items():
        label = f"{cause}\\n{_count_label(per_side)}" if counts else cause
        lines.append(f"  {_dot_id(frm)} -> {_dot_id(to)} [label={_dot_id(label)}];")
    for (state, code), per_side in violations.items():
        node = _dot_id(f"violation: {code}")
        label = _dot_id(_count_label(per_side))
        lines.append(f'  {node} [shape=note, fillcolor="#fde2e1", color="#c62828", fontcolor="#8e0000"];')
        lines.append(f'  {_dot_id(state)} -> {node} [style=dashed, color="#c62828", label={label}];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def reference_dot() -> str:
    """The full RFC 9293 machine in Graphviz DOT (RST edges, from every state, left out)."""
    records = [
        {"from_state": frm.value, "to_state": to.value, "cause": cause_of(d, e), "side": "rule"}
        for (frm, d, e), to in TRANSITIONS.items()
        if e is not Event.RST and frm is not to
    ]
    return observed_dot(records, counts=False)


def timeline_mermaid(rows: Sequence[Mapping[str, Any]]) -> str:
    """A Mermaid ``sequenceDiagram`` (ladder) of one connection.

    ``rows`` are per-segment records: ``frame, side`` (the sender), ``flags, seq, ack, len``
    (relative sequence numbers), ``client_state, server_state`` after the segment, and
    ``anomalies`` (codes found at that frame).
    """
    lines = ["sequenceDiagram", "    participant C as client", "    participant S as server"]
    prev = ("CLOSED", "CLOSED")
    for r in rows:
        arrow = "C->>S" if r["side"] == "client" else "S->>C"
        ack = f" ack={r['ack']}" if "A" in str(r["flags"]) else ""
        lines.append(f"    {arrow}: #{r['frame']} {r['flags']} seq={r['seq']}{ack} len={r['len']}")
        now = (str(r["client_state"]), str(r["server_state"]))
        if now[0] != prev[0]:
            lines.append(f"    Note left of C: {now[0]}")
        if now[1] != prev[1]:
            lines.append(f"    Note right of S: {now[1]}")
        prev = now
        for code in r.get("anomalies") or ():
            lines.append(f"    Note over C,S: ⚠ {code}")
    return "\n".join(lines) + "\n"
