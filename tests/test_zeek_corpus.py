"""Speak Zeek: our conn_state and history against Zeek's own answers on its test traces.

The corpus (shared/corpus/zeek, beside the repository) holds captures from Zeek's test suite
with the conn_state and history that Zeek's baselines give for every connection. Rows are
matched to our flows by the unordered 4-tuple and then by start time (or order, for the rows
whose time Zeek masked). Zeek's verified checksums unless run with -C: we do the same.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from typing import Any

import pytest
from conftest import ROOT

import tcptrace_sm

CORPUS = ROOT.parent / "shared" / "corpus" / "zeek"

#: Where we deliberately differ, by trace (or "trace|tuple") and the reason.
DEVIATIONS = {
    "ssh/ssh.pcap": "the ssh max-lengths runs add 'X' (an application analyzer's letter) to history",
    "tunnels/gtp/gtp2_different_udp_port.pcap": "TCP inside GTP-U tunnels is not decoded",
    "tunnels/Teredo.pcap": "TCP inside Teredo (IPv6 in UDP) is not decoded",
    "chksums/localhost-bad-chksum.pcap": "history 'C' (bad checksums) is not kept: such segments are dropped",
    "tcp/handshake-reorder.pcap": "Zeek flips roles mid-history ('Hs^...') when the SYN follows the SYN-ACK",
}


def _rows() -> list[dict[str, str]]:
    with open(CORPUS / "expected_conn.csv", newline="", encoding="utf-8") as f:
        return [r for r in csv.DictReader(f) if r["comparable"] == "1"]


def _key(a: str, ap: int, b: str, bp: int) -> tuple[tuple[str, int], ...]:
    return tuple(sorted(((a, ap), (b, bp))))


def _ours(trace: str, verify: bool) -> dict[tuple[tuple[str, int], ...], list[dict[str, Any]]]:
    a = tcptrace_sm.analyze(CORPUS / "traces" / trace, verify_checksums=verify)
    out: dict[tuple[tuple[str, int], ...], list[dict[str, Any]]] = defaultdict(list)
    for f in a.flow_records:
        out[_key(f["client_ip"], f["client_port"], f["server_ip"], f["server_port"])].append(f)
    return out


def _compare() -> list[tuple[dict[str, str], dict[str, Any] | None]]:
    pairs: list[tuple[dict[str, str], dict[str, Any] | None]] = []
    cache: dict[tuple[str, bool], Any] = {}
    for row in _rows():
        verify = "-C" not in row["zeek_args"].split(";")[0].split()
        ck = (row["trace"], verify)
        if ck not in cache:
            cache[ck] = _ours(row["trace"], verify)
        flows = cache[ck].get(_key(row["orig_h"], int(row["orig_p"]), row["resp_h"], int(row["resp_p"])), [])
        match = None
        if flows:
            if row["ts"]:
                ts = float(row["ts"])
                match = min(flows, key=lambda f: abs(f["first_ts"] / 1e9 - ts))
            else:
                uid_rank = 1 if "later" in row["ts_source"] else 0
                match = flows[min(uid_rank, len(flows) - 1)]
        pairs.append((row, match))
    return pairs


@pytest.mark.skipif(
    not CORPUS.is_dir(), reason="the Zeek corpus (shared/corpus/zeek) is not beside the checkout"
)
def test_agreement_with_zeek() -> None:
    pairs = _compare()
    state_rows = [(r, f) for r, f in pairs if r["conn_state"]]
    hist_rows = [(r, f) for r, f in pairs if r["history"]]
    state_ok = [(r, f) for r, f in state_rows if f is not None and f["conn_state"] == r["conn_state"]]
    hist_ok = [(r, f) for r, f in hist_rows if f is not None and f["history"] == r["history"]]
    misses = [
        f"{r['trace']} {r['orig_h']}:{r['orig_p']} zeek {r['conn_state']}/{r['history']} "
        f"ours {(f or {}).get('conn_state')}/{(f or {}).get('history')}"
        + (f"  [known: {DEVIATIONS[r['trace']]}]" if r["trace"] in DEVIATIONS else "")
        for r, f in pairs
        if f is None
        or (r["conn_state"] and f["conn_state"] != r["conn_state"])
        or (r["history"] and f["history"] != r["history"])
    ]
    state_rate = len(state_ok) / len(state_rows)
    hist_rate = len(hist_ok) / len(hist_rows)
    report = (
        f"conn_state {len(state_ok)}/{len(state_rows)} = {state_rate:.1%}, "
        f"history {len(hist_ok)}/{len(hist_rows)} = {hist_rate:.1%}\n" + "\n".join(sorted(set(misses)))
    )
    print(report)
    assert state_rate >= STATE_FLOOR, report
    assert hist_rate >= HISTORY_FLOOR, report


#: Measured when this test was written (a ratchet: raise them as agreement improves). The
#: issue's goal is 95% and 90%; most of the gap is Zeek splitting one 4-tuple into several
#: connections (after a close or reset, after a timeout, in half-duplex captures) where we
#: keep one, and the deviations listed above.
STATE_FLOOR = 0.90
HISTORY_FLOOR = 0.77
