"""One analysis shared out over processes (--jobs) or a Dask cluster: the same answers."""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import SAMPLES
from trafficgen import reused_ports, traffic, write_pcap

import tcptrace_sm
from tcptrace_sm.capture import ReadStats
from tcptrace_sm.cli import cli
from tcptrace_sm.clikit import Progress


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_pcap(tmp_path_factory.mktemp("par") / "t.pcap", traffic(11, 900, span_s=25))


def _same(a: tcptrace_sm.Analysis, b: tcptrace_sm.Analysis) -> None:
    assert a.flow_records == b.flow_records
    assert a.anomaly_records == b.anomaly_records
    assert a.transition_records == b.transition_records
    assert a.summary == b.summary


@pytest.mark.parametrize("jobs", [2, 3])
@pytest.mark.parametrize("engine", ["fast", "reference"])
def test_jobs_give_the_single_process_answers(capture: Path, jobs: int, engine: str) -> None:
    _same(tcptrace_sm.analyze(capture), tcptrace_sm.analyze(capture, jobs=jobs, engine=engine))


def test_a_warning_only_one_worker_has_is_kept(capture: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each worker reads everything, so the first one's reader statistics stand for all; but a
    worker whose temporary files could not be written says so, and that warning is kept."""
    from tcptrace_sm import engine, parallel

    monkeypatch.setattr(engine, "CLOSED_IN_MEMORY", 0)  # every full segment goes to a file
    monkeypatch.setattr(engine, "_CLOSED_SEG", 64)
    worker = parallel._worker

    def second_cannot_write(*args: Any) -> None:
        if args[3] == 1:  # the shard (the process is forked: this stays in the child)

            def full(*_a: Any, **_k: Any) -> Any:
                raise OSError(28, "No space left on device")

            engine.tempfile.mkstemp = full  # type: ignore[assignment]
        worker(*args)

    monkeypatch.setattr(parallel, "_worker", second_cannot_write)
    alone = tcptrace_sm.analyze(capture)
    two = tcptrace_sm.analyze(capture, jobs=2)
    assert alone.warnings == []
    (warning,) = two.warnings
    assert "(No space left on device): connections in TIME-WAIT" in warning
    two.stats.warnings.clear()
    _same(alone, two)


def test_jobs_with_4tuples_reused_within_a_chunk(tmp_path: Path) -> None:
    """Each worker cuts its share of a chunk where a 4-tuple comes back: the same answers."""
    path = write_pcap(tmp_path / "reuse.pcap", reused_ports(2000, pool=7, every_ms=5))
    one = tcptrace_sm.analyze(path)
    assert len(one.flow_records) == 2000
    _same(one, tcptrace_sm.analyze(path, jobs=2))
    _same(one, tcptrace_sm.analyze(path, engine="reference"))


def test_jobs_over_merged_files() -> None:
    files = sorted((SAMPLES / "kernel").glob("*.pcap"))
    _same(tcptrace_sm.analyze(files), tcptrace_sm.analyze(files, jobs=2))


def _csv(args: list[str]) -> str:
    res = CliRunner().invoke(cli, ["analyze", *args, "-f", "csv", "-q"])
    assert res.exit_code == 0, res.output
    return res.stdout


def test_cli_csv_is_byte_identical_whatever_the_jobs(capture: Path) -> None:
    one = _csv([str(capture), "--jobs", "1"])
    assert one.count("\n") > 900
    assert _csv([str(capture), "--jobs", "2"]) == one
    assert _csv([str(capture), "--jobs", "3", "--records", "transitions"]) == _csv(
        [str(capture), "--jobs", "1", "--records", "transitions"]
    )


@pytest.mark.parametrize(
    "command",
    [
        ["check", "-f", "json"],
        ["check", "--fail-on", "info"],
        ["report", "--title", "t"],
        ["diagram", "-f", "dot"],
    ],
    ids=["check json", "check failing", "report", "diagram"],
)
def test_other_commands_give_the_same_output_whatever_the_jobs(
    capture: Path, command: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tcptrace_sm import parallel

    shared: list[int] = []
    real = parallel.parallel_blocks

    def spy(*args: Any, **kw: Any) -> Any:
        shared.append(args[3])  # the jobs
        return real(*args, **kw)

    monkeypatch.setattr(parallel, "parallel_blocks", spy)

    def run(jobs: str) -> tuple[int, str]:
        res = CliRunner().invoke(cli, [*command, str(capture), "--jobs", jobs])
        return res.exit_code, res.stdout

    one = run("1")
    assert one[0] in (0, 1), one
    assert len(one[1]) > 100
    assert shared == []
    assert run("2") == one
    assert shared == [2]  # the workers did run


def test_a_bad_capture_with_jobs_is_a_one_line_error(tmp_path: Path) -> None:
    bad = tmp_path / "x.pcap"
    bad.write_bytes(b"not a capture at all")
    res = CliRunner().invoke(cli, ["analyze", str(bad), "--jobs", "2"])
    assert res.exit_code == 3
    assert res.stderr.count("\n") == 1
    assert "not a pcap or pcapng capture" in res.stderr


def test_stdin_runs_in_one_process(capture: Path) -> None:
    res = CliRunner().invoke(
        cli, ["analyze", "-", "--jobs", "2", "-f", "csv", "-q"], input=capture.read_bytes()
    )
    assert res.exit_code == 0
    assert res.stdout == _csv([str(capture), "--jobs", "1"])


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_shows_on_a_terminal_only(capture: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tty = _Tty()
    monkeypatch.setattr(sys, "stderr", tty)
    p = Progress([str(capture)], enabled=True)
    st = ReadStats(bytes_read=capture.stat().st_size // 2, packets=1000)
    p(st)
    text = tty.getvalue()
    for part in ("50%", "MB", "packets/s", "left"):
        assert part in text
    p.close()
    assert tty.getvalue().endswith("\r")
    quiet = Progress([str(capture)], enabled=False)
    before = tty.getvalue()
    quiet(st)
    assert tty.getvalue() == before


def test_progress_is_silent_when_stderr_is_not_a_terminal(
    capture: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipe = io.StringIO()
    monkeypatch.setattr(sys, "stderr", pipe)
    p = Progress([str(capture)], enabled=True)
    p(ReadStats(bytes_read=10, packets=10))
    p.close()
    assert pipe.getvalue() == ""


# ---- Dask --------------------------------------------------------------------------------

distributed = pytest.importorskip("dask.distributed")


@pytest.fixture(scope="module")
def cluster() -> object:
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as c:
        yield c


def test_a_two_worker_dask_cluster_gives_the_same_answers(capture: Path, cluster: object) -> None:
    with distributed.Client(cluster) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        _same(tcptrace_sm.analyze(capture), tcptrace_sm.analyze(capture, client=client))


def test_cli_scheduler(capture: Path, cluster: object) -> None:
    address = cluster.scheduler_address  # type: ignore[attr-defined]
    assert _csv([str(capture), "--scheduler", address]) == _csv([str(capture), "--jobs", "1"])


def test_cli_scheduler_that_cannot_be_reached(capture: Path) -> None:
    res = CliRunner().invoke(cli, ["analyze", str(capture), "--scheduler", "tcp://127.0.0.1:9"])
    assert res.exit_code == 2
    assert "cannot reach the Dask scheduler" in res.stderr
