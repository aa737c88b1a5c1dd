"""The README documents what the code does: generated sections, commands, options, codes."""

from __future__ import annotations

import runpy
import subprocess
import sys

import click
import pytest
from conftest import ROOT

from tcptrace_sm.anomalies import CATALOGUE
from tcptrace_sm.cli import ExitCode, cli

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_generated_sections_are_current() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "update_readme.py"), "--check"],
        check=False,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr


def test_update_readme_renders_every_section() -> None:
    mod = runpy.run_path(str(ROOT / "scripts" / "update_readme.py"))
    assert mod["render"](README) == README


@pytest.mark.parametrize("code", list(CATALOGUE))
def test_every_anomaly_code_is_documented(code: str) -> None:
    kind = CATALOGUE[code]
    assert f"| `{code}` | {kind.severity} | {kind.category} |" in README


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_command_and_option_is_documented(name: str) -> None:
    assert f"tcpsm {name}" in README
    command = cli.commands[name]
    for param in command.params:
        if isinstance(param, click.Option) and param.name not in ("help",):
            assert any(opt in README for opt in param.opts), f"{name}: {param.opts} not in README"


@pytest.mark.parametrize("code", list(ExitCode))
def test_every_exit_code_is_documented(code: ExitCode) -> None:
    assert f"| {int(code)} |" in README
