"""Speak Zeek: our conn_state and history against Zeek's own answers on its test traces.

The corpus (shared/corpus/zeek, beside the repository) holds captures from Zeek's test suite
with the conn_state and history that Zeek's baselines give for every connection. Each trace is
read the way that Zeek run read it (checksums verified unless ``-C``, except the sources in
``ignore_checksums_nets``), split into flows by our flow table, and every flow's segments go
through :class:`ZeekSummary` configured like that run (``-b`` runs load fewer protocol scripts,
so fewer likely server ports). Every Zeek connection of every flow (``rows()``) is a candidate.

Matching, per baseline and unordered 4-tuple: a corpus row with a time stamp takes the
candidate that starts nearest to it; the rows whose time Zeek masked (later connections on a
split 4-tuple, whose creation order the corpus cannot give) take the remaining candidates in
the assignment that agrees best, i.e. the multiset of Zeek connections on the 4-tuple is
compared.
"""

from __future__ import annotations

import csv
import ipaddress
import itertools
import re
from collections import Counter, defaultdict
from functools import cache

import pytest
from conftest import ROOT

from tcptrace_sm.capture import read_segments
from tcptrace_sm.flows import FlowTable
from tcptrace_sm.model import Segment
from tcptrace_sm.zeek import LIKELY_SERVER_PORTS, ZeekConfig, ZeekRow, ZeekSummary

CORPUS = ROOT.parent / "shared" / "corpus" / "zeek"

#: Where we deliberately differ: a trace, or "trace @ test script" for one Zeek run, and why.
DEVIATIONS = {
    "tunnels/gtp/gtp2_different_udp_port.pcap": (
        "'X': written by an application analyzer of Zeek's (the HTTP inside the GTP tunnel); the "
        "rest agrees, its 84 outer IPv4 fragments reassembled into the server's 42 big packets"
    ),
    "tcp/retransmit-timeout.pcapng @ testing/btest/core/expire-all-timers.zeek|-b -C": (
        "the test schedules 300 dummy timers so that max_timer_expires holds the timeout back"
    ),
}

_HTTP_PORTS = frozenset({80, 81, 631, 1080, 3128, 8000, 8080, 8888})  # base/protocols/http

#: Likely server ports of the ``zeek -b`` runs: only the protocol scripts a test loads add theirs
#: (``redef likely_server_ports += { ports }``). Keyed by test script; a bare run not listed
#: here loads none. The HTTP ones: the scripts load base/protocols/http (missing-syn,
#: history-flip), ask for the HTTP analyzer (request-analyzer), or their baselines swap a
#: connection whose first packet, not a SYN, came from port 80 (Teredo, speculative-service).
BARE_LIKELY_PORTS: dict[str, frozenset[int]] = {
    "testing/btest/core/tunnels/teredo.zeek": _HTTP_PORTS,
    "testing/btest/scripts/policy/protocols/conn/speculative-service.zeek": _HTTP_PORTS,
    "testing/btest/scripts/base/frameworks/analyzer/request-analyzer.zeek": _HTTP_PORTS,
    "testing/btest/core/tcp/missing-syn.zeek": _HTTP_PORTS,
    "testing/btest/core/history-flip.zeek": _HTTP_PORTS,
    # loads base/protocols/smtp on the command line; redefs Redis::ports
    "testing/btest/scripts/base/files/mime/mime-content-hash.zeek": frozenset({25, 587}),
    "testing/btest/scripts/base/protocols/redis/django-cloud.zeek": frozenset({6379, 10625}),
}

#: Corpus rows whose recorded Zeek flags are contradicted by the baseline itself.
VERIFY_OVERRIDE = {
    # every server segment has a bad checksum, yet the baseline shows the server's letters: the
    # public test script runs ``zeek -C`` (the corpus lists no flags for it)
    "testing/btest/core/tcp/tcp-dups.zeek": False,
}


def _rows() -> list[dict[str, str]]:
    with open(CORPUS / "expected_conn.csv", newline="", encoding="utf-8") as f:
        return [r for r in csv.DictReader(f) if r["comparable"] == "1"]


_Key = tuple[tuple[str, int], tuple[str, int]]


def _key(a: str, ap: int, b: str, bp: int) -> _Key:
    x, y = (a, ap), (b, bp)
    return (x, y) if x <= y else (y, x)


def _script(row: dict[str, str]) -> str:
    return row["test_script"].split(" (part")[0]


def _run_settings(row: dict[str, str]) -> tuple[bool, tuple[str, ...], frozenset[int], int, int]:
    """(verify checksums, ignore_checksums_nets, likely server ports, SSH::max_packet_length,
    SSH::max_string_length) of the row's Zeek run."""
    flags = row["zeek_args"].split(";")[0].split()
    verify = VERIFY_OVERRIDE.get(_script(row), "-C" not in flags)
    nets = tuple(re.findall(r"\d+\.\d+\.\d+\.\d+/\d+", row["zeek_args"]))
    ports = BARE_LIKELY_PORTS.get(_script(row), frozenset()) if "-b" in flags else LIKELY_SERVER_PORTS
    ssh = [
        int(m.group(1)) if (m := re.search(rf"redef SSH::{name} = (\d+)", row["zeek_args"])) else 0
        for name in ("max_packet_length", "max_string_length")
    ]
    return verify, nets, ports, ssh[0], ssh[1]


@cache
def _segments(trace: str) -> tuple[list[Segment], dict[int, Segment]]:
    """Every segment of the trace, and by frame those the reader gives when it verifies
    checksums (a bad TCP checksum marked, a bad IPv4 header checksum left out)."""
    path = CORPUS / "traces" / trace
    ssh = ZeekConfig().ssh_ports  # their payload, for Zeek's SSH limits
    return list(read_segments(path, payload_ports=ssh)), {
        s.frame: s for s in read_segments(path, verify_checksums=True, payload_ports=ssh)
    }


@cache
def _ours(
    trace: str,
    verify: bool,
    nets: tuple[str, ...],
    ports: frozenset[int],
    ssh_packet: int = 0,
    ssh_string: int = 0,
) -> dict[tuple[tuple[str, int], tuple[str, int]], list[ZeekRow]]:
    """Every Zeek connection of every flow, by 4-tuple."""
    segs, verified = _segments(trace)
    ignored = [ipaddress.ip_network(n) for n in nets]
    config = ZeekConfig(
        likely_server_ports=ports, ssh_max_packet_length=ssh_packet, ssh_max_string_length=ssh_string
    )
    table = FlowTable()
    by_flow: dict[int, ZeekSummary] = {}
    for raw in segs:
        seg: Segment = raw
        if verify and not any(ipaddress.ip_address(raw.src) in n for n in ignored):
            checked = verified.get(raw.frame)
            if checked is None:
                continue  # the IPv4 header checksum failed: TCP never sees it
            seg = checked
        fid = table.observe(seg).flow_id
        summary = by_flow.get(fid)
        if summary is None:
            summary = by_flow[fid] = ZeekSummary(seg, config=config)
        summary.update(seg)
    out: dict[tuple[tuple[str, int], tuple[str, int]], list[ZeekRow]] = defaultdict(list)
    for summary in by_flow.values():
        for row in summary.rows():
            out[_key(row.orig_h, row.orig_p, row.resp_h, row.resp_p)].append(row)
    return out


def _agrees(row: dict[str, str], z: ZeekRow) -> int:
    return int(not row["conn_state"] or z.conn_state == row["conn_state"]) + int(
        not row["history"] or z.history == row["history"]
    )


def _compare() -> list[tuple[dict[str, str], ZeekRow | None]]:
    groups: dict[tuple[str, str, _Key], list[dict[str, str]]] = defaultdict(list)
    for row in _rows():
        key = _key(row["orig_h"], int(row["orig_p"]), row["resp_h"], int(row["resp_p"]))
        groups[row["baseline"], row["trace"], key].append(row)
    pairs: list[tuple[dict[str, str], ZeekRow | None]] = []
    for (_, _, key), rows in groups.items():
        ours = _ours(rows[0]["trace"], *_run_settings(rows[0])).get(key, [])
        free = list(ours)
        for row in (r for r in rows if r["ts"]):
            ts = round(float(row["ts"]) * 1e9)
            best = min(free, key=lambda z: abs(z.ts - ts), default=None)
            if best is not None and abs(best.ts - ts) < 1_000_000:
                free.remove(best)
            else:
                best = None
            pairs.append((row, best))
        blind = [r for r in rows if not r["ts"]]
        if blind:
            padded: list[ZeekRow | None] = [*free, *([None] * len(blind))]
            pick = max(
                itertools.permutations(padded, len(blind)),
                key=lambda p: sum(_agrees(r, z) for r, z in zip(blind, p, strict=True) if z is not None),
            )
            pairs.extend(zip(blind, pick, strict=True))
    return pairs


def _deviation(row: dict[str, str]) -> str | None:
    """The key in :data:`DEVIATIONS` that explains the row, if any."""
    flags = row["zeek_args"].split(";")[0].strip()
    for key in (
        f"{row['trace']} @ {_script(row)}|{flags}",
        f"{row['trace']} @ {_script(row)}",
        f"{row['trace']}|{row['orig_h']}",
        row["trace"],
    ):
        if key in DEVIATIONS:
            return key
    return None


def _packets(pairs: list[tuple[dict[str, str], ZeekRow | None]]) -> tuple[int, int]:
    rows = [(r, z) for r, z in pairs if r["orig_pkts"] and r["resp_pkts"]]
    same = [
        1
        for r, z in rows
        if z is not None and (z.orig_pkts, z.resp_pkts) == (int(r["orig_pkts"]), int(r["resp_pkts"]))
    ]
    return len(same), len(rows)


def _score(pairs: list[tuple[dict[str, str], ZeekRow | None]]) -> tuple[int, int, int, int]:
    state = [(r, z) for r, z in pairs if r["conn_state"]]
    hist = [(r, z) for r, z in pairs if r["history"]]
    return (
        sum(1 for r, z in state if z is not None and z.conn_state == r["conn_state"]),
        len(state),
        sum(1 for r, z in hist if z is not None and z.history == r["history"]),
        len(hist),
    )


@pytest.mark.skipif(
    not CORPUS.is_dir(), reason="the Zeek corpus (shared/corpus/zeek) is not beside the checkout"
)
def test_agreement_with_zeek() -> None:
    pairs = _compare()
    s_ok, s_n, h_ok, h_n = _score(pairs)
    misses: list[str] = []
    by_cause: Counter[str] = Counter()
    for r, z in pairs:
        bad_state = bool(r["conn_state"]) and (z is None or z.conn_state != r["conn_state"])
        bad_hist = bool(r["history"]) and (z is None or z.history != r["history"])
        if not (bad_state or bad_hist):
            continue
        key = _deviation(r)
        why = DEVIATIONS[key] if key is not None else None
        by_cause[why or "(not explained)"] += 1
        ours = f"{z.conn_state}/{z.history}" if z is not None else "none"
        misses.append(
            f"{r['trace']} {r['orig_h']}:{r['orig_p']} zeek {r['conn_state']}/{r['history']} ours {ours}"
            + (f"  [known: {why}]" if why else "")
        )
    known = [(r, z) for r, z in pairs if _deviation(r) is None]
    k_s_ok, k_s_n, k_h_ok, k_h_n = _score(known)
    report = "\n".join(
        [
            f"conn_state {s_ok}/{s_n} = {s_ok / s_n:.1%}, history {h_ok}/{h_n} = {h_ok / h_n:.1%}",
            f"  without the listed deviations: conn_state {k_s_ok}/{k_s_n} = {k_s_ok / k_s_n:.1%}, "
            f"history {k_h_ok}/{k_h_n} = {k_h_ok / k_h_n:.1%}",
            "  packet counts (orig_pkts, resp_pkts) agree on {}/{} rows".format(*_packets(pairs)),
            "rows differing, by cause:",
            *(f"  {n:3} {cause}" for cause, n in by_cause.most_common()),
            *sorted(Counter(misses).elements()),
        ]
    )
    print(report)
    assert s_ok / s_n >= STATE_FLOOR, report
    assert h_ok / h_n >= HISTORY_FLOOR, report
    assert by_cause["(not explained)"] <= UNEXPLAINED_CEILING, report
    stale = set(DEVIATIONS.values()) - set(by_cause)
    assert not stale, f"deviations that no longer differ (remove them): {stale}"


#: Measured when this test was last changed (a ratchet: raise them as agreement improves). The
#: issue's goal is 95% and 90%. Every row outside DEVIATIONS agrees.
STATE_FLOOR = 1.0  # 244/244
HISTORY_FLOOR = 0.994  # 337/339
UNEXPLAINED_CEILING = 0
