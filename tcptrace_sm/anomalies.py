"""The anomaly catalogue: the single source for codes, severities, docs and exit codes.

Every finding the observer can report has one entry in :data:`CATALOGUE`. The ``code`` is a
stable snake_case name that users' CI jobs parse: renaming one is a breaking change. The
``severity`` says how loud a finding is by default; the ``category`` says what kind of thing it
is:

* ``violation`` — the segments break RFC 9293 (a conforming stack would never send them);
* ``notable`` — legal, but something a user wants to know about (a reset, a stuck socket);
* ``artifact`` — an imperfection of the capture itself (started mid-connection, missed
  packets, one direction only). Artifacts are never reported as violations.

Where another tool names the same condition, its name is kept in ``aliases`` so users moving
from Zeek (weird.log), Suricata (stream events) or Wireshark (expert info) can find it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import NamedTuple

from tcptrace_sm.model import Side, TcpState


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    def __str__(self) -> str:
        return self.value

    @property
    def rank(self) -> int:
        """Higher is louder: error 2, warning 1, info 0."""
        return {"error": 2, "warning": 1, "info": 0}[self.value]


class Category(enum.Enum):
    VIOLATION = "violation"
    NOTABLE = "notable"
    ARTIFACT = "artifact"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class AnomalyKind:
    code: str
    severity: Severity
    category: Category
    summary: str
    rfc: str
    zeek: str | None = None
    suricata: str | None = None
    wireshark: str | None = None

    @property
    def aliases(self) -> tuple[str, ...]:
        return tuple(a for a in (self.zeek, self.suricata, self.wireshark) if a)


_E, _W, _I = Severity.ERROR, Severity.WARNING, Severity.INFO
_V, _N, _A = Category.VIOLATION, Category.NOTABLE, Category.ARTIFACT

_KINDS = (
    # --- violations: segments a conforming TCP never sends -------------------------------
    AnomalyKind(
        "flags_syn_fin",
        _E,
        _V,
        "SYN and FIN set in the same segment",
        "RFC 9293 §3.10.7",
        wireshark="tcp.connection.synfin",
    ),
    AnomalyKind(
        "flags_syn_rst",
        _E,
        _V,
        "SYN and RST set in the same segment",
        "RFC 9293 §3.10.7",
        zeek="TCP_christmas",
    ),
    AnomalyKind("flags_null", _E, _V, "a segment with no control flag set at all", "RFC 9293 §3.10.7.4"),
    AnomalyKind(
        "flags_all",
        _E,
        _V,
        "a segment with every control flag set (a 'christmas tree' packet)",
        "RFC 9293 §3.10.7",
        zeek="TCP_christmas",
    ),
    AnomalyKind(
        "missing_ack",
        _E,
        _V,
        "a non-RST segment without the ACK flag from a synchronised endpoint",
        "RFC 9293 §3.10.7.4 (fifth check)",
    ),
    AnomalyKind(
        "syn_isn_changed",
        _E,
        _V,
        "a SYN with a different initial sequence number on a synchronised connection",
        "RFC 9293 §3.10.7.4, RFC 5961 §4",
        zeek="SYN_seq_jump",
        suricata="stream.est_syn_resend_diff_seq",
    ),
    AnomalyKind(
        "synack_bad_ack",
        _E,
        _V,
        "a SYN-ACK whose acknowledgment number does not acknowledge the SYN",
        "RFC 9293 §3.10.7.3",
        suricata="stream.3whs_synack_with_wrong_ack",
    ),
    AnomalyKind(
        "data_before_handshake",
        _E,
        _V,
        "data or FIN sent before the three-way handshake completed (without Fast Open)",
        "RFC 9293 §3.10.7.3, RFC 7413",
        zeek="data_before_established",
    ),
    AnomalyKind(
        "data_beyond_window",
        _E,
        _V,
        "data sent beyond the receiver's advertised window (more than a one-byte window probe)",
        "RFC 9293 §3.8.6",
        suricata="stream.est_packet_out_of_window",
    ),
    AnomalyKind(
        "data_after_fin",
        _E,
        _V,
        "data or a FIN beyond the sender's own FIN",
        "RFC 9293 §3.10.4",
        zeek="FIN_advanced_last_seq",
    ),
    AnomalyKind(
        "fin_seq_changed",
        _E,
        _V,
        "a second FIN at a lower sequence number than the first one",
        "RFC 9293 §3.10.4",
    ),
    AnomalyKind(
        "ack_unsent_data",
        _E,
        _V,
        "an ACK for sequence numbers the peer never sent",
        "RFC 9293 §3.10.7.4",
        suricata="stream.pkt_invalid_ack",
    ),
    # --- notable: legal, worth attention ---------------------------------------------------
    AnomalyKind(
        "stuck_close_wait",
        _E,
        _N,
        "an endpoint received its peer's FIN, then sent neither data nor "
        "its own FIN for at least the close-wait timeout (the application never closed the socket)",
        "RFC 9293 §3.6",
    ),
    AnomalyKind(
        "rst_terminated",
        _W,
        _N,
        "the connection was ended by an RST (the receiving application saw "
        "ECONNREFUSED, ECONNRESET or EPIPE)",
        "RFC 9293 §3.5.2",
        wireshark="tcp.connection.rst",
    ),
    AnomalyKind(
        "rst_in_time_wait",
        _W,
        _N,
        "an RST ended an endpoint's TIME-WAIT early (TIME-WAIT assassination)",
        "RFC 1337",
    ),
    AnomalyKind(
        "rst_in_window",
        _W,
        _N,
        "an RST inside the receive window but not at the expected sequence number: the receiver "
        "keeps the connection and answers with a challenge ACK (blind reset attempt?)",
        "RFC 5961 §3.2",
        suricata="stream.suspected_rst_inject",
    ),
    AnomalyKind(
        "rst_out_of_window",
        _W,
        _N,
        "an RST outside the receive window, or one answering a SYN without acknowledging it: the "
        "receiver ignores it (spoofed, or from an old connection)",
        "RFC 5961 §3.2, RFC 9293 §3.10.7.3-4",
    ),
    AnomalyKind(
        "rst_injected",
        _W,
        _N,
        "an endpoint kept sending after an RST in its name: the RST was forged or injected on the path",
        "RFC 5961 §3",
        suricata="stream.suspected_rst_inject",
    ),
    AnomalyKind(
        "rst_not_received",
        _I,
        _N,
        "an endpoint kept sending after an RST addressed to it: the RST was lost on the way",
        "RFC 9293 §3.10.7.4",
    ),
    AnomalyKind(
        "rst_with_data", _I, _N, "an RST segment carrying data", "RFC 9293 §3.5.3", zeek="RST_with_data"
    ),
    AnomalyKind(
        "syn_with_data",
        _I,
        _N,
        "a SYN carrying data (TCP Fast Open or a data-on-SYN stack)",
        "RFC 9293 §3.10.7.2, RFC 7413",
        zeek="SYN_with_data",
    ),
    AnomalyKind(
        "simultaneous_open",
        _I,
        _N,
        "both endpoints sent a SYN (simultaneous open)",
        "RFC 9293 §3.5",
        zeek="simultaneous_open",
    ),
    AnomalyKind(
        "simultaneous_close", _I, _N, "both endpoints sent FIN before receiving the other's", "RFC 9293 §3.6"
    ),
    # --- artifacts: imperfections of the capture -------------------------------------------
    AnomalyKind(
        "midstream",
        _I,
        _A,
        "the capture began after the connection was established (no SYN seen)",
        "RFC 9293 §3.5",
    ),
    AnomalyKind(
        "syn_not_captured",
        _I,
        _A,
        "the handshake's SYN was not captured; its sender was inferred from the SYN-ACK",
        "RFC 9293 §3.5",
    ),
    AnomalyKind(
        "unanswered_syn",
        _W,
        _A,
        "the SYN got no answer in the capture (host down, filtered, or the capture missed the reply)",
        "RFC 9293 §3.5",
    ),
    AnomalyKind(
        "one_direction_only",
        _I,
        _A,
        "the capture holds segments of one direction only",
        "—",
    ),
    AnomalyKind(
        "segment_not_captured",
        _I,
        _A,
        "the capture missed segments that the endpoints exchanged "
        "(an ACK or sequence number ahead of everything captured)",
        "—",
        wireshark="tcp.analysis.ack_lost_segment",
    ),
    AnomalyKind(
        "superseded",
        _I,
        _A,
        "a new connection reused the 4-tuple; the old one was closed by inference",
        "RFC 9293 §3.4",
    ),
    AnomalyKind(
        "bad_checksum",
        _W,
        _A,
        "a segment whose TCP checksum fails (read with --verify-checksums): damaged on the way, "
        "or captured before the network card computed it (checksum offload); it is counted "
        "and ignored, as its receiver would",
        "RFC 9293 §3.1",
        zeek="bad_TCP_checksum",
        wireshark="tcp.checksum.status",
    ),
    AnomalyKind(
        "flow_evicted",
        _W,
        _A,
        "the connection table was full (--max-flows): the least active connection was closed out "
        "early, as it stood; later segments of its 4-tuple start a new connection",
        "—",
    ),
)

#: Every anomaly kind by code, in catalogue order.
CATALOGUE: dict[str, AnomalyKind] = {k.code: k for k in _KINDS}

#: Codes as a tuple, for categorical columns.
CODES: tuple[str, ...] = tuple(CATALOGUE)


class Anomaly(NamedTuple):
    """One finding about one connection (``side`` is the endpoint it concerns, if any)."""

    code: str
    side: Side | None
    frame: int | None
    ts: int | None
    state: TcpState | None
    detail: str

    @property
    def kind(self) -> AnomalyKind:
        return CATALOGUE[self.code]


def catalogue_markdown() -> str:
    """The catalogue as a Markdown table (the README embeds exactly this text)."""
    lines = [
        "| code | severity | category | what it means | reference | also known as |",
        "|---|---|---|---|---|---|",
    ]
    for k in _KINDS:
        aka = ", ".join(f"`{a}`" for a in k.aliases) or ""
        lines.append(f"| `{k.code}` | {k.severity} | {k.category} | {k.summary} | {k.rfc} | {aka} |")
    return "\n".join(lines) + "\n"
