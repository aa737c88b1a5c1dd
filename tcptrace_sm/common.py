"""The light definitions the ``tcpsm`` command needs before it analyses anything.

Settings (:class:`Options`), the reader's statistics (:class:`ReadStats`) and its error
(:class:`CaptureError`), the record columns, and the summary (:class:`Summary`,
:func:`summarize`). :mod:`tcptrace_sm.analysis` and :mod:`tcptrace_sm.capture` re-export
them (the same objects); they live here so that importing the command loads neither numpy
nor pandas (nor the reader or the engines) until an analysis starts. Standard library and
numpy-free modules of the package only.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from tcptrace_sm.anomalies import CODES, Category, Severity
from tcptrace_sm.flows import MAX_FLOWS
from tcptrace_sm.machine import Config

if TYPE_CHECKING:
    from tcptrace_sm.analysis import Block
    from tcptrace_sm.capture import Columns

__all__ = [
    "ANOMALY_COLUMNS",
    "CLOSE_KINDS",
    "ENGINES",
    "FLOW_COLUMNS",
    "TRANSITION_COLUMNS",
    "CaptureError",
    "Options",
    "ReadStats",
    "Summary",
    "summarize",
]

#: Column order of the flow records (CSV columns; a change here is a breaking change).
FLOW_COLUMNS: tuple[str, ...] = (
    "flow_id",
    "client_ip",
    "client_port",
    "server_ip",
    "server_port",
    "first_ts",
    "last_ts",
    "duration",
    "packets",
    "bytes",
    "client_packets",
    "server_packets",
    "client_bytes",
    "server_bytes",
    "client_state",
    "server_state",
    "close",
    "rst_by",
    "errno",
    "midstream",
    "anomalies",
    "conn_state",
    "history",
)
ANOMALY_COLUMNS: tuple[str, ...] = (
    "flow_id",
    "code",
    "severity",
    "category",
    "side",
    "frame",
    "ts",
    "state",
    "detail",
)
TRANSITION_COLUMNS: tuple[str, ...] = (
    "flow_id",
    "side",
    "frame",
    "ts",
    "from_state",
    "to_state",
    "cause",
    "inferred",
)
CLOSE_KINDS: tuple[str, ...] = ("fin", "half", "rst", "refused", "unanswered", "open")
ENGINES: tuple[str, ...] = ("fast", "reference")


class CaptureError(ValueError):
    """An input is not a usable capture. ``str()`` is one line naming the file."""


@dataclass
class ReadStats:
    """What the reader saw; filled while iterating (complete once the iterator is exhausted)."""

    files: list[str] = field(default_factory=list)
    packets: int = 0
    segments: int = 0
    bytes_read: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    truncated: bool = False
    warnings: list[str] = field(default_factory=list)
    first_ts: int | None = None
    last_ts: int | None = None
    #: one short description per file, e.g. "gzip, pcapng (2 interfaces: ETHERNET, RAW)"
    formats: list[str] = field(default_factory=list)
    #: packets taken out of each kind of tunnel (:data:`tcptrace_sm.capture.TUNNELS`), whatever
    #: they carried; a packet nested in two tunnels counts under both
    decapsulated: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Options:
    """Every analysis setting; each is also a keyword of :func:`~tcptrace_sm.analysis.analyze`
    and a CLI option."""

    time_wait: float = 60.0
    close_wait_timeout: float = 1.0
    verify_checksums: bool = False
    max_flows: int = MAX_FLOWS
    decapsulate: bool = True

    def __post_init__(self) -> None:
        if self.max_flows < 1:
            raise ValueError(f"max_flows must be at least 1, got {self.max_flows!r}")

    def config(self) -> Config:
        return Config(time_wait=self.time_wait, close_wait_timeout=self.close_wait_timeout)

    def columns(self, paths: Sequence[str | os.PathLike[str]], stats: ReadStats) -> Iterator[Columns]:
        """The captures read as these options say (checksums, tunnels); see
        :func:`~tcptrace_sm.capture.read_columns`."""
        from tcptrace_sm.capture import read_columns

        return read_columns(
            paths, verify_checksums=self.verify_checksums, stats=stats, decapsulate=self.decapsulate
        )


@dataclass
class Summary:
    """Counts over the records, gathered block by block (so streaming output can report them)."""

    connections: int = 0
    close: Counter[str] = field(default_factory=Counter)
    noted: Counter[str] = field(default_factory=Counter)
    severities: Counter[str] = field(default_factory=Counter)
    categories: Counter[str] = field(default_factory=Counter)
    anomalies_not_listed: int = 0
    transitions_not_listed: int = 0
    evicted: int = 0

    def add(self, block: Block) -> None:
        self.connections += len(block)
        self.close.update(block.flows["close"])
        self.noted.update(block.noted)
        self.severities.update(block.anomalies["severity"])
        self.categories.update(block.anomalies["category"])
        self.anomalies_not_listed += block.anomalies_not_listed
        self.transitions_not_listed += block.transitions_not_listed
        self.evicted += block.evicted

    @classmethod
    def of(cls, block: Block) -> Summary:
        s = cls()
        s.add(block)
        return s

    def merge(self, other: Summary) -> None:
        self.connections += other.connections
        self.close.update(other.close)
        self.noted.update(other.noted)
        self.severities.update(other.severities)
        self.categories.update(other.categories)
        self.anomalies_not_listed += other.anomalies_not_listed
        self.transitions_not_listed += other.transitions_not_listed
        self.evicted += other.evicted


def summarize(stats: ReadStats, options: Options, s: Summary) -> dict[str, Any]:
    """The summary document (the ``summary`` of JSON output)."""
    return {
        "files": list(stats.files),
        "packets": stats.packets,
        "segments": stats.segments,
        "decapsulated": {kind: n for kind, n in stats.decapsulated.items() if n},
        "skipped": {reason: n for reason, n in sorted(stats.skipped.items()) if n},
        "truncated": stats.truncated,
        "warnings": list(stats.warnings),
        "first_ts": stats.first_ts,
        "last_ts": stats.last_ts,
        "connections": s.connections,
        "close": {k: s.close[k] for k in CLOSE_KINDS if s.close[k]},
        "anomalies": {code: s.noted[code] for code in CODES if s.noted[code]},
        "anomalies_not_listed": s.anomalies_not_listed,
        "transitions_not_listed": s.transitions_not_listed,
        "evicted": s.evicted,
        "severities": {v.value: s.severities[v.value] for v in Severity if s.severities[v.value]},
        "categories": {c.value: s.categories[c.value] for c in Category if s.categories[c.value]},
        "options": asdict(options),
    }
