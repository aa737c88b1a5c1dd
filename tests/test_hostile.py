"""Hostile input for the core: random segment sequences, floods, time going backwards."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mutate import SEEDS, mutate
from segscript import T0, Wire, path

import tcptrace_sm
from tcptrace_sm.anomalies import CATALOGUE
from tcptrace_sm.flows import FlowTable
from tcptrace_sm.machine import MAX_NOTES_PER_CODE, MAX_TRANSITIONS, Config
from tcptrace_sm.model import Segment, Side

C, SV = Side.CLIENT, Side.SERVER


_HOSTS = [("10.0.0.1", 40000), ("10.0.0.2", 80), ("10.0.0.1", 40001)]
_SEQS = [0, 1, 1000, 1001, 1101, 5000, 5001, 0xFFFFFFFF, 0x7FFFFFFF, 0x80000000]

segment_st = st.tuples(
    st.sampled_from([(0, 1), (1, 0), (2, 1), (1, 2)]),
    st.sampled_from(_SEQS) | st.integers(0, 0xFFFFFFFF),
    st.sampled_from(_SEQS) | st.integers(0, 0xFFFFFFFF),
    st.integers(0, 255),
    st.sampled_from([0, 1, 100, 1460]),
    st.sampled_from([0, 1, 65535]),
    st.integers(-2_000_000_000, 70_000_000_000),
)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.lists(segment_st, max_size=60), st.floats(0, 120))
def test_random_segment_sequences_never_break_the_core(
    segments: list[tuple[tuple[int, int], int, int, int, int, int, int]], time_wait: float
) -> None:
    table = FlowTable(Config(time_wait=time_wait, close_wait_timeout=1.0))
    now = T0
    for i, ((a, b), seq, ack, flags, length, win, dt) in enumerate(segments, 1):
        now += dt  # time may go backwards (badly merged captures)
        src, dst = _HOSTS[a], _HOSTS[b]
        table.observe(Segment(i, now, src[0], src[1], dst[0], dst[1], seq, ack, flags, win, length))
    for conn in table.finish(now):
        for side in (C, SV):
            states_seen = path(conn, side)  # asserts every transition starts where the last ended
            assert states_seen[-1] is (conn.client if side is C else conn.server).state
        for a in conn.anomalies:
            assert a.code in CATALOGUE


def test_a_flood_of_bad_segments_is_counted_not_stored() -> None:
    w = Wire()
    w.handshake()
    for _ in range(5000):
        w.c.raw(0, 10)  # null-flag segments
    conn = w.run()
    assert len(conn.anomalies) == MAX_NOTES_PER_CODE
    assert conn.noted["flags_null"] == 5000
    assert len(conn.transitions) <= MAX_TRANSITIONS


@pytest.mark.parametrize("seed", range(300))
def test_mutated_captures_only_ever_raise_capture_error(seed: int, tmp_path: Path) -> None:
    rng = random.Random(seed)
    source = rng.choice(SEEDS)
    data = source.read_bytes()
    for _ in range(rng.randint(1, 3)):
        data = mutate(data, rng)
    path = tmp_path / f"mutated{source.suffix}"
    path.write_bytes(data)
    message = None
    try:
        a = tcptrace_sm.analyze(path)
    except tcptrace_sm.CaptureError as e:  # the only exception allowed out
        message = str(e)
    if message is not None:
        assert "\n" not in message  # one line
        return
    _ = (a.flows, a.anomalies, a.transitions, a.summary)  # every view builds
