"""Starting the command stays quick: no numpy, pandas, reader or engine before the analysis."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT

HEAVY = (
    "numpy",
    "pandas",
    "tcptrace_sm.capture",
    "tcptrace_sm.analysis",
    "tcptrace_sm.engine",
    "tcptrace_sm.parallel",
)


def test_importing_the_command_loads_nothing_heavy() -> None:
    code = f"import json, sys, tcptrace_sm.cli; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert json.loads(proc.stdout) == []


def test_analyze_help_runs() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tcptrace_sm", "analyze", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Usage: tcpsm analyze" in proc.stdout
    assert "--engine [fast|reference]" in proc.stdout
