"""The express path of ``tcpsm analyze --format csv`` against the full engine.

Wherever the express path takes a capture it must write exactly the engine's CSV rows (byte
for byte, in the same order) and report the same counts; wherever it gives up, the CLI's
output must still be the engine's. The captures: every sample, Zeek's corpus, generated
traffic of every kind the generators know, the benchmark's scenarios at a small size, each
with the default timers and with timers so short that connections retire while the capture
is read (so that the order of the rows is tested too), in normal and in small chunks.
"""

from __future__ import annotations

import gzip
import io
import os
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, SAMPLES
from trafficgen import (
    bulk_transfers,
    close_waits,
    keepalive,
    lossy_downloads,
    resets_after_fin,
    reused_ports,
    syn_retries,
    syn_scan,
    traffic,
    write_pcap,
)

from tcptrace_sm import capture, express
from tcptrace_sm.analysis import FLOW_COLUMNS, Options, Summary, blocks
from tcptrace_sm.capture import ReadStats
from tcptrace_sm.flows import MAX_FLOWS
from tcptrace_sm.machine import Config
from tcptrace_sm.report import CsvWriter

pytestmark = pytest.mark.skipif(not express.available(), reason="the compiled helpers are not built")

CORPUS = ROOT.parent / "shared" / "corpus" / "zeek" / "traces"
SAMPLE_FILES = sorted(SAMPLES.rglob("*.pcap"))
CORPUS_FILES = sorted(CORPUS.rglob("*.pcap")) if CORPUS.is_dir() else []
QUICK = Options(time_wait=0.05, close_wait_timeout=0.2)


def engine_csv(path: Path, options: Options) -> tuple[bytes, ReadStats, Summary]:
    stats = ReadStats(files=[])
    buf = io.StringIO()
    writer = CsvWriter(buf, FLOW_COLUMNS, header=False)
    totals = Summary()
    for b in blocks([path], options, stats=stats, transitions=False):
        totals.add(b)
        writer.write(b.flows)
    return buf.getvalue().encode(), stats, totals


def compare(path: Path, options: Options, chunk: int = capture.CHUNK, flush: int = 1 << 20) -> str:
    """``taken`` when the express path wrote the engine's rows and counts; else why it gave up.
    Three times: keeping closed connections and waiting attempts in memory; writing every one
    out to the temporary files at once; and so with a 4-bit connection hash (every lookup meets
    others with the same hash)."""
    outcomes = []
    for held, bits, park in ((express.HELD_IN_MEMORY, 32, 1e9), (0, 32, 0.0), (0, 4, 0.0)):
        parts: list[bytes] = []
        got = express.run(
            str(path), options.config(), options.max_flows, parts.append,
            decapsulate=options.decapsulate, chunk=chunk, flush=flush, held=held, hash_bits=bits,
            park_after=park,
        )  # fmt: skip
        outcomes.append((got, b"".join(parts)))
    assert outcomes[0] == outcomes[1] == outcomes[2]
    got = outcomes[0][0]
    if isinstance(got, str):
        return got
    saved = capture.CHUNK
    capture.CHUNK = chunk
    try:
        rows, stats, totals = engine_csv(path, options)
    finally:
        capture.CHUNK = saved
    assert outcomes[0][1].decode().splitlines() == rows.decode().splitlines()
    assert outcomes[0][1] == rows
    skipped = {k: n for k, n in stats.skipped.items() if n}
    assert skipped == {k: n for k, n in (("not_ip", got.not_ip), ("not_tcp", got.not_tcp)) if n}
    assert not any(stats.decapsulated.values())
    assert not stats.warnings
    assert (got.packets, got.segments, got.first_ts, got.last_ts) == (
        stats.packets, stats.segments, stats.first_ts, stats.last_ts,
    )  # fmt: skip
    assert got.connections == totals.connections
    assert got.close == {k: n for k, n in totals.close.items() if n}
    assert got.noted == {k: n for k, n in totals.noted.items() if n}
    return "taken"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("express")
    made = {
        "traffic": traffic(3, 400, span_s=20),
        "reused_ports": reused_ports(120),
        "keepalive": keepalive(60, pause_s=30),
        "syn_retries": syn_retries(80, gaps_s=(1.0, 2.0)),
        "syn_retries_refused": syn_retries(40, gaps_s=(1.0,), answer="refused"),
        "syn_retries_answered": syn_retries(40, gaps_s=(1.0, 2.0), answer="synack"),
        "resets_after_fin": resets_after_fin(80, rst_after_s=0.5),
        "syn_scan": syn_scan(300),
        "close_waits": close_waits(50, silent_s=3),
        "lossy_downloads": lossy_downloads(20),
        "bulk_transfers": bulk_transfers(40),
    }
    # long connections begun first, many short ones after: they finish out of flow_id order
    later = [(s[0] + 500_000_000, *s[1:]) for s in syn_retries(300, gaps_s=(), answer="synack")]
    made["mixed"] = sorted(keepalive(10, pause_s=3) + later, key=lambda s: s[0])
    # 4-tuples used again across the reader's chunks (2 MiB, after its first 64 KiB): new SYNs
    # take over connections in TIME-WAIT or never answered, or come after they retired
    # connections longer than the engine's journal of a connection (JOURNAL_CAP segments), which
    # the engine hands to its core and the express path follows to the end
    made["long"] = bulk_transfers(3, segments=6000)
    made["long_and_short"] = sorted(
        bulk_transfers(4, segments=5000)
        + [(s[0] + 300_000_000, *s[1:]) for s in syn_retries(500, gaps_s=())],
        key=lambda s: s[0],
    )
    made["ports_again"] = reused_ports(9000, pool=3000, every_ms=2)
    later_many = [(s[0] + 500_000_000, *s[1:]) for s in syn_retries(3000, gaps_s=(), answer="synack")]
    made["mixed_many"] = sorted(keepalive(10, pause_s=3) + later_many, key=lambda s: s[0])
    out = {name: write_pcap(d / f"{name}.pcap", segs) for name, segs in made.items()}
    out["bulk_transfers_snap96"] = write_pcap(d / "bulk96.pcap", made["bulk_transfers"], snaplen=96)
    out["long_snap96"] = write_pcap(d / "long96.pcap", made["long"], snaplen=96)
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import bench_analyze as bench
    finally:
        sys.path.pop(0)
    for name in ("short", "bulk"):
        p = bench.scenario_params(name, 30_000, 1000, 7)
        path, _truth, _fresh = bench.ensure_capture(p, d, False)
        out[f"bench_{name}"] = path
    return out


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.relative_to(SAMPLES).as_posix())
@pytest.mark.parametrize(
    "options", [Options(), QUICK, Options(decapsulate=False)], ids=["default", "quick", "nodecap"]
)
def test_sample_captures(path: Path, options: Options) -> None:
    compare(path, options)


@pytest.mark.skipif(
    not CORPUS_FILES, reason="the Zeek corpus (shared/corpus/zeek) is not beside the checkout"
)
def test_zeek_corpus() -> None:
    taken = [p.name for p in CORPUS_FILES for o in (Options(), QUICK) if compare(p, o) == "taken"]
    assert len(taken) >= 40


def test_generated_traffic(generated: dict[str, Path]) -> None:
    results = {}
    for name, path in generated.items():
        for label, options, chunk in (("default", Options(), capture.CHUNK), ("quick", QUICK, 1 << 16)):
            results[name, label] = compare(path, options, chunk)
    taken = {k for k, v in results.items() if v == "taken"}
    # the plain kinds of traffic stay on the express path (the benchmark's above all)
    for name in ("bench_short", "bench_bulk", "bulk_transfers", "bulk_transfers_snap96", "syn_retries"):
        assert (name, "default") in taken, results[name, "default"]
    for name in ("bulk_transfers", "bulk_transfers_snap96", "keepalive", "close_waits", "mixed"):
        assert (name, "quick") in taken, results[name, "quick"]
    # where the engine would hand a connection to its core, the express path gives up
    assert results["resets_after_fin", "default"] == "a connection leaves the fast paths"
    # with the short timers, connections retire while the capture is read: the rows are not
    # in flow_id order overall, and the express path has them in the engine's order
    rows, _st, _tot = engine_csv(generated["mixed"], QUICK)
    fids = [int(line.split(",", 1)[0]) for line in rows.decode().splitlines()]
    assert fids != sorted(fids)


def test_connections_finish_across_the_readers_chunks(generated: dict[str, Path]) -> None:
    """At the reader's own chunk size: rows of connections that retire (or are taken over by a
    new SYN on their 4-tuple) while the capture is read come out where the engine's do."""
    for name in ("ports_again", "mixed_many", "long", "long_and_short", "long_snap96"):
        for options in (Options(), QUICK, Options(time_wait=2.0)):
            assert compare(generated[name], options) == "taken", (name, options)
    rows, _st, _tot = engine_csv(generated["ports_again"], Options())
    assert b"superseded" in rows  # unanswered attempts taken over by a new connection
    for name in ("ports_again", "mixed_many"):
        rows, _st, _tot = engine_csv(generated[name], QUICK)
        fids = [int(line.split(",", 1)[0]) for line in rows.decode().splitlines()]
        assert fids != sorted(fids)


def test_kernel_captures_are_taken() -> None:
    """Real kernel traffic, with the UDP and ARP packets of the recording, stays express."""
    kernel = {p.stem: compare(p, Options()) for p in sorted((SAMPLES / "kernel").glob("*.pcap"))}
    for name in ("orderly_client_close", "orderly_server_close", "close_wait_leak", "refused", "unanswered"):
        assert kernel[name] == "taken", kernel[name]


def test_gives_up_on_what_only_the_engine_knows(tmp_path: Path) -> None:
    assert compare(SAMPLES / "lossy" / "fastopen.pcap", Options()) == "a segment of no fast connection"
    gz = tmp_path / "c.pcap.gz"
    gz.write_bytes(gzip.compress((SAMPLES / "kernel" / "refused.pcap").read_bytes()))
    assert compare(gz, Options()) == "not a classic pcap file"
    cut = tmp_path / "cut.pcap"
    cut.write_bytes((SAMPLES / "kernel" / "refused.pcap").read_bytes()[:-5])
    assert compare(cut, Options()) == "the capture is cut mid-record"
    assert compare(tmp_path / "missing.pcap", Options()) == "the file does not open"


# --------------------------------------------------------------------------------- the CLI


def tcpsm(*args: str, express_on: bool = True, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("TCPSM_EXPRESS", None)
    if not express_on:
        env["TCPSM_EXPRESS"] = "0"
    return subprocess.run(
        [sys.executable, "-m", "tcptrace_sm", "analyze", *args],
        capture_output=True, text=True, env=env, cwd=cwd, check=False,
    )  # fmt: skip


def cli_cases(generated: dict[str, Path]) -> list[tuple[Path, list[str]]]:
    return [
        (generated["bench_short"], []),
        (generated["bench_short"], ["--time-wait", "0.05"]),
        (generated["bench_bulk"], ["--jobs", "2"]),
        (SAMPLES / "kernel" / "close_wait_leak.pcap", []),
        (SAMPLES / "lossy" / "fastopen.pcap", []),  # the engine's
        (generated["keepalive"], ["--close-wait-timeout", "0.5"]),
    ]


def test_cli_output_is_the_engines(generated: dict[str, Path], tmp_path: Path) -> None:
    # (the first case is the express path's: what it writes is what the command prints)
    buf = io.StringIO()
    assert express.to_csv(buf, str(generated["bench_short"]), Options()) is not None
    assert buf.getvalue() == tcpsm(str(generated["bench_short"]), "--format", "csv").stdout
    for path, extra in cli_cases(generated):
        for to_file in (False, True):
            outs = []
            for on in (True, False):
                out = tmp_path / f"o{int(on)}.csv"
                args = [str(path), "--format", "csv", *extra, *(["-o", str(out)] if to_file else [])]
                r = tcpsm(*args, express_on=on)
                assert r.returncode == 0, r.stderr
                outs.append((out.read_text() if to_file else r.stdout, r.stderr))
            assert outs[0] == outs[1], (path.name, extra, to_file)
            assert outs[0][0].startswith(",".join(FLOW_COLUMNS) + "\n")


def test_rows_written_before_giving_up_are_thrown_away(
    generated: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A capture that leaves the express path near its end, after rows went out: the output
    is the engine's all the same (stdout and a file)."""
    from click.testing import CliRunner

    from tcptrace_sm import cli

    late = bytearray((SAMPLES / "lossy" / "fastopen.pcap").read_bytes()[24:])
    pos = 0
    while pos + 16 <= len(late):  # its records, long after the base capture's
        (n,) = struct.unpack_from("<I", late, pos + 8)
        struct.pack_into("<I", late, pos, 1_900_000_000)
        pos += 16 + n
    path = tmp_path / "late.pcap"
    path.write_bytes(generated["mixed"].read_bytes() + bytes(late))
    parts: list[bytes] = []
    small = 1 << 16  # the capture's connections retire over several chunks
    got = express.run(str(path), QUICK.config(), QUICK.max_flows, parts.append, chunk=small, flush=1)
    assert got == "a segment of no fast connection"
    assert parts  # rows had gone out
    monkeypatch.setattr(express, "CHUNK", small)
    # a file of its own (-o, or stdout sent to a new file) had the rows, and has them no more
    with (tmp_path / "direct.csv").open("w") as f:
        assert express.to_csv(f, str(path), QUICK, flush=1) is None
    assert (tmp_path / "direct.csv").read_text() == ""
    monkeypatch.setattr(cli, "EXPRESS_FLUSH", 1)
    monkeypatch.setattr(capture, "CHUNK", small)
    runner = CliRunner()
    for to_file in (False, True):
        outs = []
        for on in ("1", "0"):
            out = tmp_path / "o.csv"
            args = ["analyze", str(path), "--format", "csv", "--time-wait", "0.05"]
            r = runner.invoke(
                cli.cli, args + (["-o", str(out)] if to_file else []), env={"TCPSM_EXPRESS": on}
            )
            assert r.exit_code == 0, r.output
            outs.append(out.read_text() if to_file else r.stdout)
        assert outs[0] == outs[1]
        assert outs[0].count("\n") > 300


def test_progress_on_a_terminal(generated: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """The express path reports the bytes and packets read after each chunk (the progress line
    of a terminal), and writes the same output with it."""
    monkeypatch.setattr(express, "CHUNK", 1 << 16)
    path = generated["bench_short"]
    seen: list[tuple[int, int]] = []
    buf, plain = io.StringIO(), io.StringIO()
    got = express.to_csv(
        buf, str(path), Options(), progress=lambda st: seen.append((st.bytes_read, st.packets))
    )
    assert got is not None
    assert express.to_csv(plain, str(path), Options()) is not None
    assert buf.getvalue() == plain.getvalue()
    assert len(seen) > 10
    assert seen == sorted(seen)
    assert seen[-1] == (path.stat().st_size, got[0].packets)


def test_closed_and_waiting_connections_leave_memory(
    generated: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the connections it keeps in memory, the express path writes closed ones (and parks
    quiet attempts) to temporary files, with the same rows; below that (and with nothing quiet
    for long enough to park), it makes none."""
    opened: list[int] = []
    real = express._Spill.open

    def counted(self: Any) -> int:
        fd = real(self)
        opened.append(fd)
        return fd

    monkeypatch.setattr(express._Spill, "open", counted)
    for name in ("bench_short", "syn_retries"):
        path = str(generated[name])
        small: list[bytes] = []
        assert not isinstance(express.run(path, Config(), MAX_FLOWS, small.append, park_after=1e9), str)
        assert opened == []
        out: list[bytes] = []
        assert not isinstance(express.run(path, Config(), MAX_FLOWS, out.append, held=0, park_after=0.0), str)
        assert len(opened) == (2 if name == "bench_short" else 1)  # spill file, park file
        assert b"".join(out) == b"".join(small)
        opened.clear()
