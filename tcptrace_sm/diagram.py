"""Mermaid drawings of the state machine, generated from the core's own transition table."""

from __future__ import annotations

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
