"""The self-contained HTML report, checked as a person would see it: in a headless browser."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import SAMPLES

import tcptrace_sm
from tcptrace_sm.cli import cli
from tcptrace_sm.html import state_counts_over_time, time_in_state

KERNEL = SAMPLES / "kernel"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report.html"
    captures = [str(p) for p in sorted(KERNEL.glob("*.pcap"))]
    result = CliRunner().invoke(cli, ["report", *captures, "-o", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return out


def test_report_is_self_contained(report: Path) -> None:
    text = report.read_text(encoding="utf-8")
    urls = set(re.findall(r"(?:src|href)\s*=\s*[\"']([^\"']+)", text))
    assert urls == set()  # no script, style sheet or image loaded from anywhere
    assert "<script src" not in text
    assert set(re.findall(r"https?://[^\"' <]+", text)) <= {"http://www.w3.org/2000/svg"}


def test_report_has_every_part(report: Path) -> None:
    text = report.read_text(encoding="utf-8")
    for section in ("summary", "diagram", "over-time", "time-in-state", "connections", "anomalies"):
        assert f'<section id="{section}">' in text
    assert text.count('class="state active"') >= 9
    assert 'data-state="CLOSE-WAIT"' in text
    assert "stuck_close_wait" in text


def test_close_wait_build_up_and_time_in_state() -> None:
    a = tcptrace_sm.analyze(KERNEL / "close_wait_leak.pcap")
    start, end = a.summary["first_ts"], a.summary["last_ts"]
    _times, series = state_counts_over_time(a.transition_records, start, end)
    assert max(series["CLOSE-WAIT"]) == 1
    assert series["CLOSE-WAIT"][-1] == 1  # still there when the capture ends
    spent = time_in_state(a.transition_records, end)
    assert spent["CLOSE-WAIT"] == [pytest.approx(3.01, abs=0.05)]


def test_notebook_display() -> None:
    a = tcptrace_sm.analyze(KERNEL / "refused.pcap")
    html = a._repr_html_()
    assert "<svg" in html
    assert "<table" in html
    assert "refused 1" in html


@pytest.mark.skipif(CHROMIUM is None, reason="no headless Chromium on this machine")
def test_report_in_a_headless_browser(report: Path, tmp_path: Path) -> None:
    assert CHROMIUM is not None
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=2000",
    ]
    dom = subprocess.run(
        [CHROMIUM, *flags, "--dump-dom", report.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert 'data-ready="1"' in dom  # the page's script ran without error
    assert dom.count("<svg") >= 3
    assert "<polyline" in dom
    shot = tmp_path / "report.png"
    subprocess.run(
        [CHROMIUM, *flags, "--window-size=1300,2400", f"--screenshot={shot}", report.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 20_000  # a real page, not a blank one


def test_matplotlib_figures(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from tcptrace_sm import plot

    a = tcptrace_sm.analyze(KERNEL / "close_wait_leak.pcap")
    fig = plot.states_over_time(a)
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert "CLOSE-WAIT" in labels
    fig.savefig(tmp_path / "states.png")
    assert (tmp_path / "states.png").stat().st_size > 5_000
    fig2 = plot.time_in_state(a)
    ticks = [t.get_text() for t in fig2.axes[0].get_yticklabels()]
    assert "CLOSE-WAIT" in ticks
