"""The express path of ``tcpsm analyze --format csv``: a whole classic pcap file through the
fast engine's rules in one compiled pass, without numpy.

Most captures of plain traffic hold only connections the fast engine keeps on its common paths
from the first segment to the last (see :mod:`tcptrace_sm.engine`). For those, the columnar
machinery around the compiled chunk evaluation (numpy's import alone takes longer than the rest
of a small capture) is the larger part of the time. ``_scan.express`` walks the records, decodes
them, keeps each connection's row of the store and evaluates each chunk's segments with the very
function the engine calls (``run_group`` in ``_fastpath.c``), retires connections at the same
chunk ends, and writes the same CSV rows in the same order. The moment anything would take the
engine off those paths (a segment its core would have to judge, a record the common decoder does
not take, a warning the reader would give, a full table), it gives up, and the caller runs the
full engine from the start: the answer is always the engine's. The test suite checks, capture by
capture, that whatever the express path writes is byte for byte what the engine writes.

Nothing here imports numpy; the layout and the limits come from :mod:`tcptrace_sm.layout`.
"""

from __future__ import annotations

import os
import shutil
from array import array
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from types import ModuleType
from typing import IO, Final

from tcptrace_sm.anomalies import CATALOGUE
from tcptrace_sm.common import FLOW_COLUMNS, Options, ReadStats, Summary
from tcptrace_sm.layout import (
    FIELDS,
    JOURNAL_BUDGET,
    LIMIT,
    WIDE,
    ZEEK_IDLE_NS,
    ZEEK_TIMER_NS,
    ZLETTERS,
    ZSTATE_NAMES,
)
from tcptrace_sm.machine import NS_PER_S, Config, errno_for_reset
from tcptrace_sm.model import STATE_ORDER, TcpState

#: The reader's chunks (``tcptrace_sm.capture.CHUNK``), after a first one of its look-ahead
#: (the 64 KiB it reads to recognise the format): the express path retires connections at the
#: same chunk ends as the engine, so that its rows come out in the same order.
CHUNK: Final = 2 << 20
FIRST_CHUNK: Final = 65536
#: Connections over but for their TIME-WAIT that the express path keeps in memory; it writes the
#: further ones to a temporary file (in ``TMPDIR``), keeping 16 bytes of each (and its place in
#: the table and the retirement schedule).
HELD_IN_MEMORY: Final = 16_384
#: The express path keeps no journal of segments, so a connection may be as long as it likes:
#: past JOURNAL_CAP segments the engine hands one to its core, which judges it just as the fast
#: rules do (test_express compares such connections).
_NO_CAP: Final = 1 << 62
#: Records longer than this are the reader's to judge.
_MAX_CAPLEN: Final = 65536

_CLOSE_KINDS: Final = ("fin", "half", "rst", "refused", "unanswered", "open")
_NOTED: Final = ("rst_terminated", "superseded", "unanswered_syn", "stuck_close_wait")


@dataclass(frozen=True)
class Outcome:
    """What the express path read and wrote: the reader's counts and the records' tallies."""

    packets: int
    segments: int
    not_ip: int
    not_tcp: int
    first_ts: int
    last_ts: int
    connections: int
    close: dict[str, int]
    noted: dict[str, int]


def _scan() -> ModuleType | None:
    if os.environ.get("TCPSM_PURE_PYTHON"):
        return None
    try:
        from tcptrace_sm import _scan
    except ImportError:
        return None
    return _scan if hasattr(_scan, "express") else None


def available() -> bool:
    """Whether the compiled helpers that carry the express path were built."""
    return _scan() is not None


class _Spill:
    """The temporary file the compiled pass writes closed connections to, made when it asks
    (and closed with ``stack``)."""

    def __init__(self, stack: ExitStack) -> None:
        self.stack = stack

    def open(self) -> int:
        import tempfile

        try:
            return self.stack.enter_context(tempfile.TemporaryFile(prefix="tcpsm-")).fileno()
        except OSError:
            return -1


def _zcol(name: str) -> str:
    return name if name in ("zS", "zH", "zr0") else f"{name[1]}_z{name[2:]}"


def run(
    path: str,
    config: Config,
    max_open: int,
    write: Callable[[bytes], object],
    *,
    decapsulate: bool = True,
    chunk: int | None = None,
    flush: int = 1 << 20,
    held: int = HELD_IN_MEMORY,
    hash_bits: int = 32,
    park_after: float = 1.0,
    progress: Callable[[int, int], object] | None = None,
) -> Outcome | str:
    """The CSV rows (without the header) of ``path`` through ``write``, and the counts; or, when
    the capture needs the full engine, why (``write`` may have had part of the rows by then:
    the caller throws them away)."""
    mod = _scan()
    if mod is None:
        return "the compiled helpers are not built"
    names: tuple[str, ...] = mod.fast_fields()
    code = {s: i for i, s in enumerate(STATE_ORDER)}
    tw_ns = round(config.time_wait * NS_PER_S)
    cw_ns = round(config.close_wait_timeout * NS_PER_S)
    S = TcpState
    params = array(
        "q",
        [
            *(tw_ns, ZEEK_TIMER_NS, _NO_CAP, LIMIT, code[S.CLOSED], code[S.SYN_SENT]),
            *(code[S.ESTABLISHED], ZEEK_IDLE_NS, code[S.FIN_WAIT_1], code[S.FIN_WAIT_2]),
            *(code[S.CLOSE_WAIT], code[S.LAST_ACK], code[S.TIME_WAIT], code[S.SYN_RECEIVED], cw_ns),
        ],
    )
    where = {n: i for i, n in enumerate(names)}
    limits = (
        *(_MAX_CAPLEN, int(decapsulate), flush, (1 << hash_bits) - 1),
        *(round(park_after * NS_PER_S), FIRST_CHUNK),
    )
    with ExitStack() as stack:
        spill = _Spill(stack)
        got = mod.express(
            os.fsencode(path),
            array("q", [FIELDS[n] for n in names]),
            bytes(n not in WIDE for n in names),
            params,
            "".join(letter for _c, letter in ZLETTERS).encode(),
            array("q", [where[_zcol(c)] for c, _l in ZLETTERS]),
            tuple(s.value for s in STATE_ORDER),
            (*(errno_for_reset(s) for s in STATE_ORDER), None),
            ZSTATE_NAMES,
            array("q", [CHUNK if chunk is None else chunk, max_open, JOURNAL_BUDGET, held, *limits]),
            write,
            spill.open,
            progress,
        )
    if got[0]:
        reason: str = got[1]
        return reason
    packets, segments, not_ip, not_tcp, first_ts, last_ts, conns, close, noted = got[1]
    return Outcome(
        packets,
        segments,
        not_ip,
        not_tcp,
        first_ts,
        last_ts,
        conns,
        {k: n for k, n in zip(_CLOSE_KINDS, close, strict=True) if n},
        {k: n for k, n in zip(_NOTED, noted, strict=True) if n},
    )


def _fresh_file(out: IO[str]) -> bool:
    """Whether ``out`` is an empty file of its own (``-o FILE``, or stdout sent to a new file),
    which rows can go straight to and be taken back from."""
    try:
        return out.seekable() and out.tell() == 0 and os.fstat(out.fileno()).st_size == 0
    except (OSError, ValueError, AttributeError):
        return False


def to_csv(
    out: IO[str],
    path: str,
    options: Options,
    jobs: int = 1,
    *,
    flush: int = 1 << 20,
    progress: Callable[[ReadStats], None] | None = None,
) -> tuple[ReadStats, Summary] | None:
    """``tcpsm analyze PATH --format csv``'s output through the express path: the header and the
    rows written to ``out``, and the reader's statistics and the records' tallies; or None
    (nothing written) when the capture needs the full engine, or the express path is off
    (``TCPSM_EXPRESS=0``). ``progress`` is called with the bytes and packets read so far after
    each chunk. ``jobs``: the worker processes the full engine would share the
    connections out to (their tables are smaller; the express path gives up where one of them
    would fill). Rows go straight to an empty file of ``out``'s own (taken back if the express
    path gives up); to anything else (a pipe) through a spool of 4 MB in memory, then a
    temporary file, so that nothing reaches it before the express path is sure."""
    if os.environ.get("TCPSM_EXPRESS", "1") == "0" or options.verify_checksums or not available():
        return None
    if path == "-" or not os.path.isfile(path):
        return None
    header = ",".join(FLOW_COLUMNS) + "\n"
    max_open = max(1, options.max_flows // max(1, jobs))

    shown = ReadStats(files=[path])

    def report(done: int, packets: int) -> None:
        assert progress is not None
        shown.bytes_read, shown.packets = done, packets
        progress(shown)

    def through(write: Callable[[bytes], object]) -> Outcome | str:
        return run(
            path, options.config(), max_open, write, decapsulate=options.decapsulate, flush=flush,
            progress=None if progress is None else report,
        )  # fmt: skip

    if _fresh_file(out):
        out.write(header)
        got = through(lambda b: out.write(b.decode()))
        if isinstance(got, str):
            out.seek(0)
            out.truncate()
            return None
    else:
        import tempfile

        with tempfile.SpooledTemporaryFile(max_size=4 << 20) as spool:
            got = through(spool.write)
            if isinstance(got, str):
                return None
            out.write(header)
            out.flush()
            spool.seek(0)
            buffer = getattr(out, "buffer", None)
            if buffer is not None:
                shutil.copyfileobj(spool, buffer)
                buffer.flush()
            else:
                out.write(spool.read().decode())
    skipped = {k: n for k, n in (("not_ip", got.not_ip), ("not_tcp", got.not_tcp)) if n}
    stats = ReadStats(
        files=[path],
        packets=got.packets,
        segments=got.segments,
        bytes_read=os.path.getsize(path),
        skipped=skipped,
        first_ts=got.first_ts,
        last_ts=got.last_ts,
    )
    totals = Summary(connections=got.connections, close=Counter(got.close), noted=Counter(got.noted))
    for code, n in got.noted.items():
        kind = CATALOGUE[code]
        totals.severities[kind.severity.value] += n
        totals.categories[kind.category.value] += n
    return stats, totals
