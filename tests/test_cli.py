"""End to end through the command line: formats, record sets, files, exit codes."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import ROOT, SAMPLES

from tcptrace_sm.analysis import ANOMALY_COLUMNS, FLOW_COLUMNS, TRANSITION_COLUMNS
from tcptrace_sm.cli import ExitCode, cli

KERNEL = SAMPLES / "kernel"
LEAK = KERNEL / "close_wait_leak.pcap"
REFUSED = KERNEL / "refused.pcap"
REUSE = KERNEL / "reuse_after_time_wait.pcap"


def run(*args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), input=stdin, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_table_shows_flows_and_anomalies_with_summary_on_stderr() -> None:
    code, out, err = run("analyze", str(LEAK))
    assert code == ExitCode.OK
    assert "client_state" in out
    assert "CLOSE-WAIT" in out
    assert "stuck_close_wait" in out
    assert "TCP segments" in err
    assert "1 connection (half 1)" in err
    assert "anomalies: stuck_close_wait 1" in err


def test_quiet_drops_the_summary() -> None:
    code, _out, err = run("analyze", "-q", str(LEAK))
    assert code == 0
    assert err == ""


def test_csv_flows_have_the_documented_columns() -> None:
    code, out, _ = run("analyze", "-f", "csv", str(REUSE))
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert tuple(rows[0]) == FLOW_COLUMNS
    assert [(r["flow_id"], r["client_state"], r["server_state"], r["close"]) for r in rows] == [
        ("1", "CLOSED", "CLOSED", "fin"),
        ("11", "TIME-WAIT", "CLOSED", "fin"),  # flow_id: the frame of its SYN
    ]
    first = float(rows[0]["first_ts"])
    assert 1.7e9 < first < 2.1e9  # epoch seconds
    assert len(rows[0]["first_ts"].split(".")[1]) == 9  # exact nanoseconds


@pytest.mark.parametrize(
    ("records", "columns"), [("anomalies", ANOMALY_COLUMNS), ("transitions", TRANSITION_COLUMNS)]
)
def test_csv_record_sets(records: str, columns: tuple[str, ...]) -> None:
    code, out, _ = run("analyze", "-f", "csv", "--records", records, str(REFUSED))
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert tuple(rows[0]) == columns
    if records == "anomalies":
        assert rows[0]["code"] == "rst_terminated"
        assert rows[0]["side"] == "server"
        assert rows[0]["state"] == "SYN-SENT"
        assert rows[0]["frame"] == "2"
    else:
        assert [(r["side"], r["from_state"], r["to_state"]) for r in rows] == [
            ("client", "CLOSED", "SYN-SENT"),
            ("client", "SYN-SENT", "CLOSED"),
        ]


def test_json_document() -> None:
    code, out, _ = run("analyze", "-f", "json", str(REFUSED))
    assert code == 0
    doc = json.loads(out)
    assert set(doc) == {"summary", "flows", "anomalies", "transitions"}
    [flow] = doc["flows"]
    assert (flow["close"], flow["rst_by"], flow["errno"]) == ("refused", "server", "ECONNREFUSED")
    assert isinstance(flow["first_ts"], float)
    assert doc["summary"]["connections"] == 1
    assert doc["summary"]["close"] == {"refused": 1}


def test_jsonl_streams_one_record_per_line() -> None:
    code, out, _ = run("analyze", "-f", "jsonl", "--records", "transitions", str(LEAK))
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines
    assert all(set(r) == set(TRANSITION_COLUMNS) for r in lines)


def test_output_file_is_written_whole(tmp_path: Path) -> None:
    target = tmp_path / "flows.csv"
    target.write_text("previous run\n")
    code, out, _ = run("analyze", "-f", "csv", "-o", str(target), str(LEAK))
    assert code == 0
    assert out == ""
    assert target.read_text().startswith("flow_id,")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flows.csv"]  # no temporary left behind


def test_failed_run_keeps_the_previous_output(tmp_path: Path) -> None:
    target = tmp_path / "flows.csv"
    target.write_text("previous run\n")
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"not a capture at all")
    code, _, _ = run("analyze", "-f", "csv", "-o", str(target), str(bad))
    assert code == ExitCode.BAD_INPUT
    assert target.read_text() == "previous run\n"


def test_unwritable_output_is_a_usage_error(tmp_path: Path) -> None:
    code, _, err = run("analyze", "-o", str(tmp_path / "missing-dir" / "x.csv"), str(LEAK))
    assert code == ExitCode.USAGE
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("text.pcap", b"<html>this is not a capture</html>\n"),
        ("empty.pcap", b""),
        ("short.pcap", b"\xd4\xc3\xb2"),
    ],
)
def test_bad_input_is_one_line_and_exit_3(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    code, out, err = run("analyze", str(path))
    assert code == ExitCode.BAD_INPUT
    assert out == ""
    assert err.count("\n") == 1
    assert name in err
    assert "Traceback" not in err


def test_missing_file_is_bad_input(tmp_path: Path) -> None:
    code, _, err = run("analyze", str(tmp_path / "nope.pcap"))
    assert code == ExitCode.BAD_INPUT
    assert err.count("\n") == 1


def test_usage_error_is_exit_2() -> None:
    code, _, _ = run("analyze", "--format", "xml", str(LEAK))
    assert code == ExitCode.USAGE
    code, _, _ = run("analyze")
    assert code == ExitCode.USAGE


def test_cut_capture_keeps_what_came_before(tmp_path: Path) -> None:
    data = LEAK.read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[:-7])  # the capturing process died mid-record
    code, out, err = run("analyze", "-f", "csv", str(cut))
    assert code == 0
    assert "warning" in err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 1
    assert rows[0]["server_state"] == "CLOSE-WAIT"


def test_stdin_and_gzip(tmp_path: Path) -> None:
    code, out, _ = run("analyze", "-f", "csv", "-", stdin=gzip.compress(REUSE.read_bytes()))
    assert code == 0
    assert len(list(csv.DictReader(io.StringIO(out)))) == 2


def test_several_files_merge_into_one_stream(tmp_path: Path) -> None:
    code, out, _ = run("analyze", "-f", "csv", str(REFUSED), str(LEAK))
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 2


def test_options_change_the_verdicts() -> None:
    _, out, _ = run(
        "analyze", "-f", "csv", "--records", "anomalies", "--close-wait-timeout", "100", str(LEAK)
    )
    assert "stuck_close_wait" not in out
    _, out, _ = run("analyze", "-f", "csv", "--time-wait", "0", str(KERNEL / "orderly_client_close.pcap"))
    assert "TIME-WAIT" not in out


def test_segments_lists_what_the_analysis_sees() -> None:
    code, out, err = run("segments", "-f", "csv", str(REFUSED))
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["flags"] for r in rows] == ["S", "RA"]
    assert rows[0]["frame"] == "1"
    assert "mss=" in rows[0]["options"]
    assert rows[1]["len"] == "0"
    assert "packets" in err


def test_segments_limit_and_table() -> None:
    code, out, _ = run("segments", "--limit", "2", str(LEAK))
    assert code == 0
    assert len(out.strip().splitlines()) == 4  # header, rule, two segments


def test_python_dash_m_and_exit_code_on_bad_input(tmp_path: Path) -> None:
    bad = tmp_path / "x.pcap"
    bad.write_bytes(b"garbage" * 10)
    proc = subprocess.run(
        [sys.executable, "-m", "tcptrace_sm", "analyze", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 3
    assert proc.stderr.startswith("tcpsm: error:")
    assert proc.stderr.count("\n") == 1


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_exits_130_without_a_traceback() -> None:
    import array
    import fcntl
    import termios

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tcptrace_sm", "analyze", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdin is not None
    proc.stdin.write(LEAK.read_bytes()[:200])  # a capture that is still being written
    proc.stdin.flush()
    # once the pipe is empty tcpsm is reading the capture (an interrupt while Python starts
    # would interrupt Python, not tcpsm); a loaded machine may take seconds to get there
    waiting = array.array("i", [1])
    deadline = time.monotonic() + 20
    while waiting[0] and time.monotonic() < deadline:
        time.sleep(0.05)
        fcntl.ioctl(proc.stdin.fileno(), termios.FIONREAD, waiting)
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == ExitCode.INTERRUPTED
    assert b"Traceback" not in err
    assert err.decode().strip() == "tcpsm: interrupted"
